"""Batched DC runs: many samples per ngspice run, chunks in parallel, failures named per sample.

A sweep source steps 0..N-1 in a DC analysis and every input node follows a pwl of the sample
index (:class:`~anasim.circuit.stimulus.SampleSweep`), so one netlist parse and set-up serve all
N samples. Samples are split into chunks run in parallel; a chunk that fails is re-run sample by
sample so that only the failing samples are lost, and they are named. ``layers`` chains circuits
cut at ideal sources (each sees the previous one's simulated outputs).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.netlist import netlist
from ..circuit.stimulus import sweep_run
from ..errors import SimError
from .ngspice import SimResult, add_rusage, read_wrdata, run_deck


def default_jobs() -> int:
    return min(len(os.sched_getaffinity(0)), 8)


def run_chunk(circuit: Circuit, x: np.ndarray, work: Path, rusage: dict) -> np.ndarray:
    """One ngspice run over all samples of ``x``; raises SimError with ngspice's output."""
    log = run_deck(netlist(circuit, run=sweep_run(x, circuit.outputs, "out.txt")), work, "out.txt")
    add_rusage(rusage, log)
    out = read_wrdata(work / "out.txt", len(circuit.outputs))[:, 1:]
    if len(out) < len(x) or "simulation(s) aborted" in log or "no convergence" in log.lower():
        raise SimError(f"ngspice stopped after {len(out)} of {len(x)} samples (no convergence)", work, log)
    return out[: len(x)]


def sweep(circuit: Circuit, x: np.ndarray, run_dir: Path, jobs: int | None = None, chunk: int | None = None):
    """Outputs for every row of ``x`` [N, inputs] by batched DC sweeps, ``jobs`` runs in parallel,
    ``chunk`` samples per run (default: split evenly over the jobs, at most 500). Each sweep point
    starts Newton from the previous one, so outputs depend on the chunks in their last digits:
    Monte Carlo fixes ``chunk`` to keep realizations independent of the number of workers."""
    x = np.asarray(x, dtype=float)
    jobs = jobs or default_jobs()
    chunk = max(1, chunk or min(500, -(-len(x) // jobs)))
    out = np.full((len(x), len(circuit.outputs)), np.nan)
    failed: dict[int, str] = {}
    rusage: dict[str, float] = {}

    def job(start: int) -> None:
        sl = slice(start, start + chunk)
        work = run_dir / f"chunk_{start:06d}"
        try:
            out[sl] = run_chunk(circuit, x[sl], work, rusage)
        except SimError:
            # Keep what can be kept: re-run the chunk sample by sample and name the failures.
            for s in range(start, min(start + chunk, len(x))):
                try:
                    out[s] = run_chunk(circuit, x[s : s + 1], run_dir / f"sample_{s:06d}", rusage)
                except SimError as exc:
                    failed[s] = f"ngspice: {exc.args[0]} (run directory: {exc.run_dir})"
        np.save(work.with_suffix(".npy"), out[sl])  # partial results stay on disk

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(job, range(0, len(x), chunk)))
    return SimResult(out, dict(sorted(failed.items())), run_dir, rusage=rusage)


def layers(circuits: list[Circuit], x: np.ndarray, run_dir: Path, jobs: int | None = None, chunk: int | None = None):
    """Run a network cut into stage circuits: every stage sees the previous stage's simulated
    outputs. A sample that fails in one stage is dropped from the next, and named with its stage."""
    current = np.asarray(x, dtype=float)
    alive = np.arange(len(current))
    failed: dict[int, str] = {}
    rusage: dict[str, float] = {}
    for li, circuit in enumerate(circuits):
        res = sweep(circuit, current[alive], run_dir / f"layer{li}", jobs, chunk)
        failed |= {int(alive[f]): f"stage {li}: {why}" for f, why in res.failed.items()}
        for k, v in res.rusage.items():
            rusage[k] = rusage.get(k, 0.0) + v
        nxt = np.full((len(current), len(circuit.outputs)), np.nan)
        nxt[alive] = res.outputs
        current = nxt
        alive = alive[np.isfinite(res.outputs).all(axis=1)]
    return SimResult(current, dict(sorted(failed.items())), run_dir, rusage=rusage)
