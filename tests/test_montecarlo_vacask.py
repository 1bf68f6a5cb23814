"""Monte Carlo on VACASK without re-parsing (issue 31, item 4): batches of realizations share one
VACASK process per deck, each realization's instance parameters altered before its analysis
(anasim/montecarlo/batch.py, anasim/sim/vacask/alter.py). Its rows against the ngspice engine's, in other
batches and orders, at sigma 0 and after a Ctrl-C and a resume. The equivalence benchmark's small
TD-KAN checkpoint (80 digits samples) keeps it fast.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from anasim.circuit.ir import Circuit, Resistor
from anasim.circuit.stimulus import sweep_run
from anasim.families import SimSettings
from anasim.montecarlo import batch as mcbatch
from anasim.montecarlo.realizations import MonteCarlo
from anasim.pipeline import load, monte_carlo
from anasim.sim.engine import engine_scope
from anasim.sim.vacask.alter import Request, _shape, group_deck

CKPT = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence" / "tdkan.pt"
VARY = (("area", 0.1), ("opamp-gain", 0.3), ("opamp-offset", 1e-3))  # device, op-amp gain and offset alters
N, SAMPLES = 5, 80
TIMINGS = ("wall_s", "ngspice_s", "ngspice_elapsed_s", "engine_cpu_s")


def run_mc(folder: Path, engine: str, vary=VARY, n=N, workers=1) -> Path:
    mc = MonteCarlo(n, vary, seed=3)
    monte_carlo(load(CKPT), mc, samples=SAMPLES, json_out=folder / "mc.json", workers=workers,
                settings=SimSettings(engine=engine))  # fmt: skip
    return folder / "mc.mc"


def rows_of(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if k not in TIMINGS} for r in rows), key=lambda r: r["index"])


def outputs(folder: Path, n=N) -> np.ndarray:
    return np.stack([np.load(folder / "outputs" / f"p0_r{r:05d}.npy") for r in range(n)])


def span(folder: Path) -> float:
    ref = np.load(folder / "reference.npz")["reference"]
    return float(ref.max() - ref.min())


@pytest.fixture(scope="module")
def vacask_run(tmp_path_factory):
    return run_mc(tmp_path_factory.mktemp("mcv"), "vacask")


def test_vacask_reruns_equal_the_ngspice_rows(vacask_run, tmp_path):
    ngspice = run_mc(tmp_path, "ngspice")
    rows = rows_of(vacask_run)
    assert [r["path"] for r in rows] == ["rerun"] * N  # every realization altered a loaded circuit
    assert json.loads((vacask_run / "settings.json").read_text())["path"].startswith("rerun")
    assert all(r["path"] == "parse" for r in rows_of(ngspice))
    diff = np.abs(outputs(vacask_run) - outputs(ngspice)).max() / span(ngspice)
    assert diff <= 1e-6, diff  # issue 31: the engines agree to 1e-6 of the output range
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in rows_of(ngspice)]


def test_other_batches_and_order_give_the_same_rows(vacask_run, tmp_path, monkeypatch):
    monkeypatch.setattr(mcbatch, "BATCH", 2)  # batches of 2 on 2 workers, in whatever order they finish
    other = run_mc(tmp_path, "vacask", workers=2)
    diff = np.abs(outputs(other) - outputs(vacask_run)).max() / span(other)
    assert diff <= 1e-12, diff  # each analysis starts afresh: the same numbers in any batch
    # a batch of one (realization 4 here) has no process to share: a deck of its own, and its row says so
    assert [r["path"] for r in rows_of(other)] == ["rerun"] * 4 + ["parse"]
    drop = ("max_abs_error", "mean_abs_error", "max_error_rel_range", "path")
    strip = [{k: v for k, v in r.items() if k not in drop} for r in rows_of(other)]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in rows_of(vacask_run)]


def test_sigma_zero_reproduces_the_nominal_run(tmp_path):
    folder = run_mc(tmp_path, "vacask", vary=(("area", 0.0), ("opamp-offset", 0.0)), n=3)
    nominal = np.load(folder / "nominal.npy")
    diff = np.abs(outputs(folder, 3) - nominal).max() / span(folder)
    assert diff <= 1e-12, diff  # issue 31: sigma 0 is the nominal run to 1e-12 of the range
    assert [r["path"] for r in rows_of(folder)] == ["rerun"] * 3


def _cli(*args, cwd):
    exe = Path(sys.executable).with_name("anasim")
    return subprocess.Popen(
        [str(exe), "simulate", str(CKPT), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def test_ctrl_c_and_resume_give_the_same_rows(vacask_run, tmp_path):
    # 17 tasks on 2 workers: batches of 8, 8 and 1; Ctrl-C once the first batch has its rows
    args = ["--mc", "16", "--seed", "3", "--samples", str(SAMPLES), "--engine", "vacask", "--workers", "2"]
    args += [a for name, s in VARY for a in ("--vary", f"{name}={s}")]
    proc = _cli(*args, "--json", "m.json", cwd=tmp_path)
    rows, t0 = tmp_path / "m.mc" / "rows.jsonl", time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 300:
        if rows.exists() and rows.read_text().strip():  # a first batch is done
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    kept = rows_of(tmp_path / "m.mc")
    assert proc.returncode == 130 and 1 <= len(kept) < 16, out
    again = _cli(*args, "--json", "m.json", "--resume", cwd=tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert [r["index"] for r in rows_of(tmp_path / "m.mc")] == list(range(16))
    diff = np.abs(outputs(tmp_path / "m.mc") - outputs(vacask_run)).max() / span(vacask_run)
    assert diff <= 1e-12, diff  # realizations 0-4 are the one-shot run's, whatever ran them


def _request(rb: Resistor, x: list[float]) -> Request:
    c = Circuit("title", (Resistor("a", "in_0", "out", 1000.0), rb), inputs=("in_0",), outputs=("out",))
    with engine_scope("vacask") as engine, engine.solver_scope():
        run = sweep_run(np.array([[v] for v in x]), c.outputs, engine.tuning.sweep)
        r = Request(c, run, Path("."), engine.write(c, run), 1.0, None, None)
        _shape(r, engine.engine_line(run))
    return r


def test_the_group_deck_alters_what_differs_and_shares_equal_samples():
    """Requests of one shape: the writer's pieces, never deck text read back. The group deck
    alters what differs, shares equal sample lists, and runs each request's own analysis."""
    a = _request(Resistor("b", "out", "0", 1000.0), [1.0, 2.0])
    b = _request(Resistor("b", "out", "0", 2000.0), [1.0, 2.0])
    c = _request(Resistor("b", "out", "0", 1000.0), [1.0, 3.0])
    other = _request(Resistor("b", "out", "in_0", 1000.0), [1.0, 2.0])
    assert a.key == b.key == c.key != other.key  # values may differ, nodes may not
    assert a.parts.text() == a.text  # the pieces are the deck
    deck = group_deck([a, b, c]).splitlines()
    assert deck.count('  alter instance("Rb") r=2000.0') == 1 and deck.count('  alter instance("Rb") r=1000.0') == 1
    assert not any("Ra" in line for line in deck if "alter" in line)  # equal everywhere: never altered
    assert sum(line.startswith("  var anasim_x") for line in deck) == 2  # a and b share their samples
    assert [line.split()[1] for line in deck if line.startswith("  analysis")] == ["m0000", "m0001", "m0002"]


