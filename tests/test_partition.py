"""The runner's exact rewrites (anasim.circuit.partition): parts, merged parallel devices, folded
clippers; and the fast path against the plain one in ngspice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from anasim.circuit.blocks import clipper
from anasim.circuit.ir import VCVS, Circuit, Curve, Device, Resistor, Table
from anasim.circuit.partition import fold_clippers, merge_parallel, split, whole
from anasim.devices import get_device
from anasim.families.tdkan.lower import lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim.batch import layers

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
    parts = split(crossbar(), max_elements=2, per_input=0)  # each column holds 2 devices: one column a part
    assert [p.outputs for p in parts] == [(0,), (1,), (2,)]
    for j, p in enumerate(parts):
        names = {e.name for e in p.circuit.elements}
        assert names == {"lim0", "lim1", f"d0_{j}", f"d1_{j}", f"a{j}", f"f{j}"}
        assert p.inputs == (0, 1) and p.circuit.inputs == ("in_0", "in_1")


def test_parts_fill_up_to_the_size_and_coupled_columns_stay_together():
    assert [p.outputs for p in split(crossbar(), max_elements=4, per_input=0)] == [(0, 1), (2,)]
    assert [p.outputs for p in split(crossbar(couple=True), max_elements=2, per_input=0)] == [(0, 1), (2,)]
    assert len(split(crossbar(), max_elements=None)) == 1
    assert len(split(crossbar(), max_elements=100)) == 1  # small enough already
    assert [p.outputs for p in split(crossbar(), max_elements=1)] == [(0, 1), (2,)]  # 1 + 2 per input


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


@pytest.mark.parametrize("mapping", ["edge", "shared"])
def test_fast_path_equals_plain_path(mapping, tmp_path):
    """Parts, merged devices, folded clippers, inlined tables against the circuits as lowered, one
    deck each: equal to 1e-6 of the output range (both solve to reltol 1e-6)."""
    torch.manual_seed(3)
    model = TDKAN([24, 12, 10], ["a21", "z21", "zaz21"]).double()
    model.train()
    model(torch.randn(128, 24, dtype=torch.float64))
    model.eval()
    x = model.row_drive(torch.randn(40, 24, dtype=torch.float64)).numpy()
    stages = lower_stages(model, TdkanOptions(mapping=mapping))
    plain = layers(stages, x, tmp_path / "plain", jobs=2, part_elements=None).outputs
    fast = layers(stages, x, tmp_path / "fast", jobs=2, part_elements=150)
    if mapping == "edge":
        assert len(list((tmp_path / "fast" / "layer0").glob("part*"))) > 1  # the first layer was split
    assert np.isfinite(plain).all() and not fast.failed
    np.testing.assert_allclose(fast.outputs, plain, rtol=0, atol=1e-6 * np.ptp(plain))
