"""compile + simulate end to end on a trained digits model, through the CLI."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.checkpoint import save_checkpoint
from anasim.families import build_model
from anasim_cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_compile_writes_readable_netlist(digits_model, tmp_path):
    out = tmp_path / "layer.cir"
    res = run("compile", digits_model, "-o", out)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "* device a21: fit" in text and ".func iv_a21(x)" in text
    assert "\nEtia1_0_d y_0 0 tia1_0_q tia1_0_m 1000000000.0\n" in text  # output 0: difference amplifier
    assert ".control" not in text  # only with --stimulus


def standalone_deck(model, tmp_path, n: int):
    """Compile ``model`` with the stimulus of n digits test images and run the deck with bare
    ngspice: (deck text, its outputs [n, out], the torch model's outputs [n, out])."""
    import torch

    import anasim
    from anasim.data import load_dataset

    out = tmp_path / "stim.cir"
    assert run("compile", model, "-o", out, "--stimulus", n).exit_code == 0
    subprocess.run(["ngspice", "-b", out.name], cwd=tmp_path, capture_output=True, timeout=300, check=True)
    table = np.loadtxt(tmp_path / "stim_outputs.txt", skiprows=1)
    with torch.no_grad():
        ref = anasim.load(model).model(load_dataset("digits").x_test[:n].double()).numpy()
    return out.read_text(), table[:, 1:], ref


def test_stimulus_netlist_runs_alone(digits_model, tmp_path):
    """The standalone deck's outputs equal the torch model on the same 4 test images to 1e-3 of
    the output range (the comparator's acceptance level; ideal op-amps give about 1e-6)."""
    _, got, ref = standalone_deck(digits_model, tmp_path, 4)
    np.testing.assert_allclose(got, ref, atol=1e-3 * np.ptp(ref))


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


def test_simulate_plain_decks_agree_with_the_fast_path(digits_model, tmp_path):
    outs = {}
    for flag in ([], ["--plain"]):
        js = tmp_path / f"sim{len(flag)}.json"
        res = run("simulate", digits_model, "--samples", 60, "--json", js, *flag)
        assert res.exit_code == 0, res.output
        assert json.loads(js.read_text())["engine"]["mode"].endswith("plain decks") == bool(flag)
        outs[len(flag)] = np.load(js.with_suffix(".npz"))["circuit"]
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-6 * np.ptp(outs[1]))  # both solve to 1e-6


def test_simulate_a_compiled_netlist(digits_model, tmp_path):
    out = tmp_path / "q.cir"
    assert run("compile", digits_model, "-o", out).exit_code == 0
    res = run("simulate", digits_model, "--netlist", out, "--samples", 50)
    assert res.exit_code == 0 and "argmax agreement     100.00%" in res.output
    # a deck with its own stimulus is not edited: anasim says what to do instead
    assert run("compile", digits_model, "-o", out, "--stimulus", 3).exit_code == 0
    res = run("simulate", digits_model, "--netlist", out, "--samples", 5)
    assert res.exit_code == 1 and "compile it without --stimulus" in res.output


def test_layernorm_model_cannot_be_compiled(tmp_path):
    cfg = {"arch": "tdkan", "dims": [4, 3, 2], "bases": ["a21"], "norm": "layer"}
    ckpt = save_checkpoint(tmp_path / "ln.pt", build_model(cfg), cfg, {"name": "digits"}, {})
    res = run("compile", ckpt, "-o", tmp_path / "x.cir")
    assert res.exit_code == 1 and "LayerNorm" in res.output and "--norm batch" in res.output


@pytest.mark.parametrize(
    "target, code, needle", [("existing_dir", 2, "is a directory"), ("missing/dir/x.cir", 1, "cannot write netlist")]
)
def test_unwritable_netlist_path(digits_model, tmp_path, target, code, needle):
    (tmp_path / "existing_dir").mkdir()
    res = run("compile", digits_model, "-o", tmp_path / target)
    assert res.exit_code == code and needle in res.output, res.output


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
    assert res.exit_code == 1 and "ngspice is not installed (no 'ngspice' on PATH)" in res.output
    assert "make install" in res.output and "apt-get install -t bookworm-backports ngspice" in res.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--area-max", "-1"], "--area-max -1.0: give a finite number > 0"),
        (["--opamp-gain", "0"], "--opamp-gain 0.0: give a finite number > 0"),
        (["--opamp-gain", "inf"], "--opamp-gain inf: give a finite number > 0"),
        (["--tile", "16,3"], "an even number of them"),
        (["--crossbar", "resistor"], "--crossbar resistor applies to the shared mapping only"),
        (["--levels", "1"], "--levels"),
        (["--tile", "64"], "give ROWS,COLS as two integers"),
        (["--tile", "8,x"], "give ROWS,COLS as two integers"),
        (["--tile", "0,8"], "at least 1 row and 2 column lines"),
        (["--tile", "8,8", "--mapping", "shared"], "--tile needs the edge mapping"),
    ],
)
def test_out_of_bounds_hardware_options(digits_model, tmp_path, args, needle):
    res = run("compile", digits_model, "-o", tmp_path / "x.cir", *args)
    assert res.exit_code != 0 and needle in res.output and not (tmp_path / "x.cir").exists(), res.output


