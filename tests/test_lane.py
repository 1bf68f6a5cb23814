"""Monte Carlo's lane (anasim/montecarlo/lane.py, anasim/sim/vacask/scaled.py): a batch of
realizations of linear variations run as arrays of fields, each part of each stage one VACASK
process. The fields must be those ``Variation.apply`` gives element by element (exactly), the
values the VACASK writer would write for the varied circuit (the same text), and the rows
those of the realizations run their usual way (1e-12 of the range) and of ngspice (1e-6)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_montecarlo_vacask import CKPT, SAMPLES, N, outputs, span  # its small checkpoint and sizes
from test_rewritten import CASES, plan_of  # the small TD-KAN (edge, shared) and MLP plans

from anasim.circuit.ir import VCCS, Device, Resistor
from anasim.errors import SimError
from anasim.families import SimSettings
from anasim.montecarlo import batch as mcbatch
from anasim.montecarlo import lane
from anasim.montecarlo.realizations import MonteCarlo
from anasim.montecarlo.variations import VARIATIONS, Perturbation
from anasim.montecarlo.worker import Context, Task
from anasim.pipeline import load, monte_carlo
from anasim.sim import batch
from anasim.sim.engine import engine_scope
from anasim.sim.vacask import scaled, writer

LINEAR = [name for name, v in VARIATIONS.items() if v.linear]
SIGMAS = [((name, 0.1),) for name in LINEAR] + [tuple((name, 0.1) for name in LINEAR)]
EXACT = 1e-12  # of the output range: the same circuits, one VACASK process or several
ENGINES = 1e-6  # of the output range: VACASK against ngspice (issue 31)


@pytest.mark.parametrize("name", LINEAR)
def test_a_variation_s_fields_are_its_apply(name):
    """Field arithmetic against ``apply``, bit for bit, on every kind the variation names."""
    v, rng = VARIATIONS[name], np.random.default_rng(5)
    examples = {
        Device: Device("d", "a", "b", "c", area=0.7, scale=1.3, shift=0.01),
        Resistor: Resistor("r", "a", "b", 12_345.678),
        VCCS: VCCS("g", "a", "b", "c", "d", 3.3e-5),
    }
    assert v.fields
    for kind, (field, op) in v.fields.items():
        e = examples[kind]
        for f in rng.uniform(0.5, 1.5, 20).tolist():
            want = getattr(v.apply(e, f), field)
            got = getattr(e, field) * f if op == "*" else getattr(e, field) / f
            assert got == want, (kind.__name__, field, f)
            others = [x.name for x in dataclasses.fields(e) if x.name != field]
            assert all(getattr(v.apply(e, f), x) == getattr(e, x) for x in others)


def written_values(part, circuit) -> dict[str, float]:
    """Instance name -> the number the writer gives its scaled parameter (gain or r)."""
    out = {}
    for name, _, params in writer.body(circuit).instances:
        m = re.match(r"(gain|r)=(\S+)", params)
        if m and name[0] in "BGR":
            out[name] = float(m.group(2))
    return out


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("sigmas", SIGMAS, ids=lambda s: "+".join(n for n, _ in s))
def test_the_lane_s_values_are_the_writer_s_for_the_varied_circuit(case, sigmas):
    """Each scaled instance's value from the lane's arrays equals, as a float, the one the VACASK
    writer writes for the realization's rewritten parts (Perturbation.rewritten)."""
    plan = plan_of(case)
    names = tuple(n for n, _ in sigmas)
    checked = 0  # over the stages: a stage may have nothing a variation scales
    with engine_scope("vacask"):
        for st in plan.stages:
            m = lane.stage_map(st.circuit, names)
            assert m is not None
            for r in range(3):
                pert = Perturbation(sigmas, 4, r)
                varied = pert.rewritten(st.circuit, st.key, batch.nominal_parts(st.circuit))
                fields = lane.scaled(m, pert, st.circuit, st.key)
                for p, part in enumerate(m.parts):
                    want = written_values(part, varied[p].circuit)
                    body = writer.body(part.circuit)
                    for s in fields[p]:
                        got = scaled.values(part.circuit, body, s, "v").tolist()
                        for i, value in zip(s.index.tolist(), got):
                            assert value == want[writer.card_name(part.circuit.elements[i])]
                            checked += 1
    assert checked > 0


