"""The linear solver (issue 30): --solver auto|klu|sparse, KLU's decks, the fallback to Sparse,
the engine recorded everywhere, and the same decks under KLU and Sparse in one ngspice.

Runs under any ngspice: with KLU (ngspice 46 from `make install`, or /tmp/ngspice-klu/env.sh
sourced) the solvers are compared; without it (Debian's 39) `--solver klu` must be refused with a
message naming the engine and what to install, and auto must mean Sparse.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_physical import LIN, linear_crossbar

from anasim.data import load_dataset
from anasim.devices import embedded
from anasim.errors import AnasimError, SimError
from anasim.families.kirchhoff.lower import RELTOL
from anasim.families.tdkan.lower import lower
from anasim.families.tdkan.options import TdkanOptions
from anasim.metrics import engine_text
from anasim.montecarlo.realizations import _resume_check
from anasim.pipeline import load, simulate
from anasim.sim.batch import deck_text, sweep, sweep_of
from anasim.sim.engine import get_engine
from anasim.sim.ngspice.process import has_klu, ngspice_path, ngspice_version, resolve_solver, solver_scope
from anasim_cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "netlists" / "examples"
KLU = has_klu()


def fake_ngspice(folder: Path, banner: str) -> Path:
    """An `ngspice` that prints ``banner`` for -v (an engine this machine may not have)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "ngspice"
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' '******' '{banner}' '******'\n")
    exe.chmod(0o755)
    return exe


def test_auto_is_klu_exactly_when_the_engine_has_it():
    out = subprocess.run([ngspice_path(), "-v"], capture_output=True, text=True).stdout
    assert ("Compiled with KLU" in out) == KLU
    assert resolve_solver("auto") == ("klu" if KLU else "sparse")
    assert resolve_solver("sparse") == "sparse"


def test_klu_is_refused_by_an_engine_without_it(monkeypatch, tmp_path):
    # a real refusal by this machine's ngspice when it lacks KLU; a fake ngspice-39 otherwise
    if KLU:
        exe = fake_ngspice(tmp_path / "bin", "** ngspice-39 : Circuit level simulation program")
        monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    version, path = ngspice_version(), ngspice_path()
    assert not has_klu()
    with pytest.raises(AnasimError) as err:
        resolve_solver("klu")
    msg = str(err.value)
    assert f"{version} at {path} has no KLU solver" in msg
    assert "ngspice 42 or newer built with KLU" in msg and "make install" in msg and "bookworm-backports" in msg
    assert resolve_solver("auto") == "sparse"


def test_cli_refuses_solver_klu_without_klu_and_names_the_engine(monkeypatch, tmp_path):
    if KLU:
        exe = fake_ngspice(tmp_path / "bin", "** ngspice-39 : Circuit level simulation program")
        monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    args = ["simulate", str(EXAMPLES / "digits_tdkan.pt"), "--samples", "2", "--solver", "klu"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert f"Error: {ngspice_version()} at {ngspice_path()} has no KLU solver" in res.output
    assert len(res.output.strip().splitlines()) == 1  # one line, no traceback


@pytest.mark.parametrize("bad", ["umfpack", "KLU", ""])
def test_unknown_solver_is_refused(bad):
    with pytest.raises(AnasimError, match=f"--solver {bad!r} is not a solver; use one of auto, klu, sparse"):
        resolve_solver(bad)


def test_missing_ngspice_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimError, match=r"no 'ngspice' on PATH.*make install.*bookworm-backports"):
        ngspice_path()


@pytest.mark.parametrize("solver", ["klu", "sparse"])
def test_deck_carries_the_solver_and_engine(solver):
    c = linear_crossbar(0.0, 1e6)[1]
    with solver_scope(solver, check=False):
        text = deck_text(c, np.array([[0.5, 0.5]]))
    lines = text.splitlines()
    assert lines[1].startswith(f"* engine {ngspice_version()}, solver {'KLU' if solver == 'klu' else 'Sparse'}")
    assert (".options klu" in lines) == (solver == "klu")
    assert "set no_mem_check" in lines  # ngspice 46's memory pre-check off (39 ignores the variable)
    # a Run's solver is the scope's, read when the Run is built
    with solver_scope("sparse"):
        assert sweep_of(c, np.zeros((1, 2))).solver == "sparse"


