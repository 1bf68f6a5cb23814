"""Transient (latency) and static power; need ngspice, run in CI."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.circuit.ir import VCVS, Circuit, Curve, Device, OpAmp, Resistor
from anasim.families.tdkan.lower import lower, lower_stages
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.tran import chained, sequence, static_power, thin
from anasim_cli.main import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "netlists" / "examples"


@pytest.mark.parametrize(
    "amp",
    [
        VCVS("e", "a", "0", "in_0", "0", 2.0),
        # a non-inverting op-amp stage of gain 2 (gain-bandwidth pole: the macro-model's primitives)
        OpAmp("u", "in_0", "fb", "a", 1e9, gbw=1e8),
    ],
)
def test_static_power_of_an_amplifier(amp, tmp_path):
    """An amplifier of gain 2 drives 100 ohm: P = (2 V_in)^2 / 100, plus for the op-amp stage
    (2 V_in)^2 / 2 kohm in its 1 kohm + 1 kohm divider. Tolerance 1e-6: finite gain 1e9."""
    extra = [Resistor("f1", "a", "fb", 1e3), Resistor("f2", "fb", "0", 1e3)] if isinstance(amp, OpAmp) else []
    circuit = Circuit("power", (amp, Resistor("load", "a", "0", 100.0), *extra), inputs=("in_0",), outputs=("a",))
    v = np.array([1.0, 2.0, -0.5])
    p = static_power(circuit, v[:, None], tmp_path)
    expected = (2 * v) ** 2 / 100 + ((2 * v) ** 2 / 2e3 if extra else 0)
    np.testing.assert_allclose(p["total"], expected, rtol=1e-6)
    np.testing.assert_allclose(p["resistors"], expected, rtol=1e-6)  # all of it dissipated in the resistors
    np.testing.assert_allclose(p["opamps" if extra else "drivers"], expected, rtol=1e-6)


def test_static_power_of_a_crossbar_by_hand(tmp_path):
    """A 2x2 TD-KAN crossbar of linear devices (1 uA/V per unit area), ideal op-amps. Rows at u
    (clipped inputs), columns at 0 V: a device of area a dissipates a * 1e-6 * u^2 and its row
    driver delivers it. Each column's current I flows through its Rf into a TIA output at -Rf I:
    Rf dissipates Rf I^2; the difference stage's four 10 kohm resistors (its inputs at an / 2)
    dissipate the rest the op-amps deliver. Checked per category to 1e-6 (op-amp gain 1e9)."""
    from test_physical import LIN, linear_crossbar  # tests/ is on sys.path (pytest prepends it)

    from anasim.devices import embedded

    with embedded({"lin": LIN}):
        _, circuit, L = linear_crossbar(0.0, 1e9)
    u = np.array([[0.3, 0.9], [1.0, 0.25]])
    p = static_power(circuit, u, tmp_path)
    g = L.area[:, :, 0] * 1e-6  # [in, out] device conductances
    devices = (g * u[:, :, None] ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(p["devices"], devices, rtol=1e-6)
    np.testing.assert_allclose(p["drivers"], devices, rtol=1e-6)  # the rows deliver exactly that
    # column currents, each into its TIA: I+ and I- per output, plus the bias current
    pos = (L.theta[:, :, 0] > 0) == (L.s >= 0)[None, :]
    ip = np.einsum("ni,ij->nj", u, g * pos)
    im = np.einsum("ni,ij->nj", u, g * ~pos)
    ib = L.c / L.rf
    ip, im = ip + np.where(ib > 0, ib, 0), im + np.where(ib < 0, -ib, 0)
    ap, an = -L.rf * ip, -L.rf * im  # TIA outputs
    y = an - ap
    # feedback resistors, then the difference stage: a (ap -> m), b (m -> y), c (an -> q), d (q -> 0), m = q = an / 2
    rf = (L.rf * (ip**2 + im**2)).sum(axis=1)
    diff = ((ap - an / 2) ** 2 + (y - an / 2) ** 2 + 2 * (an / 2) ** 2).sum(axis=1) / 1e4
    np.testing.assert_allclose(p["resistors"], rf + diff, rtol=1e-6)
    np.testing.assert_allclose(p["bias"], 0.0, atol=1e-12)  # bias sources sit at a virtual ground
    np.testing.assert_allclose(p["total"], p["devices"] + p["resistors"], rtol=1e-6)  # KCL to ngspice's tolerance


def test_static_power_of_an_expression_device(tmp_path):
    """A device on an expression curve (no pwl table numpy could evaluate), 1 mA/V, driven at V:
    it dissipates what the driver delivers, 1e-3 V^2, beside a 1 kohm resistor (1e-3 V^2). 1e-6."""
    curve = Curve("lin", "x", 1e-3)
    elements = (VCVS("e", "a", "0", "in_0", "0", 1.0), Device("d", "a", "0", "lin"), Resistor("r", "a", "0", 1e3))
    circuit = Circuit("power", elements, (curve,), inputs=("in_0",), outputs=("a",))
    v = np.array([1.0, 2.0, -0.5])
    p = static_power(circuit, v[:, None], tmp_path)
    np.testing.assert_allclose(p["devices"], 1e-3 * v**2, rtol=1e-6)
    np.testing.assert_allclose(p["resistors"], 1e-3 * v**2, rtol=1e-6)
    np.testing.assert_allclose(p["drivers"], 2e-3 * v**2, rtol=1e-6)


def test_tran_settles_and_agrees(digits_model, tmp_path):
    js = tmp_path / "tran.json"
    res = CliRunner().invoke(
        cli, ["simulate", str(digits_model), "--analysis", "tran", "--samples", "6", "--json", str(js)]
    )
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert r["analysis"] == "tran" and r["settled_within_period"]
    assert 1e-9 < r["settling_time_s"]["max"] < 2e-6  # settles, but not instantly (1 pF lines, 100 MHz op-amps)
    assert r["argmax_agreement"] == 1.0 and r["max_abs_error"] <= 1e-3 * r["output_scale"]
    assert 1e-4 < r["static_power_w"]["mean"] < 1.0  # watts; dominated by the 10 kohm difference stages
    assert r["power_w"] == r["static_power_w"]["mean"] and r["energy_j"] == r["power_w"] * r["latency_s"]
    # the report shows the same energy as simulate prints (power x latency), to its 3 digits
    rep = CliRunner().invoke(cli, ["report", str(js), "-o", str(tmp_path / "rep"), "--quiet"])
    assert rep.exit_code == 0, rep.output
    md = (tmp_path / "rep" / "report.md").read_text().splitlines()
    row = next(line for line in md if line.startswith("| tran.json") and " / " in line)  # the physical table
    assert row.split("|")[5].strip() == f"{r['energy_j'] * 1e9:.3g}", row
    split = r["power_split_w"]  # where the power goes = where it comes from, to 1e-6
    assert abs(split["devices"] + split["resistors"] - r["power_w"]) <= 1e-6 * r["power_w"]
    assert split["resistors"] > split["devices"] > 0 and split["opamps"] > 0
    assert "settling time" in res.output


def test_stage_by_stage_transient_equals_the_whole(tmp_path):
    """The transient run stage by stage in parts (the default) against one transient of the whole
    circuit: end-of-window outputs within 1e-6 of the range (each run's own time steps), each
    sample's settling time within 5%."""
    from anasim.checkpoint import load_checkpoint
    from anasim.circuit.stimulus import TimeSequence

    _, model = load_checkpoint(EXAMPLES / "digits_tdkan.pt")
    model = model.double()
    x = np.random.default_rng(0).uniform(0.0, 1.25, (5, 64))
    opts, seq = TdkanOptions(line_cap=1e-12, gbw=1e8), TimeSequence(x, x[-1], 2e-6)
    whole = sequence(lower(model, opts)[0], seq, tmp_path / "whole", 0.1)
    parts = chained(lower_stages(model, opts), seq, tmp_path / "parts", 0.1, jobs=2, part_elements=100)
    assert len(list((tmp_path / "parts" / "stage0").iterdir())) > 1  # layer 0 did run in parts
    span = np.ptp(whole.outputs)
    assert np.abs(parts.outputs - whole.outputs).max() <= 1e-6 * span
    settle_w, settle_p = whole.extra["settle_s"], parts.extra["settle_s"]
    assert np.isfinite(settle_w).all() and np.all(np.abs(settle_p - settle_w) <= 0.05 * settle_w)
    # the same run again in the same folder reads every finished part back: nothing runs
    again = chained(lower_stages(model, opts), seq, tmp_path / "parts", 0.1, jobs=2, part_elements=100)
    assert again.rusage == {} and np.array_equal(again.outputs, parts.outputs)


@pytest.mark.parametrize("tol", [1e-3, 1e-6])
def test_thin_keeps_a_waveform_within_tolerance(tol):
    t = np.linspace(0.0, 1e-6, 2001)
    v = np.where(t < 2e-7, 0.0, 1.0 - np.exp(-(t - 2e-7) / 5e-8))  # a step's settling
    keep = thin(t, v, tol)
    assert keep[0] == 0 and keep[-1] == len(t) - 1 and len(keep) < len(t) // 3  # 528 points at 1e-6, 35 at 1e-3
    assert np.abs(np.interp(t, t[keep], v[keep]) - v).max() <= tol  # exact to rounding
    assert list(thin(t, 3.0 * t, 1e-12)) == [0, len(t) - 1]  # a line: its two ends


def test_ndr_columns_are_stabilized(digits_model):
    """With an op-amp pole, every column whose NDR devices could give negative input conductance
    gets a shunt worth 1.5x the worst case; without a pole (DC), none is added."""
    from anasim.checkpoint import load_checkpoint

    _, model = load_checkpoint(digits_model)
    dc, _ = lower(model.double(), TdkanOptions())
    tr, _ = lower(model.double(), TdkanOptions(gbw=1e8, line_cap=1e-12))
    assert not any(e.name.startswith("shunt_") for e in dc.elements)
    shunts = [e for e in tr.elements if e.name.startswith("shunt_")]
    assert shunts and all(e.value > 0 for e in shunts)


@pytest.mark.parametrize("bad", [{"line_cap": -1.0}, {"gbw": 0.0}])
def test_bad_transient_options(bad):
    from anasim.errors import AnasimError

    with pytest.raises(AnasimError):
        TdkanOptions(**bad).check()


def test_dc_run_measures_static_power_on_request(digits_model, tmp_path):
    # the same operating points a transient's power comes from, on the first 5 samples; no latency in DC
    js = tmp_path / "dc.json"
    args = ["simulate", str(digits_model), "--samples", "8", "--power-samples", "5", "--json", str(js)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert r["power_samples"] == 5 and r["latency_s"] is None and r["energy_j"] is None
    split = r["power_split_w"]
    assert abs(split["devices"] + split["resistors"] - r["power_w"]) <= 1e-6 * r["power_w"]  # Tellegen, to 1e-6
    assert abs(split["drivers"] - split["devices"]) <= 1e-6 * split["devices"]  # the rows feed the devices only
    assert "static power" in res.output and "first 5 samples" in res.output
