"""netlists/: the device library equals a fresh export and each subckt matches torch in ngspice;
the golden example decks run with bare ngspice -b give their committed outputs, those outputs
match the torch models, and recompiling the committed checkpoints gives the decks byte for byte."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim.data import load_dataset
from anasim.devices import bundled_models
from anasim.library import EXAMPLES, compile_example, run_example, subckt_name
from anasim.pipeline import load
from anasim.sidecar import path_of
from anasim_cli.main import cli

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
AREA = 2.5  # any area other than 1 shows the parameter reaches the current


def test_device_library_equals_fresh_export(tmp_path):
    res = CliRunner().invoke(cli, ["devices", "export", "-o", str(tmp_path)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    # the ngspice library (.lib) and the Verilog-A one (.va)
    fresh = {p.name: p.read_bytes() for p in [*tmp_path.glob("*.lib"), *tmp_path.glob("*.va")]}
    committed = {
        p.name: p.read_bytes() for p in [*(NETLISTS / "devices").glob("*.lib"), *(NETLISTS / "devices").glob("*.va")]
    }
    assert sorted(fresh) == sorted(committed), "run 'make netlists' and commit netlists/devices"
    for name in fresh:
        assert fresh[name] == committed[name], f"netlists/devices/{name} is stale: run 'make netlists'"


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_device_subckt_sweep_matches_torch(name, tmp_path):
    d = bundled_models()[name]
    sub = subckt_name(d)
    lo, hi = d.v_range
    step = (hi - lo) / 200
    deck = (
        f"* sweep of {sub}\n.include {NETLISTS / 'devices' / (sub + '.lib')}\nV1 p 0 dc 0\nXd p 0 {sub} area={AREA}\n"
        f".control\nset wr_singlescale\noption numdgt=12 reltol=1e-10 abstol=1e-20\ndc V1 {lo - 0.1} {hi + 0.1} {step}\n"
        "wrdata out.txt -i(V1)\nquit\n.endc\n.end\n"
    )
    (tmp_path / "sweep.cir").write_text(deck)
    proc = subprocess.run(["ngspice", "-b", "sweep.cir"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]
    v, i = np.loadtxt(tmp_path / "out.txt", ndmin=2).T
    expected = AREA * d.amps_per_unit * d.torch_current(torch.as_tensor(v, dtype=torch.float64)).numpy()
    # same table or expression on both sides: equal to 1e-9 of the peak current (ngspice prints 12
    # digits); reltol 1e-10 makes Newton converge the source current, not only the node voltage
    np.testing.assert_allclose(i, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.name)
def test_example_recompiles_byte_for_byte(ex, tmp_path):
    deck = compile_example(ex, NETLISTS / "examples", tmp_path)
    committed = NETLISTS / "examples" / f"{ex.name}.cir"
    assert deck.read_bytes() == committed.read_bytes(), f"{committed} differs from a recompile: run 'make netlists'"
    side = path_of(committed)  # and its sidecar, which simulate --netlist reads
    assert path_of(deck).read_bytes() == side.read_bytes(), f"{side} differs from a recompile: run 'make netlists'"


def _expected(ex) -> np.ndarray:
    return np.loadtxt(NETLISTS / "examples" / f"{ex.name}.expected.txt", skiprows=1, ndmin=2)


def deck_reltol(deck: Path) -> float:
    """The reltol a deck's control block sets (ngspice's default 1e-3 if none)."""
    found = re.findall(r"^option .*\breltol=(\S+)", deck.read_text(), flags=re.M)
    return float(found[-1]) if found else 1e-3


def golden_tolerances(deck: Path, want: np.ndarray) -> tuple[float, float]:
    """(at the output points, along a transient's trajectory), in volts. The expected files come
    from ngspice 46 with KLU (anasim.library.EXAMPLES_ENGINE); ngspice 39 (Sparse only) and
    another solver converge to the same solution within Newton's reltol, not to the same digits:
    measured 5.8e-6 V (6.6e-7 of the range) on digits_tdkan, 5.5e-6 V at the KirchhoffNet outputs.
    10 x reltol x the output range bounds that with room. A transient's trajectory compared
    between two engines' own time steps (ngspice 46 takes 329 where 39 takes 323) also carries
    linear interpolation's error, step^2 x curvature, largest where layers switch: measured 2.8e-5
    of the range; 100 x reltol x the range bounds it."""
    span = max(1.0, float(np.ptp(want[:, 1:])))
    reltol = deck_reltol(deck)
    return 10 * reltol * span, 100 * reltol * span


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.name)
def test_example_golden_with_bare_ngspice(ex, tmp_path):
    deck = NETLISTS / "examples" / f"{ex.name}.cir"
    shutil.copy(deck, tmp_path)
    got = np.loadtxt(run_example(tmp_path / f"{ex.name}.cir", ex), skiprows=1, ndmin=2)
    want = _expected(ex)
    at_outputs, along = golden_tolerances(deck, want)
    if ex.output.endswith("_voltages.txt"):  # a KirchhoffNet transient: time, then node voltages
        # the engine picks its own time steps: values at the expected times, interpolated
        assert got[-1, 0] == pytest.approx(want[-1, 0], rel=1e-9)  # same stop time, to 1e-9
        at = np.column_stack([np.interp(want[:, 0], got[:, 0], got[:, j]) for j in range(1, got.shape[1])])
        np.testing.assert_allclose(at, want[:, 1:], rtol=0, atol=along)
        # the outputs: the node voltages at the stop time
        np.testing.assert_allclose(got[-1, 1:], want[-1, 1:], rtol=0, atol=at_outputs)
    else:  # a DC sweep: one row per sample (index, outputs)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=at_outputs)


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.name)
def test_example_outputs_match_torch(ex):
    net = load(NETLISTS / "examples" / f"{ex.name}.pt")
    z = load_dataset(net.ckpt["dataset"]["name"]).x_test[: ex.stimulus].double()
    ref, _ = net.family.reference(net.model, z)
    want = _expected(ex)
    if net.family.name == "kirchhoffnet":  # last time point, copies s<b>_n<j> in order; outputs are nodes
        nodes = want[-1, 1:].reshape(ex.stimulus, -1)
        out = nodes[:, np.asarray(net.model.outputs) - 1]
    else:  # one row per sample of the DC sweep: index, then y_0..y_k
        out = want[:, 1:]
    # the tolerances the README measures: crossbars 1e-6 of the output range with ideal op-amps;
    # KirchhoffNet about 1e-4 of its [0, 1] output range at reltol 1e-6
    atol = 1e-4 if net.family.name == "kirchhoffnet" else 1e-6 * np.ptp(ref)
    np.testing.assert_allclose(out, ref, rtol=0, atol=atol)
