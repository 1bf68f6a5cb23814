"""Rewrites the batched runner applies before the engine runs a circuit: differential column
pairs folded into one column, ideal virtual grounds taken as 0 V where they control a device
(then the engine's own rewrite, :attr:`anasim.sim.run.Tuning.rewrite`), devices in parallel
merged, a circuit split into independent parts, input clippers folded into the stimulus. All
exact but the first two, which are exact up to the op-amps' 1/gain.

Sits between lowering (and Monte Carlo, which perturbs the whole circuit first, so its draws do
not depend on the partition) and the batched runner. Parts share only *held* nodes: ground, the
inputs (the stimulus drives them) and the outputs of ideal voltage sources to ground whose
controls are all held (a TD-KAN layer's clipped rows). No load changes a held node, so cutting
there is exact: each part is the same set of equations for its own outputs, and only Newton's
convergence, judged per run, differs in the last digits. Every other node ties its elements
together; the connected components are the independent pieces (one per column of a crossbar).

Devices in parallel (a TD-KAN edge's K bases into the same column) sum to one pwl current on
the union of their knots, so :func:`merge_parallel` gives ngspice one table to evaluate for them.
A clipper fed straight by an input gives the same row voltages whether ngspice or numpy clips
the stimulus, so :func:`fold_clippers` drives the rows directly: one nonlinear link fewer
between the sweep index and the devices, one Newton iteration fewer per sample.

A differential column pair whose two TIAs are ideal (equal gain of at least
:data:`IDEAL_GAIN`, no offset, rails or pole) and whose outputs only a balanced difference
amplifier reads computes Rf_p I_p - Rf_n I_n. :func:`fold_pairs` moves the devices of the
minus column onto the plus column with their currents scaled by -Rf_n / Rf_p: the difference
is the same and the minus TIA idles at 0 V. Each device then sees V(cp) in place of V(cn);
both are virtual grounds within |V(out)| / gain (1e-8 V at gain 1e9), which is all that
changes. The plus and minus devices of an edge then share their two nodes and merge into one
table: about half the tables (22,166 to 12,740 on the digits edge mapping [196,64,10]).
:func:`ground_devices` then lets every device into an ideal TIA's input see V(row) - 0 V for
V(row) - V(col), the same approximation: one derivative and two Jacobian entries per device.
Such devices on one row all evaluate their curves at V(row): ngspice's tuning
(:func:`anasim.sim.tuning.factor_devices`) evaluates each (row, curve) once, into a
voltage node, and makes every device a linear VCCS of its gain from it (the edge mapping
becomes the shared mapping's structure, exactly: currents equal up to rounding). ngspice then
evaluates K tables per row instead of one per edge, and a Monte Carlo realization's per-device
draws change only linear gains (Fashion-MNIST [784,256,10] edge, 1,000 images on 2 cores: 180
against 518 s, benchmarks/speed.py --against; a digits Monte Carlo realization 0.275 against
0.490 s; outputs moved by 6.6e-14 of their range).

Why parts: ngspice 39 loads a B-source in about 0.15 us when a deck holds 2,500 of them and in
about 1 us when it holds 40,000 (measured on the digits edge mapping), and one unconverged
output re-evaluates every device of its deck. Decks of about 2,000 nonlinear elements were
fastest: the part sizes are the engine's tuning (:class:`anasim.sim.run.Tuning`), passed to
:func:`split`. ``benchmarks/speed.py`` measures all of it against the plain path.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..circuit.expr import nodes
from ..circuit.ir import (
    VCVS,
    Branch,
    BSource,
    Circuit,
    Clipper,
    Device,
    ISource,
    OpAmp,
    Resistor,
    Table,
    VSource,
    nodes_of,
)

# The smallest op-amp gain at which fold_pairs takes two TIA inputs for one node and
# ground_devices takes a TIA input for 0 V: at 1e9 they are within 1e-8 V of it for 10 V
# outputs, a current change of 1e-7 of a device's own at 0.1 V.
IDEAL_GAIN = 1e9


@dataclass(frozen=True)
class Part:
    circuit: Circuit
    inputs: tuple[int, ...]  # positions of its inputs among the whole circuit's inputs
    outputs: tuple[int, ...]  # positions of its outputs among the whole circuit's outputs
    clippers: tuple[tuple[int, Clipper], ...] = ()  # (position among its inputs, clipper) folded in

    def stimulus(self, x: np.ndarray) -> np.ndarray:
        """Its inputs [N, part inputs] from the whole circuit's ``x`` [N, inputs], clipped where
        :func:`fold_clippers` took a clipper out of the circuit."""
        xin = np.array(x[:, list(self.inputs)], dtype=float)
        # plain clips in one call (a digits layer's 64 columns: 0.8 ms a Monte Carlo realization
        # one by one), the same numbers: np.clip takes its bounds per column
        plain = [(i, c) for i, c in self.clippers if c.plain]
        if len({i for i, _ in self.clippers}) < len(self.clippers):  # a column clipped twice: in turn
            plain = []
        if plain:
            cols = [i for i, _ in plain]
            lo, hi = (np.array([c.v_range[j] for _, c in plain]) for j in (0, 1))
            xin[:, cols] = np.clip(xin[:, cols], lo, hi)
        for i, clip in self.clippers:
            if not (plain and clip.plain):
                xin[:, i] = clip.apply(xin[:, i])
        return xin


def _drive(e) -> tuple[str, set[str]] | None:
    """(node, control nodes) of an ideal voltage source to ground, else None."""
    if isinstance(e, VSource) and e.n == "0":
        return e.p, set()
    if isinstance(e, BSource) and e.kind == "V" and e.n == "0":
        return e.p, nodes(e.expr)
    if isinstance(e, OpAmp):  # an ideal op-amp output follows its inputs whatever the load
        return e.out, {e.inp, e.inn}
    if isinstance(e, VCVS) and e.n == "0":
        return e.p, {e.cp, e.cn}
    return None


def held_nodes(circuit: Circuit) -> set[str]:
    """Ground, the inputs, and (to a fixed point) ideal-source outputs whose controls are held."""
    held, drives = {"0", *circuit.inputs}, [d for d in map(_drive, circuit.elements) if d]
    grew = True
    while grew:
        new = {node for node, controls in drives if node not in held and controls <= held}
        held |= new
        grew = bool(new)
    return held


def _nodes(e) -> set[str]:
    if isinstance(e, BSource):  # a Clipper too
        return {e.p, e.n} | nodes(e.expr)
    return set(nodes_of(e))


def weight(e) -> int:
    """What an element costs a SPICE engine per iteration: nonlinear elements count, linear ones hardly."""
    return 1 if isinstance(e, Device | Table | Branch | BSource) else 0


def whole(circuit: Circuit) -> Part:
    """The circuit as its only part."""
    return Part(circuit, tuple(range(len(circuit.inputs))), tuple(range(len(circuit.outputs))))


def split(circuit: Circuit, max_elements: int | None, max_linear: int, per_input: int = 2) -> list[Part]:
    """``circuit`` as parts of at most about ``max_elements`` nonlinear elements plus ``per_input``
    and ``max_linear`` linear ones (a piece larger than that is one part), outputs in order; one
    part when it cannot be cut or ``max_elements`` is None. The sizes are an engine's
    (:attr:`anasim.sim.run.Tuning.part_elements` and ``part_linear``)."""
    weights = np.array([weight(e) for e in circuit.elements], dtype=int)
    if max_elements:
        max_elements += per_input * len(circuit.inputs)
    linear = int(len(weights) - weights.sum())
    if not max_elements or circuit.includes or (weights.sum() <= max_elements and linear <= max_linear):
        return [whole(circuit)]
    held = held_nodes(circuit)
    nodes = [_nodes(e) for e in circuit.elements]
    index: dict[str, int] = {}
    pairs = [(k, index.setdefault(n, len(index))) for k, ns in enumerate(nodes) for n in ns if n not in held]
    n_el = len(circuit.elements)
    # graph of elements and free nodes (node j is vertex n_el + j): its components are the pieces
    el, nd = np.array(pairs, dtype=int).reshape(-1, 2).T
    graph = coo_matrix((np.ones(len(el)), (el, n_el + nd)), shape=(n_el + len(index),) * 2)
    piece = connected_components(graph, directed=False)[1]
    of_element, free = piece[:n_el], np.bincount(el, minlength=n_el) > 0
    # each output's piece, in output order; an output on a held node has no piece of its own
    if any(o not in index for o in circuit.outputs):
        return [whole(circuit)]
    pieces = list(dict.fromkeys(int(piece[n_el + index[o]]) for o in circuit.outputs))
    size = np.bincount(of_element, weights=weights, minlength=len(piece))
    size_linear = np.bincount(of_element, weights=1 - weights, minlength=len(piece))
    groups, current, total, total_linear = [], [], 0, 0
    for c in pieces:
        if current and (total + size[c] > max_elements or total_linear + size_linear[c] > max_linear):
            groups.append(current)
            current, total, total_linear = [], 0, 0
        current.append(c)
        total += size[c]
        total_linear += size_linear[c]
    groups.append(current)
    if len(groups) == 1:
        return [whole(circuit)]
    # Elements tying free nodes of no output's piece (none in anasim's circuits) stay with the
    # first part. Elements on held nodes only reach a part as the driver of a node it needs.
    groups[0] += sorted(set(of_element[free].tolist()) - set(pieces))
    drivers = {d[0]: k for k, e in enumerate(circuit.elements) if (d := _drive(e))}
    out_piece = [int(piece[n_el + index[o]]) for o in circuit.outputs]
    parts = []
    for p, g in enumerate(groups):
        keep = set(np.nonzero(np.isin(of_element, g))[0].tolist())
        need = {n for k in keep for n in nodes[k] if n in held}
        todo = list(need)
        while todo:  # a held node driven by a source outside the part: take it (and its controls)
            k = drivers.get(todo.pop())
            if k is not None and k not in keep:
                keep.add(k)
                todo += list(nodes[k] - need)
                need |= nodes[k]
        outputs = tuple(j for j, c in enumerate(out_piece) if c in g)
        parts.append(_part(circuit, sorted(keep), need, outputs, f"part {p + 1} of {len(groups)}"))
    return parts


def _part(circuit: Circuit, keep: list[int], need: set[str], outputs: tuple[int, ...], label: str) -> Part:
    """The elements ``keep`` in their original order, the inputs they ``need``, ``outputs``."""
    elements = tuple(circuit.elements[k] for k in keep)
    names = {e.name for e in elements}
    inputs = tuple(i for i, node in enumerate(circuit.inputs) if node in need)
    sub = replace(
        circuit,
        title=f"{circuit.title}, {label}",
        elements=elements,
        inputs=tuple(circuit.inputs[i] for i in inputs),
        outputs=tuple(circuit.outputs[j] for j in outputs),
        groups=tuple((g, tuple(m for m in members if m in names)) for g, members in circuit.groups),
    )
    return Part(sub, inputs, outputs)


def ideal(a: OpAmp | None) -> bool:
    """An op-amp whose inputs sit within |V(out)| / gain of each other: gain >= IDEAL_GAIN, no
    offset, rails or pole."""
    return a is not None and a.offset == 0 and a.rails is None and a.gbw is None and a.gain >= IDEAL_GAIN


def ground_devices(circuit: Circuit) -> Circuit:
    """``circuit`` with the inputs of its ideal TIAs (+ input at ground, a feedback resistor from
    - input to output) as :attr:`~anasim.circuit.ir.Circuit.virtual_grounds`: a device into one
    is then controlled by its row voltage alone, V(p) for V(p, n), which differs by |V(out)| /
    gain (1e-8 V at gain 1e9). ngspice then evaluates one derivative per device where it
    evaluated two and stamps two Jacobian entries where it stamped four: 1.7x less CPU per deck
    (2.5x per run) on the digits edge mapping, 1.4x per deck on Fashion-MNIST's, outputs within
    4e-9 of their range."""
    fed = {frozenset((e.p, e.n)) for e in circuit.elements if isinstance(e, Resistor)}
    grounds = [
        e.inn
        for e in circuit.elements
        if isinstance(e, OpAmp) and e.inp == "0" and ideal(e) and frozenset((e.inn, e.out)) in fed
    ]
    return replace(circuit, virtual_grounds=tuple(dict.fromkeys(grounds))) if grounds else circuit


def fold_pairs(circuit: Circuit) -> Circuit:
    """``circuit`` with each differential column pair folded into its plus column (see the module
    docstring): the devices and bias current of the minus column move to the plus column, scaled
    by -Rf_n / Rf_p. A pair is folded only when all of this holds, else left as it is: both TIAs
    are :class:`OpAmp` s with + input at ground, equal gain >= IDEAL_GAIN and no offset,
    rails or pole; each output feeds only its feedback resistor and one input resistor of the
    same difference amplifier, whose gains for the two sides are equal (b / a == d / c); neither
    output is a circuit output; the minus column holds only devices into it, a bias source into
    it, its feedback resistor and its TIA."""
    els = list(circuit.elements)
    if not any(isinstance(e, OpAmp) and e.inp == "0" and ideal(e) for e in els):
        return circuit  # no ideal TIA, no pair to fold (a Monte Carlo realization with op-amp offsets)
    users = defaultdict(list)  # node -> indices of the elements on it
    for k, e in enumerate(els):
        for n in _nodes(e):
            users[n].append(k)
    tia = {e.out: e for e in els if isinstance(e, OpAmp) and e.inp == "0"}  # output node -> TIA

    def resistor(k: int, a: str, b: str) -> float | None:
        e = els[k]
        return e.value if isinstance(e, Resistor) and {e.p, e.n} == {a, b} else None

    folded = False
    for amp in els:
        if not isinstance(amp, OpAmp) or amp.inp == "0":
            continue  # difference amplifiers: - input m (a from ap, b to out), + input q (c from an, d to 0)
        m, q = [[k for k in users[node] if els[k] is not amp] for node in (amp.inn, amp.inp)]
        if len(m) != 2 or len(q) != 2:
            continue
        b = next((k for k in m if resistor(k, amp.inn, amp.out)), None)
        d = next((k for k in q if resistor(k, amp.inp, "0")), None)
        if b is None or d is None:
            continue
        a, c = (next(k for k in side if k != other) for side, other in ((m, b), (q, d)))
        ap, an = (next((n for n in (els[k].p, els[k].n) if n != node), None) if isinstance(els[k], Resistor) else None
                  for k, node in ((a, amp.inn), (c, amp.inp)))  # fmt: skip
        tp, tn = tia.get(ap), tia.get(an)
        if not (ideal(tp) and ideal(tn) and tp.gain == tn.gain) or {ap, an} & set(circuit.outputs):
            continue
        if els[b].value * els[c].value != els[d].value * els[a].value:  # unequal gains for an and ap
            continue
        cp, cn = tp.inn, tn.inn
        rf = [next((r for k in users[col] if (r := resistor(k, col, out))), None) for col, out in ((cp, ap), (cn, an))]
        if None in rf or len(users[ap]) != 3 or len(users[an]) != 3:
            continue
        on_cn = [k for k in users[cn] if els[k] is not tn and not resistor(k, cn, an)]
        if not all(isinstance(els[k], Device | ISource) and els[k].n == cn for k in on_cn) or cp == cn:
            continue
        if any(isinstance(els[k], ISource) and els[k].p != "0" for k in on_cn):
            continue
        ratio = -rf[1] / rf[0]
        for k in on_cn:
            e = els[k]
            els[k] = (
                replace(e, n=cp, scale=e.scale * ratio) if isinstance(e, Device) else replace(e, n=cp, dc=e.dc * ratio)
            )
            folded = True
    return replace(circuit, elements=tuple(els)) if folded else circuit


def merge_parallel(circuit: Circuit) -> Circuit:
    """Devices in parallel (the same two nodes, no bias shift) as one :class:`Table` each. Their
    summed current is piecewise linear on the union of their curves' knots, exactly, so ngspice
    evaluates one table where it evaluated several (a TD-KAN edge's K bases into one column)."""
    tables = {c.name: np.reshape(c.table, (-1, 2)) for c in circuit.curves if flat_ends(c.table)}
    groups = defaultdict(list)
    for k, e in enumerate(circuit.elements):
        if isinstance(e, Device) and e.shift == 0 and e.curve in tables:
            groups[(e.p, e.n)].append(k)
    groups = {key: ks for key, ks in groups.items() if len(ks) > 1}
    if not groups:
        return circuit
    knots = np.unique(np.concatenate([t[:, 0] for t in tables.values()]))
    curve_names = list(tables)
    # each curve on the common knots, in amperes per unit area (np.interp is flat beyond the ends, as the tables are)
    at = np.array([np.interp(knots, tables[c][:, 0], tables[c][:, 1]) for c in curve_names])  # [curves, knots]
    amps = {c.name: c.amps_per_unit for c in circuit.curves}
    members = [[circuit.elements[k] for k in ks] for ks in groups.values()]
    width = max(map(len, members))
    # member j of every group at once: its curve and gain (area * amps_per_unit * scale, in that
    # order); padding adds 0.0, so each sum is the members' products added in element order
    curve = np.zeros((len(members), width), dtype=int)
    gain = np.zeros((len(members), width))
    for g, es in enumerate(members):
        curve[g, : len(es)] = [curve_names.index(e.curve) for e in es]
        gain[g, : len(es)] = [e.area * amps[e.curve] * e.scale for e in es]
    total = np.zeros((len(members), len(knots)))
    for j in range(width):
        total += at[curve[:, j]] * gain[:, j, None]
    rows = np.stack([np.broadcast_to(knots, total.shape), total], axis=2).reshape(len(members), -1)  # [groups, 2*knots]
    elements, drop = list(circuit.elements), set()
    for (p, n), ks, row in zip(groups, groups.values(), rows.tolist()):
        elements[ks[0]] = Table(circuit.elements[ks[0]].name, p, n, tuple(row))
        drop.update(ks[1:])
    kept = tuple(e for k, e in enumerate(elements) if k not in drop)
    names = {e.name for e in kept}  # Monte Carlo draws before this; members merged away leave the groups
    groups = tuple((g, tuple(m for m in members if m in names)) for g, members in circuit.groups)
    return replace(circuit, elements=kept, groups=groups)


def flat_ends(t: tuple[float, ...]) -> bool:
    return len(t) >= 4 and t[1] == t[3] and t[-1] == t[-3]


def fold_clippers(part: Part) -> Part:
    """``part`` with every clipper that is the only element on an input applied to the stimulus
    instead (:meth:`Part.stimulus`): its output node becomes that input."""
    circuit = part.circuit
    if not any(isinstance(e, Clipper) for e in circuit.elements):
        return part  # a crossbar stage of the shared mapping: nodes need not be counted
    uses = Counter(n for e in circuit.elements for n in _nodes(e))
    position = {node: i for i, node in enumerate(circuit.inputs)}
    inputs, folded = list(circuit.inputs), []
    for e in circuit.elements:
        i = position.get(e.src) if isinstance(e, Clipper) else None
        if i is not None and uses[e.src] == 1 and e.src not in circuit.outputs and e.p not in position:
            inputs[i] = e.p
            folded.append((i, e))
    if not folded:
        return part
    drop = {e.name for _, e in folded}
    elements = tuple(e for e in circuit.elements if e.name not in drop)
    return replace(part, circuit=replace(circuit, elements=elements, inputs=tuple(inputs)), clippers=tuple(folded))
