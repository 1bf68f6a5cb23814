"""Monte Carlo batches: realizations that share an engine process (capability ``reruns``).

Where it sits: :func:`anasim.montecarlo.realizations.run` hands a worker a :class:`Batch` of tasks instead of
one task when the engine reruns (VACASK). The worker runs each realization of the batch as it
runs one alone (:func:`anasim.montecarlo.worker.realize`: the same plan, perturbation, rewrites
and failure handling) in a thread of its own inside the engine's rerun session: the
engine runs their decks together, the circuit parsed once and each realization's instance
parameters altered before its analysis. A realization's values still come from its own stream
(seed, index) alone; the batch only decides which process runs it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..sim.engine import get_engine

BATCH = 8  # realizations per batch: a worker's share of a VACASK process (memory: 8 circuits at once)


@dataclass(frozen=True)
class Batch:
    tasks: tuple  # of montecarlo.Task


def reruns(engine_name: str) -> bool:
    """Whether the engine runs a batch of realizations in one process."""
    return "reruns" in get_engine(engine_name).capabilities


def size(tasks: int, workers: int, most: int | None = None) -> int:
    """Realizations per batch: ``most`` (None: :data:`BATCH`; the lane's :func:`~.lane.batch_size`),
    fewer when that would leave a worker idle."""
    return max(1, min(BATCH if most is None else most, -(-tasks // max(1, workers))))


def batches(tasks, size: int):
    """``tasks`` (an iterator) in batches of ``size``, read as they are needed."""
    batch = []
    for task in tasks:
        if task.point < 0:  # the nominal circuit alone: it lacks the elements a variation may add (offsets)
            yield Batch((task,))
            continue
        batch.append(task)
        if len(batch) == size:
            yield Batch(tuple(batch))
            batch = []
    if batch:
        yield Batch(tuple(batch))


def realize_batch(ctx, batch: Batch) -> list[dict]:
    """The results of every task of ``batch`` (as :func:`~anasim.montecarlo.worker.realize` gives them),
    each with ``path`` "rerun" (its circuit altered in a shared process) or "parse" (a deck of
    its own), and its share of the batch's wall time."""
    from . import lane
    from .worker import realize

    if lane.usable(ctx, batch.tasks) and (rows := lane.timed(ctx, batch.tasks)) is not None:
        return rows  # linear variations: the batch's fields as arrays, each part one run (lane.py)
    engine = get_engine(ctx.settings.engine)
    results: list[dict | None] = [None] * len(batch.tasks)
    t0 = time.perf_counter()
    with engine.reruns() as session:

        def member(i: int, task) -> None:
            try:
                results[i] = realize(ctx, task)
            except Exception as exc:  # noqa: BLE001 - an infrastructure failure, said in its row
                results[i] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "wall_s": 0.0}
            finally:
                session.leave()

        threads = [threading.Thread(target=member, args=(i, t), daemon=True) for i, t in enumerate(batch.tasks)]
        for _ in threads:  # all members before any runs: the first run waits for the others
            session.join()
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C or a worker's SIGTERM: no engine run outlives the batch
            engine.stop_all()
            for t in threads:  # their runs are killed: they return at once
                t.join(timeout=10)
            engine.resume_runs()  # as batch.run_chunks: later runs of this process may start again
            raise
    share = (time.perf_counter() - t0) / len(batch.tasks)
    for res in results:
        res["wall_s"] = share
    return results
