"""VACASK's writer: circuit IR + run -> deck text in VACASK's Spectre-like dialect (nothing else writes it).

Where it sits: the :class:`~anasim.sim.vacask.Vacask` engine writes every deck through
:func:`deck`: a title, provenance comments (``//``), ``load`` of VACASK's own OSDI models
(resistor, capacitor) and of the compiled Verilog-A modules of the circuit's behavioural
elements (:mod:`.modules`), one ``model`` per master, the instances, the stimulus and, when a
:class:`~anasim.circuit.stimulus.Run` is given, a ``control`` block (options from its
tolerances, what to save, the sweep or the transient). The same inputs give the same bytes.

Names: instances are the IR's checked names behind a type letter, as in ngspice decks
(``R<name>``, ``B<name>``...); nodes are the IR's checked identifiers, single-quoted where one
is a word VACASK reserves. Numbers are finite floats' shortest repr (always a real: ``1.0``, ``1e-08``);
the lists of samples (and the Monte Carlo lane's scaled values) carry 17 significant digits (:func:`numbers`).

The samples of a DC sweep (:class:`~anasim.circuit.stimulus.SampleSweep`): one subcircuit holds
a voltage source per input, its ``dc`` the element i of its vector parameter ``x``; the control
block sweeps ``x`` over the list of the samples' input vectors (``values={[...], [...]}``). One
parse, one set-up, no parameter per sample: a point re-evaluates only the input sources.
Measured (2 shared cores, the input sources into resistors alone, 1,000 samples): 0.095 CPU s
for 64 inputs, 1.0 s for 784 (parse included), linear in samples and inputs. Indexing one flat
vector of all samples instead (``x[k*inputs+i]``, sweeping ``k``) copies that vector at every
source and point: 1.0 s for 64 inputs, 182 s for a Fashion-MNIST layer (784 inputs) where the
list took 5.6 s whole.

A deck run by anasim loads the compiled modules as ``anasim_<hash>.osdi`` (the engine puts the
cached file in the run folder); a deck written to be run alone (``compile``: a Run with a
name, or no Run) embeds their Verilog-A source, which VACASK compiles with its ``openvaf-r``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...circuit.blocks import primitives
from ...circuit.ir import (
    VCCS,
    VCVS,
    Branch,
    BSource,
    Capacitor,
    Circuit,
    Device,
    ISource,
    OpAmp,
    Resistor,
    Table,
    VSource,
    comment_text,
    file_name,
    ident,
    num,
)
from ...circuit.stimulus import Dc, InitialState, Run, SampleSweep, TimeSequence, Tran, Waveforms
from ...errors import AnasimError
from .modules import Library

NAME = "vacask"
# words VACASK reads as statements at the start of a line or reserves (docs: input-reserved.md)
RESERVED = frozenset(
    "include section endsection load model global ground subckt ends parameters control endc analysis sweep "
    "embed save var options alter print abort clear elaborate postprocess".split()
)
PREFIX = {Resistor: "R", Capacitor: "C", VSource: "V", ISource: "I", VCVS: "E", VCCS: "G"}
MASTER = {Resistor: "resistor", Capacitor: "capacitor", VSource: "vsource", ISource: "isource", VCVS: "vcvs",
          VCCS: "vccs"}  # fmt: skip
OSDI = {Resistor: "resistor.osdi", Capacitor: "capacitor.osdi"}  # VACASK's own compiled models
SAMPLES = "anasim_samples"  # the subcircuit of a sample sweep's input sources
STIMULUS = f"X{SAMPLES}"
RESULTS = "out"  # the analysis (and raw file) of a Run without a name
# a Run's tolerances -> VACASK options (trtol: its LTE overestimation factor, SPICE's trtol)
OPTIONS = {"reltol": "reltol", "vntol": "vntol", "abstol": "abstol", "chgtol": "chgtol", "trtol": "tran_lteratio"}


# A transient's first step (and the first after a breakpoint): VACASK takes a quarter of the step
# (tran_fs 0.25), a first-order step whose error no LTE estimate controls; ngspice starts far
# smaller. KirchhoffNet (friedman, reltol 1e-6), end voltages against torchdiffeq's: 9.2e-5 of the
# range with 0.25, 2.8e-6 with 0.01, 3.4e-6 with 1e-3 (ngspice: 1.3e-5), 2% more time points;
# its 3-layer deck gated in time, against ngspice at reltol 1e-8: 4.8e-6 with 0.01, 4.5e-5 with
# 1e-3, 2e-4 with 1e-4 (ngspice at 1e-6: 1.2e-5).
TRAN = {"tran_fs": 0.01}


def node(name: str) -> str:
    """A node as VACASK reads it: the checked identifier, quoted where VACASK reserves the word."""
    ident(name)
    return f"'{name}'" if name in RESERVED else name


def card_name(e) -> str:
    """The instance name of an IR element (or op-amp primitive): its type letter and its name."""
    return f"{PREFIX.get(type(e), 'B')}{e.name}"


def analysis_name(run: Run) -> str:
    """The analysis of ``run`` (VACASK names its raw file after it): an identifier from its name."""
    text = file_name(run.name or RESULTS).replace(".", "_").replace("-", "_")
    return text if text[:1].isalpha() else f"a_{text}"


def results_file(run: Run) -> str:
    return f"{analysis_name(run)}.raw"


@dataclass(frozen=True)
class Body:
    """A circuit's instances and the Verilog-A its behavioural elements need."""

    lines: tuple[str, ...]
    masters: tuple[str, ...]  # builtin and OSDI masters used (model lines)
    osdi: tuple[str, ...]  # VACASK's own OSDI files to load
    va: str  # the Verilog-A source of the generated modules ("" when none)
    owners: tuple[tuple[str, str], ...]  # module -> the element it was first written for
    # each line's instance: (instance name, its line up to the parameters, the parameters' text);
    # what a Monte Carlo rerun alters (:mod:`.alter`) where only the parameters differ
    instances: tuple[tuple[str, str, str], ...] = ()


