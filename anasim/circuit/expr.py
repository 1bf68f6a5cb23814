"""Expressions of behavioural sources as trees: what a :class:`~anasim.circuit.ir.BSource` computes.

Where it sits: the lowering (clippers, op-amp rails, ideal activations, the closed-loop plants)
and the runner's rewrites build these trees from numbers, node voltages and a short list of
functions; each engine's writer prints them in its own language (ngspice text, Verilog-A for
VACASK) and the runner's rewrites read the nodes they control from the tree. Nothing reads an
expression back from text, and nothing but these node types can reach a netlist.

Grouping is explicit: :class:`Paren` prints parentheses, and a writer adds those its language's
precedence needs (a :class:`Bin` whose operand binds less tightly), so the printed text always
means the tree. Numbers print as Python's shortest exact repr; an ``int`` prints as an integer.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from ..errors import AnasimError

# functions a behavioural source may call, with their number of arguments (both engines print them)
FUNCTIONS = {"exp": 1, "ln": 1, "sqrt": 1, "tanh": 1, "sin": 1, "cos": 1, "atan": 1, "abs": 1, "max": 2, "min": 2}
OPS = ("+", "-", "*", "/")


@dataclass(frozen=True, slots=True)
class Num:
    value: float | int  # an int prints without a decimal point


@dataclass(frozen=True, slots=True)
class V:
    """The voltage of node ``p`` (against ``n``; None: ground)."""

    p: str
    n: str | None = None


@dataclass(frozen=True, slots=True)
class Bin:
    op: str  # one of OPS
    a: object
    b: object


@dataclass(frozen=True, slots=True)
class Neg:
    a: object


@dataclass(frozen=True, slots=True)
class Paren:
    a: object


@dataclass(frozen=True, slots=True)
class Call:
    fn: str  # a key of FUNCTIONS
    args: tuple


@dataclass(frozen=True, slots=True)
class Pwl:
    """Piecewise linear in ``x`` through ``points`` (x0, y0, x1, y1, ...), the end segments
    extrapolated (as ngspice's pwl: give flat end points to clamp)."""

    x: object
    points: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Curve:
    """The I-V curve ``name`` of the circuit's curves at ``x`` (current per unit area)."""

    name: str
    x: object


Expr = Num | V | Bin | Neg | Paren | Call | Pwl | Curve


def children(e) -> tuple:
    if isinstance(e, Bin):
        return (e.a, e.b)
    if isinstance(e, Neg | Paren):
        return (e.a,)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Pwl | Curve):
        return (e.x,)
    return ()


def nodes(e) -> set[str]:
    """The nodes whose voltages ``e`` reads."""
    out, stack = set(), [e]
    while stack:
        x = stack.pop()
        if isinstance(x, V):
            out.add(x.p)
            if x.n is not None:
                out.add(x.n)
        stack.extend(children(x))
    return out


def check(e, what: str, ident, curves=()) -> None:
    """Refuse anything but the node types above with finite numbers, checked node names
    (``ident``), known functions and their argument counts, curves among ``curves`` (``what``
    names the element)."""
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Num):
            if type(x.value) not in (int, float) or not math.isfinite(x.value):
                raise AnasimError(f"{what}: the number {x.value!r} in its expression is not a finite int or float")
        elif isinstance(x, V):
            ident(x.p)
            if x.n is not None:
                ident(x.n)
        elif isinstance(x, Bin):
            if x.op not in OPS:
                raise AnasimError(f"{what}: operator {x.op!r} is not one of {' '.join(OPS)}")
        elif isinstance(x, Call):
            if FUNCTIONS.get(x.fn) != len(x.args):
                raise AnasimError(
                    f"{what}: {x.fn}() with {len(x.args)} argument(s) is not one of "
                    + ", ".join(f"{f}({n})" for f, n in FUNCTIONS.items())
                )
        elif isinstance(x, Pwl):
            if len(x.points) < 4 or len(x.points) % 2:
                raise AnasimError(f"{what}: pwl() needs two or more (x, y) points")
            if not all(type(p) is float and math.isfinite(p) for p in x.points):
                raise AnasimError(f"{what}: every pwl() point must be a finite Python float")
        elif isinstance(x, Curve):
            if x.name not in curves:
                raise AnasimError(f"{what}: curve {x.name!r} is not among the circuit's curves {sorted(curves)}")
        elif not isinstance(x, Neg | Paren):
            raise AnasimError(f"{what}: {type(x).__name__} is not an expression node of anasim.circuit.expr")
        stack.extend(children(x))


