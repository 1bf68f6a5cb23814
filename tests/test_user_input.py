"""Ordinary mistakes and what runs get recorded (issue 15): a one-line error naming the file,
option or value for bad input, never a traceback; netlists of another model, BOM CSVs,
self-contained checkpoints, the default thread count, plausibility flags, strict JSON."""

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim.devices.ivdata import read_iv_csv
from anasim.errors import AnasimWarning
from anasim.metrics import Bounds, Comparison
from anasim.results import write_report
from anasim_cli.main import cli

EQUIV = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence"
TDKAN, MLP = EQUIV / "tdkan.pt", EQUIV / "mlp.pt"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def strict_json(path: Path) -> dict:
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


# --- 2. --netlist must be an anasim netlist of this checkpoint ------------------------------


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("own", None),
        ("other model", "was compiled from model mlp.pt sha256 "),
        ("csv", "no sidecar deck.cir.json beside it"),
        ("text", "no sidecar deck.cir.json beside it"),
        ("binary", "no sidecar deck.cir.json beside it"),
    ],
)
def test_netlist_of_another_model_or_not_a_netlist_is_refused(tmp_path, kind, needle):
    path = tmp_path / "deck.cir"
    if kind in ("own", "other model"):
        assert run("compile", TDKAN if kind == "own" else MLP, "-o", path).exit_code == 0
    else:
        path.write_bytes(
            {"csv": b"bias,current\n0,0\n0.1,2\n", "text": b"hello\nworld\n", "binary": bytes(range(256)) * 4}[kind]
        )
    res = run("simulate", TDKAN, "--netlist", path, "--samples", "5")
    if needle is None:
        assert res.exit_code == 0, res.output
        return
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output
    if kind == "other model":
        own = hashlib.sha256(TDKAN.read_bytes()).hexdigest()[:16]
        theirs = hashlib.sha256(MLP.read_bytes()).hexdigest()[:16]
        assert f"sha256 {theirs}, but tdkan.pt has sha256 {own}" in res.output


# --- 4. a byte-order mark does not eat the first point ----------------------------------------


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("header", [b"", b"v,i\n"])
def test_csv_with_bom_keeps_its_first_point(tmp_path, bom, header):
    v = np.round(np.linspace(0, 1.3, 27), 2)
    rows = b"".join(f"{a:g},{0.463 + a:g}\n".encode() for a in v)
    path = tmp_path / "sweep.csv"
    path.write_bytes(bom + header + rows)
    sweep = read_iv_csv(path)
    assert len(sweep.v) == 27 and sweep.v[0] == 0.0 and sweep.i[0] == 0.463  # parsed exactly


# --- 5. checkpoints carry their device models -----------------------------------------------


def test_checkpoint_with_a_user_device_works_without_the_device_file(tmp_path, cmtd_dir, monkeypatch):
    devdir = tmp_path / "devs"
    monkeypatch.setenv("ANASIM_DEVICE_DIR", str(devdir))
    assert run("devices", "fit", cmtd_dir / "z21.csv", "--name", "mydev").exit_code == 0
    ckpt = tmp_path / "m.pt"
    res = run("train", "--dims", "64,4,10", "--bases", "a21,mydev", "--epochs", "1", "-o", ckpt)
    assert res.exit_code == 0, res.output
    assert run("compile", ckpt, "-o", tmp_path / "a.cir").exit_code == 0

    shutil.rmtree(devdir)  # sent to a colleague who does not have the device
    info = run("info", ckpt, "--json")
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["bases"] == ["a21", "mydev"]
    assert run("compile", ckpt, "-o", tmp_path / "b.cir").exit_code == 0
    assert (tmp_path / "b.cir").read_text() == (tmp_path / "a.cir").read_text()

    # the colleague has another fit under the same name: a warning, and the checkpoint's own is used
    assert run("devices", "fit", cmtd_dir / "z21.csv", "--name", "mydev", "--method", "smooth").exit_code == 0
    with pytest.warns(AnasimWarning, match="your device 'mydev' .* is not the one this model was trained with"):
        assert run("compile", ckpt, "-o", tmp_path / "c.cir").exit_code == 0
    assert (tmp_path / "c.cir").read_text() == (tmp_path / "a.cir").read_text()


def test_embedded_device_that_does_not_match_its_hash_is_refused(tmp_path):
    ckpt = tmp_path / "m.pt"
    assert run("train", "--dims", "64,4,10", "--epochs", "1", "-o", ckpt).exit_code == 0
    d = torch.load(ckpt, weights_only=True)  # the format stays readable with weights_only=True
    d["device_models"]["a21"]["knots_i"][3] += 1.0
    torch.save(d, ckpt)
    res = run("info", ckpt)
    assert res.exit_code == 1 and "device 'a21' has changed since training" in res.output


