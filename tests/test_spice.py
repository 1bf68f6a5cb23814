"""ngspice against torch: every device model in a DC sweep, and a hand-checkable 2x2 crossbar.

These need ngspice (make installs it) and run in CI; they fail, never skip, when it is missing.
"""

import subprocess

import numpy as np
import pytest
import torch

from anasim.circuit import expr as ex
from anasim.circuit.expr import Pwl, V, call
from anasim.circuit.ir import BSource, Circuit, Curve, Resistor
from anasim.devices import registry
from anasim.families.mlp.lower import lower as lower_mlp
from anasim.families.mlp.lower import lower_stages as lower_mlp_stages
from anasim.families.mlp.model import DeviceMLP
from anasim.families.mlp.options import MlpOptions
from anasim.families.tdkan.lower import lower, lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.batch import layers, sweep, sweep_of
from anasim.sim.engine import netlist
from anasim.sim.ngspice.process import ngspice_path


def test_ngspice_is_installed():
    out = subprocess.run([ngspice_path(), "-v"], capture_output=True, text=True).stdout
    assert "ngspice-" in out


@pytest.mark.parametrize("name", sorted(registry()))
def test_device_dc_sweep_matches_torch(name, tmp_path):
    """I(V) of the B-source in ngspice equals the torch evaluation, including the clamped ends."""
    dev = registry()[name]
    lo, hi = dev.v_range
    v = np.linspace(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo), 97)
    # The device sinks its current into a 1-ohm resistor held by an ideal ammeter: V(out) = I.
    circuit = Circuit(
        title=f"dc sweep of {name}",
        curves=(Curve(name, dev.spice_current("x"), dev.amps_per_unit),),
        elements=(BSource("dev", "0", "out", "I", ex.Curve(name, V("in_0"))), Resistor("load", "out", "0", 1.0)),
        inputs=("in_0",),
        outputs=("out",),
    )
    res = sweep(circuit, v[:, None], tmp_path, jobs=1)
    ref = dev.torch_current(torch.tensor(v, dtype=torch.float64)).numpy()
    scale = max(1.0, float(np.abs(ref).max()))
    # 12 printed digits and ngspice's double-precision evaluation: agreement to 1e-9 of the peak
    np.testing.assert_allclose(res.outputs[:, 0], ref, rtol=0, atol=1e-9 * scale)


def test_pwl_clamps_only_with_flat_end_points(tmp_path):
    """Fact the device writer relies on: ngspice's pwl() extrapolates its end segments linearly."""
    circuit = Circuit(
        title="pwl extrapolation",
        elements=(BSource("p", "out", "0", "V", Pwl(V("in_0"), (0.0, 0.0, 1.0, 1.0))),),
        inputs=("in_0",),
        outputs=("out",),
    )
    res = sweep(circuit, np.array([[2.0], [-1.0]]), tmp_path, jobs=1)
    np.testing.assert_allclose(res.outputs[:, 0], [2.0, -1.0], atol=1e-9)


def test_runs_of_equal_inputs_keep_their_values(tmp_path):
    """The stimulus leaves out points inside runs of equal values; every sample still sees its own."""
    x = np.array([[0.3], [0.3], [0.3], [0.7], [0.7], [0.1], [0.1], [0.1], [0.1], [0.9]])
    circuit = Circuit("copy", (BSource("c", "out", "0", "V", V("in_0")),), inputs=("in_0",), outputs=("out",))
    text = netlist(circuit, run=sweep_of(circuit, x, fast=False))
    assert "pwl(V(idx),0,0.3,2,0.3,3,0.7,4,0.7,5,0.1,8,0.1,9,0.9)" in text
    res = sweep(circuit, x, tmp_path, jobs=1)
    np.testing.assert_array_equal(res.outputs[:, 0], x[:, 0])  # exactly: equal ends, nothing to round


def test_two_by_two_crossbar_by_hand(tmp_path):
    """A 2-input, 2-output, 1-basis layer whose outputs are worked out by hand."""
    model = TDKAN([2, 2], ["z21"], norm="none").double().eval()
    with torch.no_grad():
        model.layers[0].coeffs.copy_(torch.tensor([[[1.0], [-0.5]], [[0.25], [2.0]]]))
        model.layers[0].bias.copy_(torch.tensor([0.1, -0.2]))
    z21 = registry()["z21"]
    v = np.array([[0.5, 0.7], [0.2, 1.2]])  # row voltages inside 0..1.25 V
    i = z21.current(v.reshape(-1)).reshape(v.shape)
    # y0 = 1*I(v0) + 0.25*I(v1) + 0.1 ;  y1 = -0.5*I(v0) + 2*I(v1) - 0.2
    expected = np.stack([i[:, 0] + 0.25 * i[:, 1] + 0.1, -0.5 * i[:, 0] + 2 * i[:, 1] - 0.2], axis=1)
    z = (torch.tensor(v) - model.in_offset) / model.in_gain
    np.testing.assert_allclose(model(z).detach().numpy(), expected, atol=1e-12)
    circuit, info = lower(model, TdkanOptions())
    assert info["layers"][0]["devices"] == 4 and info["layers"][0]["area_range"] == [1.25, 10.0]
    res = sweep(circuit, v, tmp_path, jobs=1)
    np.testing.assert_allclose(res.outputs, expected, atol=1e-6)  # ideal op-amps (gain 1e9)


