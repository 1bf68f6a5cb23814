"""Batched DC runs: many samples per engine run, chunks in parallel, failures named per sample.

A sweep source steps 0..N-1 in a DC analysis and every input node follows a pwl of the sample
index (:class:`~anasim.circuit.stimulus.SampleSweep`), so one netlist parse and set-up serve all
N samples. Samples are split into chunks run in parallel; a chunk that fails is re-run sample by
sample so that only the failing samples are lost, and they are named. ``layers`` chains circuits
cut at ideal sources (each sees the previous one's simulated outputs), chunk by chunk, so the
samples of a chunk are finished through every stage while later chunks wait. Each circuit is
split into independent parts (:mod:`anasim.sim.partition`), one deck each: a per-edge
crossbar's columns in decks of about 2,000 devices run several times faster than in one deck.

A chunk's outputs stay in its folder with the hash of its deck: a rerun in the same folder reuses
them when the deck is the same (this is how an interrupted run continues). Ctrl-C kills every
engine run at once and raises :class:`SimInterrupted` with the samples that finished. A sample that
fails alone under KLU is run again under Sparse (folder ``sample_<name>_sparse``) and named in
``SimResult.solver_fallback``: KLU gives up on the ``--rails`` decks' saturated tanh op-amps (2 of
4 samples, "gmin stepping failed" after 36k iterations) where Sparse converges in ~430.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.stimulus import Run, sweep_run
from ..errors import SimError, Stalled
from ..memo import ByIdentity
from ..progress import Progress
from .engine import get_engine, sparse_fallback
from .partition import fold_clippers, fold_pairs, ground_devices, merge_parallel, split, whole
from .run import SimResult, add_counters

# part_elements: the engine's own part size (its Tuning.part_elements); None runs plain decks
TUNED = "tuned"


class SimInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batched run; ``result`` holds the finished samples (NaN rows for the others)."""

    def __init__(self, result: SimResult):
        super().__init__()
        self.result = result


def default_jobs() -> int:
    return min(len(os.sched_getaffinity(0)), 8)


def deck_digest(circuit: Circuit, text: str) -> str:
    """What decides a run's outputs: the deck, the files it includes (theirs too, checked again
    here: a file changed since the run started is refused as well) and the engine's version."""
    engine = get_engine()
    h = hashlib.sha256(text.encode())
    for inc in circuit.includes:
        for path in engine.check_included(inc):
            h.update(path.read_bytes())
    h.update(engine.version().encode())
    return h.hexdigest()


def part_size(part_elements: int | str | None) -> int | None:
    """Nonlinear elements per part: the engine's tuning for :data:`TUNED`, else as given."""
    return get_engine().tuning.part_elements if part_elements == TUNED else part_elements


def fast_parts(circuit: Circuit, part_elements: int | str | None = TUNED) -> list:
    """The fast path's rewrites of ``circuit`` (see :func:`chained`): its parts, each one deck."""
    tuning = get_engine().tuning
    c = merge_parallel(tuning.rewrite(ground_devices(fold_pairs(circuit))))
    return [fold_clippers(p) for p in split(c, part_size(part_elements), tuning.part_linear)]


_NOMINAL = ByIdentity(16)  # a plan's stages (one entry per circuit, part size and engine)


def nominal_parts(circuit: Circuit, part_elements: int | str | None = TUNED) -> list:
    """:func:`fast_parts` of ``circuit``, made once per circuit object and engine: a Monte Carlo
    worker rewrites a plan's nominal stages once, then varies the parts of each realization
    (:func:`anasim.sim.driver.simulate`). The parts are not changed: a perturbation copies them.
    Made under the cache's lock: a batch's threads start together and would each make them (a
    digits worker's first batch of 8 rewrote every stage 8 times, 0.13 CPU s each)."""
    return _NOMINAL.get(circuit, lambda: fast_parts(circuit, part_elements), (part_elements, get_engine().name))


def sweep_of(circuit: Circuit, x: np.ndarray, fast: bool = True, solver: str | None = None) -> Run:
    """One sweep over ``x`` [N, inputs] saving the circuit's outputs, with the engine's sweep
    settings (those of its rewritten circuits when ``fast``); ``solver``: klu or sparse instead
    of the active one."""
    tuning = get_engine().tuning
    run = sweep_run(x, circuit.outputs, tuning.fast_sweep if fast else tuning.sweep, tuning.sweep_extra, compact=fast)
    return run if solver is None else replace(run, solver=solver)