def test_the_lane_takes_only_what_it_can_run():
    plan = plan_of("tdkan-edge")
    settings = SimSettings(engine="vacask", chunk=1000)
    ctx = Context(plan, settings, None)
    area = ((("area", 0.1),),)
    assert lane.usable(ctx, [Task(0, 0, area[0], 0, "binary")])
    assert not lane.usable(ctx, [Task(-1, -1, (), 0, "binary")])  # the nominal circuit
    assert not lane.usable(ctx, [Task(0, 0, (("opamp-gain", 0.3),), 0, "binary")])  # not a scaling
    assert lane.usable(ctx, [Task(0, 0, (("area", 0.1), ("opamp-gain", 0.0)), 0, "binary")])  # sigma 0: none
    assert not lane.usable(Context(plan, dataclasses.replace(settings, engine="ngspice"), None),
                           [Task(0, 0, area[0], 0, "binary")])  # fmt: skip
    assert not lane.usable(Context(plan, dataclasses.replace(settings, chunk=2), None),
                           [Task(0, 0, area[0], 0, "binary")])  # samples in several runs  # fmt: skip
    assert lane.batch_size(ctx, [Task(0, 0, area[0], 0, "binary")]) == lane.MOST  # a small circuit
    assert mcbatch.size(500, 2, lane.MOST) == lane.MOST > mcbatch.size(500, 2) == mcbatch.BATCH
    assert mcbatch.size(100, 2, lane.MOST) == 50  # no worker idle


# --- whole Monte Carlo runs: the lane against the threads and against ngspice -------------------

VARY = (("area", 0.1), ("coeff", 0.05))


def run_mc(folder: Path, engine: str, n=N) -> Path:
    monte_carlo(load(CKPT), MonteCarlo(n, VARY, seed=3), samples=SAMPLES, json_out=folder / "mc.json", workers=1,
                settings=SimSettings(engine=engine))  # fmt: skip
    return folder / "mc.mc"


@pytest.fixture(scope="module")
def lane_run(tmp_path_factory):
    return run_mc(tmp_path_factory.mktemp("lane"), "vacask")


def test_lane_rows_equal_the_threads_rows_and_ngspice_s(lane_run, tmp_path, monkeypatch):
    calls = []
    real = lane.realize
    monkeypatch.setattr(lane, "realize", lambda ctx, tasks: calls.append(len(tasks)) or real(ctx, tasks))
    again = run_mc(tmp_path / "lane", "vacask")
    assert calls == [N]  # one batch, run as arrays
    monkeypatch.setattr(lane, "usable", lambda ctx, tasks: False)
    threads = run_mc(tmp_path / "threads", "vacask")
    ngspice = run_mc(tmp_path / "ngspice", "ngspice")
    rows = [json.loads(line) for line in (lane_run / "rows.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == ["rerun"] * N and all(r["ngspice_s"] > 0 for r in rows)
    assert np.array_equal(outputs(again), outputs(lane_run))  # the same deck: the same numbers
    diff = np.abs(outputs(threads) - outputs(lane_run)).max() / span(lane_run)
    assert diff <= EXACT, diff
    diff = np.abs(outputs(ngspice) - outputs(lane_run)).max() / span(lane_run)
    assert diff <= ENGINES, diff


def test_a_group_the_lane_cannot_finish_runs_its_usual_way(lane_run, tmp_path, monkeypatch):
    from anasim.sim.vacask import Vacask

    def failing(self, *args, **kw):
        raise SimError("no convergence (test)", tmp_path, "", "vacask")

    monkeypatch.setattr(Vacask, "rerun_scaled", failing)
    folder = run_mc(tmp_path, "vacask")
    diff = np.abs(outputs(folder) - outputs(lane_run)).max() / span(folder)
    assert diff <= EXACT, diff  # the threads ran them: the same numbers