@pytest.mark.parametrize("mapping", ["edge", "shared"])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_random_network_matches_torch(mapping, norm, tmp_path):
    torch.manual_seed(3)
    model = TDKAN([6, 5, 3], ["a21", "zaz21", "z15"], norm=norm).double()
    model.train()
    model(torch.randn(64, 6, dtype=torch.float64) * 1.5)  # give BatchNorm non-trivial statistics
    model.eval()
    z = torch.randn(40, 6, dtype=torch.float64) * 1.5
    ref = model(z).detach().numpy()
    x = (model.in_offset + model.in_gain * z).numpy()
    res = sweep(lower(model, TdkanOptions(mapping=mapping))[0], x, tmp_path, jobs=2, chunk=15)
    assert not res.failed
    np.testing.assert_allclose(res.outputs, ref, atol=1e-4 * np.ptp(ref))  # 1e-4 of the output range


def test_finite_opamp_gain_error_falls_as_one_over_gain(tmp_path):
    """A TIA of finite gain A leaves its virtual ground at V(out)/A: the output error is c/A.
    err * gain must stay constant within 10% over three decades (1e4..1e6; at 1e2 the
    second-order terms show), and the error at 1e6 is below 1e-3 of the output range."""
    torch.manual_seed(0)
    model = TDKAN([4, 3], ["a21"], norm="none").double().eval()
    z = torch.randn(10, 4, dtype=torch.float64)
    ref = model(z).detach().numpy()
    x = (model.in_offset + model.in_gain * z).numpy()
    gains = (1e4, 1e5, 1e6)
    errs = []
    for gain in gains:
        out = sweep(lower(model, TdkanOptions(opamp_gain=gain))[0], x, tmp_path / str(gain)).outputs
        errs.append(np.abs(out - ref).max())
    products = np.array(errs) * np.array(gains)
    np.testing.assert_allclose(products, products[0], rtol=0.1)
    assert errs[-1] < 1e-3 * np.ptp(ref)


@pytest.mark.parametrize("mapping", ["edge", "shared"])
def test_layer_by_layer_equals_whole_network(mapping, tmp_path):
    """Cutting at the ideal clippers (and, shared, at the sense TIA outputs) changes nothing."""
    torch.manual_seed(5)
    model = TDKAN([7, 6, 5, 3], ["a21", "z15"]).double()
    model.train()
    model(torch.randn(64, 7, dtype=torch.float64))
    model.eval()
    x = model.row_drive(torch.randn(30, 7, dtype=torch.float64)).numpy()
    hw = TdkanOptions(mapping=mapping)
    stages = lower_stages(model, hw)
    assert len(stages) == (3 if mapping == "edge" else 6)
    whole = sweep(lower(model, hw)[0], x, tmp_path / "whole", jobs=1).outputs
    layered = layers(stages, x, tmp_path / "layers", jobs=2, chunk=10).outputs
    np.testing.assert_allclose(layered, whole, atol=1e-6 * np.ptp(whole))  # both at 1e-6 reltol


@pytest.mark.parametrize("activation", ["a21", "relu"])
def test_mlp_layer_by_layer_equals_whole_network(activation, tmp_path):
    """A device MLP cut at its activation TIAs' outputs (ideal sources) gives the whole deck's
    outputs, and both give the torch model's; three layers, so that a middle stage is cut twice."""
    torch.manual_seed(3)
    model = DeviceMLP([9, 7, 6, 4], activation).double().eval()
    z = torch.randn(30, 9, dtype=torch.float64)
    stages = lower_mlp_stages(model, MlpOptions())
    assert len(stages) == 3 and all(s.inputs[0] == "in_0" and s.outputs[0] == "y_0" for s in stages)
    whole = sweep(lower_mlp(model, MlpOptions())[0], z.numpy(), tmp_path / "whole", jobs=1).outputs
    layered = layers(stages, z.numpy(), tmp_path / "layers", jobs=2, chunk=10).outputs
    with torch.no_grad():
        ref = model(z).numpy()
    np.testing.assert_allclose(layered, whole, atol=1e-6 * np.ptp(whole))  # both at 1e-6 reltol
    np.testing.assert_allclose(layered, ref, atol=1e-6 * np.ptp(ref))


def test_failing_sample_is_named_and_others_kept(tmp_path):
    """ngspice cannot solve ln(-1): that sample is reported, the other samples' outputs stay."""
    circuit = Circuit(
        title="one bad sample",
        elements=(BSource("b", "out", "0", "V", call("ln", V("in_0"))), Resistor("r", "out", "0", 1.0)),
        inputs=("in_0",),
        outputs=("out",),
    )
    res = sweep(circuit, np.array([[1.0], [2.0], [-1.0], [4.0]]), tmp_path, jobs=1)
    assert list(res.failed) == [2] and "sample_000002" in res.failed[2]
    np.testing.assert_allclose(res.outputs[[0, 1, 3], 0], np.log([1.0, 2.0, 4.0]), atol=1e-9)
    assert np.isnan(res.outputs[2, 0])
    assert (tmp_path / "chunk_000000.npy").is_file()  # partial results are on disk