# --- 6. ordinary mistakes: one line that says what to do ----------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--dims", "64,16,7"], "digits has 10 classes, so the last width must be 10; use --dims 64,16,10"),
        (["train", "--dims", "5,16,10"], "digits has 64 input features, so the first width must be 64"),
        (["train", "--bases", "a21,a21"], "a21 given more than once"),
        (["train", "--lr", "-1"], "Invalid value for '--lr'"),
        (["train", "--train-noise", "-0.5"], "Invalid value for '--train-noise'"),
        (
            ["simulate", TDKAN, "--dataset", "fashion-mnist"],
            "has 784 input features but tdkan.pt was trained on digits",
        ),
        (["simulate", TDKAN, "--dataset", "friedman"], "has 5 input features"),
    ],
)
def test_ordinary_mistakes_give_one_line(args, needle):
    res = run(*args)
    assert res.exit_code != 0 and needle in res.output and "Traceback" not in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("Error")]) == 1


def test_devices_fit_into_a_read_only_folder(cmtd_dir, monkeypatch):
    monkeypatch.setenv("ANASIM_DEVICE_DIR", "/proc/anasim-devices")  # /proc: nobody, root included, writes there
    res = run("devices", "fit", cmtd_dir / "z21.csv", "--name", "mydev")
    assert res.exit_code == 1 and "cannot write the device model" in res.output and "ANASIM_DEVICE_DIR" in res.output


# --- 9. threads: one by default, the same result as --threads 1 ---------------------------


def test_train_defaults_to_one_thread_and_matches_threads_1(tmp_path):
    torch.set_num_threads(2)  # what torch would pick on this 2-core machine
    try:
        assert run("train", "--dims", "64,4,10", "--epochs", "2", "-o", tmp_path / "a.pt").exit_code == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)
    assert run("train", "--dims", "64,4,10", "--epochs", "2", "--threads", "1", "-o", tmp_path / "b.pt").exit_code == 0
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert a["metrics"]["options"]["threads"] == 1
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key  # bit for bit


# --- 10. implausible operating points are flagged --------------------------------------------


@pytest.mark.parametrize(
    "outputs, power, bounds, flags",
    [
        ([[0.0, 16.6]], None, Bounds(), []),
        ([[-58.0, 59.0]], None, Bounds(), ["output range 117 V > 30 V"]),
        ([[0.0, 1.0]], 19.0, Bounds(), ["static power 19 W per inference > 5 W"]),
        ([[0.0, 1.0]], 0.075, Bounds(max_output_range_v=0.5, max_power_w=0.01), ["output range", "static power"]),
        ([[np.nan, np.nan]], None, Bounds(), []),  # no finished sample: nothing to flag
    ],
)
def test_plausibility_bounds(outputs, power, bounds, flags):
    info = {} if power is None else {"static_power_w": {"mean": power, "max": power}}
    out = np.array(outputs)
    c = Comparison("classification", out, out, np.zeros(len(out), dtype=int), info=info, bounds=bounds)
    found = c.plausibility()["flags"]
    assert len(found) == len(flags) and all(f.startswith(w) for f, w in zip(found, flags))
    assert c.to_dict()["plausibility"]["plausible"] == (not flags)


@pytest.mark.parametrize(
    "extra, flagged",
    [
        ([], False),
        (["--max-range", "1"], True),
        (["--analysis", "tran", "--samples", "2", "--max-power", "1e-3"], True),
    ],
)
def test_simulate_flags_implausible_results_in_table_and_json(tmp_path, extra, flagged):
    res = run("simulate", TDKAN, "--samples", "5", "--json", tmp_path / "s.json", *extra)
    assert res.exit_code == 0, res.output
    p = strict_json(tmp_path / "s.json")["plausibility"]
    assert p["plausible"] is not flagged and ("IMPLAUSIBLE" in res.output) == flagged
    assert set(p["bounds"]) == {"max_output_range_v", "max_power_w", "max_error_rel_range"}


# --- 11. the report records what ran, in strict JSON ----------------------------------------