def deck_text(circuit: Circuit, x: np.ndarray, fast: bool = True, solver: str | None = None) -> str:
    """The deck of :func:`sweep_of` in the engine's dialect."""
    return get_engine().write(circuit, sweep_of(circuit, x, fast, solver))


# why a sample runs out of its budget, in the cases met so far (issue 29: a digits [64,32,10]
# TD-KAN with --wire-r 100 and one tile per layer took 7 to 14 s a sample, 0.65 s per Newton
# iteration on 8,643 equations)
STRUGGLE = (
    "a crossbar whose long resistive lines (--wire-r) drop much of the drive pushes devices onto "
    "the negative-resistance branches of their I-V curves, where Newton's method wanders; smaller "
    "tiles (--tile ROWS,COLS) or a smaller --wire-r help"
)
STALL_HINT = STRUGGLE + ", or a larger --sample-timeout"
# why samples are slow without stalling (issue 30: a Fashion-MNIST [784,64,10] layer in 64-row tiles
# with 0.1 ohm wires took 4.9 CPU s an image on ngspice, its mesh factor 65-77% of the analysis)


def slow(engine) -> str:
    """The note a slow run prints once: what costs the time, with ``engine``'s measured mesh cost."""
    cost = f" ({engine.tuning.mesh_cost})" if engine.tuning.mesh_cost else ""
    return (
        "wires (--wire-r) make every tile a mesh that the solver factors at each Newton iteration, at a "
        f"cost growing faster than the tile{cost}, and long resistive lines push devices onto the "
        "negative-resistance branches of their I-V curves, where Newton's method takes more iterations; "
        "smaller tiles (--tile ROWS,COLS) or a smaller --wire-r help"
    )


SLOW_SAMPLE_S = 5.0  # a sample slower than this gets the note above once (most take milliseconds)


def default_sample_timeout(circuit: Circuit) -> float:
    """CPU seconds of the simulator a sample may take: 60 plus 10 ms per element (a 12,000-element
    wired layer: 3 min, some 20 times its samples' time); CPU, not wall, so a busy machine does not
    fail samples that would converge."""
    return 60.0 + 0.01 * len(circuit.elements)


def run_timeout(budget: float | None, samples: int) -> float:
    """Seconds a run of ``samples`` may take: every sample may take the ``budget`` (CPU seconds a
    sample, or None), so the whole run as many budgets and its set-up; at least an hour."""
    return 3600.0 if budget is None else max(3600.0, budget * (samples + 1))


def run_chunk(circuit: Circuit, x: np.ndarray, work: Path, rusage: dict, fast: bool = True, on_point=None,
              budget: float | None = None, solver: str | None = None) -> np.ndarray:  # fmt: skip
    """One engine run over all samples of ``x`` (or its outputs from an earlier run of the same
    deck in ``work``); raises SimError with the engine's output (:class:`Stalled` when a sample
    took more than ``budget`` seconds). ``on_point(n)``: n samples finished."""
    engine, run = get_engine(), sweep_of(circuit, x, fast, solver)
    text = engine.write(circuit, run)
    digest, done, stamp = deck_digest(circuit, text), work / "outputs.npy", work / "deck.sha256"
    if stamp.is_file() and done.is_file() and stamp.read_text() == digest:
        rusage["reused_runs"] = rusage.get("reused_runs", 0) + 1
        return np.load(done)
    timeout = run_timeout(budget, len(x))
    vec = engine.run(circuit, run, work, deck=text, timeout=timeout, on_point=on_point, stall=budget)
    add_counters(rusage, vec.counters)
    out = vec.table(circuit.outputs)
    if len(out) < len(x) or vec.aborted:
        raise vec.error(f"{engine.name} stopped after {len(out)} of {len(x)} samples (no convergence)")
    np.save(done, out[: len(x)])
    stamp.write_text(digest)  # last: a run cut short leaves no stamp and is run again
    return out[: len(x)]


def _why(exc: SimError, budget: float | None) -> str:
    name = get_engine().name
    if isinstance(exc, Stalled):
        return f"{name}: no convergence within {budget:g} CPU s (--sample-timeout): {STALL_HINT} (run directory: {exc.run_dir})"
    return f"{name}: {exc.args[0]} (run directory: {exc.run_dir})"