def test_engine_text_names_the_fallback():
    assert engine_text({"simulator": "ngspice-46, klu", "solver_fallback": []}) == "ngspice-46, klu"
    assert engine_text({"simulator": "ngspice-46, klu", "solver_fallback": [1, 3]}) == (
        "ngspice-46, klu (Sparse for 2 sample(s) KLU did not converge on: 1, 3)"
    )
    assert engine_text({}) == "-"


@pytest.mark.parametrize("key, value", [("engine", "ngspice-39"), ("solver", "sparse"), ("engine", "ngspice-46")])
def test_monte_carlo_resume_refuses_another_engine_or_solver(tmp_path, key, value):
    record = {"seed": 0, "engine": "ngspice-45", "solver": "klu", "realizations": 3}
    (tmp_path / "settings.json").write_text(json.dumps(record | {key: value}))
    with pytest.raises(AnasimError, match=f"{key}: recorded '{value}', now '{record[key]}'"):
        _resume_check(tmp_path, record, resume=True)
    (tmp_path / "settings.json").write_text(json.dumps(record | {"realizations": 9}))
    _resume_check(tmp_path, record, resume=True)  # the same engine and solver: resumes


def test_libngspice_is_the_same_engine_as_the_binary():
    # PySpice (lock-step runs) and `ngspice -b` (every other run) must be one engine: under
    # /tmp/ngspice-klu/env.sh both are 46, under the system both are 39
    from anasim.sim.ngspice.libngspice import library_version

    assert library_version() == ngspice_version()


def rails_circuit():
    """A linear crossbar with tanh op-amp rails at 40% of its largest output: KLU gives up on 2
    of its 4 samples (gmin and source stepping fail) where Sparse converges."""
    x = np.array([[0.3, 0.9], [1.0, 0.25], [0.6, 0.6], [1.0, 1.0]])
    with embedded({"lin": LIN}):
        model = linear_crossbar(0.0, 1e6)[0]
        free = lower(model, TdkanOptions(opamp_gain=1e6))[0]
    return model, free, x


def test_rails_deck_completes_with_the_fallback_recorded(tmp_path):
    model, free, x = rails_circuit()
    with solver_scope("sparse"):
        peak = float(np.abs(sweep(free, x, tmp_path / "free", jobs=1).outputs).max())
    with embedded({"lin": LIN}):
        circuit = lower(model, TdkanOptions(opamp_gain=1e6, rails=0.4 * peak))[0]
    with solver_scope("sparse"):
        sparse = sweep(circuit, x, tmp_path / "sparse", jobs=1)
    with solver_scope("auto"):
        auto = sweep(circuit, x, tmp_path / "auto", jobs=1)
    assert not auto.failed and not sparse.failed and sparse.solver_fallback == []
    assert auto.solver == ("klu" if KLU else "sparse")
    if KLU:  # measured: samples 1 and 3 fail under KLU; they are Sparse's rows, bit for bit
        assert auto.solver_fallback and set(auto.solver_fallback) <= {0, 1, 2, 3}
        for k in auto.solver_fallback:
            assert list((tmp_path / "auto").rglob(f"sample_{k:06d}_sparse/deck.cir"))  # its own folder
        np.testing.assert_array_equal(auto.outputs[auto.solver_fallback], sparse.outputs[auto.solver_fallback])
    else:
        assert auto.solver_fallback == []
    # the others converged under KLU: within 1e-6 of the output range of Sparse's
    np.testing.assert_allclose(auto.outputs, sparse.outputs, rtol=0, atol=1e-6 * np.ptp(sparse.outputs))


# the same decks in KLU and Sparse: a plain crossbar, a wired one in tiles, a KirchhoffNet transient
DECKS = {
    "plain": ("digits_tdkan", 16, {}),
    "wired-tiles": ("digits_tdkan", 8, {"tile": (16, 4), "wire_r": 1.0}),
    "kirchhoffnet-tran": ("friedman_kirchhoffnet", 3, {}),
}


