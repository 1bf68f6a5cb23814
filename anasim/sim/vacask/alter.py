"""Monte Carlo reruns on VACASK: the decks of several realizations of one circuit as one VACASK process.

Where it sits: Monte Carlo (:mod:`anasim.montecarlo.batch`) runs a batch of realizations in threads of one
worker inside :meth:`~anasim.sim.vacask.Vacask.reruns`; every ``Vacask.run`` of those threads
becomes a :class:`Request` here. When every member thread waits on one, the requests whose decks
differ only in instance parameter values, the samples and the analysis line (a nodeset) run as
one deck: the first one's circuit is parsed and elaborated once, then for each other request
``alter instance("name") k=v ...`` of every instance line that differs in the group (the values
its own deck would have written, so the same numbers), its sweep and its analysis, each
analysis's raw file its own (``m<k>.raw``), moved into the request's folder under the name its
own run would have written. The writer hands each deck over in its pieces
(:class:`~.writer.Parts`: instances with their parameters apart, the samples, the analysis), so
nothing here reads deck text back. A group VACASK cannot finish (no convergence, a stall, a timeout)
runs again request by request, as without reruns, so a failing sample fails as it would alone.

Measured: DC sample sweeps give the numbers of their own decks (to 1e-12 of the output range,
tests/test_montecarlo_vacask.py); an ``alter`` and back restores a transient bit for bit. But
VACASK's transient depends on the analysis's name: a KirchhoffNet layer deck took 457 time
points as ``out`` (the name of a run alone) and 444, the same numbers, as ``m0000``, ``abc``,
``tran1`` or any other name tried (4e-6 V apart), so transient reruns differ from their own decks
at about 1e-6 of the range (KirchhoffNet, cap 0.05: 3.4e-7 and 1.3e-6 of the range).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import SimError
from . import process, writer


@dataclass
class Request:
    circuit: object
    run: object
    folder: Path
    text: str
    timeout: float
    stall: float | None
    on_point: object
    done: bool = False
    result: object = None  # Vectors, or the exception the run raised
    parts: writer.Parts | None = None  # the deck's pieces (:func:`~.writer.parts`), when grouped
    key: tuple = ()


def _shape(req: Request, engine_line: str = "") -> None:
    """The deck's pieces, as the writer makes them, and the key of what decks run together
    must share: every line but instance parameters, samples and the analysis. Pieces the request
    came with (those of the deck its text was written from) are used as they are."""
    if req.parts is None:
        req.parts = writer.parts(req.circuit, req.run, engine_line)
    shape = req.parts.shape()
    req.key = (hash(shape), len(req.parts.body.instances))


def _instances(p: writer.Parts) -> list[tuple[str, str, str]]:
    """The instances a rerun may alter, in deck order: the circuit's, then the input sources
    (not the samples' own: the sweep sets its x)."""
    stim = [s for s in p.stimulus if not isinstance(s, str) and s[0] != writer.STIMULUS]
    return [*p.body.instances, *stim]


def group_deck(reqs: list[Request]) -> str:
    """One deck running every request of ``reqs`` (of one shape) in turn: the first one's circuit,
    then per request the alters of the instances whose parameters differ anywhere in the group,
    its sweep and its analysis ``m<k>``."""
    base = reqs[0].parts
    mine = [_instances(r.parts) for r in reqs]
    differ = sorted({i for m in mine[1:] for i, (a, b) in enumerate(zip(mine[0], m)) if a[2] != b[2]})
    out = [*base.head, *base.body.lines, *map(writer.Parts.line, base.stimulus), *base.control]
    samples: dict[str, str] = {}  # a list of samples -> the variable holding it: parsed once
    for k, (r, inst) in enumerate(zip(reqs, mine)):
        if k:
            out += [f'  alter instance("{inst[i][0]}") {inst[i][2]}' for i in differ]
        out += run_lines(k, r.parts.sweep, r.parts.analysis, samples)
    return "\n".join([*out, *base.tail]) + "\n"


def run_lines(k: int, sweep, analysis, samples: dict[str, str]) -> list[str]:
    """Run k of a group deck: its sweep and its analysis ``m<k>``. Each distinct list of samples
    goes into a variable once (``samples``: text -> variable), parsed once: the first layer's
    samples are every realization's."""
    out = []
    if sweep is not None and sweep[1]:
        if sweep[1] not in samples:
            samples[sweep[1]] = f"anasim_x{len(samples)}"
            out.append(f"  var {samples[sweep[1]]}={sweep[1]}")
        out.append(f"{sweep[0]} values={samples[sweep[1]]}")
    elif sweep is not None:
        out.append(sweep[0])
    return [*out, f"  analysis m{k:04d} {analysis[1]}"]


def share(part: str, wall: float, counters: dict[str, float], n: int) -> dict[str, float]:
    """The counters of one of ``n`` runs of a group deck: VACASK's of its own part of the log, and
    an even share of the process's wall and CPU seconds (``counters``: :func:`~.process.run_deck`'s)."""
    return process.parse_stats(part) | {"elapsed_s": wall / n, "cpu_s": counters.get("cpu_s", 0.0) / n, "reruns": 1.0}


def sections(log: str, n: int) -> list[str]:
    """The log's part for each analysis ``m<k>`` (the parse and set-up go with the first)."""
    parts = log.split("Running analysis 'm")
    if len(parts) != n + 1:
        return [log] * n
    return [parts[0] + "Running analysis 'm" + parts[1], *("Running analysis 'm" + p for p in parts[2:])]


class Session:
    """The member threads of one batch and their pending requests: run when all of them wait."""

    def __init__(self, engine):
        self.engine = engine
        self.cond = threading.Condition()
        self.members = 0
        self.pending: list[Request] = []
        self.counts = {"grouped_runs": 0, "grouped_requests": 0, "alone_runs": 0}

    def join(self) -> None:
        with self.cond:
            self.members += 1

    def leave(self) -> None:
        with self.cond:
            self.members -= 1
            batch = self._take()
        if batch:
            self._dispatch(batch)

    def _take(self) -> list[Request]:
        # called under the lock: the requests to run now, when every live member waits on one
        if self.pending and len(self.pending) >= self.members:
            batch, self.pending = self.pending, []
            return batch
        return []

    def submit(self, req: Request):
        with self.cond:
            self.pending.append(req)
            batch = self._take()
        if batch:
            self._dispatch(batch)
        with self.cond:
            while not req.done:
                self.cond.wait()
        if isinstance(req.result, BaseException):
            raise req.result
        return req.result

    def _dispatch(self, batch: list[Request]) -> None:
        groups: dict[tuple, list[Request]] = {}
        for r in batch:
            _shape(r, self.engine.engine_line(r.run))
            groups.setdefault(r.key, []).append(r)
        try:
            for reqs in groups.values():
                if len(reqs) == 1 or not self._group(reqs):
                    for r in reqs:
                        self._alone(r)
        except BaseException as exc:  # Ctrl-C, stop_all: every waiting thread gets it
            for r in batch:
                if not r.done:
                    r.result, r.done = exc, True
            raise
        finally:
            with self.cond:
                for r in batch:
                    r.done = True
                self.cond.notify_all()

    def _alone(self, r: Request) -> None:
        self.counts["alone_runs"] += 1
        try:
            r.result = self.engine.run_alone(r.circuit, r.run, r.folder, r.text, r.timeout, r.on_point, r.stall)
        except Exception as exc:  # noqa: BLE001 - handed to the request's own thread, as its run would raise it
            r.result = exc
        r.done = True

    def _group(self, reqs: list[Request]) -> bool:
        """Run ``reqs`` as one deck; False (nothing set) when VACASK could not finish it."""
        work = reqs[0].folder / "reruns"
        process.ready(work, reqs[0].parts.body)  # the pieces _shape made: the group's circuit, written once
        stalls = [r.stall for r in reqs if r.stall is not None]
        t0 = time.perf_counter()
        try:
            log, counters = process.run_deck(
                group_deck(reqs), work, f"m{len(reqs) - 1:04d}.raw", sum(r.timeout for r in reqs),
                max(stalls) if stalls else None,
            )  # fmt: skip
        except SimError:
            return False
        wall = time.perf_counter() - t0
        self.counts["grouped_runs"] += 1
        self.counts["grouped_requests"] += len(reqs)
        for k, (r, part) in enumerate(zip(reqs, sections(log, len(reqs)))):
            r.folder.mkdir(parents=True, exist_ok=True)
            target = r.folder / writer.results_file(r.run)
            shutil.move(work / f"m{k:04d}.raw", target)
            (r.folder / process.LOG).write_text(part)
            vec = self.engine.load(r.circuit, r.run, r.folder)
            vec.counters = share(part, wall, counters, len(reqs))
            vec.log = part
            if r.on_point is not None:
                r.on_point(len(vec.scale))
            r.result, r.done = vec, True
        return True
