"""anasim report: sections and figures from simulate and Monte Carlo results, the gates, and the
bad inputs it refuses (mixed models, missing files, older formats, an empty Monte Carlo, a folder
it cannot write). The results (fixture ``results`` in conftest.py) come from the small committed
checkpoints of netlists/examples, simulated once per session on a few samples."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

from anasim.errors import AnasimError
from anasim.report import make_report, parse_gate
from anasim_cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_report_writes_markdown_and_self_contained_html(results, tmp_path):
    res = run("report", results / "sim.json", results / "mc.json", "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    for heading in ("## Model", "## Devices", "## Circuit against reference", "## Monte Carlo", "## Environment"):
        assert heading in md
    assert "| sim.json" in res.output  # the comparison table is printed for the CI log
    assert "64 rows x 8 columns" in md  # crossbar of layer 0: 64 inputs, 4 differential output pairs
    assert "| area=0.05, torch eq. 6 (sigma 0.05) | mean " in md  # the software Monte Carlo beside the circuit
    page = (tmp_path / "rep" / "report.html").read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", page), "the page must not load anything from outside"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(list((tmp_path / "rep" / "figures").glob("*.png"))) >= 5
    for b64 in images:
        img = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert img.shape[0] > 200 and img.shape[1] > 200  # decodes to a real figure


def test_kirchhoffnet_report_shows_loss_and_trajectories(results, tmp_path):
    rep = make_report([results / "kn.json"], tmp_path, [("loss-ratio", 1.01)])
    md = rep.markdown.read_text()
    assert "reference loss" in md and "trajectories.png" in md
    arrays = np.load(results / "kn.npz")
    # ngspice (reltol 1e-6) against torchdiffeq (rtol 1e-9) at the layer's end: the README's bound
    # is about 1e-4 of the voltage span; here the nodes span about 3 V, so 2e-4 of it = 6e-4 V
    v_spice, v_ref = arrays["traj_v_spice"][-1], arrays["traj_v_ref"][-1]
    np.testing.assert_allclose(v_spice, v_ref, atol=2e-4 * np.ptp(v_ref))
    assert rep.gates[0].passed


@pytest.mark.parametrize(
    "gate, passed",
    [
        ("agreement=0.995", True),
        ("max-error=1e-15", False),  # stricter than ngspice's own tolerance: fails, naming the value
        ("accuracy-drop=0.5", True),
        ("accuracy-drop=-1", False),
        ("max-error=1e-3", True),
        ("loss-ratio=1.01", False),  # a classifier has no loss: a gate that checks nothing fails
    ],
)
def test_gates(results, tmp_path, gate, passed):
    res = CliRunner().invoke(cli, ["report", str(results / "sim.json"), "-o", str(tmp_path), "--gate", gate])
    assert (res.exit_code == 0) == passed, res.output
    name = gate.split("=")[0]
    if not passed:
        assert f"gate failed: {name}" in res.output
        assert re.search(rf"{name}: FAILED, .*(\d|no simulate result)", res.output)


@pytest.mark.parametrize("text", ["agreement", "speed=3", "agreement=high", "agreement=99.5", "max-error=nan"])
def test_bad_gate_refused(text):
    with pytest.raises(AnasimError, match="--gate"):
        parse_gate(text)


def _older(results, tmp_path):
    data = json.loads((results / "sim.json").read_text())
    del data["format"], data["kind"]  # as simulate wrote it before the format field
    (tmp_path / "old.json").write_text(json.dumps(data))
    shutil.copy(results / "sim.npz", tmp_path / "old.npz")
    return [tmp_path / "old.json"]


def _newer(results, tmp_path):
    data = json.loads((results / "sim.json").read_text()) | {"format": "anasim-simulate/9"}
    (tmp_path / "new.json").write_text(json.dumps(data))
    shutil.copy(results / "sim.npz", tmp_path / "new.npz")
    return [tmp_path / "new.json"]


def _empty_mc(results, tmp_path):
    (tmp_path / "mc.json").write_text("")
    return [results / "sim.json", tmp_path / "mc.json"]


def _mc_without_realizations(results, tmp_path):
    data = json.loads((results / "mc.json").read_text())
    for p in data["points"]:
        p["realizations"] = 0
    (tmp_path / "mc0.json").write_text(json.dumps(data))
    return [tmp_path / "mc0.json"]


def _missing_npz(results, tmp_path):
    shutil.copy(results / "sim.json", tmp_path / "lone.json")
    return [tmp_path / "lone.json"]


def _checkpoint(results, tmp_path):
    return [Path(__file__).parents[1] / "netlists" / "examples" / "digits_tdkan.pt"]


def _binary(results, tmp_path):
    (tmp_path / "noise.json").write_bytes(bytes(range(256)))
    return [tmp_path / "noise.json"]


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda r, t: [r / "sim.json", r / "kn.json"],
            r"different models.*sim\.json: digits_tdkan\.pt.*kn\.json: friedman",
        ),
        (lambda r, t: [r / "sim.json", t / "nowhere.json"], r"nowhere\.json: no such results file"),
        (_older, r"old\.json: results file without a format version .*reads anasim-simulate/1"),
        (_newer, r"new\.json: results format 'anasim-simulate/9'; this anasim reads anasim-simulate/1"),
        (_empty_mc, r"mc\.json: the file is empty"),
        (_mc_without_realizations, r"mc0\.json: the Monte Carlo holds no finished realization"),
        (_missing_npz, r"lone\.json: its per-sample arrays lone\.npz are missing"),
        (_checkpoint, r"digits_tdkan\.pt: not an anasim results JSON \(a PyTorch checkpoint\); give the JSON of"),
        (_binary, r"noise\.json: not an anasim results JSON \(a binary file\)"),
    ],
)
def test_bad_input_refused(results, tmp_path, make, message):
    res = run("report", *make(results, tmp_path), "-o", tmp_path / "rep")
    assert res.exit_code == 1
    assert re.search(message, res.output), res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "rep").exists()  # refused before anything is written


def test_unwritable_report_folder(results, tmp_path):
    (tmp_path / "file").write_text("")  # a folder below a file cannot be made, even by root
    res = run("report", results / "sim.json", "-o", tmp_path / "file" / "rep")
    assert res.exit_code == 1
    assert "cannot write the report there" in res.output and "choose another -o folder" in res.output


def test_report_reads_results_only_without_torch(results, tmp_path):
    """The report step imports neither torch nor the simulator: it reads files (a fresh process)."""
    code = (
        "import sys; from anasim.report import make_report; "
        f"make_report([{str(results / 'mc.json')!r}], {str(tmp_path)!r}); "
        "assert 'torch' not in sys.modules and 'anasim.sim.ngspice' not in sys.modules "
        "and 'anasim.sim.engine' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no simulate results given" in (tmp_path / "report.md").read_text().lower()


def test_report_counts_the_tiles_of_the_lowering(tmp_path):
    """--tile 16,4 cuts layer 0 (64 inputs, 4 outputs) into 4 row tiles x 2 column tiles of 16 rows
    and 4 column lines (2 outputs each), and layer 1 (4 inputs, 10 outputs) into 1 x 5 tiles of 4 x 4."""
    ckpt = Path(__file__).parents[1] / "netlists" / "examples" / "digits_tdkan.pt"
    out = tmp_path / "tiled.json"
    res = run("simulate", ckpt, "--samples", 3, "--tile", "16,4", "--json", out)
    assert res.exit_code == 0, res.output
    layers = json.loads(out.read_text())["model"]["layers"]
    assert [(L["crossbar_rows"], L["crossbar_columns"], L["tiles"], L["tile_grid"]) for L in layers] == [
        (16, 4, 8, [4, 2]),
        (4, 4, 5, [1, 5]),
    ]
    md = make_report([out], tmp_path / "rep").markdown.read_text()
    assert "16 rows x 4 columns per tile (at most), 8 tiles (4 row x 2 column tiles)" in md
    assert "4 rows x 4 columns per tile (at most), 5 tiles (1 row x 5 column tiles)" in md


def test_dollar_signs_in_user_text_are_drawn_as_text(results, tmp_path):
    """A '$...$' pair in a device description and in a results file name (matplotlib would parse it
    as math text and fail on 'v_1_2', a double subscript): the report is written with every figure."""
    data = json.loads((results / "sim.json").read_text())
    for d in data["devices"].values():
        d["description"] = "fitted from cmtd_$v_1_2$.csv"
    sim = tmp_path / "run_$a^b^c$.json"
    sim.write_text(json.dumps(data))
    shutil.copy(results / "sim.npz", sim.with_suffix(".npz"))
    res = run("report", sim, "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    figs = sorted(p.name for p in (tmp_path / "rep" / "figures").glob("*.png"))
    assert figs == ["devices.png", "errors_0.png", "scatter_0.png"]
