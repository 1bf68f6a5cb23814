"""Monte Carlo varied after the runner's rewrites (issue 31, item 4): a worker rewrites a plan's
nominal stages once (:func:`anasim.sim.batch.nominal_parts`) and applies each realization's
draws to the parts (:meth:`Perturbation.rewritten`), where its variations only scale currents.
The parts must be those of the perturbed circuit rewritten, up to rounding, and the outputs the
same; where that does not hold (a nonlinear variation, a device merged into a table) it says
so and the driver perturbs, then rewrites."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from anasim.circuit.ir import Circuit, Curve, Device
from anasim.families import FAMILIES, SimSettings, make_options
from anasim.montecarlo.variations import VARIATIONS, Perturbation
from anasim.sim import batch
from anasim.sim.driver import simulate

CASES = {
    "tdkan-edge": ("tdkan", {"arch": "tdkan", "dims": [4, 3, 2], "bases": ["a21", "z21"]}, {}),
    "tdkan-shared": ("tdkan", {"arch": "tdkan", "dims": [4, 3, 2], "bases": ["a21", "z21"]}, {"mapping": "shared"}),
    "mlp": ("mlp", {"arch": "mlp", "dims": [4, 3, 2], "activation": "a21"}, {}),
}
LINEAR = [name for name, v in VARIATIONS.items() if v.linear]
ROUNDING = 1e-14  # relative: a factor applied before or after the rewrites' own products
EXACT = 1e-12  # of the output range


def plan_of(case: str, samples: int = 6):
    family, config, options = CASES[case]
    torch.manual_seed(0)
    model = FAMILIES[family].build(config).double().eval()
    z = torch.randn(samples, config["dims"][0], dtype=torch.float64)
    return FAMILIES[family].plan(model, z, make_options(FAMILIES[family], options, FAMILIES), SimSettings(jobs=1))


def same_parts(got: list, want: list) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a.inputs, a.outputs, a.clippers) == (b.inputs, b.outputs, b.clippers)
        assert a.circuit.inputs == b.circuit.inputs and a.circuit.outputs == b.circuit.outputs
        assert len(a.circuit.elements) == len(b.circuit.elements)
        for x, y in zip(a.circuit.elements, b.circuit.elements):
            assert type(x) is type(y) and x.name == y.name
            for f in dataclasses.fields(x):
                u, v = getattr(x, f.name), getattr(y, f.name)
                if isinstance(u, float):
                    assert u == pytest.approx(v, rel=ROUNDING, abs=0), (x.name, f.name)
                else:
                    assert u == v, (x.name, f.name)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("variation", LINEAR)
def test_varied_parts_are_the_rewrites_of_the_varied_circuit(case, variation):
    plan = plan_of(case)
    pert = Perturbation(((variation, 0.1),), 3, 7)
    varied = 0
    for st in plan.stages:
        got = pert.rewritten(st.circuit, st.key, batch.fast_parts(st.circuit))
        assert got is not None, f"{st.key}: {variation} should apply to the rewritten parts"
        want = batch.fast_parts(pert(st.circuit, st.key))
        same_parts(got, want)
        varied += got != batch.nominal_parts(st.circuit)
    assert varied >= 1  # the draws reached at least one stage's parts


@pytest.mark.parametrize("case", list(CASES))
def test_a_realization_varied_after_the_rewrites_gives_the_outputs_of_one_varied_before(case, tmp_path):
    """The driver's path (Perturbation, which can vary the parts) against the same draws through
    a plain function (perturbed, then rewritten): equal outputs to 1e-12 of their range, and
    different from the nominal ones."""
    plan = plan_of(case)
    pert = Perturbation(tuple((v, 0.1) for v in LINEAR if CASES[case][0] in VARIATIONS[v].families), 5, 2)
    after = simulate(plan, SimSettings(jobs=1, perturb=pert), tmp_path / "after").outputs
    before = simulate(plan, SimSettings(jobs=1, perturb=lambda c, k: pert(c, k)), tmp_path / "before").outputs
    nominal = simulate(plan, SimSettings(jobs=1), tmp_path / "nominal").outputs
    scale = float(np.ptp(before)) or 1.0
    assert np.abs(after - before).max() <= EXACT * scale
    assert np.abs(after - nominal).max() > 1e-6 * scale


@pytest.mark.parametrize("variation", [n for n, v in VARIATIONS.items() if not v.linear and "tdkan" in v.families])
def test_a_nonlinear_variation_is_applied_before_the_rewrites(variation):
    plan = plan_of("tdkan-edge")
    st = plan.stages[0]
    pert = Perturbation(((variation, 0.01), ("area", 0.1)), 0, 1)
    assert not pert.linear()
    assert pert.rewritten(st.circuit, st.key, batch.fast_parts(st.circuit)) is None


def test_a_device_merged_into_a_table_is_varied_before_the_rewrites():
    """Two devices in parallel with no virtual ground become one table of their summed current:
    a factor on one of them cannot be put on the table, so rewritten() says None."""
    table = (-1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0)
    curve = Curve("d", "pwl(x,-1.0,0.0,0.0,0.0,1.0,2.0,2.0,2.0)", 1e-3, table)
    c = Circuit(
        "parallel",
        inputs=("a",),
        outputs=("a",),
        elements=(Device("D1", "a", "0", "d"), Device("D2", "a", "0", "d")),
        curves=(curve,),
    )
    parts = batch.fast_parts(c)
    assert [type(e).__name__ for p in parts for e in p.circuit.elements] == ["Table"]
    assert Perturbation((("iv-scale", 0.1),), 0, 0).rewritten(c, "whole", parts) is None


def test_sigma_zero_gives_the_nominal_parts_themselves():
    plan = plan_of("tdkan-edge")
    st = plan.stages[0]
    parts = batch.nominal_parts(st.circuit)
    assert batch.nominal_parts(st.circuit) is parts  # rewritten once per circuit
    assert Perturbation((("area", 0.0),), 0, 0).rewritten(st.circuit, st.key, parts) is parts


def test_threads_that_start_together_rewrite_a_stage_once(monkeypatch):
    """A rerun batch's threads ask for a stage's parts at once: one makes them, the others wait
    for them (before, each of 8 threads rewrote every stage)."""
    import threading
    import time

    plan = plan_of("tdkan-edge")
    circuit = plan.stages[0].circuit
    made, real = [], batch.fast_parts

    def slow(c, part_elements=batch.TUNED):
        made.append(c)
        time.sleep(0.05)  # long enough that the other threads ask while it makes them
        return real(c, part_elements)

    monkeypatch.setattr(batch, "fast_parts", slow)
    got = [None] * 6

    def member(i):
        got[i] = batch.nominal_parts(circuit)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1
    assert all(g is got[0] for g in got)
