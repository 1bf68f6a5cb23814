"""ngspice's writer: circuit IR + run -> deck text (the dialect; nothing else writes its syntax).

Where it sits: the :class:`~anasim.sim.ngspice.Ngspice` engine writes every deck through
``netlist(circuit, run=None)``: one self-contained deck of title and provenance comments,
one ``.func`` per I-V curve, the elements (op-amps expanded by their macro-model), and, when a
:class:`~anasim.circuit.stimulus.Run` is given, its stimulus sources and a ``.control`` block
(options from its tolerances, analysis, what to save, in files :func:`results_file` names). The
same inputs give the same bytes, so a content hash can name a run. Names and expressions are
validated first; comment text is reduced to printable ASCII.

Devices stay pwl B-sources, not OSDI instances of the Verilog-A library (issue 31, item 2;
benchmarks/osdi.py and osdi_runs.py, results/osdi.json): OSDI ran a compiled deck's devices 2-3x
faster, but the decks of anasim's runs factor and inline them, and there it saved 0 to 10% of a
run's CPU (wired Fashion-MNIST 64-row tiles: ngspice 1.145x), only under ``set num_threads=1``
(ngspice's default OpenMP threads made it slower), with outputs up to 3.7e-9 of the range apart.
"""

from __future__ import annotations

import math
from functools import lru_cache
from io import StringIO
from typing import TextIO

import numpy as np

from ...circuit import expr as ex
from ...circuit.blocks import primitives
from ...circuit.ir import (
    VCCS,
    VCVS,
    Branch,
    BSource,
    Capacitor,
    Circuit,
    Clipper,
    Curve,
    Device,
    ISource,
    OpAmp,
    Resistor,
    Table,
    VSource,
    check_expr,
    comment_text,
    file_name,
    ident,
    num,
)
from ...circuit.stimulus import Dc, InitialState, Run, SampleSweep, TimeSequence, Tran, Waveforms
from ...errors import AnasimError

PREFIX = {Resistor: "R", Capacitor: "C", VSource: "V", ISource: "I", VCVS: "E", VCCS: "G", BSource: "B", Clipper: "B"}


def curve_func(curve: str) -> str:
    return f"iv_{curve}"


def _leaf(e, inner) -> str:
    if isinstance(e, ex.Num):
        return str(e.value) if type(e.value) is int else num(e.value)
    if isinstance(e, ex.V):
        return f"V({e.p})" if e.n is None else f"V({e.p},{e.n})"
    if isinstance(e, ex.Call):
        return f"{e.fn}({','.join(map(inner, e.args))})"
    if isinstance(e, ex.Pwl):  # the knots as Python's shortest exact repr, as every other number
        return f"pwl({inner(e.x)},{','.join(map(repr, e.points))})"
    if isinstance(e, ex.Curve):
        return f"{curve_func(e.name)}({inner(e.x)})"
    raise AnasimError(f"netlister: no ngspice form for the expression node {type(e).__name__}")


def expression(e) -> str:
    """A behavioural source's expression tree (:mod:`anasim.circuit.expr`) as ngspice text."""
    return ex.infix(e, _leaf)


def card_name(e) -> str:
    """The element's name in ngspice (type letter + name), e.g. for reading its branch current."""
    return f"{'B' if isinstance(e, Device | Table | Branch) else PREFIX[type(e)]}{e.name}"


def _v(node: str) -> str:
    return "0" if node == "0" else f"V({node})"


