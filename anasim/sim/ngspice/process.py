"""ngspice as a process: deck text in a work folder -> ``ngspice -b`` -> log and data files.

Where it sits: the :class:`~anasim.sim.ngspice.Ngspice` engine writes a deck
(:mod:`.writer`), runs it here and reads what ngspice wrote with the readers below; nothing
outside this package sees a file name or a log line. ngspice runs as a subprocess, not through
PySpice's shared library: one process per run isolates crashes and convergence failures, leaks
no memory across runs (PySpice 1.5 does unless each circuit is removed), and lets several runs
proceed at once on several cores, which the shared library (one instance per process) cannot.
Also here: the version, the counters of its log (``rusage``) and what the log says went wrong.

The linear solver (issue 30): ``auto`` is KLU where ``ngspice -v`` says the engine has it (ngspice
42+ built with it; on a wired 64x64 tile 6x less CPU than Sparse 1.3), Sparse otherwise (ngspice
39 would silently ignore ``.options klu``). :func:`solver_scope` makes one solver the one every
:class:`~anasim.circuit.stimulus.Run` built inside it carries, so the writer puts
``.options klu`` and the engine line of the header from it.

Ctrl-C: every ngspice runs in its own process group (a terminal's SIGINT reaches Python only)
and is registered while it runs (anasim.sim.live), so ``stop_all`` can kill them at once; a run killed that way
raises :class:`~anasim.errors.Stopped`, never a SimError, so nothing takes it for a convergence
failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from ...errors import AnasimError, SimError, Stalled
from .. import live

NAME = "ngspice"

# rusage lines summed over all runs of a simulation, for the result and the report
RUSAGE = {
    "Total iterations": "iterations",
    "Transient timepoints": "timepoints",
    "Total elapsed time (seconds)": "elapsed_s",  # the whole ngspice run: parse, set-up, analysis
    "Total analysis time (seconds)": "analysis_s",
    "Matrix load time": "load_s",
    "Matrix reorder time": "reorder_s",
}


# what installs an ngspice with KLU, for messages (.ci/install-ngspice.sh does it on Debian 12)
INSTALL_HINT = (
    "install ngspice 42 or newer built with KLU: 'make install' does it "
    "(Debian 12: apt-get install -t bookworm-backports ngspice libngspice0 libngspice0-dev)"
)
SOLVERS = ("auto", "klu", "sparse")


def ngspice_path() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise SimError(f"ngspice is not installed (no 'ngspice' on PATH); {INSTALL_HINT}", engine=NAME)
    return path


def batch_command(deck: str) -> list[str]:
    """``ngspice -n -b deck``: -n reads no ``.spiceinit`` (neither the working folder's nor the
    home folder's), which would run on every deck and could change its results or run commands
    (``option rshunt=1e3 gmin=1e-4`` there moved the digits example's max error from 1.09e-7 to
    1.31e-6 V). The system ``spinit`` is still read: it loads the XSPICE code models (ngspice 39,
    measured)."""
    return [ngspice_path(), "-n", "-b", deck]


@cache
def _engine(path: str) -> tuple[str, bool]:
    """(version, compiled with KLU) of the ngspice at ``path``, from one ``ngspice -v``."""
    try:
        out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SimError(f"ngspice at {path} does not run ({exc}); {INSTALL_HINT}", engine=NAME) from None
    m = re.search(r"ngspice-(\S+)", out)
    # "** Compiled with KLU Direct Linear Solver" (ngspice 42+ configured --enable-klu)
    return (f"ngspice-{m.group(1)}" if m else "ngspice (unknown version)"), "KLU" in out


def ngspice_version() -> str:
    return _engine(ngspice_path())[0]


def has_klu() -> bool:
    return _engine(ngspice_path())[1]


def resolve_solver(solver: str) -> str:
    """``klu`` or ``sparse`` for ``--solver`` auto|klu|sparse on this machine's ngspice."""
    if solver not in SOLVERS:
        raise AnasimError(f"--solver {solver!r} is not a solver; use one of {', '.join(SOLVERS)}")
    if solver == "auto":
        return "klu" if has_klu() else "sparse"
    if solver == "klu" and not has_klu():
        raise AnasimError(f"{ngspice_version()} at {ngspice_path()} has no KLU solver (--solver klu); {INSTALL_HINT}")
    return solver


# The solver (and the engine named in deck headers) of the Runs built now; None: resolve "auto"
_ACTIVE: dict[str, str | None] = {"solver": None, "engine": None}


def active_solver() -> str:
    if _ACTIVE["solver"] is None:
        _ACTIVE["solver"] = resolve_solver("auto")
    return _ACTIVE["solver"]


def active_engine() -> str:
    return _ACTIVE["engine"] or ngspice_version()


@contextmanager
def solver_scope(solver: str | None = None, engine: str | None = None, check: bool = True):
    """Runs built inside carry ``solver`` (auto|klu|sparse, resolved against this ngspice unless
    ``check`` is False: a deck written for another machine) and name ``engine`` (default: this
    ngspice's version) in their header; the previous ones come back after."""
    before = dict(_ACTIVE)
    _ACTIVE["solver"] = (resolve_solver(solver) if check else solver) if solver else before["solver"]
    _ACTIVE["engine"] = engine or before["engine"]
    try:
        yield active_solver()
    finally:
        _ACTIVE.update(before)


def engine_label(solver: str | None = None) -> str:
    """What results record as the simulator: version and solver, e.g. ``ngspice-46, klu``."""
    return f"{ngspice_version()}, {solver or active_solver()}"


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


def aborted(log: str) -> bool:
    """The log says an analysis did not finish (a sweep that gave up on a point stops there)."""
    return "simulation(s) aborted" in log or "no convergence" in log.lower()


_GAVE_UP = re.compile(r"Timestep too small; time = ([-+0-9.eE]+)")


def gave_up_at(log: str) -> float | None:
    """The time a transient gave up at, when the log says the time step became too small."""
    hit = _GAVE_UP.search(log)
    return float(hit.group(1)) if hit else None


# ngspice's progress line, on stderr after a sweep point when 0.25 s of CPU passed since the last
# one (ngspice 39's outitf.c; later versions write it to stdout): the sweep value, the sample index
_POINT = re.compile(rb"Reference value :\s*(\S+)\s*[\r\n]")


def _drain(stream, chunks: list[bytes], on_data=None) -> None:
    """Read a pipe to its end in a thread (ngspice blocks on a full pipe)."""
    while block := os.read(stream.fileno(), 65536):
        chunks.append(block)
        if on_data is not None:
            on_data()


def run_deck(text: str, work: Path, expect: str, timeout: float = 3600, on_point=None, stall=None) -> str:
    """Run one deck in ``work``; returns ngspice's output (also kept as ngspice.log). A SimError
    names the folder when ngspice times out or does not write ``expect``; :class:`Stopped` when
    it was killed by :func:`anasim.sim.live.stop_all`. A sweep reports its points as ngspice prints them:
    ``on_point(n)`` with n points finished; ``stall`` CPU seconds of ngspice without a new one
    (from the start for the first) kill it with :class:`Stalled`."""
    live.check()
    work.mkdir(parents=True, exist_ok=True)
    (work / "deck.cir").write_text(text)
    (work / expect).unlink(missing_ok=True)
    proc = live.start(batch_command("deck.cir"), work)
    clock = live.cpu_clock(proc)  # the budget counts ngspice's CPU seconds, not a busy machine's wall
    out, err, seen = [], [], {"done": 0, "at": clock()}

    def point(chunks: list[bytes]) -> None:  # in a reader thread: the last complete progress line
        found = _POINT.findall(b"".join(chunks[-2:])[-4096:])
        if found:
            try:
                done = int(float(found[-1])) + 1
            except ValueError:
                return
            if done > seen["done"]:
                seen.update(done=done, at=clock())
                if on_point is not None:
                    on_point(done)

    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out, lambda: point(out)), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err, lambda: point(err)), daemon=True),
    ]
    for r in readers:
        r.start()
    t0, why, stalled = time.monotonic(), None, False
    try:
        while proc.poll() is None:
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - t0 > timeout:
                why = f"ngspice did not finish within {timeout:.0f} s"
            elif stall is not None and clock() - seen["at"] > stall:
                why, stalled = f"no sample finished within {stall:g} CPU s", True
            if why is not None:
                proc.kill()
                proc.wait()
    except BaseException:  # Ctrl-C while this thread waits: no ngspice outlives anasim
        proc.kill()
        proc.wait()
        raise
    finally:
        live.forget(proc)
        for r in readers:
            r.join()
        proc.stdout.close()
        proc.stderr.close()
    live.check()
    # newlines as text mode reads them (a progress line ends in a carriage return)
    log = b"".join(out + err).decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    (work / "ngspice.log").write_text(log)
    if stalled:
        raise Stalled(why, work, log, seen["done"], NAME)
    if why is not None:
        raise SimError(why, work, log, NAME)
    if not (work / expect).is_file():
        raise SimError(f"ngspice failed (exit {proc.returncode})", work, log, NAME)
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
