"""Device models: exact evaluation, clamping, the bundled library and its provenance."""

import json
import math

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim.devices import DeviceModel, bundled, bundled_dir, get_device, registry
from anasim.devices.expr import Expr
from anasim.devices.fitting import fit_device
from anasim.devices.ivdata import read_iv_csv
from anasim.errors import DataError, DeviceError
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
        shipped = json.loads((bundled_dir() / f"{name}{suffix}.json").read_text())
        rebuilt = json.loads((tmp_path / f"{name}{suffix}.json").read_text())
        assert rebuilt == shipped


def test_make_device_models_keeps_the_shipped_files(cmtd_dir, tmp_path):
    """A rebuild into the shipped folder rewrites no file that holds the same model: this
    machine's fit of zaz21 has 0.0 where the shipped file has -0.0 (another fit hash, the same
    currents); a file with another description is rewritten."""
    out = tmp_path / "models"
    out.mkdir()
    for p in bundled_dir().glob("*.json"):
        (out / p.name).write_bytes(p.read_bytes())
    stale = json.loads((out / "a21.json").read_text()) | {"description": "OLD TEXT"}
    (out / "a21.json").write_text(json.dumps(stale))  # the same fit, another description: rewritten
    bundled.build(cmtd_dir, out)
    for p in bundled_dir().glob("*.json"):
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


# --- fitting at scale: a banded solve, limits said before anything is allocated -------------


def dense_pwl(sweep, knots):
    """The dense least-squares solve the banded one replaced: the same system, for small sweeps."""
    j = np.clip(np.searchsorted(knots, sweep.v, side="right") - 1, 0, len(knots) - 2)
    t = (sweep.v - knots[j]) / (knots[j + 1] - knots[j])
    a = np.zeros((len(sweep.v), len(knots)))
    a[np.arange(len(t)), j], a[np.arange(len(t)), j + 1] = 1 - t, t
    d2 = np.diff(np.eye(len(knots)), n=2, axis=0) * 1e-6
    values, *_ = np.linalg.lstsq(np.vstack([a, d2]), np.concatenate([sweep.i, np.zeros(len(d2))]), rcond=None)
    return values


@pytest.mark.parametrize("name, step", [("z15", None), ("z15", 0.2), ("a21", 0.013), ("zaz21", 0.004)])
def test_banded_pwl_fit_equals_the_dense_solve(cmtd_dir, name, step):
    from anasim.devices.fitting import fit_pwl

    sweep = read_iv_csv(cmtd_dir / f"{name}.csv")
    knots, values = fit_pwl(sweep, step)
    # equal to 1e-9 of the peak current: the knots are stored rounded to 1e-9 anyway (0.004 V
    # puts most knots where only the weak penalty sets them, the worst case for the normal equations)
    np.testing.assert_allclose(values, dense_pwl(sweep, knots), rtol=0, atol=1e-9 * np.abs(sweep.i).max())


def test_large_sweep_fits_in_little_memory():
    """20,000 points on their own 20,000 knots: the dense solve needed a 20,000 x 20,000 matrix
    (3.2 GB); the banded one stays within 50 MB of numpy memory and interpolates the data."""
    import tracemalloc

    from anasim.devices.fitting import fit_pwl
    from anasim.devices.ivdata import IVSweep

    v = np.linspace(-1.0, 1.5, 20_000)
    sweep = IVSweep(v, np.sin(4 * v) + 0.3 * v**2, "synthetic")
    tracemalloc.start()
    try:
        knots, values = fit_pwl(sweep)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{peak / 1e6:.0f} MB"
    np.testing.assert_allclose(values, sweep.i, rtol=0, atol=1e-9)  # the penalty moves them < 1e-9


@pytest.mark.parametrize(
    "step, points, message",
    [
        (1e-9, 29, r"--grid 1e-09: 1,400,000,001 knots over 0\.1\.\.1\.5 V, more than the limit of 100,000 .*"
         r"give --grid 1\.4e-05 or coarser"),
        (1e-320, 29, r"--grid 9\.99989e-321: inf knots over 0\.1\.\.1\.5 V, more than the limit of 100,000"),
        (math.inf, 29, "fit grid step inf must be a finite number > 0"),
        (math.nan, 29, "fit grid step nan must be a finite number > 0"),
        (0.0, 29, "fit grid step 0.0 must be a finite number > 0"),
        (None, 100_001, r"100,001 points would make as many knots, more than the limit of 100,000"),
    ],
)  # fmt: skip
def test_grids_and_sweeps_too_fine_are_refused(step, points, message):
    from anasim.devices.fitting import fit_pwl
    from anasim.devices.ivdata import IVSweep

    v = np.linspace(0.1, 1.5, points)
    with pytest.raises(DataError, match=message):
        fit_pwl(IVSweep(v, v**2, "sweep.csv"), step)


def test_sweep_files_too_large_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:
        fh.truncate(60_000_000)  # a sparse file: no disk used
    res = run_cli("devices", "fit", big, "--name", "big")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "big.csv: 60 MB of CSV, more than the 50 MB a fit reads" in res.output


@pytest.mark.parametrize(
    "points, message",
    [
        (20_000, "the smoothing spline fails on these 20,000 points"),
        (100_001, "100,001 points, more than the 100,000 a smoothing spline fits"),
    ],
)
def test_smoothing_spline_limits(points, message):
    from anasim.devices.fitting import fit_smooth
    from anasim.devices.ivdata import IVSweep

    v = np.linspace(-1.0, 1.5, points)
    i = np.sin(4 * v) + 0.01 * np.random.default_rng(0).standard_normal(points)
    with pytest.raises(DataError, match=message):
        fit_smooth(IVSweep(v, i, "sweep.csv"))
