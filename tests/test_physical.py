"""Physical crossbars (TD-KAN): wire resistance (``--wire-r``, rows and columns as resistor
ladders, checked against a nodal solve written from the documented layout, not from the
netlist) and a minimum device area (``--area-min``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anasim.devices import DeviceModel, embedded
from anasim.errors import AnasimError
from anasim.families.tdkan.lower import kan_layers, lower
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.batch import sweep

# a linear device: 1 uA per volt per unit area over [0, 1] V
LIN = DeviceModel("lin", "pwl", (0.0, 1.0), "a.u.", 1e-6, knots_v=(0.0, 1.0), knots_i=(0.0, 1.0))


def linear_crossbar(wire_r: float, gain: float):
    """A [2,3] TD-KAN on the linear device, its circuit, and its hardware values."""
    with embedded({"lin": LIN}):
        torch.manual_seed(11)
        model = TDKAN([2, 3], ["lin"], norm="none").double().eval()
        with torch.no_grad():
            model.layers[0].bias.copy_(torch.tensor([0.05, -0.02, 0.0]))
        opts = TdkanOptions(opamp_gain=gain, wire_r=wire_r)
        return model, lower(model, opts)[0], kan_layers(model, opts)[0]


def nodal(L, u: np.ndarray, r: float, gain: float) -> np.ndarray:
    """Outputs y_j for row voltages ``u`` [2]: unknowns are the row node w(i, c) and column node
    k(i, c) at every crossing and each TIA's input t(c). Drivers feed each row through r at
    column 0; columns 0p, 0n, 1p, ... lie along a row; column c drains through r below the last
    row into its TIA (op-amp of open-loop ``gain``, feedback Rf), then out = V(an) - V(ap) through
    a difference amplifier of four equal resistors and the same gain."""
    d_in, d_out = L.area.shape[:2]
    n_col = 2 * d_out
    w = lambda i, c: i * n_col + c  # noqa: E731
    k = lambda i, c: d_in * n_col + i * n_col + c  # noqa: E731
    t = lambda c: 2 * d_in * n_col + c  # noqa: E731
    g_w, size = 1.0 / r, 2 * d_in * n_col + n_col
    G, b = np.zeros((size, size)), np.zeros(size)

    def conductance(a, bnode, g):  # bnode None: ground
        G[a, a] += g
        if bnode is not None:
            G[bnode, bnode] += g
            G[a, bnode] -= g
            G[bnode, a] -= g

    for i in range(d_in):
        conductance(w(i, 0), None, g_w)
        b[w(i, 0)] += g_w * u[i]  # the driver at the row's start
        for c in range(1, n_col):
            conductance(w(i, c - 1), w(i, c), g_w)
        for c in range(n_col):
            conductance(k(i, c), k(i + 1, c) if i + 1 < d_in else t(c), g_w)
            j, pol = divmod(c, 2)
            pos = (L.theta[i, j, 0] > 0) == (L.s[j] >= 0)
            area = L.area[i, j, 0] if pos == (pol == 0) else 0.0
            conductance(w(i, c), k(i, c), area * 1e-6)  # the device: 1 uA/V per unit area
    for c in range(n_col):
        j = c // 2
        G[t(c), t(c)] += (1 + gain) / L.rf[j]  # feedback to an output at -gain * V(t)
        ib = L.c[j] / L.rf[j]  # bias current into the + column (negative: into the - column)
        if (ib > 0 and c % 2 == 0) or (ib < 0 and c % 2 == 1):
            b[t(c)] += abs(ib)
    v = np.linalg.solve(G, b)
    tia = -gain * v[2 * d_in * n_col :]  # [0p, 0n, 1p, ...]
    return (tia[1::2] - tia[0::2]) * gain / (2 + gain)


@pytest.mark.parametrize("wire_r", [1.0, 1e3])
def test_wire_resistance_matches_a_nodal_solve(wire_r, tmp_path):
    # op-amp gain 1e3, modelled exactly on both sides: at 1e9 the solve itself loses 9 digits
    _, circuit, L = linear_crossbar(wire_r, gain=1e3)
    x = np.array([[0.3, 0.9], [1.0, 0.25], [0.6, 0.6]])
    out = sweep(circuit, x, tmp_path, jobs=1).outputs
    want = np.array([nodal(L, row, wire_r, 1e3) for row in x])
    ideal = np.array([nodal(L, row, 1e-9, 1e3) for row in x])
    assert np.abs(want - ideal).max() > 1e-6 * np.abs(ideal).max()  # the wires matter, 1000x the tolerance
    np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_zero_wire_resistance_is_the_ideal_crossbar():
    ideal = lower(linear_crossbar(0.0, 1e9)[0], TdkanOptions())[0]
    assert not any(e.name.startswith(("wr", "wc")) for e in ideal.elements)
    assert ideal.group("wires") == ()


@pytest.mark.parametrize(
    "opts, needle",
    [
        (TdkanOptions(wire_r=-1.0), "finite resistance >= 0"),
        (TdkanOptions(wire_r=float("nan")), "finite resistance >= 0"),
        (TdkanOptions(wire_r=1.0, mapping="shared"), "--wire-r needs the edge mapping"),
    ],
)
def test_bad_wire_resistance_is_refused(opts, needle):
    with pytest.raises(AnasimError, match=needle):
        opts.check()


def test_area_min_drops_or_rounds_up_small_devices():
    torch.manual_seed(4)
    model = TDKAN([6, 5, 3], ["a21", "z21"]).double().eval()
    base, cut = kan_layers(model, TdkanOptions()), kan_layers(model, TdkanOptions(area_min=1.0))
    for a, b in zip(base, cut):
        small = (a.area > 0) & (a.area < 1.0)
        assert small.any() and (a.area[small] >= 0.5).any() and (a.area[small] < 0.5).any()
        np.testing.assert_array_equal(b.area[~small], a.area[~small])  # the rest untouched
        np.testing.assert_array_equal(b.area[small], np.where(a.area[small] >= 0.5, 1.0, 0.0))


@pytest.mark.parametrize("area_min", [-0.1, 11.0, float("inf")])
def test_bad_area_min_is_refused(area_min):
    with pytest.raises(AnasimError, match="--area-min"):
        TdkanOptions(area_min=area_min).check()
