"""Runner: circuit IR + input samples -> ngspice -> output arrays (the simulate step).

ngspice runs as a subprocess (``ngspice -b``), not through PySpice's shared library: one process
per run isolates crashes and convergence failures, leaks no memory across runs (PySpice 1.5 does
unless each circuit is removed), and lets several runs proceed at once on several cores, which
the shared library (one instance per process) cannot.

Many samples per run: a sweep source ``Vidx`` steps 0..N-1 in a DC analysis and every input row
is a behavioural source ``pwl(V(idx), 0,x0, 1,x1, ...)``, so one netlist parse and set-up serve
all N samples. Samples are split into chunks run in parallel; a chunk that fails is re-run sample
by sample so that only the failing samples are lost, and they are named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SimError
from .ir import Circuit, Dc, num
from .netlist import analysis_line, netlist


def ngspice_path() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise SimError("ngspice is not installed: run 'make install' or 'apt-get install ngspice libngspice0-dev'")
    return path


def ngspice_version() -> str:
    out = subprocess.run([ngspice_path(), "-v"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"ngspice-(\S+)", out)
    return f"ngspice-{m.group(1)}" if m else "ngspice (unknown version)"


def input_lines(x: np.ndarray, input_prefix: str = "in_") -> list[str]:
    """Netlist lines that drive input nodes from the sample index source (x: [N, d_in])."""
    n = len(x)
    idx = np.arange(max(n, 2), dtype=float)
    lines = ["* inputs: sample s is applied while V(idx) = s", "Vidx idx 0 dc 0"]
    for i in range(x.shape[1]):
        col = x[:, i] if n > 1 else np.repeat(x[:, i], 2)
        pts = ",".join(f"{a:g},{num(b)}" for a, b in zip(idx, col))
        lines.append(f"Bin{i} {input_prefix}{i} 0 V=pwl(V(idx),{pts})")
    return lines


def deck_body(circuit: Circuit) -> str:
    """The circuit's netlist without its final ``.end``, ready for inputs and a control block."""
    return netlist(circuit).rsplit(".end", 1)[0]


def stimulus_deck(body: str, x: np.ndarray, outputs: list[str], data_file: str) -> str:
    lines = input_lines(x) + [".control", *sweep_control(len(x), outputs, data_file), ".endc", ".end"]
    return body + "\n".join(lines) + "\n"


def sweep_control(n: int, outputs: list[str], data_file: str) -> list[str]:
    return [
        "set wr_singlescale",
        "set wr_vecnames",
        "option numdgt=12",
        "option reltol=1e-6 vntol=1e-9 abstol=1e-15",
        analysis_line(Dc("idx", 0.0, float(max(n - 1, 0)), 1.0)),
        f"wrdata {data_file} {' '.join(outputs)}",
        "rusage everything",  # timing and iteration counts, kept in the run directory's log
        "quit",
    ]


def strip_control(text: str) -> str:
    """A compiled netlist without its stimulus: drop Vidx/Bin input lines, .control blocks, .end."""
    keep, in_control = [], False
    for line in text.splitlines():
        low = line.strip().lower()
        if low.startswith(".control"):
            in_control = True
        elif low.startswith(".endc"):
            in_control = False
        elif not in_control and low != ".end" and not re.match(r"^(vidx|bin\d+)\s", low):
            keep.append(line)
    return "\n".join(keep) + "\n"


def read_wrdata(path: Path, n_out: int) -> np.ndarray:
    rows = np.loadtxt(path, skiprows=1, ndmin=2)
    return rows[:, 1 : 1 + n_out]


@dataclass
class SweepResult:
    outputs: np.ndarray  # [N, n_out]; NaN rows for failed samples
    failed: list[int] = field(default_factory=list)
    run_dir: Path | None = None


def _run_deck(deck: Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([ngspice_path(), "-b", deck.name], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_chunk(body: str, outputs: list[str], x: np.ndarray, work: Path, timeout: float = 3600) -> np.ndarray:
    """One ngspice run over all samples of ``x``; raises SimError with ngspice's output."""
    work.mkdir(parents=True, exist_ok=True)
    deck = work / "deck.cir"
    data = work / "out.txt"
    data.unlink(missing_ok=True)
    deck.write_text(stimulus_deck(body, x, outputs, data.name))
    try:
        proc = _run_deck(deck, work, timeout)
    except subprocess.TimeoutExpired:
        raise SimError(f"ngspice did not finish within {timeout:.0f} s", work) from None
    log = proc.stdout + proc.stderr
    (work / "ngspice.log").write_text(log)
    if not data.is_file():
        raise SimError(f"ngspice failed (exit {proc.returncode}) on {len(x)} samples", work, log)
    out = read_wrdata(data, len(outputs))
    if len(out) < len(x) or "simulation(s) aborted" in log or "no convergence" in log.lower():
        raise SimError(f"ngspice stopped after {len(out)} of {len(x)} samples (no convergence)", work, log)
    return out[: len(x)]


def simulate_dc(
    circuit: Circuit | str,
    x: np.ndarray,
    run_dir: Path | None = None,
    jobs: int | None = None,
    chunk: int = 500,
    outputs: list[str] | None = None,
) -> SweepResult:
    """Outputs for every row of ``x`` by batched DC sweeps, ``jobs`` runs in parallel.

    ``circuit`` is IR, or the text of a compiled netlist (with ``outputs`` naming its output nodes).
    """
    x = np.asarray(x, dtype=float)
    if isinstance(circuit, Circuit):
        body, outputs = deck_body(circuit), circuit.outputs
    else:
        body = strip_control(circuit)
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="anasim-run-"))
    jobs = jobs or min(len(os.sched_getaffinity(0)), 8)
    chunk = max(1, min(chunk, -(-len(x) // jobs)))
    starts = list(range(0, len(x), chunk))
    out = np.full((len(x), len(outputs)), np.nan)
    failed: list[int] = []

    def job(start: int) -> None:
        sl = slice(start, start + chunk)
        work = run_dir / f"chunk_{start:06d}"
        try:
            out[sl] = run_chunk(body, outputs, x[sl], work)
        except SimError:
            # Keep what can be kept: re-run the chunk sample by sample and name the failures.
            for s in range(start, min(start + chunk, len(x))):
                try:
                    out[s] = run_chunk(body, outputs, x[s : s + 1], run_dir / f"sample_{s:06d}")
                except SimError:
                    failed.append(s)
        np.save(work.with_suffix(".npy"), out[sl])  # partial results stay on disk

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(job, starts))
    return SweepResult(out, sorted(failed), run_dir)


def simulate_layers(
    circuits: list[Circuit], x: np.ndarray, run_dir: Path | None = None, jobs: int | None = None, chunk: int = 500
) -> SweepResult:
    """Run a network cut into layer circuits (see ``lower_tdkan_layers``): every layer sees the
    previous layer's simulated outputs. A sample that fails in one layer is dropped from the next."""
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="anasim-run-"))
    current = np.asarray(x, dtype=float)
    alive = np.arange(len(current))
    failed: list[int] = []
    for li, circuit in enumerate(circuits):
        res = simulate_dc(circuit, current[alive], run_dir / f"layer{li}", jobs, chunk)
        failed += [int(alive[f]) for f in res.failed]
        nxt = np.full((len(current), len(circuit.outputs)), np.nan)
        nxt[alive] = res.outputs
        current = nxt
        alive = alive[np.isfinite(res.outputs).all(axis=1)]
    return SweepResult(current, sorted(failed), run_dir)