def run_samples(circuit: Circuit, x: np.ndarray, names: np.ndarray, folder: Path, chunk_name: str, rusage: dict,
                fast: bool = True, budget: float | None = None, on_point=None, fallback: set | None = None):  # fmt: skip
    """Outputs [len(x), out] of one run over ``x``, and {position: why}. When the run fails, each
    sample is re-run alone (folder ``sample_<name>``) so that only the failing ones are lost. When
    a sample takes more than ``budget`` seconds (:class:`Stalled`), the samples the engine reported
    finished are run again as one sweep (the same deck cut short: the same outputs), and the
    sweeps after them home in on the stalled sample: the next one alone, or, when the engine had
    reported nothing (ngspice reports at most four points a second), half as many samples as the sweep
    that stalled; a sample that stalls alone is failed, and the sweep goes on after it (folders
    ``sweep_<first>_<last>``). ``on_point(n)``: the first n samples are finished. A sample that
    fails alone under KLU is run again under Sparse; its name goes into ``fallback``."""
    out, failed = np.full((len(x), len(circuit.outputs)), np.nan), {}
    report = (lambda n: None) if on_point is None else on_point
    klu = sparse_fallback()

    def run(a: int, b: int) -> None:
        name = chunk_name if (a, b) == (0, len(x)) else f"sweep_{names[a]:06d}_{names[b - 1]:06d}"
        where = folder / (f"sample_{names[a]:06d}" if b - a == 1 and (a, b) != (0, len(x)) else name)
        out[a:b] = run_chunk(circuit, x[a:b], where, rusage, fast, lambda n: report(a + n), budget)
        report(b)

    def lost(k: int, exc: SimError) -> None:  # sample k failed alone: Sparse's turn under KLU
        why = _why(exc, budget)
        if klu:
            where = folder / f"sample_{names[k]:06d}_sparse"
            try:
                out[k : k + 1] = run_chunk(circuit, x[k : k + 1], where, rusage, fast, None, budget, "sparse")
                why = None
                if fallback is not None:
                    fallback.add(int(names[k]))
            except SimError as again:
                why += f"; under Sparse too: {_why(again, budget)}"
        if why is not None:
            failed[k] = why
        report(k + 1)

    def alone(k: int) -> None:
        try:
            run(k, k + 1)
        except SimError as exc:
            lost(k, exc)

    pending, span = 0, len(x)  # samples before pending are finished or failed; span: the next sweep's
    while pending < len(x):
        first, stop = pending, min(len(x), pending + span)
        try:
            run(first, stop)
            pending, span = stop, len(x)
        except Stalled as exc:
            done = exc.done if 0 < exc.done < stop - first else 0
            if stop - first == 1:
                lost(first, exc)
                pending, span = stop, len(x)
            elif done:
                try:
                    run(first, first + done)  # these finished before: the same deck, cut short
                except SimError:
                    for k in range(first, first + done):
                        alone(k)
                pending, span = first + done, 1  # most likely the stalled one
            else:
                span = (stop - first) // 2
        except SimError as exc:  # the engine gave up (no convergence): every sample alone
            if stop - first == 1:
                lost(first, exc)
            else:
                for k in range(first, stop):
                    alone(k)
            pending, span = stop, len(x)
    return out, failed


def run_chunks(job, starts, total: int, chunk: int, jobs: int, progress: bool, partial: Callable[[], SimResult],
               streamed: bool = False):  # fmt: skip
    """``job(start)`` for every chunk start, ``jobs`` threads, samples done and time left on
    stderr with ``progress``. ``streamed``: ``job(start, to)``, where ``to(n)`` says n samples of
    the chunk are done (as they finish, not only at its end: a chunk of a large circuit takes
    minutes). Ctrl-C (or a worker's SIGTERM) kills every engine run at once, with no
    retries, and raises :class:`SimInterrupted` carrying ``partial()``: the samples that finished
    (chunks killed midway are neither done nor failed: their rows stay NaN)."""
    engine = get_engine()
    bar = Progress(total, engine.name, "samples") if progress else None
    shown: dict[int, int] = {}  # chunk start -> samples shown done
    lock, t0, noted = threading.Lock(), time.monotonic(), [False]

    def to(start: int, n: int) -> None:
        with lock:
            n = min(n, chunk, total - start)
            if bar is not None and n > shown.get(start, 0):
                bar.update(n - shown.get(start, 0))
                shown[start] = n
                per = (time.monotonic() - t0) * min(jobs, len(shown)) / sum(shown.values())
                if per > SLOW_SAMPLE_S and not noted[0]:  # say why once, not after a silent half hour
                    noted[0] = True
                    print(f"{engine.name}: about {per:.0f} s a sample: {slow(engine)}", file=sys.stderr, flush=True)

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(job, s, *([functools.partial(to, s)] if streamed else [])): s for s in starts}
        for fut in as_completed(futures):
            fut.result()
            to(futures[fut], chunk)
    except BaseException as exc:
        engine.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        engine.resume_runs()
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, SimInterrupted):
            raise SimInterrupted(partial()) from None
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()