def test_report_records_checkpoint_hash_and_every_hardware_option(tmp_path):
    out = tmp_path / "s.json"
    res = run("simulate", TDKAN, "--samples", "5", "--mapping", "shared", "--levels", "16", "--json", out)
    assert res.exit_code == 0, res.output
    r = strict_json(out)
    assert r["checkpoint"] == str(TDKAN.resolve())
    assert r["checkpoint_sha256"] == hashlib.sha256(TDKAN.read_bytes()).hexdigest()
    hw = r["hardware"]
    assert {"area_max", "levels", "crossbar", "mapping", "analysis"} <= set(hw)
    assert hw["mapping"] == "shared" and hw["levels"] == 16 and hw["analysis"] == "dc" and r["partial"] is False


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")])
def test_report_json_has_no_nan(tmp_path, bad):
    write_report(tmp_path / "r.json", {"max_abs_error": bad, "settling_time_s": {"max": bad}, "xs": [1.0, bad]})
    assert strict_json(tmp_path / "r.json") == {
        "max_abs_error": None,
        "settling_time_s": {"max": None},
        "xs": [1.0, None],
    }


# --- issue 29, item 8: numbers, sizes and crafted checkpoints ------------------------------


def _crafted(tmp_path, change):
    d = torch.load(TDKAN, weights_only=True)
    change(d)
    torch.save(d, tmp_path / "crafted.pt")
    return tmp_path / "crafted.pt"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--lr", "inf"], "--lr inf: give a finite learning rate > 0"),
        (["train", "--weight-decay", "nan"], "--weight-decay nan: give a finite weight decay >= 0"),
        (["train", "--in-gain", "nan"], "--in-gain nan: give a finite number > 0"),
        (["train", "--train-noise", "nan"], "--train-noise nan: give a finite number >= 0"),
        (["train", "--seed", "-1"], "--seed -1: give a whole number >= 0"),
        (
            ["train", "--dims", "64,100000000,10"],  # (64 + 10) x 1e8 x 2 bases
            "--dims 64,100000000,10: about 14,800,000,000 parameters, more than the limit of 20,000,000",
        ),
        (["simulate", TDKAN, "--samples", "2", "--max-range", "nan"], "--max-range nan: give a finite number > 0"),
        (["simulate", TDKAN, "--samples", "2", "--mc", "2", "--seed", "-1"], "--seed -1: give a whole number >= 0"),
        (
            ["info", lambda t: _crafted(t, lambda d: d["config"].update(dims=[64, 100_000_000, 10]))],
            "crafted.pt: config 'dims' 64,100000000,10: about ",
        ),
        (
            ["compile", lambda t: _crafted(t, lambda d: d.update(config="tdkan"))],
            "crafted.pt: the model config is a str, not a mapping",
        ),
        (
            ["info", lambda t: _crafted(t, lambda d: d["config"].update(in_gain=math.nan))],
            "crafted.pt: config 'in_gain' nan: give a finite number > 0",
        ),
    ],
)
def test_bad_numbers_and_sizes_give_one_line_and_write_nothing(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)  # simulate --mc writes its summary beside the working folder by default
    args = [a(tmp_path) if callable(a) else a for a in args]
    if args[0] == "train":
        args += ["--epochs", "1", "-o", tmp_path / "m.pt"]
    res = run(*args)
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output, res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("Error")]) == 1
    assert {p.name for p in tmp_path.iterdir()} <= {"crafted.pt"}  # no checkpoint, no results


def _device(name, **fields):
    base = {"format": "anasim-device/1", "name": name, "kind": "expr", "v_range": [0.0, 1.0], "unit": "mA"}
    return json.dumps(base | {"amps_per_unit": 1e-3, "expr": "V"} | fields)


@pytest.mark.parametrize(
    "file, text, needle",
    [
        ("notes.json", "not json at all", "notes.json: cannot read device model"),
        ("foo.json", _device("bar"), "foo.json: the device inside is named 'bar', not 'foo' like its file"),
        ("arity.json", _device("arity", expr="max(V)"), "expression 'max(V)': max() takes 2 arguments, given 1"),
        ("huge.json", _device("huge", expr="V*1e999"), "expression 'V*1e999': the number 1e999 is not finite"),
        ("expo.json", _device("expo", expr="exp(1000*V)"), "expression 'exp(1000*V)' is not finite at V = 0.71"),
    ],
)
def test_a_bad_user_device_breaks_only_what_uses_it(tmp_path, monkeypatch, file, text, needle):
    devdir = tmp_path / "devs"
    devdir.mkdir()
    (devdir / file).write_text(text)
    monkeypatch.setenv("ANASIM_DEVICE_DIR", str(devdir))
    with pytest.warns(AnasimWarning, match=re.escape(needle)):  # the other commands: a warning naming the file
        listing = run("devices", "list")
    assert listing.exit_code == 0 and "a21" in listing.output
    assert run("devices", "plot", "a21", "-o", tmp_path / "a21.png").exit_code == 0
    assert run("compile", TDKAN, "-o", tmp_path / "t.cir").exit_code == 0
    res = run("devices", "plot", Path(file).stem, "-o", tmp_path / "bad.png")  # the one asked for: its error
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "bad.png").exists()
