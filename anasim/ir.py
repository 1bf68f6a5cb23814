"""Circuit IR: plain dataclasses between ``lower`` (model -> IR) and ``netlist`` (IR -> ngspice).

Kept free of any simulator dialect, like Hdl21/vlsirtools: elements, subcircuits, instances, and
one dataclass per analysis. Monte Carlo perturbs these objects, not netlist text. Every name is
checked against a strict identifier pattern when the element is made, so nothing a model, a CSV
or a command line carries can reach a netlist as free text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import AnasimError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Behavioural expressions are built by anasim from numbers, node names and function names only.
_EXPR = re.compile(r"^[A-Za-z0-9_+\-*/(),. ]{1,2000000}$")


def ident(name: str) -> str:
    """Validate a node, element or subcircuit name (letters, digits, '_')."""
    if not isinstance(name, str) or not (_IDENT.match(name) or name == "0"):
        raise AnasimError(f"name {name!r} is not a safe netlist identifier")
    return name


def finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise AnasimError(f"{what} = {value!r} is not a finite number")
    return value


def num(value: float) -> str:
    """A number as netlist text: shortest exact repr of a Python float (never numpy's repr)."""
    return repr(float(value))


def file_name(text: str) -> str:
    """A file name safe to write into a control block (``wrdata``): letters, digits, '_', '.', '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))


def comment_text(text: str) -> str:
    """Text for a '*' comment line: printable ASCII only, one line."""
    return re.sub(r"[^ -~]", "?", str(text)).strip()[:200]


@dataclass
class Resistor:
    name: str
    p: str
    n: str
    value: float


@dataclass
class Capacitor:
    name: str
    p: str
    n: str
    value: float
    ic: float | None = None


@dataclass
class VSource:
    name: str
    p: str
    n: str
    dc: float = 0.0


@dataclass
class ISource:
    """DC current ``dc`` flowing from ``p`` through the source to ``n`` (SPICE convention)."""

    name: str
    p: str
    n: str
    dc: float


@dataclass
class Controlled:
    """A linear source controlled by the voltage V(cp, cn)."""

    name: str
    p: str
    n: str
    cp: str
    cn: str
    gain: float


@dataclass
class VCVS(Controlled):
    """V(p, n) = gain * V(cp, cn)."""


@dataclass
class VCCS(Controlled):
    """Current gain * V(cp, cn) flowing from ``p`` through the source to ``n``."""


@dataclass
class BSource:
    """Behavioural source; ``expr`` is built by anasim from numbers and node names only."""

    name: str
    p: str
    n: str
    kind: str  # "I" or "V"
    expr: str


@dataclass
class Instance:
    name: str
    subckt: str
    nodes: list[str]


@dataclass
class Subckt:
    name: str
    ports: list[str]
    elements: list = field(default_factory=list)
    comment: str = ""


@dataclass
class Func:
    """A user function ``name(x) = body``; lets thousands of devices share one I-V table."""

    name: str
    body: str  # expression of the argument x


@dataclass
class Op:
    pass


@dataclass
class Dc:
    source: str
    start: float
    stop: float
    step: float


@dataclass
class Tran:
    step: float
    stop: float
    uic: bool = False


@dataclass
class Circuit:
    title: str
    header: list[str] = field(default_factory=list)  # provenance comment lines
    funcs: list[Func] = field(default_factory=list)
    subckts: list[Subckt] = field(default_factory=list)
    elements: list = field(default_factory=list)
    options: dict[str, float] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # node names to save and read back

    def validate(self) -> Circuit:
        for f in self.funcs:
            ident(f.name)
            if not _EXPR.match(f.body):
                raise AnasimError(f"function {f.name}: body is not a plain arithmetic expression")
        for sc in self.subckts:
            ident(sc.name)
            for p in sc.ports:
                ident(p)
            _check_elements(sc.elements)
        _check_elements(self.elements)
        for o in self.outputs:
            ident(o)
        return self


def _check_elements(elements) -> None:
    for e in elements:
        ident(e.name)
        nodes = e.nodes if isinstance(e, Instance) else [e.p, e.n]
        if isinstance(e, Controlled):
            nodes = [*nodes, e.cp, e.cn]
        for n in nodes:
            ident(n)
        for attr in ("value", "dc", "gain"):
            if hasattr(e, attr):
                finite(getattr(e, attr), f"{e.name}.{attr}")
        if isinstance(e, BSource) and (e.kind not in ("I", "V") or not _EXPR.match(e.expr)):
            raise AnasimError(f"{e.name}: behavioural source must be I or V with a plain arithmetic expression")
