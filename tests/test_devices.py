"""Device models: exact evaluation, clamping, the bundled library and its provenance."""

import json
import math

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim import bundled
from anasim.devices import BUNDLED_DIR, DeviceModel, get_device, registry
from anasim.errors import DeviceError
from anasim.expr import Expr
from anasim.fitting import fit_device
from anasim.ivdata import read_iv_csv
from anasim_cli.main import cli

CMTD = ["a21", "z21", "z15", "zaz21"]


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def plt_image(path):
    return mpimg.imread(path, format="png")


def test_registry_has_the_shipped_devices():
    names = set(registry())
    assert {*CMTD, *(n + "_smooth" for n in CMTD), "rtd", "rtd_b10", "emosfet"} <= names


def test_unknown_device_lists_valid_names():
    with pytest.raises(DeviceError, match=r"unknown device 'nope'; valid devices: a21, "):
        get_device("nope")


@pytest.mark.parametrize("name", CMTD)
def test_bundled_pwl_reproduces_data_exactly(name, cmtd_dir):
    sweep = read_iv_csv(cmtd_dir / f"{name}.csv")
    dev = get_device(name)
    np.testing.assert_allclose(dev.current(sweep.v), sweep.i, atol=1e-8)  # knots stored to 1e-9
    # clamped beyond the sweep, as in the paper: end values, zero slope
    assert dev.current([sweep.v[0] - 1.0])[0] == pytest.approx(sweep.i[0], abs=1e-8)
    assert dev.current([sweep.v[-1] + 2.0])[0] == pytest.approx(sweep.i[-1], abs=1e-8)


@pytest.mark.parametrize("name", CMTD)
def test_bundled_models_are_reproducible_from_raw_data(name, cmtd_dir, tmp_path):
    bundled.build(cmtd_dir, tmp_path)
    for suffix in ("", "_smooth"):
        shipped = json.loads((BUNDLED_DIR / f"{name}{suffix}.json").read_text())
        rebuilt = json.loads((tmp_path / f"{name}{suffix}.json").read_text())
        assert rebuilt == shipped


def test_make_device_models_keeps_the_shipped_files(cmtd_dir, tmp_path):
    """A rebuild into the shipped folder rewrites no file that holds the same model: this
    machine's fit of zaz21 has 0.0 where the shipped file has -0.0 (another fit hash, the same
    currents); a file with another description is rewritten."""
    out = tmp_path / "models"
    out.mkdir()
    for p in BUNDLED_DIR.glob("*.json"):
        (out / p.name).write_bytes(p.read_bytes())
    stale = json.loads((out / "a21.json").read_text()) | {"description": "OLD TEXT"}
    (out / "a21.json").write_text(json.dumps(stale))  # the same fit, another description: rewritten
    bundled.build(cmtd_dir, out)
    for p in BUNDLED_DIR.glob("*.json"):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def test_signed_zero_is_the_same_fit():
    a = DeviceModel("t0", "pwl", (-1.0, 1.0), "mA", 1e-3, knots_v=(-1.0, 0.0, 1.0), knots_i=(-1.0, -0.0, 1.0))
    b = DeviceModel("t0", "pwl", (-1.0, 1.0), "mA", 1e-3, knots_v=(-1.0, 0.0, 1.0), knots_i=(-1.0, 0.0, 1.0))
    c = DeviceModel("t0", "pwl", (-1.0, 1.0), "mA", 1e-3, knots_v=(-1.0, 0.0, 1.0), knots_i=(-1.0, 1e-12, 1.0))
    assert a.fit_hash != b.fit_hash and a.same_fit(b) and not a.same_fit(c)


@pytest.mark.parametrize("name", CMTD)
def test_smooth_fit_error_is_small_and_recorded(name):
    dev = get_device(name + "_smooth")
    err = dev.provenance["fit_error"]
    assert 0 < err["rms_rel_peak"] < 0.03  # smoothing spline within 3% RMS of the peak current
    assert dev.provenance["source"] == f"{name}.csv" and dev.provenance["fit_method"] == "smooth"


def test_coarse_pwl_fit_reports_error(cmtd_dir):
    model, rep = fit_device(read_iv_csv(cmtd_dir / "z15.csv"), "coarse", "pwl", step=0.2)
    assert len(model.knots_v) == 8 and rep.rms > 0.05  # 0.2 V knots cannot follow the NDR dip
    assert model.provenance["fit_error"]["rms"] == pytest.approx(rep.rms, rel=1e-12)


def test_pwl_torch_matches_numpy_interp():
    dev = DeviceModel("t", "pwl", (0.0, 1.0), "a.u.", 1e-6, knots_v=(0.0, 0.3, 1.0), knots_i=(0.0, 2.0, -1.0))
    v = np.linspace(-0.5, 1.5, 101)
    np.testing.assert_allclose(dev.current(v), np.interp(v, dev.knots_v, dev.knots_i), atol=1e-12)
    x = torch.tensor([0.15, 0.65, 2.0], dtype=torch.float64, requires_grad=True)
    dev.torch_current(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 / 0.3, -3 / 0.7, 0.0], rtol=1e-12)


def test_rtd_matches_paper_equation_4():
    dev = get_device("rtd")
    vt = 1.380649e-23 * 300 / 1.602176634e-19
    a, b, c, d, n1, n2, h = 0.0039, 0.5, 0.0874, 0.0073, 0.0352, 0.0031, 0.0367
    alpha, eta, gamma = (b - c) / vt, n1 / vt, n2 / vt
    for v in (0.0, 0.5, 2.0, 2.48, 3.5):
        ref = a * math.log((1 + math.exp(alpha + eta * v)) / (1 + math.exp(alpha - eta * v)))
        ref = ref * (math.pi / 2 + math.atan((c - n1 * v) / d)) + h * (math.exp(gamma * v) - 1)
        assert dev.current([v])[0] * dev.amps_per_unit == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_rtd_b10_is_stable_in_float32():
    out = get_device("rtd_b10").torch_current(torch.linspace(0, 4, 9))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("v, i_ma", [(0.0, 0.0), (1.0, 0.0), (1.5, 6.17 * 0.25), (3.0, 6.17 * 4)])
def test_emosfet_matches_paper_equation_5(v, i_ma):
    assert get_device("emosfet").current([v])[0] == pytest.approx(i_ma, abs=1e-12)


@pytest.mark.parametrize(
    "source", ["__import__('os')", "V**2", "foo(V)", "V; .control", "exp(V).real", "lambda: 1", "x+V"]
)
def test_expression_grammar_rejects_anything_else(source):
    with pytest.raises(DeviceError):
        Expr(source, {})


def test_expression_spice_form():
    e = Expr("k*max(V-vth,0)", {"k": 2.0, "vth": 1.0})
    assert e.spice("V(a,b)") == "(2.0*max((V(a,b)-1.0),0.0))"


def test_devices_plot_of_a_device_fitted_from_a_file_with_dollars(cmtd_dir, tmp_path):
    """The description 'fitted from z_$v_1_2$.csv' is drawn as text (matplotlib's math parser fails on it)."""
    csv = tmp_path / "z_$v_1_2$.csv"
    csv.write_bytes((cmtd_dir / "z21.csv").read_bytes())
    assert run_cli("devices", "fit", csv, "--name", "dollar").exit_code == 0
    assert get_device("dollar").description == "fitted from z_$v_1_2$.csv"
    out = tmp_path / "dollar.png"
    res = run_cli("devices", "plot", "dollar", "-o", out)
    assert res.exit_code == 0, res.output
    assert plt_image(out).shape[:2] == (540, 750)  # 5 x 3.6 in at 150 dpi
