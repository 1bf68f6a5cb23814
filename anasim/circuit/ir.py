"""Circuit IR: typed, frozen dataclasses between lowering (model -> IR) and an engine's writer (IR -> deck).

Free of any simulator dialect, like Hdl21/vlsirtools. The parts Monte Carlo and physical options
act on are typed elements with their own parameters, never expression text: a :class:`Device`
(an I-V curve of ``Circuit.curves`` with an area, a current scale and a bias shift), an
:class:`OpAmp` (gain, input offset, output rails, gain-bandwidth), a KirchhoffNet :class:`Branch`
(a branch law and its theta). Perturbing a circuit is ``dataclasses.replace`` on its elements.
Every name is checked against a strict identifier pattern when the circuit is validated, so
nothing a model, a CSV or a command line carries can reach a netlist as free text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from functools import cache

import numpy as np

from ..errors import AnasimError
from .expr import check as check_tree

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PATH = re.compile(r"^[A-Za-z0-9_./+-]{1,4000}$")
# a KirchhoffNet branch law: a template of numbers, names and function names only
_EXPR = re.compile(r"^[A-Za-z0-9_+\-*/(),.{} ]{1,2000000}$")


def ident(name: str) -> str:
    """Validate a node, element or curve name (letters, digits, '_')."""
    if type(name) is str and name in _SAFE:  # passed before
        return name
    if not isinstance(name, str) or not (_IDENT.match(name) or name == "0"):
        raise AnasimError(f"name {name!r} is not a safe netlist identifier")
    if len(_SAFE) < 1_000_000:  # a Monte Carlo validates the same 10^5 names every realization
        _SAFE.add(name)
    return name


_SAFE: set[str] = set()


def finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise AnasimError(f"{what} = {value!r} is not a finite number")
    return value


def check_expr(expr: str, what: str) -> str:
    if not isinstance(expr, str) or not _EXPR.match(expr):
        raise AnasimError(f"{what}: not a plain arithmetic expression")
    return expr


def num(value: float) -> str:
    """A number as netlist text: shortest exact repr of a Python float (never numpy's repr)."""
    return repr(float(value))


def file_name(text: str) -> str:
    """A file name safe to write into a deck (a data file it writes): letters, digits, '_', '.', '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))


def comment_text(text: str) -> str:
    """Text for a '*' comment line: printable ASCII only, one line."""
    # long enough for the options line with --swing's fitted peaks (full precision, a few per layer)
    return re.sub(r"[^ -~]", "?", str(text)).strip()[:4000]


@dataclass(frozen=True, slots=True)
class Resistor:
    name: str
    p: str
    n: str
    value: float


@dataclass(frozen=True, slots=True)
class Capacitor:
    """Capacitance ``value``; its initial voltage, when a transient starts from one, comes from
    an :class:`anasim.circuit.stimulus.InitialState`."""

    name: str
    p: str
    n: str
    value: float


@dataclass(frozen=True, slots=True)
class VSource:
    """DC voltage ``dc`` from ``n`` to ``p``; ``external``: its value comes, point by point, from
    the program that runs the simulator as a library (:mod:`anasim.sim.ngspice.lockstep`), and
    ``dc`` is unused."""

    name: str
    p: str
    n: str
    dc: float = 0.0
    external: bool = False


@dataclass(frozen=True, slots=True)
class ISource:
    """DC current ``dc`` flowing from ``p`` through the source to ``n`` (SPICE convention)."""

    name: str
    p: str
    n: str
    dc: float


@dataclass(frozen=True, slots=True)
class Controlled:
    """A linear source controlled by the voltage V(cp, cn)."""

    name: str
    p: str
    n: str
    cp: str
    cn: str
    gain: float


@dataclass(frozen=True, slots=True)
class VCVS(Controlled):
    """V(p, n) = gain * V(cp, cn)."""


@dataclass(frozen=True, slots=True)
class VCCS(Controlled):
    """Current gain * V(cp, cn) flowing from ``p`` through the source to ``n``."""


@dataclass(frozen=True, slots=True)
class BSource:
    """Behavioural source for fixed functions (clippers, op-amp rails, ideal activations, plants):
    ``expr`` is a tree of :mod:`anasim.circuit.expr` (numbers, node voltages, a few functions),
    which each engine's writer prints. Devices and branches have their own types."""

    name: str
    p: str
    n: str
    kind: str  # "I" or "V"
    expr: object  # an anasim.circuit.expr tree


@dataclass(frozen=True, slots=True)
class Clipper(BSource):
    """An ideal limiter: V(p) = ``v_range`` clip (or the unit-slope sigmoid) of ``gain`` *
    V(``src``), its ``expr`` written by :func:`anasim.circuit.blocks.clipper`. Typed so that a
    runner may apply it to the stimulus instead when ``src`` is an input (exactly the same
    voltages). ``gain`` undoes the scale of a swing-fitted previous layer (``--swing``)."""

    src: str = "0"
    v_range: tuple[float, float] = (0.0, 1.0)
    mapping: str = "clip"  # or "sigmoid"
    gain: float = 1.0

    @property
    def plain(self) -> bool:
        """An ideal clip with unit gain: ``np.clip`` of its input."""
        return self.mapping == "clip" and self.gain == 1.0

    def apply(self, v: np.ndarray) -> np.ndarray:
        lo, hi = self.v_range
        v = v if self.gain == 1.0 else self.gain * v
        if self.mapping == "clip":
            return np.clip(v, lo, hi)
        mid, span = (lo + hi) / 2, hi - lo
        return lo + span / (1 + np.exp(-(4 / span) * (v - mid)))


@dataclass(frozen=True, slots=True)
class Curve:
    """An I-V curve shared by many devices: ``body`` is I(x) in the curve's unit per unit area,
    ``amps_per_unit`` converts it to amperes. ``table`` (x0, y0, x1, y1, ...) is the same curve
    as pwl points when it is one, so a run deck can give each device its own scaled table."""

    name: str
    body: str
    amps_per_unit: float
    table: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Device:
    """A two-terminal device on curve ``curve``: current from p to n
    ``area * amps_per_unit * scale * I(V(p, n) - shift)``. ``scale`` and ``shift`` are the
    per-device slots of Monte Carlo (current scale, bias shift in volts); 1 and 0 are neutral."""

    name: str
    p: str
    n: str
    curve: str
    area: float = 1.0
    scale: float = 1.0
    shift: float = 0.0


@dataclass(frozen=True, slots=True)
class Table:
    """A two-terminal current I(V(p, n)) in amperes, linear between the points of ``table``
    (x0, i0, x1, i1, ...; flat end segments): what a runner makes of devices in parallel
    (:func:`anasim.sim.partition.merge_parallel`), never a lowering."""

    name: str
    p: str
    n: str
    table: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Branch:
    """A KirchhoffNet branch: current ``law`` of V(p), V(n) and ``theta`` flowing from p to n.
    ``law`` is a template over ``{vs}``, ``{vd}`` and ``{a}``, ``{b}``, ``{c}`` (the thetas).
    ``on`` and ``off`` (seconds; None: unbounded) schedule it: it conducts while on < time < off,
    an ideal switch driven by a clock (a layer of a multi-layer network)."""

    name: str
    p: str
    n: str
    law: str
    theta: tuple[float, ...]
    on: float | None = None
    off: float | None = None


@dataclass(frozen=True, slots=True)
class OpAmp:
    """Op-amp macro-model: out = gain * (V(inp) - V(inn) + offset), referred to ground.

    ``gbw`` (Hz) adds one pole at gbw / gain; ``rails`` (volts) saturates the output smoothly
    at +-rails. None means: no pole, no rails."""

    name: str
    inp: str
    inn: str
    out: str
    gain: float
    offset: float = 0.0
    rails: float | None = None
    gbw: float | None = None


Element = Resistor | Capacitor | VSource | ISource | VCVS | VCCS | BSource | Device | Table | Branch | OpAmp
NUMBERS = ("value", "dc", "gain", "area", "scale", "shift", "offset")


@cache
def _numbers(kind: type) -> tuple[str, ...]:
    """The NUMBERS an element type has (the fields of its dataclass)."""
    return tuple(a for a in NUMBERS if a in {f.name for f in fields(kind)})


def nodes_of(e: Element) -> tuple[str, ...]:
    if isinstance(e, OpAmp):
        return (e.inp, e.inn, e.out)
    if isinstance(e, Controlled):
        return (e.p, e.n, e.cp, e.cn)
    return (e.p, e.n)


@dataclass(frozen=True)
class Circuit:
    title: str
    elements: tuple[Element, ...] = ()
    curves: tuple[Curve, ...] = ()
    inputs: tuple[str, ...] = ()  # nodes a stimulus drives
    outputs: tuple[str, ...] = ()  # nodes to save and read back
    header: tuple[str, ...] = ()  # provenance comment lines
    includes: tuple[str, ...] = ()  # netlist files read in first (a compiled network run again)
    # Named element groups the lowering declares for Monte Carlo, e.g. ("coefficients", names):
    # which elements realize one trained coefficient each. Physics lives in the lowering, so the
    # variations need not guess roles from element names.
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Inputs of ideal TIAs, within |V(out)| / gain of 0 V, that a runner's rewrite
    # (:func:`anasim.sim.partition.ground_devices`) takes as 0 V where they control a device
    # or table into them: the netlister writes I(V(p)) for those. Never set by a lowering.
    virtual_grounds: tuple[str, ...] = ()

    def group(self, name: str) -> tuple[str, ...]:
        return next((members for g, members in self.groups if g == name), ())

    def validate(self) -> Circuit:
        known = set()
        for c in self.curves:
            ident(c.name)
            check_expr(c.body, f"curve {c.name}")
            if not finite(c.amps_per_unit, f"curve {c.name}.amps_per_unit") > 0:
                raise AnasimError(f"curve {c.name}: amps_per_unit must be positive")
            for t in c.table:
                finite(t, f"curve {c.name}.table")
            known.add(c.name)
        for e in self.elements:
            _check_element(e, known)
        for node in (*self.inputs, *self.outputs, *self.virtual_grounds):
            ident(node)
        names = {e.name for e in self.elements}
        for g, members in self.groups:
            missing = [m for m in members if m not in names]
            if missing:
                raise AnasimError(f"group {g}: no element named {missing[0]!r}")
        for path in self.includes:
            if not _PATH.match(path):
                raise AnasimError(f"{path!r}: use a file path of letters, digits and _ . / + - only")
        return self


def _check_element(e, curves: set[str]) -> None:
    ident(e.name)
    for node in nodes_of(e):
        ident(node)
    for attr in _numbers(type(e)):
        finite(getattr(e, attr), f"{e.name}.{attr}")
    if isinstance(e, BSource):
        if e.kind not in ("I", "V"):
            raise AnasimError(f"{e.name}: behavioural source kind {e.kind!r}: give I or V")
        check_tree(e.expr, f"behavioural source {e.name}", ident, curves)
    if isinstance(e, Device) and e.curve not in curves:
        raise AnasimError(f"device {e.name}: curve {e.curve!r} is not among the circuit's curves {sorted(curves)}")
    if isinstance(e, Table):
        if len(e.table) < 4 or len(e.table) % 2:
            raise AnasimError(f"table {e.name}: needs two or more (x, i) points")
        if set(map(type, e.table)) != {float} or not all(map(math.isfinite, e.table)):  # C loops: 60k points a deck
            raise AnasimError(f"table {e.name}: every point must be a finite Python float")
    if isinstance(e, Branch):
        check_expr(e.law, f"branch {e.name}")
        for t in e.theta:
            finite(t, f"{e.name}.theta")
        on = None if e.on is None else finite(e.on, f"{e.name}.on")
        off = None if e.off is None else finite(e.off, f"{e.name}.off")
        if on is not None and off is not None and not on < off:
            raise AnasimError(f"branch {e.name}: switched on at {on!r} s, not before it is switched off at {off!r} s")
    if isinstance(e, OpAmp):
        if not e.gain > 0:
            raise AnasimError(f"op-amp {e.name}: gain {e.gain!r} must be positive")
        if e.rails is not None and not finite(e.rails, f"{e.name}.rails") > 0:
            raise AnasimError(f"op-amp {e.name}: rails {e.rails!r} must be positive")
        if e.gbw is not None and not finite(e.gbw, f"{e.name}.gbw") > 0:
            raise AnasimError(f"op-amp {e.name}: gain-bandwidth {e.gbw!r} must be positive")