# how tightly each node binds when printed infix: what decides the parentheses a writer adds
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def precedence(e) -> int:
    if isinstance(e, Bin):
        return _PREC[e.op]
    if isinstance(e, Neg):
        return 3
    return 4  # numbers, voltages, calls, parentheses


def infix(e, leaf) -> str:
    """``e`` printed infix: ``leaf(node, infix)`` prints the nodes that are not operators
    (numbers, voltages, calls, tables); operators and :class:`Paren` are printed here, with
    parentheses wherever an operand binds less tightly than its operator (on the right also
    when it binds as tightly: ``a-(b-c)``, ``a/(b*c)``, and the tree's own order of sums)."""
    if isinstance(e, Bin):
        p = _PREC[e.op]
        left, right = infix(e.a, leaf), infix(e.b, leaf)
        left = f"({left})" if precedence(e.a) < p else left
        right = f"({right})" if precedence(e.b) <= p else right
        return f"{left}{e.op}{right}"
    if isinstance(e, Neg):
        inner = infix(e.a, leaf)
        return f"-({inner})" if precedence(e.a) < 3 else f"-{inner}"
    if isinstance(e, Paren):
        return f"({infix(e.a, leaf)})"
    return leaf(e, lambda x: infix(x, leaf))


def show(e) -> str:
    """``e`` as text for messages (ngspice-like; a table shortened to its size)."""

    def leaf(x, inner) -> str:
        if isinstance(x, Num):
            return repr(x.value)
        if isinstance(x, V):
            return f"V({x.p})" if x.n is None else f"V({x.p},{x.n})"
        if isinstance(x, Call):
            return f"{x.fn}({','.join(map(inner, x.args))})"
        if isinstance(x, Pwl):
            return f"pwl({inner(x.x)}, {len(x.points) // 2} points)"
        if isinstance(x, Curve):
            return f"curve {x.name}({inner(x.x)})"
        return type(x).__name__

    return infix(e, leaf)


_MATH = {"exp": math.exp, "ln": math.log, "sqrt": math.sqrt, "tanh": math.tanh, "sin": math.sin, "cos": math.cos,
         "atan": math.atan, "abs": abs, "max": max, "min": min}  # fmt: skip


def evaluate(e, voltages: dict[str, float]) -> float:
    """``e`` in Python floats with node voltages ``voltages`` (ground 0 V): what a behavioural
    source computes, for tests and exact answers. A pwl extrapolates its end segments."""
    if isinstance(e, Num):
        return float(e.value)
    if isinstance(e, V):
        return voltages.get(e.p, 0.0 if e.p == "0" else math.nan) - (0.0 if e.n in (None, "0") else voltages[e.n])
    if isinstance(e, Bin):
        a, b = evaluate(e.a, voltages), evaluate(e.b, voltages)
        return a + b if e.op == "+" else a - b if e.op == "-" else a * b if e.op == "*" else a / b
    if isinstance(e, Neg):
        return -evaluate(e.a, voltages)
    if isinstance(e, Paren):
        return evaluate(e.a, voltages)
    if isinstance(e, Call):
        return float(_MATH[e.fn](*(evaluate(a, voltages) for a in e.args)))
    if isinstance(e, Pwl):
        x, xs, ys = evaluate(e.x, voltages), e.points[0::2], e.points[1::2]
        j = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)  # the segment holding x, or an end one
        return ys[j] + (ys[j + 1] - ys[j]) * (x - xs[j]) / (xs[j + 1] - xs[j])
    raise AnasimError(f"{type(e).__name__}: evaluate() has no value for it (a curve needs its device model)")


# builders: what the lowerings write, so that a tree reads like the formula it stands for
def call(fn: str, *args) -> Call:
    return Call(fn, tuple(args))


def add(a, b) -> Bin:
    return Bin("+", a, b)


def sub(a, b) -> Bin:
    return Bin("-", a, b)


def mul(a, b) -> Bin:
    return Bin("*", a, b)


def div(a, b) -> Bin:
    return Bin("/", a, b)
