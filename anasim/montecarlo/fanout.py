"""Fan-out of independent tasks: in this process, local worker processes, or a Dask cluster.

``run_tasks(fn, context, tasks, workers, scheduler)`` yields ``(task, result)`` as tasks
finish, in any order. ``tasks`` is read as work is handed out, at most ``WINDOW`` tasks per
worker in flight, so a million realizations cost no more memory than ten. ``context`` is sent
once per worker (the plan: circuits and samples, and the settings); each task is small. ``fn(context, task)``
must return a picklable result and report its own simulation failures in it: an exception here
means the infrastructure failed. A task whose worker process dies is retried (``RETRIES`` times,
on a fresh pool; on Dask the scheduler reruns it and recomputes a lost context) and then yielded
with a :class:`WorkerLost` as its result, so the others go on. A lost Dask scheduler raises
:class:`SchedulerLost`. Ctrl-C stops every worker and its ngspice runs at once (workers turn
SIGTERM into an exception, which makes ``subprocess.run`` kill its child, then exit) and
re-raises; local workers whose parent dies (kill -9) stop the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as wait_sentinels

from ..errors import AnasimError

RETRIES = 2  # extra attempts for a task whose worker process died
WINDOW = 2  # tasks in flight per worker: one running, one waiting so that no worker idles on the parent
PARENT_POLL_S = 0.5  # how often a local worker checks that its parent is alive
_END = object()


class WorkerLost(Exception):
    """A task's worker process died (killed, out of memory) on every attempt."""


class SchedulerLost(AnasimError):
    """The Dask scheduler went away: the run cannot go on (what finished is kept)."""


_CONTEXT = None  # set in each worker process by _init
_STOPPING = False  # set in a worker by SIGTERM: the task unwinds, then the worker exits
_IN_TASK = False  # a worker runs fn: SIGTERM must unwind it so that its ngspice is killed


def _raise_exit(signum, frame):
    global _STOPPING
    _STOPPING = True
    if not _IN_TASK:  # nothing to unwind, and the pool would swallow the exception (sending a result)
        os._exit(1)
    raise SystemExit(f"anasim worker stopped by signal {signum}")


def _watch_parent(parent: int) -> None:
    # A parent killed by SIGKILL tells nobody: its workers would wait on the task queue for ever
    # (each holds the queue's write end itself), each with the plan in memory.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    # to the main thread, where the handler runs: it unwinds a running task (which kills its ngspice)
    # or ends a worker that is waiting for work or sending a result
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    time.sleep(5)
    os._exit(1)  # the main thread is stuck where no signal reaches it


def _init(context, parent: int) -> None:
    global _CONTEXT
    _CONTEXT = context
    # Ctrl-C goes to the parent, which stops the workers by SIGTERM: turned into an exception
    # it unwinds subprocess.run, which kills the ngspice child on its way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_exit)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="anasim-parent-watch").start()


def _call(fn, task):
    global _IN_TASK
    _IN_TASK = True
    try:
        return fn(_CONTEXT, task)
    finally:
        _IN_TASK = False
        if _STOPPING:  # the pool would catch the SystemExit, send it back and wait for more work
            os._exit(1)


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


def run_tasks(
    fn: Callable, context, tasks: Iterable, workers: int | None = None, scheduler: str | None = None
) -> Iterator[tuple[object, object]]:
    tasks = iter(tasks)
    if scheduler:
        yield from _dask(fn, context, tasks, scheduler)
    elif (workers or default_workers()) == 1:
        for task in tasks:
            yield task, fn(context, task)
    else:
        yield from _local(fn, context, tasks, workers or default_workers())


