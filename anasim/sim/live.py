"""The simulator processes running now, whatever their engine: Ctrl-C kills them all at once.

Where it sits in the flow: under each engine's process runner (``sim/ngspice/process.py``,
``sim/vacask/process.py``), which starts its runs with :func:`start` and drops them with
:func:`forget`; :func:`stop_all` is what an engine's ``stop_all`` does (batch.py on Ctrl-C or a
worker's SIGTERM). One registry for every engine, so the runs of ``--engine ngspice,vacask``
stop together and no runner keeps a copy of this bookkeeping.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time

from ..errors import Stopped

_LIVE: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()


def check() -> None:
    """:class:`Stopped` once :func:`stop_all` was called (until :func:`resume_runs`)."""
    if _STOPPING.is_set():
        raise Stopped


def start(cmd: list[str], cwd, stderr=subprocess.PIPE) -> subprocess.Popen:
    """``cmd`` started in ``cwd`` with its output piped, and registered; :class:`Stopped` instead
    after :func:`stop_all` (checked under the lock, so none starts after the kill)."""
    with _LOCK:
        check()
        # its own session: a terminal's Ctrl-C goes to anasim, which decides what to kill
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        _LIVE.add(proc)
    return proc


def cpu_clock(proc: subprocess.Popen):
    """A clock of ``proc``'s CPU seconds (user + system, all its threads), for the per-sample
    budget: a machine busy with other work slows a run's wall time, not its CPU time (issue 31: at
    load 15 on 2 cores a 128-row wired tile ran out of a wall-clock budget it met alone). Where
    /proc is not there (or the process has gone), wall seconds since the clock was made."""
    stat, tick, t0 = f"/proc/{proc.pid}/stat", os.sysconf("SC_CLK_TCK"), time.monotonic()
    last = [0.0]

    def now() -> float:
        try:
            with open(stat, "rb") as f:
                # fields after the command name (which may hold spaces): utime and stime are 14, 15
                fields = f.read().rsplit(b")", 1)[1].split()
            last[0] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            if not os.path.isdir("/proc/self"):
                return time.monotonic() - t0
        return last[0]  # a process that has ended: its last reading

    return now


def children_cpu() -> float:
    """User + system seconds of this process's finished child processes (the engines' runs, a
    benchmark's anasim and its workers): a difference around a run is its CPU."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def forget(proc: subprocess.Popen) -> None:
    """``proc`` has ended (or been killed): no longer one to kill."""
    with _LOCK:
        _LIVE.discard(proc)


def stop_all() -> None:
    """Kill every running simulator process and refuse new ones until :func:`resume_runs`."""
    _STOPPING.set()
    with _LOCK:
        procs = list(_LIVE)
    for proc in procs:
        proc.kill()  # SIGKILL: a killed run keeps nothing worth a clean shutdown


def resume_runs() -> None:
    _STOPPING.clear()