def _params(params) -> str:
    return " ".join(f"{k}={num(v)}" for k, v in params)


@lru_cache(maxsize=64)
def body(circuit: Circuit) -> Body:
    """The instances of ``circuit`` (validated) and its modules: written once per circuit."""
    circuit.validate()
    curves = {c.name: c for c in circuit.curves}
    grounds = frozenset(circuit.virtual_grounds)
    lib, masters, osdi, instances = Library(), set(), set(), []
    for e in primitives(circuit):
        kind = type(e)
        if kind in MASTER:
            if isinstance(e, VSource) and e.external:
                raise AnasimError(
                    f"source {e.name}: its value comes from a program running the simulator as a library "
                    "(lock-step), which only the ngspice engine does"
                )
            masters.add(MASTER[kind])
            if kind in OSDI:
                osdi.add(OSDI[kind])
            ends = f"({' '.join(node(n) for n in _nodes(e))})"
            value = {Resistor: "r", Capacitor: "c", VSource: "dc", ISource: "dc"}.get(kind, "gain")
            amount = e.value if kind in (Resistor, Capacitor) else (e.dc if kind in (VSource, ISource) else e.gain)
            instances.append((card_name(e), f"{card_name(e)} {ends} {MASTER[kind]}", f"{value}={num(amount)}"))
            continue
        if isinstance(e, Device):
            use = lib.device(e, curves[e.curve], e.n in grounds)
        elif isinstance(e, Table):
            use = lib.table(e, e.n in grounds)
        elif isinstance(e, Branch):
            use = lib.expression(e.name, e.p, e.n, "I", branch_law(e))
        elif isinstance(e, BSource):
            use = lib.expression(e.name, e.p, e.n, e.kind, e.expr)
        else:
            raise AnasimError(f"VACASK writer: no form for {type(e).__name__} {e.name}")
        ends = f"({' '.join(node(n) for n in use.ports)})"
        instances.append((card_name(e), f"{card_name(e)} {ends} {use.module}", _params(use.params)))
    va = lib.source() if lib.modules else ""
    lines = tuple(f"{head} {params}".rstrip() for _, head, params in instances)
    return Body(lines, tuple(sorted(masters | set(lib.modules))), tuple(sorted(osdi)), va,
                tuple(sorted(lib.owners.items())), tuple(instances))  # fmt: skip


def _nodes(e) -> tuple[str, ...]:
    return (e.p, e.n, e.cp, e.cn) if isinstance(e, VCVS | VCCS) else (e.p, e.n)


