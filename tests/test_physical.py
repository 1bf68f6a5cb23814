"""Physical crossbars (TD-KAN): wire resistance (``--wire-r``, rows and columns as resistor
ladders, checked against a nodal solve written from the documented layout, not from the
netlist) and a minimum device area (``--area-min``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anasim.devices import DeviceModel, embedded
from anasim.errors import AnasimError
from anasim.families.tdkan.lower import kan_layers, lower, lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.batch import layers, sweep

# a linear device: 1 uA per volt per unit area over [0, 1] V
LIN = DeviceModel("lin", "pwl", (0.0, 1.0), "a.u.", 1e-6, knots_v=(0.0, 1.0), knots_i=(0.0, 1.0))


def linear_crossbar(wire_r: float, gain: float, tile=None):
    """A [2,3] TD-KAN on the linear device, its circuit, and its hardware values."""
    with embedded({"lin": LIN}):
        torch.manual_seed(11)
        model = TDKAN([2, 3], ["lin"], norm="none").double().eval()
        with torch.no_grad():
            model.layers[0].bias.copy_(torch.tensor([0.05, -0.02, 0.0]))
        opts = TdkanOptions(opamp_gain=gain, wire_r=wire_r, tile=tile)
        return model, lower(model, opts)[0], kan_layers(model, opts)[0]


def nodal(L, u: np.ndarray, r: float, gain: float, tile=(2, 3)) -> np.ndarray:
    """Outputs y_j for row voltages ``u`` [2]: unknowns are the row node w(i, c) and column node
    k(i, c) at every crossing and each tile's TIA input t(b, c). Tiles of ``tile`` = (rows,
    outputs): each row runs from its driver through r to the first column of each column tile;
    columns 0p, 0n, 1p, ... lie along a row; column c drains through r below the last row of row
    tile b into that tile's TIA (op-amp of open-loop ``gain``, feedback Rf). The T = 2 / rows row
    tiles' TIA outputs meet in a difference amplifier of equal resistors and the same gain:
    out = gain (sum V(an) - sum V(ap)) / (T + 1 + gain)."""
    d_in, d_out = L.area.shape[:2]
    n_col, rows, outs = 2 * d_out, tile[0], tile[1]
    n_b = -(-d_in // rows)
    w = lambda i, c: i * n_col + c  # noqa: E731
    k = lambda i, c: d_in * n_col + i * n_col + c  # noqa: E731
    t = lambda b, c: 2 * d_in * n_col + b * n_col + c  # noqa: E731
    g_w, size = 1.0 / r, 2 * d_in * n_col + n_b * n_col
    G, b_ = np.zeros((size, size)), np.zeros(size)

    def conductance(a, bnode, g):  # bnode None: ground
        G[a, a] += g
        if bnode is not None:
            G[bnode, bnode] += g
            G[a, bnode] -= g
            G[bnode, a] -= g

    for i in range(d_in):
        for c in range(n_col):
            if c % (2 * outs) == 0:  # a column tile starts: the row's driver end
                conductance(w(i, c), None, g_w)
                b_[w(i, c)] += g_w * u[i]
            else:
                conductance(w(i, c - 1), w(i, c), g_w)
            last = (i + 1) % rows == 0 or i + 1 == d_in
            conductance(k(i, c), t(i // rows, c) if last else k(i + 1, c), g_w)
            j, pol = divmod(c, 2)
            pos = (L.theta[i, j, 0] > 0) == (L.s[j] >= 0)
            area = L.area[i, j, 0] if pos == (pol == 0) else 0.0
            conductance(w(i, c), k(i, c), area * 1e-6)  # the device: 1 uA/V per unit area
    for bt in range(n_b):
        for c in range(n_col):
            j = c // 2
            G[t(bt, c), t(bt, c)] += (1 + gain) / L.rf[j]  # feedback to an output at -gain * V(t)
            ib = L.c[j] / L.rf[j]  # bias current into tile 0's + column (negative: its - column)
            if bt == 0 and ((ib > 0 and c % 2 == 0) or (ib < 0 and c % 2 == 1)):
                b_[t(bt, c),] += abs(ib)
    v = np.linalg.solve(G, b_)
    tia = -gain * v[2 * d_in * n_col :].reshape(n_b, n_col).sum(axis=0)  # [0p, 0n, 1p, ...] summed over row tiles
    return (tia[1::2] - tia[0::2]) * gain / (n_b + 1 + gain)


@pytest.mark.parametrize("wire_r, tile", [(1.0, None), (1e3, None), (1e3, (1, 2)), (1e3, (1, 4)), (10.0, (2, 2))])
def test_wire_resistance_matches_a_nodal_solve(wire_r, tile, tmp_path):
    # op-amp gain 1e3, modelled exactly on both sides: at 1e9 the solve itself loses 9 digits.
    # Tiles (1, 2): two row tiles, three column tiles of one output; (1, 4): two outputs per tile
    _, circuit, L = linear_crossbar(wire_r, gain=1e3, tile=tile)
    x = np.array([[0.3, 0.9], [1.0, 0.25], [0.6, 0.6]])
    out = sweep(circuit, x, tmp_path, jobs=1).outputs
    shape = (2, 3) if tile is None else (min(tile[0], 2), tile[1] // 2)
    want = np.array([nodal(L, row, wire_r, 1e3, shape) for row in x])
    ideal = np.array([nodal(L, row, 1e-9, 1e3, shape) for row in x])
    assert np.abs(want - ideal).max() > 1e-6 * np.abs(ideal).max()  # the wires matter, 1000x the tolerance
    np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_tiles_change_what_the_wires_do():
    # the same crossbar and wires in one tile and in tiles of one row: shorter lines, other outputs
    x = np.array([0.3, 0.9])
    L = linear_crossbar(1e3, 1e3)[2]
    one, tiled = nodal(L, x, 1e3, 1e3), nodal(L, x, 1e3, 1e3, (1, 1))
    assert np.abs(one - tiled).max() > 1e-4 * np.abs(one).max()


@pytest.mark.parametrize("tile", [(4, 4), (3, 2), (16, 6)])
@pytest.mark.parametrize("bases", [["lin"], ["a21", "z21"]])
def test_tiles_with_ideal_wires_equal_one_crossbar(tile, bases, tmp_path):
    # [10, 6, 3], ideal op-amps (gain 1e9), one crossbar against tiles, whole circuit and stage
    # by stage, to 1e-6 of the range. Not 1e-9: a circuit whose op-amps have gain 1e9 is solved
    # to about 1e-7 of its range (one crossbar run whole and stage by stage differs by 1.4e-7,
    # linear devices too). The tiles' finite-gain difference, (T - 1) / 1e9 of an output for T
    # row tiles, is below that. The tiles' exact check is the nodal solve above (gain 1e3, 1e-9).
    with embedded({"lin": LIN}):
        torch.manual_seed(5)
        model = TDKAN([10, 6, 3], bases).double()
        model.train()
        model(torch.randn(64, 10, dtype=torch.float64))
        model.eval()
        x = model.row_drive(torch.randn(12, 10, dtype=torch.float64)).numpy()
        runs = {}
        for name, t in (("one", None), ("tiled", tile)):
            opts = TdkanOptions(tile=t)
            runs[name, "stages"] = layers(lower_stages(model, opts), x, tmp_path / name / "s", jobs=1).outputs
            runs[name, "whole"] = sweep(lower(model, opts)[0], x, tmp_path / name / "w", jobs=1).outputs
        tiled = lower(model, TdkanOptions(tile=tile))[0]
    ref = runs["one", "whole"]
    for key, out in runs.items():
        assert np.abs(out - ref).max() <= 1e-6 * np.ptp(ref), key
    amps = [
        e
        for e in tiled.elements
        if type(e).__name__ == "OpAmp" and e.name.startswith("tia0_") and e.name.endswith("_d")
    ]
    assert len(amps) == 6  # one difference amplifier per output of layer 0, whatever the tiles
    assert any("_t1_" in e.name for e in tiled.elements) == (tile[0] < 10)  # row tiles: their own TIAs


def test_rails_never_reached_change_nothing(tmp_path):
    # rails at ten times the largest output (op-amp gain 1e6): the same outputs to 1e-6 of the range
    torch.manual_seed(5)
    model = TDKAN([10, 6, 3], ["a21", "z21"]).double()
    model.train()
    model(torch.randn(64, 10, dtype=torch.float64))
    model.eval()
    x = model.row_drive(torch.randn(20, 10, dtype=torch.float64)).numpy()
    free = layers(lower_stages(model, TdkanOptions(opamp_gain=1e6)), x, tmp_path / "free", jobs=1).outputs
    railed = TdkanOptions(opamp_gain=1e6, rails=10 * float(np.abs(free).max()) + 10)
    out = layers(lower_stages(model, railed), x, tmp_path / "rails", jobs=1).outputs
    assert np.isfinite(out).all() and np.abs(out - free).max() <= 1e-6 * np.ptp(free)


def test_rails_limit_every_op_amp_output(tmp_path):
    # linear devices, rails at 40% of the largest output: no output beyond the rails, and the
    # saturation shows (outputs differ from the free circuit by more than 1% of its range)
    _, free_circuit, _ = linear_crossbar(0.0, 1e6)
    x = np.array([[0.3, 0.9], [1.0, 0.25], [0.6, 0.6], [1.0, 1.0]])
    free = sweep(free_circuit, x, tmp_path / "free", jobs=1).outputs
    rails = 0.4 * float(np.abs(free).max())
    with embedded({"lin": LIN}):
        model = linear_crossbar(0.0, 1e6)[0]
        circuit = lower(model, TdkanOptions(opamp_gain=1e6, rails=rails))[0]
    out = sweep(circuit, x, tmp_path / "rails", jobs=1).outputs
    assert np.isfinite(out).all() and np.abs(out).max() <= rails
    assert np.abs(out - free).max() > 0.01 * np.ptp(free)


@pytest.mark.parametrize(
    "opts, needle",
    [
        (TdkanOptions(wire_r=-1.0), "finite resistance >= 0"),
        (TdkanOptions(wire_r=float("nan")), "finite resistance >= 0"),
        (TdkanOptions(wire_r=1.0, mapping="shared"), "--wire-r needs the edge mapping"),
        (TdkanOptions(tile=(0, 4)), "at least 1 row and 2 column lines"),
        (TdkanOptions(tile=(4, 1)), "at least 1 row and 2 column lines"),
        (TdkanOptions(tile=(16, 3)), "an even number of them"),
        (TdkanOptions(crossbar="resistor"), "--crossbar resistor applies to the shared mapping only"),
        (TdkanOptions(opamp_gain=float("inf")), "--opamp-gain inf: give a finite number > 0"),
        (TdkanOptions(area_max=-1.0), "--area-max -1.0: give a finite number > 0"),
        (TdkanOptions(tile=(4, 4), mapping="shared"), "--tile needs the edge mapping"),
        (TdkanOptions(rails=0.0, opamp_gain=1e6), "--rails 0.0"),
        (TdkanOptions(rails=5.0), "--rails needs a finite op-amp gain: give --opamp-gain 1e\\+07 or less"),
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


def test_each_row_tile_gets_the_shunts_of_its_own_rows():
    # with op-amp poles, a column's stabilizing shunt is 1.5x the worst negative conductance of the
    # NDR devices on it: in a tile of rows 6..9 of 10, those four rows' devices only (1e-12 relative)
    from anasim.families.tdkan.physical import negative_conductance

    torch.manual_seed(5)
    model = TDKAN([10, 3], ["a21", "z21"], norm="none").double().eval()
    opts = TdkanOptions(tile=(6, 6), gbw=1e8)
    L = kan_layers(model, opts)[0]
    shunts = {e.name: e.value for e in lower(model, opts)[0].elements if e.name.startswith("shunt_")}
    for b, rows in enumerate((slice(0, 6), slice(6, 10))):
        g = negative_conductance(L, opts, rows)  # [out, (+, -)]
        for j in range(3):
            for pol, gj in zip("pn", g[j]):
                if gj > 0:
                    np.testing.assert_allclose(shunts[f"shunt_l0_t{b}_c{j}{pol}"], 1 / (1.5 * gj), rtol=1e-12)
