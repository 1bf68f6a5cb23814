"""Transient and power: latency of one inference and static power, from the same circuit IR.

* ``sequence`` time-multiplexes samples in one ``.tran``
  (:class:`~anasim.circuit.stimulus.TimeSequence`) and reads each at the end of its window. The
  settling time of a sample is the time from its switch until every output stays within ``tol``
  of its end-of-window value. Line capacitances and op-amp poles are lowering options.
* ``chained`` runs the same transient stage by stage, each stage in the DC runner's independent
  parts, each later stage driven by the waveforms of the stage before: a network too large for
  one transient deck gets its latency.
* ``static_power`` runs the DC operating point of each sample, writes every node voltage and
  source current, and sums V * I per element: dissipated in devices and resistors, delivered by
  op-amps (their macro-model's primitives), row drivers and bias sources. Op-amp quiescent
  power is not modelled.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.blocks import opamp_primitives
from ..circuit.ir import VCCS, VCVS, BSource, Capacitor, Circuit, Device, ISource, OpAmp, Resistor, Table, VSource
from ..circuit.stimulus import TimeSequence, Waveforms, sequence_run, sweep_run
from ..errors import AnasimError
from ..progress import Progress
from .batch import TUNED, deck_digest, part_size
from .engine import get_engine
from .partition import merge_parallel, split
from .run import SimResult, Vectors, add_counters


def sequence(circuit: Circuit, seq: TimeSequence, work: Path, tol: float) -> SimResult:
    """Outputs at the end of each sample's window [N, out]; ``extra["settle_s"]`` [N] in seconds."""
    vec = get_engine().run(circuit, sequence_run(seq, circuit.outputs), work)
    return _result(*windows(vec.scale, vec.table(circuit.outputs), seq, tol), work, dict(vec.counters))


def _result(outs: np.ndarray, settle: np.ndarray, work: Path, rusage: dict) -> SimResult:
    """A transient's SimResult: samples without an output in their window failed."""
    failed = {int(k): "transient: no output in the sample's window" for k in np.nonzero(~np.isfinite(outs).all(1))[0]}
    return SimResult(outs, failed, work, rusage=rusage, extra={"settle_s": settle})


def windows(t: np.ndarray, y: np.ndarray, seq: TimeSequence, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's outputs at the end of its window [N, out] and its settling time [N]: from its
    switch until every output stays within ``tol`` of its end value (inf: never in the window)."""
    n = len(seq.x)
    outs, settle = np.full((n, y.shape[1]), np.nan), np.full(n, np.nan)
    for k in range(n):
        start, end = k * seq.period + seq.rise, (k + 1) * seq.period + seq.rise
        win = (t >= start) & (t <= end + 1e-15)
        if not win.any():
            continue
        tw, yw = t[win], y[win]
        final = yw[-1]
        outs[k] = final
        off = np.nonzero(np.abs(yw - final).max(axis=1) > tol)[0]
        if len(off) == 0:
            settle[k] = 0.0
        elif off[-1] + 1 < len(tw):
            settle[k] = tw[off[-1] + 1] - start
        else:
            settle[k] = np.inf  # never settled within the window
    return outs, settle


def thin(t: np.ndarray, v: np.ndarray, tol: float) -> np.ndarray:
    """Indices of the points of the waveform (t, v) that its line through them keeps within
    ``tol`` of every point left out (Douglas-Peucker): a settled output needs two points."""
    keep, todo = {0, len(t) - 1}, [(0, len(t) - 1)]
    while todo:
        a, b = todo.pop()
        if b - a < 2:
            continue
        mid = np.arange(a + 1, b)
        line = v[a] + (v[b] - v[a]) * (t[mid] - t[a]) / (t[b] - t[a]) if t[b] > t[a] else np.full(len(mid), v[a])
        worst = int(np.argmax(np.abs(v[mid] - line)))
        if abs(v[mid[worst]] - line[worst]) > tol:
            keep.add(int(mid[worst]))
            todo += [(a, int(mid[worst])), (int(mid[worst]), b)]
    return np.array(sorted(keep))


def chained(
    stages: list[Circuit],
    seq: TimeSequence,
    work: Path,
    tol: float,
    jobs: int = 1,
    part_elements: int | str = TUNED,
    progress: bool = False,
) -> SimResult:
    """:func:`sequence` run stage by stage, each stage in its independent parts, ``jobs`` at a
    time: the transient of a circuit too large for one deck. Stages and parts are cut at ideal
    sources (op-amp outputs, clippers, the inputs; :func:`anasim.sim.partition.split`),
    which no load changes, so each part is the same equations as in the whole circuit, driven
    by the waveforms of the stage before (its outputs at every time point the engine took, thinned
    to 1e-6 of ``tol``). What differs from one transient of the whole circuit is each part's own
    time steps: within the engine's truncation error (``tests/test_transient.py`` compares them).
    ``part_elements``: nonlinear elements per part (:data:`~anasim.sim.batch.TUNED`: the engine's)."""
    rusage: dict[str, float] = {}
    waves: list | None = None  # per input of the stage: (t, v), the outputs of the stage before
    engine = get_engine()
    size, linear = part_size(part_elements), engine.tuning.part_linear
    split_stages = [split(merge_parallel(stage), size, linear) for stage in stages]
    bar = Progress(sum(map(len, split_stages)), engine.name, "transient parts") if progress else None
    for s, (stage, parts) in enumerate(zip(stages, split_stages, strict=True)):
        runs = []
        for p, part in enumerate(parts):
            cols = list(part.inputs)
            stim = None if waves is None else Waveforms(*zip(*(waves[i] for i in cols), strict=True))
            # the first stage's part: its columns of the samples; a later one: only the timing
            sub = replace(seq, x=seq.x[:, cols], x0=seq.x0[cols]) if waves is None else replace(seq, x=seq.x[:, :0])
            runs.append((part.circuit, sub, stim, work / f"stage{s}" / f"part{p:03d}"))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_part_run, *r) for r in runs]
            for fut in as_completed(futures):
                fut.result()  # a failed part stops the run here
                if bar is not None:
                    bar.update(1)
            done = [fut.result() for fut in futures]
        for vec in done:
            add_counters(rusage, vec.counters)
        waves = [None] * len(stage.outputs)
        for part, vec in zip(parts, done, strict=True):
            for j, out in enumerate(part.outputs):
                v = vec.voltages[part.circuit.outputs[j]]
                keep = thin(vec.scale, v, 1e-6 * tol)
                waves[out] = (vec.scale[keep], v[keep])
    outs, settle = np.full((len(seq.x), len(stages[-1].outputs)), np.nan), np.full(len(seq.x), -np.inf)
    for part, vec in zip(parts, done, strict=True):  # the last stage: each part on its own time points
        o, st = windows(vec.scale, vec.table(part.circuit.outputs), seq, tol)
        outs[:, list(part.outputs)] = o
        settle = np.maximum(settle, st)
    if bar is not None:
        bar.close()
    return _result(outs, settle, work, rusage)


