"""Scaled reruns on VACASK: realizations of one circuit that differ only in scaled element fields.

Where it sits: the Monte Carlo lane (:mod:`anasim.montecarlo.lane`) hands
:meth:`~anasim.sim.vacask.Vacask.rerun_scaled` one nominal circuit, a sample sweep per
realization and each realization's :class:`~anasim.sim.run.Scaled` fields (arrays, not varied
circuits). One deck runs them all: the nominal circuit parsed once with the scaled instances'
values read from variables, then per realization one ``var`` line giving them, its sweep and its
analysis ``m<k>`` (as :mod:`.alter` groups the decks of a batch's threads). The values are the
writer's own for the elements with those fields (the same arithmetic on whole arrays: a device's
gain is area x amps per unit x scale), so the numbers equal those a varied circuit's deck would
hold (tests/test_lane.py compares them). A group VACASK cannot finish raises SimError: the
caller runs the realizations again its usual way.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...circuit.ir import VCCS, Device, Resistor, num
from ...errors import AnasimError
from ...memo import ByIdentity
from ..run import Scaled, Vectors
from . import process, writer
from .alter import run_lines, sections, share

_TEMPLATES = ByIdentity(64)  # (circuit, kind, index, variable) -> (line positions, constants, params)


def _template(circuit, body: writer.Body, kind: type, index: np.ndarray, var: str):
    """Per element of ``index``: the position of its instance line in ``body``, a constant
    factor of its value (a device's amps per unit; None for others) and its parameters' text
    with the value taken from element j of the variable ``var``."""
    return _TEMPLATES.get(circuit, lambda: _made(circuit, body, kind, index, var), (kind, index.tobytes(), var))


def _made(circuit, body: writer.Body, kind: type, index: np.ndarray, var: str):
    elements = [circuit.elements[i] for i in index.tolist()]
    if any(type(e) is not kind for e in elements):
        raise AnasimError(f"VACASK scaled rerun: an element of {circuit.title!r} is not a {kind.__name__}")
    curves = {c.name: c for c in circuit.curves}
    if kind is Device:  # Library.device's parameters
        apu = np.array([curves[e.curve].amps_per_unit for e in elements], dtype=float)
        params = [f"gain={var}[{j}] shift={num(e.shift)}" for j, e in enumerate(elements)]
    elif kind in (VCCS, Resistor):
        apu, params = None, [f"{'gain' if kind is VCCS else 'r'}={var}[{j}]" for j in range(len(elements))]
    else:
        raise AnasimError(f"VACASK scaled rerun: no scaled form for a {kind.__name__}")
    line = {name: i for i, (name, _, _) in enumerate(body.instances)}
    at = [line[writer.card_name(e)] for e in elements]
    return at, apu, params


def values(circuit, body: writer.Body, s: Scaled, var: str) -> np.ndarray:
    """The parameter values of ``s``'s elements as the writer computes them from their fields."""
    _, apu, _ = _template(circuit, body, s.kind, s.index, var)
    if s.kind is Device:  # Library.device: gain = e.area * curve.amps_per_unit * e.scale
        value = s.fields["area"] * apu * s.fields["scale"]
    else:
        value = s.fields["gain" if s.kind is VCCS else "value"]
    if not np.isfinite(value).all():
        bad = s.index[np.flatnonzero(~np.isfinite(value))[0]]
        raise AnasimError(f"VACASK scaled rerun: element {circuit.elements[bad].name} gets a value that is not finite")
    return value


def deck(circuit, runs: list, scaled: list[tuple[Scaled, ...]], engine_line: str = "") -> tuple[str, writer.Body]:
    """One deck running the nominal ``circuit`` under every run of ``runs`` in turn, realization k
    with the fields ``scaled[k]``: the first run's pieces with the scaled instances' values read
    from variables ``anasim_s<g>``, then per realization one ``var`` line setting them, its samples
    (each distinct list held in a variable, parsed once) and its analysis ``m<k>``. A variable
    is one line for all of a group's instances (2,048 on a digits layer: 3 ms a realization,
    against 7.5 ms for as many ``alter instance`` lines)."""
    base = writer.parts(circuit, runs[0], engine_line)
    lines = list(base.body.lines)
    names = [f"anasim_s{g}" for g in range(len(scaled[0]))]
    for g, s in enumerate(scaled[0]):
        at, _, params = _template(circuit, base.body, s.kind, s.index, names[g])
        for i, text in zip(at, params):
            lines[i] = f"{base.body.instances[i][1]} {text}"
    out = [*base.head, *lines, *map(writer.Parts.line, base.stimulus), *base.control]
    samples: dict[str, str] = {}
    rails = writer.has_rails(circuit)
    kinds = [(s.kind, s.index.tobytes()) for s in scaled[0]]
    for k, (run, mine) in enumerate(zip(runs, scaled)):
        # the control block of run k (the writer's), not its whole deck: the circuit is the same
        control, sweep, analysis = (base.control, base.sweep, base.analysis) if k == 0 else writer.control_block(
            circuit, run, rails)  # fmt: skip
        if tuple(control) != base.control or (sweep and sweep[0]) != (base.sweep and base.sweep[0]) or (
            analysis[0] != base.analysis[0]) or [(s.kind, s.index.tobytes()) for s in mine] != kinds:  # fmt: skip
            raise AnasimError("VACASK scaled rerun: the runs of one group must differ only in samples and values")
        if mine:
            out.append("  var " + " ".join(
                f"{v}={writer.numbers(values(circuit, base.body, s, v))}" for v, s in zip(names, mine)))  # fmt: skip
        out += run_lines(k, sweep, analysis, samples)
    return "\n".join([*out, *base.tail]) + "\n", base.body


def run(engine, circuit, runs: list, scaled: list[tuple[Scaled, ...]], folder: Path, timeout: float,
        stall: float | None) -> list[Vectors]:  # fmt: skip
    """The vectors of each realization, run in one VACASK process in ``folder`` (SimError, the
    folder and VACASK's log, when it fails); each with VACASK's counters of its own analysis and
    an even share of the process's wall and CPU seconds."""
    if not runs or len(runs) != len(scaled):
        raise AnasimError("VACASK scaled rerun: give one set of scaled fields per run")
    text, body = deck(circuit, runs, scaled, engine.engine_line(runs[0]))
    process.ready(folder, body)
    t0 = time.perf_counter()
    log, counters = process.run_deck(text, folder, f"m{len(runs) - 1:04d}.raw", timeout * len(runs), stall)
    wall, n = time.perf_counter() - t0, len(runs)
    out = []
    for k, (r, part) in enumerate(zip(runs, sections(log, n))):
        vec = engine.read(circuit, r, folder / f"m{k:04d}.raw")
        vec.counters = share(part, wall, counters, n)
        vec.log = part
        out.append(vec)
    return out
