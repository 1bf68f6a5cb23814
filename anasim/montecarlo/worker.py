"""A Monte Carlo worker's part: one realization of the shipped plan, torch-free.

Where it sits: :func:`anasim.montecarlo.realizations.run` lowers the network once in the parent
into a :class:`~anasim.sim.plan.Plan` and sends it in a :class:`Context`, once per worker
(:mod:`anasim.montecarlo.fanout`); :func:`realize` runs one :class:`Task` through the driver
with the realization's :class:`~anasim.montecarlo.variations.Perturbation`. Nothing here or
below imports torch or a family, so a worker (a spawned process, a Dask node) needs neither;
the parent adds the torch eq. 6 twin of a row (tests/test_driver.py runs a realization with
torch made unimportable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import AnasimError
from ..sim.driver import simulate
from ..sim.engine import engine_scope
from ..sim.plan import Plan, SimSettings
from ..sim.run import finish, run_directory
from .variations import Perturbation


@dataclass(frozen=True)
class Context:
    """What every worker needs, sent once per worker: the nominal plan and how to simulate it."""

    plan: Plan
    settings: SimSettings
    run_dir: str | None


@dataclass(frozen=True)
class Task:
    point: int  # -1: the nominal circuit
    index: int
    sigmas: tuple[tuple[str, float], ...]
    seed: int
    dist: str


def realize(ctx: Context, task: Task) -> dict:
    """One realization in a worker: outputs, failed samples, wall time, or the error message."""
    t0 = time.perf_counter()
    pert = Perturbation(task.sigmas, task.seed, task.index, task.dist) if task.point >= 0 else None
    work = Path(ctx.run_dir) / f"p{task.point}_r{task.index:05d}" if ctx.run_dir else None
    try:
        # the solver the parent resolved (and settings.json records), not this worker's "auto"
        with (
            run_directory(work) as rd,
            engine_scope(ctx.settings.engine) as engine,
            engine.solver_scope(ctx.settings.solver),
        ):
            res = finish(simulate(ctx.plan, replace(ctx.settings, perturb=pert), rd.path), rd)
    except AnasimError as exc:
        return {"error": str(exc).splitlines()[0], "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    times = {"ngspice_s": res.rusage.get("analysis_s"), "ngspice_elapsed_s": res.rusage.get("elapsed_s")}
    times["engine_cpu_s"] = res.rusage.get("cpu_s")
    out = {"outputs": res.outputs, "failed": res.failed, "wall_s": wall} | times
    # rerun: every engine run of it altered a circuit already loaded (montecarlo/batch.py); parse: decks of its own
    out["path"] = "rerun" if res.rusage.get("reruns") else "parse"
    if res.solver_fallback:  # samples run again under Sparse: said in the realization's row
        out["solver_fallback"] = res.solver_fallback
    return out