def test_tiled_compile_and_simulate(digits_model, tmp_path):
    # digits [64,4,10] in tiles of 16 rows and 4 column lines: 4 row tiles, 5 column tiles
    res = run("compile", digits_model, "-o", tmp_path / "t.cir", "--tile", "16,4")
    text = (tmp_path / "t.cir").read_text()
    assert res.exit_code == 0 and "tile (16, 4)" in text and "Etia0_3_t3_p" in text, res.output
    res = run("simulate", digits_model, "--samples", 20, "--tile", "16,4", "--json", tmp_path / "t.json")
    rep = json.loads((tmp_path / "t.json").read_text())
    assert res.exit_code == 0 and rep["argmax_agreement"] == 1.0 and rep["max_abs_error"] <= 1e-5 * rep["output_scale"]


@pytest.mark.parametrize(
    "arch, args, needle",
    [
        ("mlp", ["--mapping", "shared"], "--mapping applies to TD-KAN models; this checkpoint is a device MLP"),
        ("mlp", ["--levels", "8"], "--levels applies to TD-KAN models"),
        ("tdkan", ["--scale-a", "1e-6"], "--scale-a applies to KirchhoffNet models; this checkpoint is a TD-KAN"),
        ("kirchhoffnet", ["--opamp-gain", "1e4"], "--opamp-gain applies to TD-KAN and device MLP models"),
        ("kirchhoffnet", ["--analysis", "dc"], "a KirchhoffNet runs tran only"),
        ("tdkan", ["--gbw", "1e8"], "--gbw applies to --analysis tran"),
    ],
)
def test_option_of_another_family_is_refused(arch, args, needle, tmp_path):
    cfg = {
        "tdkan": {"arch": "tdkan", "dims": [64, 4, 10], "bases": ["a21"]},
        "mlp": {"arch": "mlp", "dims": [64, 4, 10], "activation": "a21"},
        "kirchhoffnet": {"arch": "kirchhoffnet", "dims": [64, 10], "nodes": [70], "repeat": 1},
    }[arch]
    ckpt = save_checkpoint(tmp_path / "m.pt", build_model(cfg), cfg, {"name": "digits"}, {})
    res = run("simulate", ckpt, "--samples", 2, *args)
    assert res.exit_code == 1 and needle in res.output, res.output


def test_regression_tdkan_reports_loss_not_accuracy(tmp_path):
    """A TD-KAN on Friedman #1: the comparison is MSE against the targets, with no argmax."""
    ckpt, js = tmp_path / "r.pt", tmp_path / "r.json"
    args = ["--dataset", "friedman", "--dims", "5,8,1", "--bases", "a21", "--epochs", 2, "--threads", 1]
    assert run("train", *args, "-o", ckpt).exit_code == 0
    res = run("simulate", ckpt, "--samples", 30, "--json", js)
    assert res.exit_code == 0 and "circuit loss" in res.output and "accuracy" not in res.output
    r = json.loads(js.read_text())
    assert r["task"] == "regression" and "argmax_agreement" not in r
    assert r["circuit_loss"] == pytest.approx(r["reference_loss"], rel=1e-3)  # ideal op-amps


def test_more_samples_than_the_split_says_what_ran(digits_model, tmp_path):
    js = tmp_path / "s.json"
    res = run("simulate", digits_model, "--samples", 500, "--json", js)
    assert res.exit_code == 0 and "360 (of 500 asked: the test split of digits holds 360" in res.output
    r = json.loads(js.read_text())
    assert r["samples"] == 360 and r["requested_samples"] == 500 and "--split all has 1797" in r["note"]


def test_temporary_run_directory_is_removed_unless_kept(digits_model, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    js = tmp_path / "a.json"
    assert run("simulate", digits_model, "--samples", 5, "--json", js).exit_code == 0
    assert list((tmp_path / "tmp").iterdir()) == [] and json.loads(js.read_text())["run_dir"] is None
    assert run("simulate", digits_model, "--samples", 5, "--run-dir", tmp_path / "keep").exit_code == 0
    assert (tmp_path / "keep" / "layer0" / "chunk_000000" / "deck.cir").is_file()


@pytest.mark.parametrize("written", [False, True])
def test_an_error_keeps_a_temporary_run_directory_only_with_something_in_it(written):
    from anasim.errors import AnasimError
    from anasim.sim.run import run_directory

    with pytest.raises(AnasimError), run_directory() as rd:
        if written:
            (rd.path / "deck.cir").write_text("* a deck\n")
        raise AnasimError("bad input")
    assert rd.path.exists() == written
    if written:
        shutil.rmtree(rd.path)


def test_an_error_in_a_run_whose_folder_is_gone_is_the_one_raised():
    from anasim.errors import AnasimError
    from anasim.sim.run import run_directory

    with pytest.raises(AnasimError, match="the real error"), run_directory() as rd:
        shutil.rmtree(rd.path)
        raise AnasimError("the real error")


def test_readme_python_example_runs(digits_model, tmp_path, monkeypatch):
    """The library example in the README, executed as written (with the test's model)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    Path("digits.pt").write_bytes(digits_model.read_bytes())
    exec(compile(code, "README.md", "exec"), {})
    assert Path("layer.cir").read_text().startswith("* anasim TD-KAN crossbar")