def _element(e, curves: dict, ic: dict, inline: bool = False, grounds: frozenset = frozenset()) -> str:
    if isinstance(e, Device):
        curve = curves[e.curve]
        gain = e.area * curve.amps_per_unit * e.scale
        v = _driven_by(e, grounds)
        bias = v if e.shift == 0 else f"{v}-{num(e.shift)}"
        if inline and curve.table:  # the device's own table: x, gain * I(x)
            xs, ys = _knots(curve.table)
            return f"B{e.name} {e.p} {e.n} I=pwl({bias},{_pairs(xs, (ys * gain).tolist())})"
        return f"B{e.name} {e.p} {e.n} I={num(gain)}*{curve_func(e.curve)}({bias})"
    if isinstance(e, Table):
        # a Table holds Python floats (validated finite): their repr is num()'s text, at less cost;
        # the tables of one layer share their knots
        pts = _pairs(_knot_text(e.table[0::2]), e.table[1::2])
        return f"B{e.name} {e.p} {e.n} I=pwl({_driven_by(e, grounds)},{pts})"
    if isinstance(e, Branch):
        thetas = dict(zip("abc", (num(t) for t in e.theta)))
        law = e.law.format(vs=_v(e.p), vd=_v(e.n), **thetas)
        # a scheduled branch: its current times unit steps of time (u(x) = 1 for x > 0, else 0)
        gate = ("" if e.on is None else f"u(time-{num(e.on)})*") + ("" if e.off is None else f"u({num(e.off)}-time)*")
        return f"B{e.name} {e.p} {e.n} I={gate}({law})" if gate else f"B{e.name} {e.p} {e.n} I={law}"
    if isinstance(e, Resistor):
        return f"R{e.name} {e.p} {e.n} {num(e.value)}"
    if isinstance(e, Capacitor):
        v0 = ic.get(e.p) if e.n == "0" else None
        return f"C{e.name} {e.p} {e.n} {num(e.value)}" + (f" ic={num(v0)}" if v0 is not None else "")
    if isinstance(e, VSource) and e.external:
        # ngspice 39 (Debian 39.3) segfaults on any value before 'external' ('dc 0 external')
        return f"V{e.name} {e.p} {e.n} external"
    if isinstance(e, VSource | ISource):
        return f"{PREFIX[type(e)]}{e.name} {e.p} {e.n} dc {num(e.dc)}"
    if isinstance(e, VCVS | VCCS):
        return f"{PREFIX[type(e)]}{e.name} {e.p} {e.n} {e.cp} {e.cn} {num(e.gain)}"
    if isinstance(e, BSource):
        return f"B{e.name} {e.p} {e.n} {e.kind}={expression(e.expr)}"
    raise AnasimError(f"netlister: no ngspice form for {type(e).__name__}")


