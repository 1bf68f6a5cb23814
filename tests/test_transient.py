"""Transient (latency) and static power; need ngspice, run in CI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.ir import VCVS, Circuit, Instance, Resistor, Subckt
from anasim.transient import static_power
from anasim_cli.main import cli


def test_static_power_of_a_subcircuit_amplifier(tmp_path):
    """An amplifier of gain 2 inside a subcircuit drives 100 ohm: P = (2 V_in)^2 / 100."""
    circuit = Circuit(
        title="power",
        subckts=[Subckt("amp", ["i", "o"], [VCVS("e", "o", "0", "i", "0", 2.0)])],
        elements=[Instance("a1", "amp", ["in_0", "a"]), Resistor("load", "a", "0", 100.0)],
        outputs=["a"],
    )
    p = static_power(circuit, np.array([[1.0], [2.0], [-0.5]]), tmp_path)
    np.testing.assert_allclose(p, [0.04, 0.16, 0.01], rtol=1e-9)


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
    assert "settling time" in res.output


def test_ndr_columns_are_stabilized(digits_model):
    """With an op-amp pole, every column whose NDR devices could give negative input conductance
    gets a shunt worth 1.5x the worst case; without a pole (DC), none is added."""
    from anasim.checkpoint import load_checkpoint
    from anasim.lower import HwOptions, lower_tdkan

    _, model = load_checkpoint(digits_model)
    dc, _ = lower_tdkan(model.double(), HwOptions())
    tr, _ = lower_tdkan(model.double(), HwOptions(gbw=1e8, line_cap=1e-12))
    assert not any(e.name.startswith("shunt_") for e in dc.elements)
    shunts = [e for e in tr.elements if e.name.startswith("shunt_")]
    assert shunts and all(e.value > 0 for e in shunts)


@pytest.mark.parametrize("bad", [{"line_cap": -1.0}, {"gbw": 0.0}])
def test_bad_transient_options(bad):
    from anasim.errors import AnasimError
    from anasim.lower import HwOptions

    with pytest.raises(AnasimError):
        HwOptions(**bad).check()
