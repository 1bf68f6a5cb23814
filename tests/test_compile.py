"""compile + simulate end to end on a trained digits model, through the CLI."""

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.checkpoint import save_checkpoint
from anasim.models import build_model
from anasim_cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_compile_writes_readable_netlist(digits_model, tmp_path):
    out = tmp_path / "layer.cir"
    res = run("compile", digits_model, "-o", out)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "* device a21: fit" in text and ".subckt neuron" in text and ".func iv_a21(x)" in text
    assert ".control" not in text  # only with --stimulus


def test_stimulus_netlist_runs_alone(digits_model, tmp_path):
    out = tmp_path / "stim.cir"
    assert run("compile", digits_model, "-o", out, "--stimulus", 4).exit_code == 0
    subprocess.run(["ngspice", "-b", out.name], cwd=tmp_path, capture_output=True, timeout=300, check=True)
    table = np.loadtxt(tmp_path / "stim_outputs.txt", skiprows=1)
    assert table.shape == (4, 11)  # sample index + 10 outputs


def test_simulate_agrees_with_reference(digits_model, tmp_path):
    js = tmp_path / "sim.json"
    res = run("simulate", digits_model, "--samples", 360, "--json", js, "--run-dir", tmp_path / "run")
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    for key in ("samples", "engine", "reference_accuracy", "circuit_accuracy", "argmax_agreement"):
        assert key in r
    assert r["samples"] == 360 and r["argmax_agreement"] == 1.0
    assert r["max_abs_error"] <= 1e-3 * r["output_scale"]  # the fidelity bound
    npz = np.load(js.with_suffix(".npz"))
    assert npz["circuit"].shape == (360, 10)


def test_simulate_a_compiled_netlist(digits_model, tmp_path):
    out = tmp_path / "q.cir"
    assert run("compile", digits_model, "-o", out, "--stimulus", 3).exit_code == 0
    res = run("simulate", digits_model, "--netlist", out, "--samples", 50)
    assert res.exit_code == 0 and "argmax agreement     100.00%" in res.output


def test_layernorm_model_cannot_be_compiled(tmp_path):
    cfg = {"arch": "tdkan", "dims": [4, 3, 2], "bases": ["a21"], "norm": "layer"}
    ckpt = save_checkpoint(tmp_path / "ln.pt", build_model(cfg), cfg, {"name": "digits"}, {})
    res = run("compile", ckpt, "-o", tmp_path / "x.cir")
    assert res.exit_code == 1 and "LayerNorm" in res.output and "--norm batch" in res.output


@pytest.mark.parametrize("target", ["dir/", "missing/dir/x.cir"])
def test_unwritable_netlist_path(digits_model, tmp_path, target):
    res = run(
        "compile", digits_model, "-o", tmp_path / "f" / target if target == "dir/" else tmp_path / "nofile" / target
    )
    assert res.exit_code != 0


def test_quantized_areas(digits_model, tmp_path):
    js = tmp_path / "q.json"
    assert run("simulate", digits_model, "--samples", 100, "--levels", 16, "--json", js).exit_code == 0
    r = json.loads(js.read_text())
    assert r["max_abs_error"] > 1e-3  # 16 levels visibly perturb the outputs...
    assert r["argmax_agreement"] >= 0.9  # ...but keep most decisions


@pytest.mark.parametrize("activation", ["a21", "rtd", "emosfet", "relu", "sigmoid"])
def test_device_mlp_circuit_matches_reference(activation, tmp_path):
    """Resistive differential crossbars + device activations, trained briefly on digits."""
    from anasim.train import TrainOptions, train

    ckpt = tmp_path / "mlp.pt"
    cfg = {"arch": "mlp", "dims": [64, 12, 10], "activation": activation}
    train(cfg, "digits", TrainOptions(epochs=3, lr=1e-2, progress=False, threads=1), ckpt)
    js = tmp_path / "mlp.json"
    res = run("simulate", ckpt, "--samples", 120, "--json", js)
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert r["argmax_agreement"] == 1.0
    assert r["max_abs_error"] <= 1e-3 * r["output_scale"]  # ideal op-amps (gain 1e9)
    out = tmp_path / "m.cir"
    assert run("compile", ckpt, "-o", out).exit_code == 0
    text = out.read_text()
    assert "* activation " + activation in text
    assert (f".func iv_{activation}(x)" in text) == (activation not in ("relu", "sigmoid"))


def test_ngspice_missing_is_explained(digits_model, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    res = run("simulate", digits_model, "--samples", 5)
    assert res.exit_code == 1 and "ngspice is not installed" in res.output and "apt-get install ngspice" in res.output


@pytest.mark.parametrize("args", [["--area-max", "-1"], ["--opamp-gain", "0"], ["--levels", "1"]])
def test_out_of_bounds_hardware_options(digits_model, tmp_path, args):
    res = run("compile", digits_model, "-o", tmp_path / "x.cir", *args)
    assert res.exit_code != 0 and not (tmp_path / "x.cir").exists()
