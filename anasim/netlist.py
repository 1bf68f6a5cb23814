"""Netlister: circuit IR -> ngspice netlist text (the dialect writer; nothing else knows syntax).

``netlist(circuit, dest, fmt="ngspice")`` writes one self-contained deck. Names and expressions
were validated when the IR was built; comment text is reduced to printable ASCII here. An
optional ``control`` block (built by the runner from an analysis dataclass) makes the deck run
alone under ``ngspice -b``.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import TextIO

from .errors import AnasimError
from .ir import (
    VCCS,
    VCVS,
    BSource,
    Capacitor,
    Circuit,
    Dc,
    Instance,
    ISource,
    Op,
    Resistor,
    Tran,
    VSource,
    comment_text,
    num,
)


def _element(e) -> str:
    if isinstance(e, Resistor):
        return f"R{e.name} {e.p} {e.n} {num(e.value)}"
    if isinstance(e, Capacitor):
        ic = f" ic={num(e.ic)}" if e.ic is not None else ""
        return f"C{e.name} {e.p} {e.n} {num(e.value)}{ic}"
    if isinstance(e, VSource):
        return f"V{e.name} {e.p} {e.n} dc {num(e.dc)}"
    if isinstance(e, ISource):
        return f"I{e.name} {e.p} {e.n} dc {num(e.dc)}"
    if isinstance(e, VCVS):
        return f"E{e.name} {e.p} {e.n} {e.cp} {e.cn} {num(e.gain)}"
    if isinstance(e, VCCS):
        return f"G{e.name} {e.p} {e.n} {e.cp} {e.cn} {num(e.gain)}"
    if isinstance(e, BSource):
        return f"B{e.name} {e.p} {e.n} {e.kind}={e.expr}"
    if isinstance(e, Instance):
        return f"X{e.name} {' '.join(e.nodes)} {e.subckt}"
    raise AnasimError(f"netlister: no ngspice form for {type(e).__name__}")


def analysis_line(analysis) -> str:
    if isinstance(analysis, Op):
        return "op"
    if isinstance(analysis, Dc):
        return f"dc V{analysis.source} {num(analysis.start)} {num(analysis.stop)} {num(analysis.step)}"
    if isinstance(analysis, Tran):
        return f"tran {num(analysis.step)} {num(analysis.stop)}{' uic' if analysis.uic else ''}"
    raise AnasimError(f"netlister: unknown analysis {analysis!r}")


def write_ngspice(circuit: Circuit, out: TextIO, control: list[str] | None = None) -> None:
    circuit.validate()
    out.write(f"* {comment_text(circuit.title)}\n")
    for line in circuit.header:
        out.write(f"* {comment_text(line)}\n")
    for key, value in circuit.options.items():
        out.write(f".options {key}={num(value)}\n")
    for f in circuit.funcs:
        out.write(f".func {f.name}(x) {{{f.body}}}\n")
    for sc in circuit.subckts:
        if sc.comment:
            out.write(f"* {comment_text(sc.comment)}\n")
        out.write(f".subckt {sc.name} {' '.join(sc.ports)}\n")
        for e in sc.elements:
            out.write(_element(e) + "\n")
        out.write(f".ends {sc.name}\n")
    for e in circuit.elements:
        out.write(_element(e) + "\n")
    if control:
        out.write(".control\n")
        for line in control:
            out.write(line + "\n")
        out.write(".endc\n")
    out.write(".end\n")


def netlist(circuit: Circuit, dest: str | Path | TextIO | None = None, fmt: str = "ngspice", control=None) -> str:
    """Write ``circuit`` in ``fmt`` to ``dest`` (path or stream); returns the text."""
    if fmt != "ngspice":
        raise AnasimError(f"netlist format {fmt!r} is not supported; use ngspice")
    buf = StringIO()
    write_ngspice(circuit, buf, control)
    text = buf.getvalue()
    if isinstance(dest, (str, Path)):
        try:
            Path(dest).write_text(text)
        except OSError as exc:
            raise AnasimError(f"{dest}: cannot write netlist: {exc.strerror or exc}") from None
    elif dest is not None:
        dest.write(text)
    return text
