"""Issue 13, item 5: a multi-layer KirchhoffNet compiles into one deck that bare ``ngspice -b``
runs alone (one transient through all layers, the state carried by the nodes themselves), and
its printed and written outputs are the network's: against ``anasim.simulate`` (one transient
per layer, the state carried in numpy) and the torchdiffeq reference."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import anasim
from anasim.checkpoint import save_checkpoint
from anasim.data import load_dataset
from anasim.families import build_model
from anasim.families.kirchhoff import deck
from anasim_cli.main import cli

SAMPLES = 3
NETS = {
    # nodes 1-6 carry layer 0's state into layer 1, which adds nodes 7 and 8 (the outputs) at 0 V
    "2 layers": {"nodes": [6, 8], "branch": "tanh"},
    # layer 1 drops nodes 5 and 6, layer 2 adds them back at 0 V (and 7, 8); ReLU kinks
    "3 layers": {"nodes": [6, 4, 8], "branch": "relu"},
}


def compile_and_run(tmp_path, monkeypatch, spec: dict):
    """Compile a random-init net (seed 0) with ``anasim compile --stimulus 3``, run the command
    the CLI names, and return the net, its samples, the printed outputs [3, 2] and the written
    table [time, s0 nodes..., s1 nodes..., ...] (the last layer's nodes, copies in order)."""
    torch.manual_seed(0)
    cfg = {"arch": "kirchhoffnet", "dims": [5, 2], "repeat": 1, "ground": True, **spec}
    ckpt = save_checkpoint(tmp_path / "kn.pt", build_model(cfg), cfg, {"name": "friedman"}, {})
    monkeypatch.chdir(tmp_path)  # as a user would: compile and run in one folder
    res = CliRunner().invoke(cli, ["compile", str(ckpt), "-o", "kn.cir", "--stimulus", str(SAMPLES)])
    assert res.exit_code == 0, res.output
    assert not list(tmp_path.glob("*_layer*")), "one deck, no per-layer files"
    hint = re.search(r"run it alone with: (ngspice -b \S+)", res.output)
    assert hint and hint.group(1) == "ngspice -b kn.cir", res.output
    proc = subprocess.run(hint.group(1).split(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = dict(re.findall(r"^(s\d+_y\d+) = (\S+)$", proc.stdout, re.MULTILINE))
    out = np.array([[float(printed[f"s{b}_y{k}"]) for k in range(2)] for b in range(SAMPLES)])
    table = np.loadtxt(tmp_path / "kn_voltages.txt", skiprows=1)
    net = anasim.load(ckpt)
    z = load_dataset("friedman").x_test[:SAMPLES].double()
    return net, z, out, table


def check(net, z, out, table) -> None:
    """The deck's outputs against simulate and torch; every node of the last layer against torch."""
    model = net.model
    model.rtol, model.atol = 1e-8, 1e-10  # 1e-9 moves the result by 1e-6 at 2x the time
    with torch.no_grad():
        ref = model.trajectory(z)[-1][1][-1][:, 1:].numpy()  # [3, N] every node at t = D*T
    written = table[-1, 1:].reshape(SAMPLES, -1)
    span = np.ptp(ref)
    # printed and written are the same numbers, both to 12 digits
    np.testing.assert_allclose(out, written[:, np.asarray(model.outputs) - 1], rtol=1e-10, atol=0)
    # the one-layer deck's tolerance against dopri5: 1e-4 of the range of node voltages
    np.testing.assert_allclose(written, ref, rtol=0, atol=1e-4 * span)
    # simulate runs one transient per layer; this deck one through all of them. They differ only
    # by the solver's step history around the switches: 3.5e-8 and 2.1e-7 of the range on these
    # nets, up to 5e-6 on others (4 samples of 7/9 and 7/5/9 nodes)
    sim = anasim.simulate(net, z.numpy(), jobs=1)
    assert not sim.failed
    np.testing.assert_allclose(out, sim.outputs, rtol=0, atol=1e-5 * span)


@pytest.mark.parametrize("name", NETS)
def test_multi_layer_deck_runs_alone_and_matches_simulate(name, tmp_path, monkeypatch):
    net, z, out, table = compile_and_run(tmp_path, monkeypatch, NETS[name])
    layers, T = len(NETS[name]["nodes"]), net.model.period * 1e-9
    assert table[-1, 0] == pytest.approx(layers * T, rel=1e-9)  # one transient through every layer
    # the solver lands on each boundary, where the switches act (its breakpoints): without them
    # the deck measured 7x further from simulate on the 3-layer net, still inside the tolerance
    for n in range(1, layers):
        assert np.abs(table[:, 0] - n * T).min() < 1e-12 * T
    check(net, z, out, table)


def test_deck_that_carries_zero_volts_fails(tmp_path, monkeypatch):
    """The mutation the issue names: every layer on nodes of its own, starting at 0 V instead of
    the previous layer's end voltages. The deck still runs; the comparison must catch it."""
    fresh = lambda sizes, n, j: "0" if j == 0 else (f"n{j}" if n == 0 else f"l{n}_n{j}")  # noqa: E731
    monkeypatch.setattr(deck, "node_name", fresh)
    net, z, out, table = compile_and_run(tmp_path, monkeypatch, NETS["2 layers"])
    # caught by the comparison with torch of every node of the last layer (3 samples x 8 nodes)
    with pytest.raises(AssertionError, match="Mismatched elements: 24 / 24"):
        check(net, z, out, table)