def _stop(pool: ProcessPoolExecutor, grace_s: float = 5.0) -> None:
    # the pool's own processes (private, but the Executor API can only wait for them)
    procs = [p for p in (getattr(pool, "_processes", None) or {}).values() if p.is_alive()]
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    left = {p.sentinel: p for p in procs}
    while left and time.monotonic() < deadline:
        for s in wait_sentinels(list(left), deadline - time.monotonic()):
            left.pop(s)
    for proc in left.values():  # stuck where SIGTERM does not reach Python
        proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _local(fn, context, tasks: Iterator, workers: int):
    # spawn, not fork: the parent holds torch's thread pools, which do not survive a fork
    mp = multiprocessing.get_context("spawn")
    retry: deque = deque()  # tasks in flight when a worker died, to run again on a fresh pool
    suspects: set[int] = set()  # by id(): those tasks, run one at a time until each is cleared
    attempts: dict[int, int] = {}  # by id(): deaths of a task's worker while it ran alone
    more = True
    while more or retry:
        pool = ProcessPoolExecutor(workers, mp, initializer=_init, initargs=(context, os.getpid()))
        running: dict = {}
        broken, alone = False, False
        try:
            while True:
                # after a crash the tasks that were in flight run alone, one after another: the one
                # that kills its worker is found, and the others are not blamed with it
                isolate = bool(retry) or any(id(t) in suspects for t in running.values())
                while not broken and len(running) < (1 if isolate else WINDOW * workers):
                    task = retry.popleft() if retry else next(tasks, _END)
                    if task is _END:
                        more = False
                        break
                    try:
                        running[pool.submit(_call, fn, task)] = task
                    except (BrokenProcessPool, ValueError):
                        # ValueError "bad value(s) in fds_to_keep": a worker died while this submit
                        # spawned a replacement, handed the broken pool's closed pipe (CPython 3.11;
                        # seen once in test_a_killed_worker_is_retried under a full suite's load)
                        retry.appendleft(task)
                        broken = True
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                if not broken:
                    alone = len(running) == 1  # who was in flight when the pool broke, if it did
                for fut in done:
                    task = running.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        n = attempts[id(task)] = attempts.get(id(task), 0) + alone
                        if n <= RETRIES:
                            suspects.add(id(task))
                            retry.append(task)
                            continue
                        result = WorkerLost(f"worker process died on each of {RETRIES + 1} attempts")
                    attempts.pop(id(task), None)
                    suspects.discard(id(task))
                    yield task, result
        except BaseException:
            _stop(pool)
            raise
        if broken:
            # a worker died: stop the others as on Ctrl-C rather than wait on the pool's own
            # clean-up, which terminates the workers it has listed without the lock that submit
            # holds, so a worker that submit was spawning meanwhile gets no SIGTERM and the join
            # waits for it for ever (seen: test_a_killed_worker_is_retried, 2 of 4 runs under load)
            _stop(pool)
        else:
            pool.shutdown(wait=True)


def check_scheduler(address: str | None) -> None:
    """Refuse a --scheduler that is no Dask scheduler address before any work starts (Dask's own
    reading: ``host:port`` is tcp, a scheme must be one of its registered transports)."""
    if address is None:
        return
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
    except ValueError:
        scheme, location = "", ""
    if scheme not in backends or not location.strip(":"):
        raise AnasimError(
            f"--scheduler {address}: give a Dask scheduler address such as tcp://host:8786 or host:8786 "
            f"(transports: {', '.join(sorted(backends))})"
        )


def _identity(x):
    return x


def _dask(fn, context, tasks: Iterator, scheduler: str):
    import dask
    from distributed import Client, KilledWorker, as_completed
    from distributed.client import FutureCancelledError

    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, ValueError) as exc:
        raise AnasimError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})") from None
    futures: dict = {}
    try:
        # the context as the result of a task, not scattered data: scattered data dies with the
        # workers holding it (and every task needing it is cancelled, "already forgotten"), a
        # task's result is computed again where needed
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"}):  # sent once: fine
            ctx = client.submit(_identity, context, key=f"anasim-context-{uuid.uuid4().hex}")
        pending = as_completed()
        slots, checked = WINDOW, 0.0
        more = True
        while True:
            if time.monotonic() - checked > 2:  # workers come and go
                slots, checked = WINDOW * max(1, sum(client.nthreads().values())), time.monotonic()
            while more and len(futures) < slots:
                task = next(tasks, _END)
                if task is _END:
                    more = False
                    break
                fut = client.submit(fn, ctx, task, pure=False, retries=RETRIES)
                futures[fut] = task
                pending.add(fut)
            if not futures:
                break
            fut = next(pending)
            task = futures.pop(fut)
            try:
                result = fut.result()
            except FutureCancelledError as exc:
                if exc.reason == "scheduler-connection-lost" or client.status != "running":
                    raise SchedulerLost(f"--scheduler {scheduler}: lost the Dask scheduler ({exc.reason})") from None
                result = WorkerLost(f"Dask: {type(exc).__name__}: {exc}")
            except KilledWorker as exc:  # its workers died on each retry; an error of fn itself is a bug: raised
                result = WorkerLost(f"Dask: {type(exc).__name__}: {exc}")
            yield task, result
    except BaseException as exc:
        if client.status == "running":
            client.cancel(list(futures))
        elif isinstance(exc, Exception) and not isinstance(exc, SchedulerLost):  # a call to the lost scheduler
            raise SchedulerLost(f"--scheduler {scheduler}: lost the Dask scheduler ({exc})") from None
        raise
    finally:
        # after a lost scheduler, closing stops the client's reconnection, which Dask logs as an
        # error with two tracebacks; the user gets SchedulerLost's one line instead
        quiet = {log: log.disabled for log in map(logging.getLogger, ("distributed.client", "distributed.utils"))}
        for log in quiet:
            log.disabled = log.disabled or client.status != "running"
        try:
            client.close(timeout=5)
        finally:
            for log, was in quiet.items():
                log.disabled = was