def run_parts(parts, x: np.ndarray, names: np.ndarray, folder: Path, chunk_name: str, rusage: dict, n_out: int,
              fast: bool = True, budget: float | None = None, on_point=None, fallback: set | None = None):  # fmt: skip
    """Outputs [len(x), n_out] of a circuit split into ``parts``, each run on its own inputs
    (folder ``part<p>`` when there are several); a sample failing in any part fails. ``budget``:
    CPU seconds per sample (None: :func:`default_sample_timeout` of each part); ``on_point(p, n)``:
    part p has finished n samples."""
    out, failed = np.full((len(x), n_out), np.nan), {}
    for p, part in enumerate(parts):
        where = folder if len(parts) == 1 else folder / f"part{p:03d}"
        limit = budget or default_sample_timeout(part.circuit)
        report = None if on_point is None else functools.partial(on_point, p)
        res, bad = run_samples(part.circuit, part.stimulus(x), names, where, chunk_name, rusage, fast, limit, report,
                               fallback)  # fmt: skip
        out[:, list(part.outputs)] = res
        for k, why in bad.items():
            failed.setdefault(k, why if len(parts) == 1 else f"part {p}: {why}")
    out[list(failed)] = np.nan
    return out, failed


def chained(circuits: list[Circuit], folders: list[Path], x: np.ndarray, run_dir: Path, jobs=None, chunk=None,
            progress=False, part_elements: int | str | None = TUNED, peaks: bool = False,
            sample_timeout: float | None = None, parts_of: Callable | None = None) -> SimResult:  # fmt: skip
    """Outputs of the last circuit for every row of ``x`` [N, inputs], each chunk of samples run
    through circuit 0, 1, ... (in ``folders``), chunks in parallel. The fast path (the default)
    runs each circuit as rewrites of it (:mod:`anasim.sim.partition`): differential column
    pairs folded into one column and ideal TIA inputs taken as 0 V by the devices into them (both
    exact up to the op-amps' 1/gain), each (row, curve) of devices into those evaluated once and
    the devices made linear VCCS from it, devices in parallel merged, parts of about
    ``part_elements`` nonlinear elements (:data:`TUNED`: the engine's tuning; a factored edge layer's parts are bounded by
    the engine's ``Tuning.part_linear`` instead: its row curves sit on held nodes and
    come with every part), input clippers applied to the stimulus, device tables
    inlined. ``part_elements=None`` runs the circuits as lowered, one deck each. With ``peaks``,
    ``extra["stage_peak_v"]`` [N, circuits] holds each sample's largest |output| of every
    circuit (NaN where it failed): the op-amp outputs of stages cut at them. ``sample_timeout``:
    seconds a sample may take in one deck before it is recorded as failed (None: 60 s plus 10 ms
    per element of the deck, :func:`default_sample_timeout`). ``parts_of(i, circuit)``: circuit
    i's parts instead of its fast-path rewrites (a Monte Carlo realization's, varied after the
    rewrites: :func:`anasim.sim.driver.simulate`). See :func:`sweep`."""
    x = np.asarray(x, dtype=float)
    jobs = jobs or default_jobs()
    chunk = max(1, chunk or min(500, -(-len(x) // jobs)))
    out = np.full((len(x), len(circuits[-1].outputs)), np.nan)
    stage_peak = np.full((len(x), len(circuits)), np.nan)
    failed: dict[int, str] = {}
    rusage: dict[str, float] = {}
    fallback: set[int] = set()  # samples run again under Sparse (KLU did not converge)
    fast = part_elements is not None
    # the rewrites, once per run: each chunk only builds its stimulus
    if parts_of is not None and fast:
        parts = [parts_of(i, c) for i, c in enumerate(circuits)]
    else:
        parts = [fast_parts(c, part_elements) if fast else [whole(c)] for c in circuits]
    # a chunk's progress: each deck's share of its samples, weighed by the deck's elements (the
    # wired first layer of a digits [64,32,10] network is most of the time)
    weights = [[max(1, len(p.circuit.elements)) for p in ps] for ps in parts]
    total_weight = sum(map(sum, weights))

    def job(start: int, to: Callable[[int], None]) -> None:
        name = f"chunk_{start:06d}"
        current, alive = x[start : start + chunk], np.arange(len(x[start : start + chunk]))
        share = np.zeros((len(circuits), max(map(len, parts))))  # fraction of samples done per deck

        # the bar's share of each deck's samples (none without a bar: a Monte Carlo realization
        # took 11 ms of 53 in its engine runs' points, 720 on digits)
        def on_point(li: int, p: int, n: int) -> None:
            share[li, p] = n / max(1, len(alive))
            to(int(len(current) * sum(w * f for w, f in zip(weights[li], share[li])) / total_weight
                   + len(current) * sum(map(sum, weights[:li])) / total_weight))  # fmt: skip

        for li, circuit in enumerate(circuits):
            if len(alive) == 0:  # every sample of the chunk failed in an earlier stage
                current = np.full((len(current), len(circuit.outputs)), np.nan)
                continue
            n_out = len(circuit.outputs)
            res, bad = run_parts(parts[li], current[alive], start + alive, folders[li], name, rusage, n_out, fast,
                                 sample_timeout, functools.partial(on_point, li) if progress else None, fallback)  # fmt: skip
            stage = f"stage {li}: " if len(circuits) > 1 else ""
            failed.update({int(start + alive[k]): stage + why for k, why in bad.items()})
            current = np.full((len(current), n_out), np.nan)
            current[alive] = res
            stage_peak[start + alive, li] = np.abs(res).max(axis=1)  # NaN for a failed sample
            alive = alive[np.isfinite(res).all(axis=1)]
        out[start : start + chunk] = current
        folders[-1].mkdir(parents=True, exist_ok=True)
        np.save(folders[-1] / f"{name}.npy", current)  # partial results stay on disk

    def result() -> SimResult:
        extra = {"stage_peak_v": stage_peak} if peaks else {}
        res = SimResult(out, dict(sorted(failed.items())), run_dir, rusage=rusage, extra=extra)
        res.solver, res.solver_fallback = get_engine().active_solver(), sorted(fallback)
        return res

    run_chunks(job, range(0, len(x), chunk), len(x), chunk, jobs, progress, result, streamed=True)
    return result()


def sweep(circuit: Circuit, x: np.ndarray, run_dir: Path, jobs=None, chunk=None, progress=False,
          part_elements: int | str | None = TUNED, sample_timeout: float | None = None) -> SimResult:  # fmt: skip
    """Outputs for every row of ``x`` [N, inputs] by batched DC sweeps, ``jobs`` runs in parallel,
    ``chunk`` samples per run (default: split evenly over the jobs, at most 500). Each sweep point
    starts Newton from the previous one, so outputs depend on the chunks in their last digits:
    Monte Carlo fixes ``chunk`` to keep realizations independent of the number of workers."""
    return chained([circuit], [run_dir], x, run_dir, jobs, chunk, progress, part_elements, False, sample_timeout)


def layers(circuits: list[Circuit], x: np.ndarray, run_dir: Path, jobs=None, chunk=None, progress=False,
           part_elements: int | str | None = TUNED, peaks: bool = False, sample_timeout: float | None = None,
           parts_of: Callable | None = None):  # fmt: skip
    """Run a network cut into stage circuits: every stage sees the previous stage's simulated
    outputs. A sample that fails in one stage is dropped from the next, and named with its stage.
    ``peaks``, ``parts_of``: see :func:`chained`."""
    folders = [run_dir / f"layer{li}" for li in range(len(circuits))]
    return chained(circuits, folders, x, run_dir, jobs, chunk, progress, part_elements, peaks, sample_timeout,
                   parts_of)  # fmt: skip
