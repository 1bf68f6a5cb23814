"""Circuit blocks shared by the lowerings: op-amp macro-model, TIA neuron, input clipper.

Each block returns IR elements with names derived from the block's own name, so every op-amp
of every neuron is its own :class:`~anasim.circuit.ir.OpAmp` that Monte Carlo can perturb.
``opamp_primitives`` is the macro-model every engine's writer (and the power calculation) expand an
op-amp into; ``primitives`` gives a circuit's elements with it applied.
"""

from __future__ import annotations

import math

from .expr import Neg, Num, Paren, V, add, call, div, mul, sub
from .ir import VCCS, VCVS, BSource, Capacitor, Circuit, Clipper, OpAmp, Resistor, VSource

GM = 1e-3  # transconductance of the single-pole op-amp's integrator stage (S)


def opamp_primitives(a: OpAmp) -> list:
    """Linear primitives of one op-amp: an input-offset source when the offset is nonzero, then a
    VCVS (no pole) or a transconductance integrator with a unity buffer (pole at gbw / gain),
    and at the output a smooth tanh saturation when rails are given."""
    prims, inp = [], a.inp
    if a.offset != 0:
        inp = f"{a.name}_os"
        prims.append(VSource(f"{a.name}_os", inp, a.inp, a.offset))  # V(inp') = V(inp) + offset
    if a.gbw is None:
        if a.rails is None:
            return [*prims, VCVS(a.name, a.out, "0", inp, a.inn, a.gain)]
        expr = mul(Num(float(a.rails)), call("tanh", mul(Num(float(a.gain / a.rails)), V(inp, a.inn))))
        return [*prims, BSource(a.name, a.out, "0", "V", expr)]
    # A transconductance integrator rather than a huge VCVS into an RC: its node swings only as
    # far as the output, which keeps the transient well conditioned even at gain 1e9.
    node = f"{a.name}_p"
    prims += [
        VCCS(f"{a.name}_gm", "0", node, inp, a.inn, GM),
        Resistor(f"{a.name}_o", node, "0", a.gain / GM),
        Capacitor(f"{a.name}_c", node, "0", GM / (2 * math.pi * a.gbw)),
    ]
    if a.rails is None:
        return [*prims, VCVS(f"{a.name}_buf", a.out, "0", node, "0", 1.0)]
    expr = mul(Num(float(a.rails)), call("tanh", div(V(node), Num(float(a.rails)))))
    return [*prims, BSource(f"{a.name}_buf", a.out, "0", "V", expr)]


def primitives(circuit: Circuit):
    """Every element of ``circuit`` as a writer prints it: op-amps expanded into their macro-model."""
    for e in circuit.elements:
        if isinstance(e, OpAmp):
            yield from opamp_primitives(e)
        else:
            yield e


def neuron(name: str, cp: str, cn: str, out: str, r_diff: float, gain: float, gbw: float | None) -> list:
    """Two TIA op-amps (their feedback resistors are added per column by the caller, from the
    column nodes to ``<out>_ap`` / ``<out>_an``) and a unity difference amplifier:
    out = V(an) - V(ap)."""
    ap, an = f"{out}_ap", f"{out}_an"
    return tias(name, cp, cn, ap, an, gain, gbw) + summing(name, [ap], [an], out, r_diff, gain, gbw)


def tias(name: str, cp: str, cn: str, ap: str, an: str, gain: float, gbw: float | None, rails=None) -> list:
    """The TIA op-amps of a column pair: virtual grounds at ``cp`` / ``cn``, outputs ``ap`` / ``an``."""
    return [
        OpAmp(f"{name}_p", "0", cp, ap, gain, rails=rails, gbw=gbw),
        OpAmp(f"{name}_n", "0", cn, an, gain, rails=rails, gbw=gbw),
    ]


def summing(name: str, aps: list[str], ans: list[str], out: str, r: float, gain: float, gbw: float | None,
            rails=None, k: float = 1.0) -> list:  # fmt: skip
    """out = k (sum V(ans) - sum V(aps)): a difference amplifier with T inputs on each side,
    input resistors ``r``, feedback b and ground resistor d ``k r``. Each ap enters with gain
    -k; the + input sits at k sum(ans) / (1 + T k) (T inputs of r and d to ground), which the -
    side's noise gain 1 + T k turns into k sum(ans). T = 1, k = 1 is the unity difference
    amplifier of a single crossbar (resistors a, b, c, d, all r); T tiles add their partial
    sums here (a<t>, c<t>); k != 1 is the gain ``--swing`` chooses."""
    m, q = f"{name}_m", f"{name}_q"
    tag = (lambda t: "") if len(aps) == 1 else str
    out_ = [Resistor(f"{name}_a{tag(t)}", ap, m, r) for t, ap in enumerate(aps)]
    out_ += [Resistor(f"{name}_b", m, out, k * r)]
    out_ += [Resistor(f"{name}_c{tag(t)}", an, q, r) for t, an in enumerate(ans)]
    out_ += [Resistor(f"{name}_d", q, "0", k * r), OpAmp(f"{name}_d", q, m, out, gain, rails=rails, gbw=gbw)]
    return out_


def clipper(name: str, src: str, dst: str, v_range, mapping: str, gain: float = 1.0) -> Clipper:
    """Ideal limiter driving ``dst`` from ``src``: a hard clip into v_range, or the unit-slope
    sigmoid of the models' ``map_input``, of ``gain`` * V(src) (1: the text has no gain)."""
    lo, hi = v_range
    v = V(src) if gain == 1.0 else Paren(mul(Num(float(gain)), V(src)))
    if mapping == "clip":
        expr = call("max", Num(float(lo)), call("min", Num(float(hi)), v))
    else:  # lo + span / (1 + exp(-(4 / span) (v - mid)))
        mid, span = (lo + hi) / 2, hi - lo
        slope = mul(Neg(Num(float(4 / span))), sub(v, Num(float(mid))))
        expr = add(Num(float(lo)), div(Num(float(span)), add(Num(1), call("exp", slope))))
    return Clipper(name, dst, "0", "V", expr, src, (float(lo), float(hi)), mapping, float(gain))


def column(li: int, j: int, theta: float, s: float, inverted: bool) -> str:
    """The column line of layer ``li``'s output j that a weight ``theta`` under the fused scale
    ``s`` feeds: ``l<li>_c<j>p`` (the difference amplifier adds it) or ``..n`` (subtracts);
    ``inverted`` when the rows carry the negated signal. Shared by the crossbar lowerings."""
    positive = ((theta > 0) == (s >= 0)) != inverted
    return f"l{li}_c{j}{'p' if positive else 'n'}"
