"""Fan-out of independent tasks: in this process, local worker processes, or a Dask cluster.

``run_tasks(fn, context, tasks, workers, scheduler)`` yields ``(task, result)`` as tasks
finish, in any order. ``context`` is sent once per worker (the model, the samples, the
settings); each task is small. ``fn(context, task)`` must return a picklable result and report
its own simulation failures in it: an exception here means the infrastructure failed. A task
whose worker process dies is retried (``RETRIES`` times, on a fresh pool) and then yielded
with a :class:`WorkerLost` as its result, so the others go on. Ctrl-C stops every worker and
its ngspice runs at once (workers turn SIGTERM into an exception, which makes
``subprocess.run`` kill its child) and re-raises.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

RETRIES = 2  # extra attempts for a task whose worker process died


class WorkerLost(Exception):
    """A task's worker process died (killed, out of memory) on every attempt."""


_CONTEXT = None  # set in each worker process by _init


def _raise_exit(signum, frame):
    raise SystemExit(f"anasim worker stopped by signal {signum}")


def _init(context) -> None:
    global _CONTEXT
    _CONTEXT = context
    # Ctrl-C goes to the parent, which stops the workers by SIGTERM: turned into an exception
    # it unwinds subprocess.run, which kills the ngspice child on its way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_exit)


def _call(fn, task):
    return fn(_CONTEXT, task)


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


def run_tasks(
    fn: Callable, context, tasks: Iterable, workers: int | None = None, scheduler: str | None = None
) -> Iterator[tuple[object, object]]:
    tasks = list(tasks)
    if scheduler:
        yield from _dask(fn, context, tasks, scheduler)
    elif (workers or default_workers()) == 1:
        for task in tasks:
            yield task, fn(context, task)
    else:
        yield from _local(fn, context, tasks, workers or default_workers())


def _stop(pool: ProcessPoolExecutor) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _local(fn, context, tasks: list, workers: int):
    attempts = {id(t): 0 for t in tasks}
    todo = list(tasks)
    # spawn, not fork: the parent holds torch's thread pools, which do not survive a fork
    ctx = multiprocessing.get_context("spawn")
    while todo:
        pool = ProcessPoolExecutor(min(workers, len(todo)), ctx, initializer=_init, initargs=(context,))
        running = {pool.submit(_call, fn, t): t for t in todo}
        todo = []
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        attempts[id(task)] += 1
                        if attempts[id(task)] > RETRIES:
                            yield task, WorkerLost(f"worker process died on each of {RETRIES + 1} attempts")
                        else:
                            todo.append(task)
                        continue
                    yield task, result
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)


def check_scheduler(address: str | None) -> None:
    """Refuse a --scheduler that is no Dask scheduler address before any work starts (Dask's own
    reading: ``host:port`` is tcp, a scheme must be one of its registered transports)."""
    if address is None:
        return
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import backends

    from .errors import AnasimError

    try:
        scheme, location = parse_address(address)
    except ValueError:
        scheme, location = "", ""
    if scheme not in backends or not location.strip(":"):
        raise AnasimError(
            f"--scheduler {address}: give a Dask scheduler address such as tcp://host:8786 or host:8786 "
            f"(transports: {', '.join(sorted(backends))})"
        )


def _dask(fn, context, tasks: list, scheduler: str):
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError

    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, ValueError) as exc:
        from .errors import AnasimError

        raise AnasimError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})") from None
    try:
        ctx = client.scatter(context, broadcast=True)
        futures = {client.submit(fn, ctx, t, pure=False, retries=RETRIES): t for t in tasks}
        try:
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    yield task, fut.result()
                except (FutureCancelledError, Exception) as exc:  # KilledWorker after the retries
                    yield task, WorkerLost(f"Dask: {type(exc).__name__}: {exc}")
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        client.close()
