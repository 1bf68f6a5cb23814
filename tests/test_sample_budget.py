"""Issue 29, item 9: a sample that cannot converge costs its budget, not the run. ngspice's own
point reports drive the progress within a chunk; a sample past ``--sample-timeout`` seconds is
recorded as failed with why, and the others go on (the ones before it keep their sweep)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner
from test_ngspice_inputs import TDKAN

from anasim.circuit.expr import V, add, mul
from anasim.circuit.ir import BSource, Circuit, Resistor
from anasim.errors import Stalled
from anasim.sim.batch import sweep
from anasim.sim.ngspice.process import run_deck
from anasim_cli.main import cli


def no_solution_circuit(n: int = 40) -> Circuit:
    """V(o): I = in + V(o)^2 into o and 1 ohm to ground, so V^2 - V + in = 0, which has no real
    root for in > 1/4: Newton wanders through ngspice's gmin and source stepping (37,000
    iterations before it gives up). An n x n grid of 1 kohm hung on o by 1 Mohm makes each
    iteration cost a factorization of n^2 nodes: a sample with a root takes about 4 iterations
    (0.3 s for 4 samples with n = 40), the one without tens of seconds."""
    els = [BSource("q", "0", "o", "I", add(V("in_0"), mul(V("o"), V("o")))), Resistor("r", "o", "0", 1.0)]
    for i in range(n):
        for j in range(n):
            if j + 1 < n:
                els.append(Resistor(f"h{i}_{j}", f"g{i}_{j}", f"g{i}_{j + 1}", 1e3))
            if i + 1 < n:
                els.append(Resistor(f"v{i}_{j}", f"g{i}_{j}", f"g{i + 1}_{j}", 1e3))
    els += [Resistor("link", "o", "g0_0", 1e6), Resistor("end", f"g{n - 1}_{n - 1}", "0", 1e3)]
    return Circuit("no root for in > 1/4", elements=tuple(els), inputs=("in_0",), outputs=("o",))


def test_sample_past_its_budget_fails_with_why_and_the_others_go_on(tmp_path):
    """Sample 1 has no solution: with a 2 s budget it is failed, named with the reason and the
    hint, and samples 0 and 2 keep the root (V = (1 - sqrt(1 - 4 in)) / 2; the grid's 1 Mohm
    moves it by under 1e-6 V, tolerance 1e-5 V)."""
    x = np.array([[0.1], [1.0], [0.2]])
    res = sweep(no_solution_circuit(), x, tmp_path, jobs=1, sample_timeout=2.0)
    assert list(res.failed) == [1]
    why = res.failed[1]
    assert "no convergence within 2 CPU s (--sample-timeout)" in why and "negative-resistance" in why, why
    assert "--tile" in why and "--wire-r" in why and str(tmp_path / "sample_000001") in why
    root = (1 - np.sqrt(1 - 4 * x[[0, 2], 0])) / 2
    np.testing.assert_allclose(res.outputs[[0, 2], 0], root, rtol=0, atol=1e-5)
    assert np.isnan(res.outputs[1, 0])
    assert (tmp_path / "chunk_000000.npy").is_file()  # partial results are on disk


def test_point_reports_are_read_while_ngspice_runs_and_a_stall_is_killed(tmp_path):
    """run_deck reads ngspice's ' Reference value : v' reports as they come (on_point(int(v) + 1))
    and kills a run that reports no new point for ``stall`` CPU seconds (of ngspice: a busy machine
    does not shorten the budget). This transient reports its
    time, below 1 s for all its run, four times a second of CPU: point 1 comes and no other."""
    deck = "endless\nR1 a 0 1\nV1 a 0 sin(0 1 1e6)\n.control\ntran 1n 10 0 1n\n.endc\n.end\n"
    seen = []
    with pytest.raises(Stalled) as err:
        run_deck(deck, tmp_path, "out.txt", on_point=seen.append, stall=1.0)
    assert seen == [1] and err.value.done == 1
    assert "no sample finished within 1 CPU s" in str(err.value) and str(tmp_path) in str(err.value)
    assert "Reference value" in (tmp_path / "ngspice.log").read_text()


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_sample_timeout_must_be_a_positive_time(value):
    res = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--sample-timeout", value])
    assert res.exit_code == 2 and "'--sample-timeout'" in res.output and "finite time > 0" in res.output, res.output


@pytest.mark.parametrize(
    "name, cost",
    [("ngspice", "256 rows: 13 s an iteration; VACASK (--engine vacask)"), ("vacask", "256 rows: 0.26 s an iteration")],
)
def test_slow_samples_get_the_cost_note_once(monkeypatch, capsys, name, cost):
    """Samples slower than SLOW_SAMPLE_S get one note on stderr that says what costs the time,
    with the running engine's own measured cost of a mesh (ngspice's names the faster engine)."""
    from anasim.sim import batch
    from anasim.sim.engine import engine_scope

    monkeypatch.setattr(batch, "SLOW_SAMPLE_S", 0.01)
    with engine_scope(name):
        batch.run_chunks(lambda start: time.sleep(0.05), [0, 1, 2], 3, 1, 1, True, lambda: None)
    err = capsys.readouterr().err
    assert err.count("s a sample:") == 1 and "factors at each Newton iteration" in err and cost in err, err
    assert f"{name}: about " in err


def test_the_budget_clock_counts_the_simulators_cpu_not_the_wall(tmp_path):
    """live.cpu_clock reads a process's CPU seconds: a process that waits is not charged for the
    wall time passing (so a busy machine, which makes a run wait, does not shorten its budget),
    one that computes is. Tolerances: 0.1 CPU s for the waiting one, and the spinning one at least
    0.2 CPU s of its 0.6 s of spinning (it may share a core with other work)."""
    import sys

    from anasim.sim import live

    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    waiting = live.start(["sleep", "0.6"], tmp_path)
    busy = live.start([sys.executable, "-c", spin], tmp_path)
    try:
        clocks = live.cpu_clock(waiting), live.cpu_clock(busy)
        time.sleep(0.3)
        readings = [c() for c in clocks]
        while busy.poll() is None:  # its last reading is kept after it ends
            readings[1] = clocks[1]()
            time.sleep(0.02)
    finally:
        for proc in (waiting, busy):
            proc.wait()
            live.forget(proc)
    assert readings[0] < 0.1 and readings[1] >= 0.2, readings
