"""The one place ngspice runs: deck text in a work folder -> ``ngspice -b`` -> log and data files.

ngspice runs as a subprocess, not through PySpice's shared library: one process per run
isolates crashes and convergence failures, leaks no memory across runs (PySpice 1.5 does unless
each circuit is removed), and lets several runs proceed at once on several cores, which the
shared library (one instance per process) cannot. Also here: the result type every simulation
returns, run directories (temporary ones removed after a clean run, kept on failure or when the
user names one), the version, and the data-file readers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import SimError

# rusage lines summed over all runs of a simulation, for the result and the report
RUSAGE = {
    "Total iterations": "iterations",
    "Transient timepoints": "timepoints",
    "Total elapsed time (seconds)": "elapsed_s",  # the whole ngspice run: parse, set-up, analysis
    "Total analysis time (seconds)": "analysis_s",
    "Matrix load time": "load_s",
    "Matrix reorder time": "reorder_s",
}


def ngspice_path() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise SimError("ngspice is not installed: run 'make install' or 'apt-get install ngspice libngspice0-dev'")
    return path


@cache
def ngspice_version() -> str:
    out = subprocess.run([ngspice_path(), "-v"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"ngspice-(\S+)", out)
    return f"ngspice-{m.group(1)}" if m else "ngspice (unknown version)"


@dataclass
class SimResult:
    """Outputs of one simulation: ``outputs`` [N, out] with NaN rows for the samples in ``failed``
    (sample -> why); ``run_dir`` is where decks and logs stay (None once a clean temporary run
    directory is removed); ``rusage`` sums ngspice's own counters over every run."""

    outputs: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)
    run_dir: Path | None = None
    mode: str = ""
    simulator: str = ""
    rusage: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # analysis-specific figures (settling, power)


def parse_rusage(log: str) -> dict[str, float]:
    found = {}
    for line in log.splitlines():
        key, _, value = line.partition(" = ")
        if key.strip() in RUSAGE:
            try:
                found[RUSAGE[key.strip()]] = float(value)
            except ValueError:
                pass
    return found


def add_rusage(total: dict[str, float], log: str) -> None:
    for k, v in parse_rusage(log).items():
        total[k] = total.get(k, 0.0) + v


def run_deck(text: str, work: Path, expect: str, timeout: float = 3600) -> str:
    """Run one deck in ``work``; returns ngspice's output (also kept as ngspice.log). A SimError
    names the folder when ngspice times out or does not write ``expect``."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "deck.cir").write_text(text)
    (work / expect).unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [ngspice_path(), "-b", "deck.cir"], cwd=work, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SimError(f"ngspice did not finish within {timeout:.0f} s", work) from None
    log = proc.stdout + proc.stderr
    (work / "ngspice.log").write_text(log)
    if not (work / expect).is_file():
        raise SimError(f"ngspice failed (exit {proc.returncode})", work, log)
    return log


def read_wrdata(path: Path, n_out: int) -> np.ndarray:
    """[points, 1 + n_out]: the scale (sweep index or time) then the saved vectors."""
    return np.loadtxt(path, skiprows=1, ndmin=2)[:, : 1 + n_out]


def read_ascii_raw(path: Path) -> dict[str, np.ndarray]:
    """Vectors of an ASCII raw file by lower-case name, e.g. ``v(node)`` or ``i(ename)``."""
    lines = path.read_text().splitlines()
    n_var = int(next(ln for ln in lines if ln.startswith("No. Variables:")).split(":")[1])
    n_pts = int(next(ln for ln in lines if ln.startswith("No. Points:")).split(":")[1])
    v0 = lines.index("Variables:") + 1
    names = [lines[v0 + i].split()[1].lower() for i in range(n_var)]
    d0 = lines.index("Values:") + 1
    values = [float(ln.split()[-1]) for ln in lines[d0:] if ln.strip()]
    data = np.array(values[: n_var * n_pts]).reshape(n_pts, n_var)
    return {name: data[:, i] for i, name in enumerate(names)}


class RunDir:
    """Where one simulation's decks, logs and partial results go. ``keep`` is set when the user
    named the folder or when anything failed; otherwise the temporary folder is removed."""

    def __init__(self, path: str | Path | None = None):
        self.keep = path is not None
        self.path = Path(path) if path else Path(tempfile.mkdtemp(prefix="anasim-run-"))
        self.path.mkdir(parents=True, exist_ok=True)


@contextmanager
def run_directory(path: str | Path | None = None):
    """A :class:`RunDir`, kept on an exception (Ctrl-C included) and removed otherwise unless kept."""
    rd = RunDir(path)
    try:
        yield rd
    except BaseException:
        rd.keep = True
        raise
    finally:
        if not rd.keep:
            shutil.rmtree(rd.path, ignore_errors=True)


def finish(result: SimResult, rd: RunDir) -> SimResult:
    """Record in ``result`` whether its run directory stays (failures, or a named folder)."""
    rd.keep = rd.keep or bool(result.failed)
    result.run_dir = rd.path if rd.keep else None
    result.simulator = ngspice_version()
    return result
