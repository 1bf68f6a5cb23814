"""What every engine's tuning shares: sweep tolerances, the devices' factored rewrite, the switch lag.

Where it sits: each engine's ``tuning`` module (``anasim/sim/<engine>/tuning.py``) builds its
:class:`~anasim.sim.run.Tuning` from these and its own part sizes, so that no engine package
imports another. The batched runner (:mod:`anasim.sim.batch`) sweeps samples with ``SWEEP`` (its
rewritten circuits with ``FAST_SWEEP``) and applies :func:`factor_devices` after grounding ideal TIA
inputs; KirchhoffNet's standalone deck switches its layers ``SWITCH_LAG`` after each boundary.
Measured on ngspice (39, Sparse 1.3, unless said otherwise); VACASK gives the same outputs with
them to well within the comparator's 1e-3 of the range, and agrees with ngspice to 1e-6 of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ..circuit.expr import Pwl, V
from ..circuit.ir import VCCS, BSource, Circuit, Device, OpAmp, nodes_of
from ..circuit.stimulus import Tolerances
from .partition import flat_ends

# The DC sweeps' tolerances: 1e-6 relative keeps outputs well inside the comparator's 1e-3 of range.
SWEEP = Tolerances(reltol=1e-6, vntol=1e-9, abstol=1e-15)
# The runner's rewritten decks (anasim.sim.partition): a folded column pair's tables carry
# plus minus scaled minus currents, which pass through 0 A where a device's convergence test
# falls back on abstol alone. At 1e-15 A that cost a fourth Newton iteration on most samples of
# the digits edge mapping (27 against 21 per sample over its 7 decks), at 1e-13 A it does not;
# the outputs were the same to 1e-9 of their range (benchmarks/speed.py, tests/test_partition.py).
FAST_SWEEP = replace(SWEEP, abstol=1e-13)
# KirchhoffNet's standalone deck (anasim.families.kirchhoff.deck) switches its layers' branches
# SWITCH_LAG * T after each boundary, so that the time point ngspice puts on the breakpoint (to
# the last bits of a float) still belongs to the layer that ends there; the next step, ngspice's
# first after a breakpoint, is backward Euler and sees the next layer only. A lag adds an error of
# about its own size: 1e-3 measured 6e-4 of the range, 1e-9 and 0 about 1e-7 (0 relies on the
# comparison at the breakpoint itself). Without the breakpoints: 2.5e-5 of the range from
# simulate on a ReLU net of 7/5/9 nodes, 7x the error on the 3-layer test net.
SWITCH_LAG = 1e-9


def factor_devices(circuit: Circuit) -> Circuit:
    """Devices into virtual grounds as one curve per (row, curve) and a VCCS per device. A device
    into a virtual ground carries gain * I(V(row)) (:func:`~anasim.sim.partition.ground_devices`), and every device of
    the same curve on the same row evaluates the same I(V(row)): one voltage source per (row,
    curve) holds it, ``phi_<curve>_<row>`` (``phi<k>`` past 64 characters) = I(V(row)) in the
    curve's units, and each device becomes a linear VCCS of its gain (area * amps_per_unit *
    scale) from that node. The same currents up to rounding (gain * pwl(y) for pwl(gain * y));
    ngspice evaluates K tables per row instead of one per edge, and a Monte Carlo realization's
    draws only change linear gains."""
    grounds = set(circuit.virtual_grounds)
    curves = {c.name: c for c in circuit.curves if c.table and flat_ends(c.table)}
    if not grounds or not curves:
        return circuit

    # a device's VCCS is written G<name>: not where a VCCS of that name (or an op-amp's) is already
    # written (ngspice reads names without case)
    g_cards = {e.name.lower() for e in circuit.elements if isinstance(e, VCCS)}
    g_cards |= {f"{e.name}_gm".lower() for e in circuit.elements if isinstance(e, OpAmp)}

    def factored(e) -> bool:
        return (
            isinstance(e, Device)
            and e.n in grounds
            and e.shift == 0
            and e.curve in curves
            and e.name.lower() not in g_cards
        )

    # a (row, curve) of one device (an MLP's activations, a shared mapping's sense devices) stays a device
    shared = {key for key, n in Counter((e.p, e.curve) for e in circuit.elements if factored(e)).items() if n > 1}
    taken = {n for e in circuit.elements for n in (e.name, *nodes_of(e))}
    sense: dict[tuple[str, str], BSource] = {}
    elements = []
    for e in circuit.elements:
        if not (factored(e) and (e.p, e.curve) in shared):
            elements.append(e)
            continue
        if (e.p, e.curve) not in sense:
            node = f"phi_{e.curve}_{e.p}"
            if len(node) > 64 or node in taken:  # long user curve names: a plain numbered node
                node = next(f"phi{k}" for k in range(len(sense), 10**9) if f"phi{k}" not in taken)
            taken.add(node)
            sense[(e.p, e.curve)] = BSource(node, node, "0", "V", Pwl(V(e.p), tuple(curves[e.curve].table)))
        node = sense[(e.p, e.curve)].name
        elements.append(VCCS(e.name, e.p, e.n, node, "0", e.area * curves[e.curve].amps_per_unit * e.scale))
    if not sense:
        return circuit
    return replace(circuit, elements=(*sense.values(), *elements))