def test_a_group_vacask_cannot_finish_runs_each_realization_alone(vacask_run, tmp_path, monkeypatch):
    from anasim.errors import SimError
    from anasim.sim.vacask import alter

    real = alter.process.run_deck

    def failing(text, work, *args, **kw):
        if "  alter instance(" in text:  # every shared deck fails, as a sample without convergence would
            raise SimError("no convergence (test)", work, "", "vacask")
        return real(text, work, *args, **kw)

    monkeypatch.setattr(alter.process, "run_deck", failing)
    folder = run_mc(tmp_path, "vacask")
    assert [r["path"] for r in rows_of(folder)] == ["parse"] * N  # each ran decks of its own, and says so
    diff = np.abs(outputs(folder) - outputs(vacask_run)).max() / span(folder)
    assert diff <= 1e-12, diff  # the same numbers either way


@pytest.mark.parametrize("keep", [0, 1])  # 0: every sample list written afresh (the parse path's text)
def test_sample_text_written_once_equals_the_text_written_afresh(vacask_run, tmp_path, monkeypatch, keep):
    from anasim.sim.vacask import writer

    monkeypatch.setattr(writer, "_SAMPLE_KEEP", keep)
    monkeypatch.setattr(writer, "_SAMPLE_TEXT", {})
    folder = run_mc(tmp_path, "vacask")
    diff = np.abs(outputs(folder) - outputs(vacask_run)).max() / span(folder)
    assert diff <= 1e-12, diff  # the reused text is the same numbers
    x = np.random.default_rng(1).standard_normal((50, 7))
    fresh = "{[" + "], [".join(", ".join(f"{v:.17g}" for v in r) for r in x.tolist()) + "]}"
    assert writer._samples(x) == writer._samples(x.copy()) == fresh
    y = x.copy()
    y[3, 4] = np.nextafter(y[3, 4], 9.0)  # one bit apart: a text of its own
    assert writer._samples(y) != fresh and f"{y[3, 4]:.17g}" in writer._samples(y)
    assert len(writer._SAMPLE_TEXT) <= keep