def _part_run(circuit: Circuit, sub: TimeSequence, stim: Waveforms | None, where: Path) -> Vectors:
    """One part's transient: its outputs over time (no counters when ``where`` holds a finished
    run of the same deck: a stopped run continues; the DC chunks' stamp,
    :func:`anasim.sim.batch.deck_digest`)."""
    engine = get_engine()
    run = replace(sequence_run(sub, circuit.outputs, stim), compact=True)  # parsed 3x faster
    text = engine.write(circuit, run)
    digest, stamp = deck_digest(circuit, text), where / "deck.sha256"
    if stamp.is_file() and stamp.read_text() == digest and (vec := engine.load(circuit, run, where)) is not None:
        return vec
    vec = engine.run(circuit, run, where, deck=text)
    stamp.write_text(digest)  # last: a run cut short leaves no stamp and is run again
    return vec


CATEGORIES = ("devices", "resistors", "opamps", "drivers", "bias", "cells")


def static_power(circuit: Circuit, x: np.ndarray, work: Path) -> dict[str, np.ndarray]:
    """Power at each sample's operating point [N] (watts), by where it goes and where it comes
    from: ``devices`` and ``resistors`` dissipate; ``opamps`` (outputs, net of the macro-model's
    own elements), ``drivers`` (the row clippers and other voltage sources), ``bias`` (current
    sources) and ``cells`` (the shared mapping's VCCS crossbar cells) deliver. ``total`` is the
    power all sources deliver, which equals what the devices and resistors dissipate (Tellegen:
    the currents obey KCL at the operating point)."""
    engine = get_engine()
    tuning = engine.tuning
    run = replace(sweep_run(x, circuit.outputs, tuning.sweep, tuning.sweep_extra), save=None)
    vec = engine.run(circuit, run, work)
    n = len(vec.scale)
    curves = {c.name: c for c in circuit.curves}

    def volt(node):
        return 0.0 if node == "0" else vec.voltages[node]

    def absorbed(e) -> np.ndarray:  # V(p, n) * the current from p through e to n
        v = volt(e.p) - volt(e.n)
        if isinstance(e, VCVS | VSource) or (isinstance(e, BSource) and e.kind == "V"):
            return v * vec.currents[e]  # a voltage-defined element's branch current enters at p
        if isinstance(e, ISource):
            return v * e.dc
        if isinstance(e, VCCS):
            return v * e.gain * (volt(e.cp) - volt(e.cn))
        if isinstance(e, Resistor):
            return v * v / e.value
        if isinstance(e, Device):
            c = curves[e.curve]
            if not c.table:
                return None  # an expression curve: numpy cannot evaluate it (see below)
            t = np.reshape(c.table, (-1, 2))  # the pwl the deck evaluates, flat beyond its ends
            return v * e.area * c.amps_per_unit * e.scale * np.interp(v - e.shift, t[:, 0], t[:, 1])
        if isinstance(e, Table):
            t = np.reshape(e.table, (-1, 2))
            return v * np.interp(v, t[:, 0], t[:, 1])
        if isinstance(e, Capacitor):
            return np.zeros(n)  # no current at an operating point
        raise AnasimError(f"static power: no power model for {type(e).__name__} {e.name}")

    out = {k: np.zeros(n) for k in CATEGORIES}
    untabled = False
    for e in circuit.elements:
        if isinstance(e, OpAmp):
            out["opamps"] -= sum(absorbed(q) for q in opamp_primitives(e))
        elif isinstance(e, Device | Table):
            p = absorbed(e)
            untabled |= p is None
            out["devices"] += 0.0 if p is None else p
        elif isinstance(e, Resistor):
            out["resistors"] += absorbed(e)
        elif isinstance(e, ISource):
            out["bias"] -= absorbed(e)
        elif isinstance(e, VCCS):
            out["cells"] -= absorbed(e)
        else:
            out["drivers"] -= absorbed(e)
    out["total"] = out["opamps"] + out["drivers"] + out["bias"] + out["cells"]
    if untabled:  # devices on expression curves take what the sources deliver and nothing else absorbs
        out["devices"] = out["total"] - out["resistors"]
    return {k: v[: len(x)] for k, v in out.items()}