@pytest.mark.parametrize("name", DECKS)
def test_klu_and_sparse_agree_on_the_same_decks(name, tmp_path):
    ckpt, n, options = DECKS[name]
    net = load(EXAMPLES / f"{ckpt}.pt")
    z = load_dataset(net.ckpt["dataset"]["name"]).x_test[:n].double()
    if not KLU:  # this engine has one solver: KLU is refused by name, Sparse runs
        with pytest.raises(AnasimError, match=f"{ngspice_version()} at .* has no KLU solver"):
            with solver_scope("klu"):
                pass
        with solver_scope("auto"):
            res = simulate(net, z, jobs=1, **options)
        assert res.solver == "sparse" and res.simulator == f"{ngspice_version()}, sparse"
        assert np.isfinite(res.outputs).all()
        return
    got = {}
    for solver in ("klu", "sparse"):
        with solver_scope(solver):
            got[solver] = simulate(net, torch.as_tensor(z), jobs=1, run_dir=tmp_path / solver, **options)
        assert got[solver].solver == solver and not got[solver].failed
    logs = {s: "".join(p.read_text() for p in (tmp_path / s).rglob("ngspice.log")) for s in got}
    assert "Using KLU" in logs["klu"] and "Using KLU" not in logs["sparse"]  # each ran its solver
    # the two solvers converge to one solution within Newton's reltol (1e-6): measured 5.8e-6 V on
    # the golden digits deck (6.6e-7 of its range), so 1e-6 of the output range
    want = got["sparse"].outputs
    np.testing.assert_allclose(got["klu"].outputs, want, rtol=0, atol=1e-6 * np.ptp(want))


def test_results_json_and_console_name_engine_and_solver(tmp_path):
    out = tmp_path / "r.json"
    args = ["simulate", str(EXAMPLES / "digits_tdkan.pt"), "--samples", "4", "--jobs", "1", "--json", str(out)]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    solver = "klu" if KLU else "sparse"
    data = json.loads(out.read_text())
    assert data["engine"]["solver"] == solver and data["engine"]["solver_fallback"] == []
    assert data["engine"]["simulator"] == f"{ngspice_version()}, {solver}"
    assert data["environment"]["ngspice"] == f"{ngspice_version()}, {solver}"
    assert f"engine               {ngspice_version()}, {solver}" in res.output


def test_scope_restores_the_solver():
    engine = get_engine()
    before = engine.active_solver()
    with engine.solver_scope("sparse"):
        assert engine.active_solver() == "sparse"
    assert engine.active_solver() == before


def test_kirchhoffnet_sample_klu_gives_up_on_runs_again_under_sparse(monkeypatch, tmp_path):
    """A KirchhoffNet transient KLU fails on is run again, alone, under Sparse and named in
    ``solver_fallback`` (KLU is made to fail here: no natural KirchhoffNet deck makes it)."""
    if not KLU:
        pytest.fail("this test needs the ngspice with KLU that 'make install' installs")
    net = load(EXAMPLES / "friedman_kirchhoffnet.pt")
    z = load_dataset(net.ckpt["dataset"]["name"]).x_test[:3].double()
    with solver_scope("sparse"):
        want = simulate(net, z, jobs=1, run_dir=tmp_path / "sparse")
    engine = get_engine()
    real = type(engine).run

    def klu_fails(self, circuit, run, folder, **kw):
        if run.solver == "klu":
            raise SimError("KLU gave up (made to, by the test)", run_dir=folder)
        return real(self, circuit, run, folder, **kw)

    monkeypatch.setattr(type(engine), "run", klu_fails)
    with solver_scope("klu"):
        got = simulate(net, z, jobs=1, run_dir=tmp_path / "klu")
    assert not got.failed and got.solver == "klu" and got.solver_fallback == [0, 1, 2]
    # each sample alone under Sparse against all three in one Sparse deck: other time steps, so the
    # KirchhoffNet goldens' tolerance, 100 x reltol of the values (measured 2.5e-5 relative)
    np.testing.assert_allclose(got.outputs, want.outputs, rtol=100 * RELTOL, atol=0)
