"""The runner's rewrites (anasim.sim.partition, and the engines' factor_devices): parts, merged
parallel devices, folded clippers, folded column pairs; and the fast path against the plain one
in ngspice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from anasim.circuit.blocks import clipper, summing, tias
from anasim.circuit.expr import Pwl, V
from anasim.circuit.ir import VCCS, VCVS, BSource, Circuit, Curve, Device, ISource, Resistor, Table
from anasim.devices import get_device
from anasim.families.tdkan.lower import lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.batch import layers, sweep
from anasim.sim.engine import get_engine, netlist
from anasim.sim.partition import (
    fold_clippers,
    fold_pairs,
    ground_devices,
    merge_parallel,
    split,
    whole,
)
from anasim.sim.tuning import factor_devices

ENGINE = get_engine("ngspice")
LINEAR = ENGINE.tuning.part_linear  # linear elements per part: no bound the small test circuits reach

CURVE = Curve("lin", "pwl(x,-1.0,0.0,0.0,0.0,1.0,2.0,2.0,2.0)", 1e-3, (-1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0))


def crossbar(couple: bool = False) -> Circuit:
    """Two clipped rows, three columns, each a device per row into a TIA (VCVS + feedback)."""
    els = [clipper(f"lim{i}", f"in_{i}", f"r{i}", (0.0, 1.0), "clip") for i in range(2)]
    for j in range(3):
        els += [Device(f"d{i}_{j}", f"r{i}", f"c{j}", "lin", 1.0 + i + j) for i in range(2)]
        els += [VCVS(f"a{j}", f"y_{j}", "0", "0", f"c{j}", 1e6), Resistor(f"f{j}", f"c{j}", f"y_{j}", 1e3)]
    if couple:  # a wire between columns 0 and 1 ties them into one piece
        els.append(Resistor("w01", "c0", "c1", 10.0))
    c = Circuit("xbar", tuple(els), (CURVE,), inputs=("in_0", "in_1"), outputs=("y_0", "y_1", "y_2"))
    return c.validate()


def test_independent_columns_become_parts_with_their_row_drivers():
    parts = split(crossbar(), 2, LINEAR, per_input=0)  # each column holds 2 devices: one column a part
    assert [p.outputs for p in parts] == [(0,), (1,), (2,)]
    for j, p in enumerate(parts):
        names = {e.name for e in p.circuit.elements}
        assert names == {"lim0", "lim1", f"d0_{j}", f"d1_{j}", f"a{j}", f"f{j}"}
        assert p.inputs == (0, 1) and p.circuit.inputs == ("in_0", "in_1")


def test_parts_fill_up_to_the_size_and_coupled_columns_stay_together():
    assert [p.outputs for p in split(crossbar(), 4, LINEAR, per_input=0)] == [(0, 1), (2,)]
    assert [p.outputs for p in split(crossbar(couple=True), 2, LINEAR, per_input=0)] == [(0, 1), (2,)]
    assert len(split(crossbar(), None, LINEAR)) == 1
    assert len(split(crossbar(), 100, LINEAR)) == 1  # small enough already
    assert [p.outputs for p in split(crossbar(), 1, LINEAR)] == [(0, 1), (2,)]  # 1 + 2 per input


def test_parallel_devices_merge_into_one_exact_table():
    a21, z21 = get_device("a21"), get_device("z21")
    curves = tuple(Curve(d.name, d.spice_current("x"), d.amps_per_unit, d.pwl_table()) for d in (a21, z21))
    devs = (
        Device("d1", "r", "c", "a21", 2.5),
        Device("d2", "r", "c", "z21", 0.75, scale=1.2),
        Device("d3", "r", "k", "z21"),
    )
    merged = merge_parallel(Circuit("p", devs, curves, groups=(("areas", ("d1", "d2", "d3")),)).validate())
    table = next(e for e in merged.elements if isinstance(e, Table))
    assert [e.name for e in merged.elements] == ["d1", "d3"] and merged.group("areas") == ("d1", "d3")
    v = np.linspace(-3, 4, 7001)  # beyond both curves' ends: flat, as ngspice's clamped tables are
    t = np.reshape(table.table, (-1, 2))
    want = 2.5 * 1e-6 * a21.current(v) + 0.75 * 1.2 * 1e-6 * z21.current(v)  # amps_per_unit 1e-6 each
    np.testing.assert_allclose(np.interp(v, t[:, 0], t[:, 1]), want, rtol=0, atol=1e-18)  # 1e-12 of 1 uA


def test_shifted_devices_are_not_merged():
    devs = (Device("d1", "r", "c", "lin"), Device("d2", "r", "c", "lin", shift=0.01))
    c = Circuit("p", devs, (CURVE,)).validate()
    assert merge_parallel(c) is c


def test_clippers_on_inputs_fold_into_the_stimulus():
    c = crossbar()
    x = np.array([[-0.5, 0.3], [1.7, 0.9]])
    part = fold_clippers(whole(c))
    folded, fx = part.circuit, part.stimulus(x)
    assert folded.inputs == ("r0", "r1") and not any(e.name.startswith("lim") for e in folded.elements)
    np.testing.assert_array_equal(fx, [[0.0, 0.3], [1.0, 0.9]])
    # an input that also drives another element keeps its clipper
    shared_input = replace(c, elements=c.elements + (Resistor("load", "in_0", "0", 1.0),))
    part = fold_clippers(whole(shared_input))
    kept, kx = part.circuit, part.stimulus(x)
    assert kept.inputs == ("in_0", "r1") and kx[0, 0] == -0.5


@pytest.mark.parametrize("mapping, gain", [("edge", 1e9), ("shared", 1e9), ("edge", 1e8)])
def test_fast_path_equals_plain_path(mapping, gain, tmp_path, monkeypatch):
    """Parts, factored and merged devices, folded clippers, inlined tables against the circuits as
    lowered, one deck each: equal to 1e-6 of the output range (both solve to reltol 1e-6). At gain
    1e8 no op-amp is ideal: nothing is folded, grounded or factored, and an edge's parallel devices
    merge into tables."""
    # factored edge columns are linear: cut them too
    monkeypatch.setattr(ENGINE, "tuning", replace(ENGINE.tuning, part_linear=200))
    torch.manual_seed(3)
    model = TDKAN([24, 12, 10], ["a21", "z21", "zaz21"]).double()
    model.train()
    model(torch.randn(128, 24, dtype=torch.float64))
    model.eval()
    x = model.row_drive(torch.randn(40, 24, dtype=torch.float64)).numpy()
    stages = lower_stages(model, TdkanOptions(mapping=mapping, opamp_gain=gain))
    plain = layers(stages, x, tmp_path / "plain", jobs=2, part_elements=None).outputs
    fast = layers(stages, x, tmp_path / "fast", jobs=2, part_elements=150)
    if mapping == "edge":
        assert len(list((tmp_path / "fast" / "layer0").glob("part*"))) > 1  # the first layer was split
        decks = "".join(d.read_text() for d in (tmp_path / "fast" / "layer0").glob("part*/*/deck.cir"))
        assert ("\nBphi_a21_" in decks) == (gain >= 1e9)  # factored, or merged tables of the devices
    assert np.isfinite(plain).all() and not fast.failed
    np.testing.assert_allclose(fast.outputs, plain, rtol=0, atol=1e-6 * np.ptp(plain))


def pair(rf_n: float = 1.2e3, **opamp) -> Circuit:
    """Two input rows, each with a device into the plus and the minus column of one output; TIAs
    with feedback Rf_p = 1 kohm and ``rf_n``, a bias current into the minus column, and the
    unity difference amplifier: y = V(an) - V(ap) = Rf_p I_p - Rf_n I_n."""
    els = [Device(f"p{i}", f"in_{i}", "cp", "lin", 1.0 + i) for i in range(2)]
    els += [Device(f"n{i}", f"in_{i}", "cn", "lin", 0.5 + i) for i in range(2)]
    els += [ISource("bias", "0", "cn", 2e-4)]
    els += [replace(a, **opamp) for a in tias("t", "cp", "cn", "ap", "an", 1e9, None)]
    els += [Resistor("fp", "cp", "ap", 1e3), Resistor("fn", "cn", "an", rf_n)]
    els += summing("d", ["ap"], ["an"], "y_0", 1e4, 1e9, None)
    return Circuit("pair", tuple(els), (CURVE,), inputs=("in_0", "in_1"), outputs=("y_0",)).validate()


def test_a_column_pair_folds_into_its_plus_column_with_the_same_output(tmp_path):
    """Linear devices (2 mA/V per unit area between 0 and 1 V): y by hand, from the folded and the
    unfolded circuit in ngspice, to 1 uV: the TIA outputs reach 4 V and 1e9-gain op-amps solve to
    about 1e-7 of that; the fold itself moves the minus devices by under 1e-8 V."""
    c = pair()
    folded = fold_pairs(c)
    moved = {e.name: e for e in folded.elements if isinstance(e, Device | ISource) and e.name[0] in "nb"}
    assert all(e.n == "cp" for e in moved.values())
    assert moved["n1"].scale == -1.2 and moved["bias"].dc == -2e-4 * 1.2  # -Rf_n / Rf_p
    x = np.array([[0.2, 0.7], [0.9, 0.1], [0.5, 0.5]])
    i_p = 2e-3 * (1.0 * x[:, 0] + 2.0 * x[:, 1])
    i_n = 2e-3 * (0.5 * x[:, 0] + 1.5 * x[:, 1]) + 2e-4
    want = 1e3 * i_p - 1.2e3 * i_n
    grounded = ground_devices(folded)
    for name, circuit in (
        ("plain", c),
        ("folded", folded),
        ("grounded", grounded),
        ("factored", factor_devices(grounded)),
    ):
        got = sweep(circuit, x, tmp_path / name, jobs=1, part_elements=None).outputs[:, 0]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "why, circuit",
    [
        ("gain below IDEAL_GAIN", lambda: pair(gain=1e8)),
        ("input offset", lambda: pair(offset=1e-3)),
        ("rails", lambda: pair(gain=1e7, rails=5.0)),
        ("a pole", lambda: pair(gbw=1e8)),
        ("a TIA output read as an output", lambda: replace(pair(), outputs=("y_0", "an"))),
        ("another element on the minus column", lambda: replace(pair(), elements=pair().elements + (Resistor("s", "cn", "0", 1e3),))),
        ("unequal sides of the difference amplifier", lambda: replace(pair(), elements=tuple(
            replace(e, value=2e4) if e.name == "d_d" and isinstance(e, Resistor) else e for e in pair().elements))),
    ],
)  # fmt: skip
def test_a_column_pair_is_left_alone_unless_its_tias_are_ideal_and_only_their_difference_is_read(why, circuit):
    c = circuit()
    assert fold_pairs(c) is c, why


def test_devices_into_ideal_tia_inputs_are_controlled_by_their_row_alone():
    c = ground_devices(pair())
    assert c.virtual_grounds == ("cp", "cn")
    text = netlist(c)
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("B")}
    assert lines["Bp0"].startswith("Bp0 in_0 cp I=") and lines["Bp0"].endswith("(V(in_0))")
    assert lines["Bn1"].endswith("(V(in_1))") and "V(in_0,cp)" not in text
    # a deck as lowered keeps both nodes
    assert "V(in_0,cp)" in netlist(pair())


def test_devices_into_virtual_grounds_factor_into_one_curve_per_row():
    """After the fold, each row drives two devices of curve 'lin' into cp: one voltage source
    per row holds I(V(row)) and each device becomes a VCCS of its gain from it. A row with one
    device of a curve keeps it, and a circuit without virtual grounds is left alone."""
    c = factor_devices(ground_devices(fold_pairs(pair())))
    sources = {e.name: e for e in c.elements if isinstance(e, BSource)}
    assert sorted(sources) == ["phi_lin_in_0", "phi_lin_in_1"]
    assert sources["phi_lin_in_1"].expr == Pwl(V("in_1"), (-1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0))
    cells = {e.name: e for e in c.elements if isinstance(e, VCCS)}
    assert sorted(cells) == ["n0", "n1", "p0", "p1"] and not any(isinstance(e, Device) for e in c.elements)
    n1 = cells["n1"]  # area 1.5, scale -Rf_n / Rf_p: its current gain * I(V(in_1)) from in_1 into cp
    assert (n1.p, n1.n, n1.cp, n1.cn) == ("in_1", "cp", "phi_lin_in_1", "0") and n1.gain == 1.5 * 1e-3 * -1.2
    alone = replace(pair(), elements=tuple(e for e in pair().elements if e.name not in ("n0", "n1")))
    assert factor_devices(ground_devices(alone)).elements == ground_devices(alone).elements
    plain = pair()
    assert factor_devices(plain) is plain  # no virtual grounds: nothing to factor
    # a user's curve name of 60 letters: its nodes still make safe netlist names
    long = "c" * 60
    renamed = replace(pair(), curves=(replace(CURVE, name=long),),
                      elements=tuple(replace(e, curve=long) if isinstance(e, Device) else e for e in pair().elements))  # fmt: skip
    c = factor_devices(ground_devices(fold_pairs(renamed))).validate()
    assert sorted(e.name for e in c.elements if isinstance(e, BSource)) == ["phi0", "phi1"]
    # a VCCS already named like a device (a hand-built circuit): that device stays a device, and so
    # does n0, now alone on its row
    clash = replace(pair(), elements=pair().elements + (VCCS("P0", "0", "cp", "in_1", "0", 1e-4),))
    c = factor_devices(ground_devices(fold_pairs(clash)))
    assert sorted(e.name for e in c.elements if isinstance(e, Device)) == ["n0", "p0"]


@pytest.mark.parametrize(
    "why, circuit",
    [
        ("gain below IDEAL_GAIN", lambda: pair(gain=1e8)),
        ("input offset", lambda: pair(offset=1e-3)),
        ("no feedback resistor", lambda: replace(pair(), elements=tuple(e for e in pair().elements if e.name not in ("fp", "fn")))),
    ],
)  # fmt: skip
def test_no_virtual_ground_without_an_ideal_fed_back_tia(why, circuit):
    assert ground_devices(circuit()).virtual_grounds == (), why


def test_linear_crossbars_are_cut_by_their_resistor_count(monkeypatch, tmp_path):
    """A device MLP layer holds few nonlinear elements and many resistors: parts are bounded by
    the engine's part_linear linear elements too (columns kept whole), and the parts give the whole deck's
    outputs (1e-6 of range, the sweeps' reltol)."""
    from anasim.families.mlp.lower import lower_stages as mlp_stages
    from anasim.families.mlp.model import DeviceMLP
    from anasim.families.mlp.options import MlpOptions
    from anasim.sim import partition

    torch.manual_seed(0)
    model = DeviceMLP([40, 12, 5], "a21").double().eval()
    stage = mlp_stages(model, MlpOptions())[0]  # 480 weight resistors, 12 activations
    tuned = ENGINE.tuning.part_elements
    assert len(split(stage, tuned, LINEAR)) == 1  # under both bounds
    monkeypatch.setattr(ENGINE, "tuning", replace(ENGINE.tuning, part_linear=150))
    parts = split(stage, tuned, 150)
    linear_per_part = [sum(not partition.weight(e) for e in p.circuit.elements) for p in parts]
    assert len(parts) >= 4 and sorted(o for p in parts for o in p.outputs) == list(range(12))
    assert max(linear_per_part) <= 150 + 60  # one column pair's piece (about 50 linear elements) may overshoot
    x = torch.randn(20, 40, dtype=torch.float64).numpy()
    cut = layers([stage], x, tmp_path / "cut", jobs=1).outputs
    monkeypatch.setattr(ENGINE, "tuning", replace(ENGINE.tuning, part_linear=10**9))
    one = layers([stage], x, tmp_path / "one", jobs=1).outputs
    np.testing.assert_allclose(cut, one, atol=1e-6 * np.ptp(one))