def branch_law(e: Branch) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A branch's current: its law (a template of the family's, ngspice syntax) filled in with
    its thetas and the placeholder names ``anasim_vs`` / ``anasim_vd`` for V(p) / V(n), times
    unit steps of time when it is scheduled; and the nodes those names stand for."""
    v = {"vs": "0" if e.p == "0" else "anasim_vs", "vd": "0" if e.n == "0" else "anasim_vd"}
    law = e.law.format(**v, **dict(zip("abc", (num(t) for t in e.theta))))
    gate = ("" if e.on is None else f"u(time-{num(e.on)})*") + ("" if e.off is None else f"u({num(e.off)}-time)*")
    return (f"{gate}({law})" if gate else law), (("anasim_vs", e.p), ("anasim_vd", e.n))


def va_file(va: str) -> str:
    """The name a deck loads its compiled modules by: the content hash of their source."""
    return f"anasim_{hashlib.sha256(va.encode()).hexdigest()[:16]}"


def _vector(values) -> str:
    return "[" + ", ".join(map(repr, np.asarray(values, dtype=float).tolist())) + "]"


def _stimulus(circuit: Circuit, stim) -> list:
    """The stimulus lines: fixed text, and the input sources as instances (name, head, parameters)."""
    if isinstance(stim, SampleSweep):
        x = np.asarray(stim.x, dtype=np.float64)
        k = len(circuit.inputs)
        if x.ndim != 2 or x.shape[1] != k:
            raise AnasimError(f"VACASK writer: samples of shape {x.shape} for {k} inputs")
        first = x[0] if len(x) else np.zeros(k)
        return [
            "// inputs: the control block sweeps x, the vector of the input voltages, over the samples",
            f"subckt {SAMPLES}({' '.join(f'i{i}' for i in range(k))})",
            f"  parameters x={_vector(np.zeros(k))}",
            *(f"  Vin{i} (i{i} 0) vsource dc=x[{i}]" for i in range(k)),
            "ends",
            (STIMULUS, f"{STIMULUS} ({' '.join(node(n) for n in circuit.inputs)}) {SAMPLES}", f"x={_vector(first)}"),
        ]
    if isinstance(stim, TimeSequence):
        lines = ["// inputs: sample k is applied from t = k*T (ramp 'rise') and read at t = (k+1)*T"]
        for i, name in enumerate(circuit.inputs):
            pts, prev = [0.0, float(stim.x0[i])], float(stim.x0[i])
            for kk, value in enumerate(np.asarray(stim.x[:, i], dtype=float).tolist()):
                t = kk * stim.period + stim.rise
                pts += [t, prev, t + stim.rise, value]
                prev = value
            lines.append((f"Vin{i}", f"Vin{i} ({node(name)} 0) vsource", f'type="pwl" wave={_vector(pts)}'))
        return lines
    if isinstance(stim, Waveforms):
        lines = ["// inputs: waveforms computed by the stage before"]
        for i, (name, t, v) in enumerate(zip(circuit.inputs, stim.t, stim.v, strict=True)):
            pts = np.stack([np.asarray(t, float), np.asarray(v, float)], axis=1).reshape(-1)
            lines.append((f"Vin{i}", f"Vin{i} ({node(name)} 0) vsource", f'type="pwl" wave={_vector(pts)}'))
        return lines
    return []


def _breakpoints(a) -> list[str]:
    """A source whose pwl corners are the transient's breakpoints (VACASK lands a time point on
    each corner of a pwl source): values alternate so that every corner is one."""
    if not isinstance(a, Tran) or not a.breakpoints:
        return []
    times = [0.0, *a.breakpoints, a.stop]
    if not all(math.isfinite(t) for t in times) or not all(t0 < t1 for t0, t1 in zip(times, times[1:])):
        raise AnasimError(f"VACASK writer: breakpoints {a.breakpoints} must rise strictly between 0 and {a.stop} s")
    wave = [v for j, t in enumerate(times) for v in (t, float(j % 2))]
    return ["// breakpoints: time points at which scheduled branches switch",
            ("Vanasim_breaks", "Vanasim_breaks (anasim_breaks 0) vsource", f'type="pwl" wave={_vector(wave)}')]  # fmt: skip


# the text of the latest sample lists, by their bytes: each realization of a Monte Carlo batch
# writes the first layer's samples (the same numbers); their text was 70% of the writing of a
# digits [64,16,10] realization's decks. Written under the lock: the batch's threads would all miss at once.
_SAMPLE_TEXT: dict[tuple, str] = {}
_SAMPLE_KEEP = 4  # least recently used out: one batch's first layer survives its later layers' 8 lists
_SAMPLE_LOCK = threading.Lock()


@lru_cache(maxsize=32)
def _template(shape: tuple[int, ...]) -> str:
    # "%.17g" for every number of an array of this shape: a list, or a list of vectors (rows)
    if len(shape) == 1:
        return "[" + ", ".join(["%.17g"] * shape[0]) + "]"
    row = _template(shape[1:])
    return "{" + ", ".join([row] * shape[0]) + "}"


def numbers(x: np.ndarray) -> str:
    """Numbers as a VACASK list ``[a, b]`` (a vector: 1-d) or list of vectors ``{[a, b],
    [c, d]}`` (2-d), each with 17 significant digits: VACASK reads them back to the same doubles
    (tests/test_vacask.py, bit for bit), and one format over them all is 1.5x faster than the
    floats' reprs (a Monte Carlo realization's later-layer samples: 2.6 -> 1.7 ms)."""
    x = np.asarray(x, dtype=np.float64)
    return _template(x.shape) % tuple(x.ravel().tolist())


def _samples(x: np.ndarray) -> str:
    """The samples as a VACASK list of vectors, one per sample: ``{[x00, x01], [x10, x11]}``.
    The bulk of a deck (:func:`numbers`); the text of samples written recently (their bytes
    equal) is reused."""
    if not len(x):
        raise AnasimError("VACASK writer: a sample sweep of no samples")
    x = np.ascontiguousarray(x, dtype=np.float64)
    key = (x.shape, hashlib.sha256(x.tobytes()).digest())
    with _SAMPLE_LOCK:
        text = _SAMPLE_TEXT.pop(key, None)
        if text is None:
            text = numbers(x)
        _SAMPLE_TEXT[key] = text  # now the most recent
        while len(_SAMPLE_TEXT) > _SAMPLE_KEEP:
            del _SAMPLE_TEXT[next(iter(_SAMPLE_TEXT))]  # the least recent: dicts keep insertion order
    return text


def options(run: Run) -> dict[str, str]:
    """VACASK option name -> value (as deck text) of a run: its tolerances, then its VACASK-only
    settings (numbers, or plain words such as ``tran_method="gear"``)."""
    found = {OPTIONS[k]: v for k in OPTIONS if (v := getattr(run.tolerances, k)) is not None}
    if isinstance(run.analysis, Tran):
        found |= TRAN
    found |= run.extra.get(NAME, {})
    text = {}
    for key, value in found.items():
        if not key.replace("_", "").isalpha():
            raise AnasimError(f"VACASK writer: option name {key!r} is not a plain word")
        if isinstance(value, str):
            if not value.isalnum():
                raise AnasimError(f"VACASK writer: option {key} = {value!r} is not a plain word")
            text[key] = f'"{value}"'
        elif math.isfinite(float(value)):
            text[key] = num(value)
        else:
            raise AnasimError(f"VACASK writer: option {key} = {value!r} is not a finite number")
    return text


def _nodeset(voltages: dict[str, float]) -> str:
    return "{" + ", ".join(f'"{ident(n)}", {num(v)}' for n, v in voltages.items()) + "}"


def control_block(circuit: Circuit, run: Run, rails: bool | None = None) -> tuple[list[str], tuple[str, str] | None,
                                                                             tuple[str, str]]:  # fmt: skip
    """The control block: its lines before the sweep, the sweep (its line up to the samples, and
    the samples' text or ""), and the analysis (its name, and what follows the name). ``rails``:
    whether the circuit has op-amps with rails, when the caller knows (None: look)."""
    lines = ["control", "  abort always", '  options rawfile="binary"']
    opts = options(run)
    if opts:
        lines.append("  options " + " ".join(f"{k}={v}" for k, v in opts.items()))
    if run.save is None:
        lines.append("  save default")
    else:
        lines.append("  save " + " ".join(f"v({node(n)})" for n in run.save))
    name, a, stim, sweep = analysis_name(run), run.analysis, run.stimulus, None
    if isinstance(a, Dc):
        if isinstance(stim, SampleSweep) and a.source == "idx":
            x = np.asarray(stim.x, dtype=np.float64)
            lines.append("  options sweep_debug=1")  # a line as each point starts: the runner's progress
            sweep = (f'  sweep idx instance="{STIMULUS}" parameter="x"', _samples(x))
        else:
            ident(a.source)
            sweep = (f'  sweep {ident(a.source)} instance="V{a.source}" parameter="dc" from={num(a.start)} '
                     f"to={num(a.stop)} step={num(a.step)}", "")  # fmt: skip
        op = "op"
        if isinstance(stim, SampleSweep) and len(stim.x) and (has_rails(circuit) if rails is None else rails):
            # as ngspice's .nodeset: op-amps with tanh rails diverge from the all-zero first guess
            op += " nodeset=" + _nodeset(dict(zip(circuit.inputs, np.asarray(stim.x[0], float).tolist())))
        analysis = (name, op)
    elif isinstance(a, Tran):
        tail = f" maxstep={num(a.max_step)}" if a.max_step is not None else ""
        if a.uic:
            ic = run.stimulus.voltages if isinstance(run.stimulus, InitialState) else {}
            tail += ' icmode="uic"' + (f" ic={_nodeset(ic)}" if ic else "")
        analysis = (name, f"tran step={num(a.step)} stop={num(a.stop)}{tail}")
    else:
        raise AnasimError(f"VACASK writer: unknown analysis {a!r}")
    return lines, sweep, analysis


def has_rails(circuit: Circuit) -> bool:
    return any(isinstance(e, OpAmp) and e.rails is not None for e in circuit.elements)


@dataclass(frozen=True)
class Parts:
    """A deck in the pieces a Monte Carlo rerun group (:mod:`.alter`) reads: everything but the
    instances' parameters, the samples and the analysis is the deck's shape; the rest may differ
    between realizations run in one process. :meth:`text` is the deck."""

    head: tuple[str, ...]  # title and comments, ground, loads, models
    body: Body
    stimulus: tuple  # fixed lines (str) and input sources (name, head, parameters)
    control: tuple[str, ...]  # the control block up to the sweep
    sweep: tuple[str, str] | None  # its line up to the samples, and their text ("": none)
    analysis: tuple[str, str] | None  # its name, and what follows the name
    tail: tuple[str, ...]  # "print stats", "endc", and an embedded Verilog-A file

    @staticmethod
    def line(item) -> str:
        return item if isinstance(item, str) else f"{item[1]} {item[2]}".rstrip()

    def text(self) -> str:
        lines = [*self.head, *self.body.lines, *map(self.line, self.stimulus), *self.control]
        if self.sweep is not None:
            lines.append(f"{self.sweep[0]} values={self.sweep[1]}" if self.sweep[1] else self.sweep[0])
        if self.analysis is not None:
            lines.append(f"  analysis {self.analysis[0]} {self.analysis[1]}")
        return "\n".join([*lines, *self.tail]) + "\n"

    def shape(self) -> tuple:
        """What decks run in one process must share: all but parameters, samples and analysis."""
        stim = tuple(s if isinstance(s, str) else s[1] for s in self.stimulus)
        heads = tuple(head for _, head, _ in self.body.instances)
        return (self.head, heads, stim, self.control, self.sweep and self.sweep[0], self.analysis and self.analysis[0],
                self.tail)  # fmt: skip


def deck(circuit: Circuit, run: Run | None = None, engine_line: str = "") -> tuple[str, Body]:
    """The deck text of ``circuit`` (and ``run``) and its body (the modules it loads). A Run
    with a name, or none, makes a deck to run alone: it embeds its Verilog-A."""
    p = parts(circuit, run, engine_line)
    return p.text(), p.body


def parts(circuit: Circuit, run: Run | None = None, engine_line: str = "") -> Parts:
    """The deck of :func:`deck` in its :class:`Parts`."""
    if run is not None:
        options(run)  # refused before any text is written
        if run.solver != "klu":
            raise AnasimError(f"VACASK writer: solver {run.solver!r}; VACASK solves with KLU only")
    b = body(circuit)
    alone = run is None or bool(run.name)
    lines = [comment_text(circuit.title) or "anasim circuit"]
    if engine_line:
        lines.append(f"// {comment_text(engine_line)}")
    lines += [f"// {comment_text(h)}" for h in circuit.header]
    if circuit.includes:
        raise AnasimError(
            "VACASK writer: a circuit that includes netlist files (--netlist) runs on the engine that wrote them; "
            "drop --engine vacask or --netlist"
        )
    lines.append("ground 0")
    lines += [f'load "{f}"' for f in b.osdi]
    if b.va:
        stem = va_file(b.va)
        lines.append(f'load "{stem}.va"' if alone else f'load "{stem}.osdi"')
    masters = set(b.masters)
    if run is not None and (
        isinstance(run.stimulus, SampleSweep | TimeSequence | Waveforms) or _breakpoints(run.analysis)
    ):
        masters.add("vsource")  # the input (and breakpoint) sources
    lines += [f"model {m} {m}" for m in sorted(masters)]
    stimulus, control, sweep, analysis, tail = [], [], None, None, []
    if run is not None:
        stimulus = _stimulus(circuit, run.stimulus) + _breakpoints(run.analysis)
        control, sweep, analysis = control_block(circuit, run)
        tail = ["  print stats", "endc"]  # print stats: the engine's counters, read back from the log
    if b.va and alone:
        tail += [f'embed "{va_file(b.va)}.va" <<<FILE', b.va.rstrip("\n"), ">>>FILE"]
    return Parts(tuple(lines), b, tuple(stimulus), tuple(control), sweep, analysis, tuple(tail))