@lru_cache(maxsize=64)
def _knots(table: tuple[float, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """A curve's knots as text and its currents as an array: a device's inlined table is these
    knots and its gain times the currents (float64 products, as Python's), per device."""
    t = np.asarray(table, dtype=float)
    return tuple(num(x) for x in t[0::2]), t[1::2]


def _driven_by(e, grounds: frozenset) -> str:
    """The voltage a device or table is driven by: V(p) into a virtual ground (see Circuit), else V(p, n)."""
    return f"V({e.p})" if e.n in grounds else f"V({e.p},{e.n})"


def _pairs(xs: tuple[str, ...], ys) -> str:
    """``x0,i0,x1,i1,...`` from the knots' text and the currents (Python floats, written by repr)."""
    pts = [""] * (2 * len(xs))
    pts[0::2], pts[1::2] = xs, map(repr, ys)
    return ",".join(pts)


@lru_cache(maxsize=64)
def _knot_text(xs: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(map(repr, xs))


@lru_cache(maxsize=4096)
def _points(column: bytes) -> str:
    """``0,x0,1,x1,...`` of one input column (float64 bytes): the bulk of a deck, and the same
    text for every part of a circuit that a chunk of samples runs through. A point inside a run
    of equal values is left out: the line between the run's ends gives it exactly (a quarter to a
    third of the points of image inputs: background pixels, clipped rows)."""
    col = np.frombuffer(column)
    col = col if len(col) > 1 else np.repeat(col, 2)  # pwl needs two points
    keep = np.ones(len(col), dtype=bool)
    keep[1:-1] = (col[1:-1] != col[:-2]) | (col[1:-1] != col[2:])
    # repr of the Python floats, as num() writes them; map() and one join rather than an f-string
    # per point (588 columns of 1,000 samples: 0.34 s against 0.52 s)
    return _pairs(_index_text(len(col))[keep], col[keep].tolist())


@lru_cache(maxsize=8)
def _index_text(n: int) -> np.ndarray:
    """The sample indices 0..n-1 as text (an object array, to pick the kept ones)."""
    return np.array([str(k) for k in range(n)], dtype=object)


def _stimulus(circuit: Circuit, stim) -> list[str]:
    if isinstance(stim, SampleSweep):
        x = np.asarray(stim.x, dtype=np.float64)
        lines = ["* inputs: sample s is applied while V(idx) = s", "Vidx idx 0 dc 0"]
        for i, node in enumerate(circuit.inputs):
            lines.append(f"Bin{i} {node} 0 V=pwl(V(idx),{_points(x[:, i].tobytes())})")
        if len(x) and any(isinstance(e, OpAmp) and e.rails is not None for e in circuit.elements):
            # Op-amps with rails (tanh) diverge from ngspice's all-zero first guess: devices
            # linearized at 0 V bias predict a TIA output beyond the rails, and Newton on a
            # saturated tanh has no gain left to come back (digits TD-KAN, rails 10 V that no
            # output reaches: 83 of 100 samples failed). Starting at the first sample's inputs it
            # converges in a few iterations; later sweep points start from the previous one.
            lines += [f".nodeset v({node})={num(x[0, i])}" for i, node in enumerate(circuit.inputs)]
        return lines
    if isinstance(stim, TimeSequence):
        lines = ["* inputs: sample k is applied from t = k*T (ramp 'rise') and read at t = (k+1)*T"]
        for i, node in enumerate(circuit.inputs):
            pts, prev = [f"0 {num(stim.x0[i])}"], stim.x0[i]
            for k, value in enumerate(stim.x[:, i]):
                t = k * stim.period + stim.rise  # the first switch leaves one ramp of settled x0
                pts += [f"{num(t)} {num(prev)}", f"{num(t + stim.rise)} {num(value)}"]
                prev = value
            lines.append(f"Vin{i} {node} 0 pwl({' '.join(pts)})")
        return lines
    if isinstance(stim, Waveforms):
        # B-sources, not pwl voltage sources: every corner of a source's pwl is a breakpoint ngspice
        # must land on, and 256 waveforms of 800 points each took a Fashion-MNIST layer-1 part
        # from minutes to beyond the hour; pwl(time) interpolates the same lines without them
        lines = ["* inputs: waveforms computed by the stage before"]
        for i, (node, t, v) in enumerate(zip(circuit.inputs, stim.t, stim.v, strict=True)):
            pts = ",".join(f"{a!r},{b!r}" for a, b in zip(np.asarray(t, float).tolist(), np.asarray(v, float).tolist()))
            lines.append(f"Bin{i} {node} 0 V=pwl(time,{pts})")
        return lines
    return []


def _breakpoints(a) -> list[str]:
    """A source of 0 V whose pwl corners are the transient's breakpoints: ngspice lands a time
    point on each corner and restarts its integration there (it has no breakpoint statement)."""
    if not isinstance(a, Tran) or not a.breakpoints:
        return []
    times = [0.0, *a.breakpoints, a.stop]
    if not all(math.isfinite(t) for t in times) or not all(t0 < t1 for t0, t1 in zip(times, times[1:])):
        raise AnasimError(f"netlister: breakpoints {a.breakpoints} must rise strictly between 0 and {a.stop} s")
    return [
        "* breakpoints: time points at which scheduled branches switch",
        f"Vbreaks anasim_breaks 0 pwl({' '.join(f'{num(t)} 0' for t in times)})",
    ]


def _analysis(a) -> str:
    if isinstance(a, Dc):
        return f"dc V{a.source} {num(a.start)} {num(a.stop)} {num(a.step)}"
    if isinstance(a, Tran):
        tail = f" 0 {num(a.max_step)}" if a.max_step is not None else ""
        return f"tran {num(a.step)} {num(a.stop)}{tail}{' uic' if a.uic else ''}"
    raise AnasimError(f"netlister: unknown analysis {a!r}")


RESULTS = "out"  # the stem of a run's data file when the Run names none (out.txt, out.raw)
# The options of a Run's tolerances, in the order the decks have always written them (the golden
# decks stay byte for byte); ngspice reads the options of one line in any order.
OPTION_ORDER = {
    Dc: ("reltol", "vntol", "abstol", "chgtol", "trtol"),
    Tran: ("reltol", "abstol", "vntol", "trtol", "chgtol"),
}


def results_file(run: Run) -> str:
    """The file a deck of ``run`` writes its saved vectors to: a text table (``wrdata``), or an
    ASCII raw file of every vector when the run saves everything."""
    return f"{file_name(run.name or RESULTS)}{'.raw' if run.save is None else '.txt'}"


# A Run's trtol is a factor on the truncation-error tolerance as VACASK estimates it (its
# tran_lteratio); ngspice's SPICE3 estimate of the same tolerances lets its trapezoidal steps grow
# longer. KirchhoffNet's layers (the only runs that set trtol) at reltol 1e-8, steps up to T/200,
# trtol 1 (Friedman example, 20 / 8 test samples; 3-layer example, 20): VACASK 3.9e-8 / 9.0e-8 /
# 1.6e-7 of the output range from torchdiffeq, ngspice at trtol 1 5.3e-7 / 1.2e-6 / 6.7e-7, at
# 0.3 2.4e-7 / 6.3e-7 / 6.8e-7, at 0.1 1.4e-7 / 3.1e-7 / 3.5e-7 (engines 1e-7 / 2.2e-7 / 3.7e-7
# apart) for 1.9x / 1.8x / 1.8x its time points at trtol 1 (issue 31).
TRTOL_SCALE = 0.1


def options(run: Run) -> dict[str, float]:
    """``option`` name -> value of a run: its tolerances (trtol scaled to ngspice's estimate),
    then its ngspice-only settings."""
    found = {k: v for k in OPTION_ORDER[type(run.analysis)] if (v := getattr(run.tolerances, k)) is not None}
    if "trtol" in found and isinstance(run.analysis, Tran):
        found["trtol"] = float(f"{found['trtol'] * TRTOL_SCALE:.12g}")  # 0.1, not 0.10000000000000001
    found |= run.extra.get("ngspice", {})
    for key in found:
        if not key.isalpha():
            raise AnasimError(f"netlister: option name {key!r} is not a plain word")
    return found


def _control(run: Run) -> list[str]:
    # no_mem_check: ngspice 46 refuses to start when its saved vectors might exceed MemFree (not
    # MemAvailable), which a busy machine's page cache hides (met on a 128-row tile); 39 ignores it
    lines = ["set wr_singlescale", "set wr_vecnames", "set no_mem_check", "option numdgt=12"]
    opts = options(run)
    if opts:
        lines.append("option " + " ".join(f"{k}={num(v)}" for k, v in opts.items()))
    lines.append(_analysis(run.analysis))
    if run.save is None:
        lines += ["set filetype=ascii", f"write {results_file(run)} all"]
    else:
        lines.append(f"wrdata {results_file(run)} {' '.join(run.save)}")
    for label, node in run.finals:  # the last value of each node's vector, printed to 12 digits
        lines.append(f"let {ident(label)} = v({ident(node)})[length(v({node}))-1]")
    if run.finals:
        lines.append(f"print {' '.join(label for label, _ in run.finals)}")
    lines.append("rusage everything")  # the engine's counters, read back from the log
    return [".control", *lines, "quit", ".endc"]


def _body(circuit: Circuit, ic: dict, inline: bool) -> str:
    circuit.validate()
    curves = {c.name: c for c in circuit.curves}
    lines = [f"* {comment_text(circuit.title)}", *(f"* {comment_text(h)}" for h in circuit.header)]
    lines += [f".include {path}" for path in circuit.includes]
    # an inlined deck writes every tabled device as its own pwl: its .func would go unused, and
    # ngspice looks for .func calls line by line (a digits Monte Carlo layer-0 deck of 1,088
    # tables: 'Subckt and Param expansion' 0.17 -> 0.11 s, medians of 6 runs in turns)
    lines += [f".func {curve_func(c.name)}(x) {{{c.body}}}" for c in circuit.curves if not (inline and c.table)]
    grounds = frozenset(circuit.virtual_grounds)
    lines += [_element(e, curves, ic, inline, grounds) for e in primitives(circuit)]
    return "\n".join(lines)


# A trained Fashion-MNIST [784,256,10] edge layer runs as 124 parts of about 1.2 MB of text each:
# 160 bodies hold a whole network while a Monte Carlo worker's stale ones cannot pile up.
@lru_cache(maxsize=160)
def _swept_body(circuit: Circuit, inline: bool) -> str:
    """The body of a circuit swept chunk after chunk: written once (a frozen circuit hashes by value)."""
    return _body(circuit, {}, inline)


def write_ngspice(circuit: Circuit, out: TextIO, run: Run | None = None) -> None:
    if run is not None:
        options(run)  # refused before any text is written
    inline = run is not None and run.compact
    if run is not None and isinstance(run.stimulus, SampleSweep):
        lines = [_swept_body(circuit, inline)]
    else:
        ic = run.stimulus.voltages if run and isinstance(run.stimulus, InitialState) else {}
        lines = [_body(circuit, ic, inline)]
    if run is not None:
        # the engine and solver under the title (the first line of a deck is its title)
        title, _, rest = lines[0].partition("\n")
        lines[0] = "\n".join([title, f"* {comment_text(_engine_line(run))}", *([rest] if rest else [])])
        if run.solver == "klu":  # a card, not a control-block option: the matrix is set up at parse time
            lines.append(".options klu")
        lines += _stimulus(circuit, run.stimulus) + _breakpoints(run.analysis) + _control(run)
    out.write("\n".join(lines) + "\n.end\n")


def _engine_line(run: Run) -> str:
    if run.solver not in ("klu", "sparse"):
        raise AnasimError(f"netlister: solver {run.solver!r} is not klu or sparse")
    if run.solver == "klu":
        return f"engine {run.engine}, solver KLU (.options klu; an ngspice without KLU ignores it and uses Sparse)"
    return f"engine {run.engine}, solver Sparse (ngspice's default)"


def netlist(circuit: Circuit, run: Run | None = None) -> str:
    """``circuit`` (and ``run``, if given) as an ngspice deck (files: :func:`anasim.sim.engine.netlist`)."""
    buf = StringIO()
    write_ngspice(circuit, buf, run)
    return buf.getvalue()


def subckt(name: str, curve: Curve, comments=()) -> str:
    """A two-terminal device as a library subcircuit: ``X<inst> anode cathode <name> area=A`` draws
    ``area * amps_per_unit * I(V(anode, cathode))`` from anode to cathode; the curve is a .func
    local to the subcircuit, as in the decks anasim writes."""
    ident(name)
    ident(curve.name)
    check_expr(curve.body, f"curve {curve.name}")
    lines = [*(f"* {comment_text(c)}" for c in comments), f".subckt {name} a k area=1"]
    lines += [f".func {curve_func(curve.name)}(x) {{{curve.body}}}"]
    lines += [f"B1 a k I={{area*{num(curve.amps_per_unit)}}}*{curve_func(curve.name)}(V(a,k))", f".ends {name}"]
    return "\n".join(lines) + "\n"
