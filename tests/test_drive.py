"""The TD-KAN's trainable per-row drive (``drive: row``): trained within its DAC limits, applied by
the circuit's stimulus exactly as the torch reference applies it, and old checkpoints (one fixed
offset and gain) still load. These run ngspice; they fail, never skip, when it is missing."""

import numpy as np
import pytest
import torch
from test_compile import run, standalone_deck

import anasim
from anasim.families.tdkan.model import TDKAN
from anasim.train import TrainOptions, train
from anasim_cli.train import train as train_command

REPO_EXAMPLE = "netlists/examples/digits_tdkan.pt"


@pytest.fixture(scope="module")
def row_model(tmp_path_factory):
    """A [64,8,10] z15+zaz21 TD-KAN with a row drive trained for 4 epochs, then given a wide
    spread of per-row offsets and gains (negative gains and rows driven past the clip included) so
    that a circuit applying one common drive, or none, could not match it."""
    d = tmp_path_factory.mktemp("drive")
    cfg = {"arch": "tdkan", "dims": [64, 8, 10], "bases": ["z15", "zaz21"], "norm": "batch", "in_gain": 0.1}
    train(cfg | {"drive": "row"}, "digits", TrainOptions(epochs=4, lr=1e-2, patience=4, progress=False), d / "t.pt")
    ckpt = torch.load(d / "t.pt", weights_only=True)
    trained = {k: ckpt["state_dict"][k].clone() for k in ("in_offset", "in_gain")}
    g = torch.Generator().manual_seed(3)
    lo, hi = 0.0, 1.4  # the common bias range of z15 and zaz21
    ckpt["state_dict"]["in_offset"] = lo + (hi - lo) * torch.rand(64, generator=g)
    ckpt["state_dict"]["in_gain"] = (hi - lo) * (torch.rand(64, generator=g) - 0.5)
    torch.save(ckpt, d / "m.pt")
    return d / "m.pt", trained


def test_training_moves_the_drive_within_the_dac_limits(row_model):
    _, trained = row_model
    off, gain = trained["in_offset"], trained["in_gain"]
    assert off.shape == gain.shape == (64,)
    assert off.min() >= 0.0 and off.max() <= 1.4 and gain.abs().max() <= 1.4  # the stated DAC limits
    # trained: the rows no longer share the initial 0.7 V + 0.07 V/std (0.1 x half the range)
    assert off.std() > 1e-3 and gain.std() > 1e-3


def test_projection_clamps_to_the_limits():
    model = TDKAN([3, 2], ["a21", "z21"], drive="row")
    with torch.no_grad():
        model.in_offset.copy_(torch.tensor([-1.0, 0.5, 9.0]))
        model.in_gain.copy_(torch.tensor([-5.0, 0.3, 5.0]))
    model.project_()
    (lo, hi), gmax = model.drive_limits()
    assert (lo, hi, gmax) == (0.0, 1.25, 1.25)  # common range of a21 (0..1.3) and z21 (0..1.25)
    assert model.in_offset.tolist() == [0.0, 0.5, 1.25]
    assert model.in_gain.tolist() == pytest.approx([-1.25, 0.3, 1.25], abs=1e-7)


def test_stimulus_deck_applies_the_row_drive(row_model, tmp_path):
    """The standalone deck (its stimulus the DAC's row voltages) equals the torch model on 6 test
    images to 1e-3 of the output range (the comparator's acceptance level; ideal op-amps give
    about 1e-6), and its header says what drives the rows."""
    path, _ = row_model
    text, got, ref = standalone_deck(path, tmp_path, 6)
    assert "* row drive (DAC, trained per row): in_<i> = offset_i + gain_i * z_i V" in text
    np.testing.assert_allclose(got, ref, atol=1e-3 * np.ptp(ref))


def test_simulate_with_row_drive_agrees_with_reference(row_model, tmp_path):
    import json

    path, _ = row_model
    js = tmp_path / "sim.json"
    res = run("simulate", path, "--samples", 40, "--json", js, "--run-dir", tmp_path / "run")
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert r["argmax_agreement"] == 1.0
    assert r["max_abs_error"] <= 1e-3 * r["output_scale"]  # the fidelity bound


def test_old_checkpoint_loads_with_its_fixed_drive():
    """A checkpoint from before the row drive (no ``drive`` in its config, scalar buffers)."""
    net = anasim.load(REPO_EXAMPLE)
    assert "drive" not in net.ckpt["config"] and net.model.drive == "fixed"
    assert net.model.in_offset.dim() == 0 and net.model.in_gain.dim() == 0
    z = torch.randn(3, 64)
    assert torch.equal(net.model.row_drive(z), net.model.in_offset + net.model.in_gain * z)


def test_cli_trains_a_row_drive_by_default():
    defaults = {p.name: p.default for p in train_command.params}
    assert defaults["drive"] == "row" and defaults["in_gain"] == 0.1


def test_training_projects_the_drive_after_every_step(tmp_path):
    """In a bias range only 20 mV wide, Adam's first steps (about lr = 10 mV each) push offsets and
    gains past the limits: training must leave them at the limits, not beyond."""
    cfg = {"arch": "tdkan", "dims": [64, 4, 10], "bases": ["a21", "z21"], "drive": "row", "v_range": [0.6, 0.62]}
    model, _ = train(cfg, "digits", TrainOptions(epochs=1, lr=1e-2, patience=1, progress=False), None)
    off, gain = model.in_offset.detach(), model.in_gain.detach()
    assert off.min() >= 0.6 and off.max() <= 0.62 and gain.abs().max() <= 0.02 + 1e-7  # float32 limits
    assert ((off == 0.6) | (off == 0.62)).any() or (gain.abs() >= 0.02 - 1e-7).any()  # a limit was reached


@pytest.mark.parametrize("key, index, value", [("in_offset", 5, 1.5), ("in_gain", 0, -1.45)])
def test_checkpoint_with_drive_beyond_the_limits_is_refused(row_model, tmp_path, key, index, value):
    """Limits of z15+zaz21: offset 0..1.4 V, |gain| <= 1.4 V/std."""
    path, _ = row_model
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"][key][index] = value
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(anasim.errors.CheckpointError, match=rf"{key}\[{index}\] = {value:g} is beyond the DAC limits"):
        anasim.load(tmp_path / "bad.pt")
