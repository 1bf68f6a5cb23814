"""Transient (latency) and static power; need ngspice, run in CI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.circuit.ir import VCVS, Circuit, OpAmp, Resistor
from anasim.families.tdkan.lower import lower
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.tran import static_power
from anasim_cli.main import cli


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
    np.testing.assert_allclose(p, expected, rtol=1e-6)


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
