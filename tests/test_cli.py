"""The CLI through click's CliRunner: happy paths and bad input."""

import json

import pytest
import torch
from click.testing import CliRunner

from anasim_cli.main import cli


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_devices_list(run):
    res = run("devices", "list")
    assert res.exit_code == 0 and "zaz21_smooth" in res.output and "emosfet" in res.output


def test_devices_plot(run, tmp_path, cmtd_dir):
    out = tmp_path / "z15.png"
    res = run("devices", "plot", "z15", "-o", out, "--data", cmtd_dir / "z15.csv")
    assert res.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"


def test_devices_fit_is_listed(run, cmtd_dir):
    res = run("devices", "fit", cmtd_dir / "z21.csv", "--name", "mine", "--method", "smooth")
    assert res.exit_code == 0, res.output
    assert "mine" in run("devices", "list").output
    assert run("devices", "fit", cmtd_dir / "z21.csv", "--name", "a21").exit_code == 1  # bundled name


def test_train_and_info(run, tmp_path):
    out = tmp_path / "m.pt"
    res = run("train", "--dims", "64,8,10", "--epochs", "3", "-o", out)
    assert res.exit_code == 0, res.output
    info = json.loads(run("info", out, "--json").output)
    assert {"arch", "dims", "bases", "params", "test_accuracy", "dataset"} <= set(info)
    assert info["dims"] == [64, 8, 10] and info["bases"] == ["a21", "z21"] and info["dataset"] == "digits"
    assert info["params"] == 64 * 8 * 2 + 8 * 10 * 2 + 8 + 10 + 16 + 2 * 64  # + the row drive: offset, gain per input
    assert "test accuracy" in run("info", out).output


def test_digits_model_accuracy(digits_model):
    from anasim.checkpoint import load_checkpoint

    ckpt, _ = load_checkpoint(digits_model)
    assert ckpt["metrics"]["test_accuracy"] >= 0.93  # 25 epochs on digits; the benchmark trains longer


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--bases", "a21,bogus"], "unknown device 'bogus'; valid devices:"),
        (["train", "--activation", "bogus", "--arch", "mlp"], "unknown device 'bogus'"),
        (["train", "--dataset", "mnist"], "pass --data-dir"),
        (["devices", "plot", "nope"], "unknown device 'nope'"),
    ],
)
def test_bad_input_is_a_clear_error(run, args, needle):
    res = run(*args)
    assert res.exit_code != 0 and needle in res.output


def test_not_a_checkpoint(run, tmp_path):
    p = tmp_path / "junk.pt"
    p.write_text("hello")
    res = run("info", p)
    assert res.exit_code == 1 and "not an anasim checkpoint" in res.output and "written by 'anasim train'" in res.output
    assert "weights_only" not in res.output  # torch's advice to load it unsafely is not passed on


@pytest.mark.parametrize("period", ["0", "-1", "nan", "inf"])
def test_bad_period_is_refused(run, digits_model, period):
    res = run("simulate", digits_model, "--analysis", "tran", "--period", period, "--samples", "2")
    assert res.exit_code != 0 and "'--period'" in res.output and "give a finite time > 0" in res.output


def _tampered(src, tmp_path, **change):
    ckpt = torch.load(src, weights_only=True)
    for key, value in change.items():
        if key == "nan":
            ckpt["state_dict"]["layers.0.coeffs"][0, 0, 0] = float("nan")
        else:
            ckpt[key] = value
    out = tmp_path / "tampered.pt"
    torch.save(ckpt, out)
    return out


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"nan": True}, "'layers.0.coeffs' holds NaN or inf"),
        ({"version": 99}, "checkpoint version 99, this anasim reads version 1"),
        ({"format": "other"}, "not an anasim checkpoint"),
        ({"devices": {"a21": "0000"}}, "device 'a21' has changed since training"),
    ],
)
def test_bad_checkpoints(run, digits_model, tmp_path, change, needle):
    res = run("info", _tampered(digits_model, tmp_path, **change))
    assert res.exit_code == 1 and needle in res.output


def test_unwritable_output(run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = run("train", "--epochs", "1", "-o", blocker / "m.pt")
    assert res.exit_code == 1 and "cannot write checkpoint" in res.output
