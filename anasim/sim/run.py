"""What every engine run shares, whatever the engine: its results, its tuning, its folder.

Where it sits: an engine (:mod:`anasim.sim.engine`) returns :class:`Vectors` from one run and
carries a :class:`Tuning`; the runners (``batch``, ``tran``, the families' own) sum the vectors
into a :class:`SimResult`, the result type every simulation returns, in a run directory
(:func:`run_directory`: temporary ones removed after a clean run, kept on failure or when the
user names one, and locked while a run uses them). No engine is imported here at load time: the
engines import this module.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.stimulus import Tolerances
from ..errors import AnasimError, SimError
from ..outputs import LockHeld, hold


@dataclass(frozen=True)
class Scaled:
    """Elements of one type in a circuit with some fields of their own: ``circuit.elements[i]``
    for i in ``index`` [n], with ``fields[name][j]`` [n] in place of its field ``name``. A Monte
    Carlo realization of linear variations, handed to an engine with capability ``scaled-reruns``
    as arrays rather than as a varied circuit (:mod:`anasim.montecarlo.lane`)."""

    kind: type
    index: np.ndarray
    fields: dict


@dataclass
class Vectors:
    """One engine run's results: the analysis's ``scale`` [points] (the sweep index or the time),
    node ``voltages`` (node -> [points]), ``currents`` of the voltage-defined elements when the
    Run saved everything (IR element -> [points], flowing in at its p terminal), and the engine's
    own ``counters`` (iterations, seconds). What the engine read in its log: ``aborted`` (it said
    the analysis did not finish) and ``gave_up_at`` (the time it said it gave up at, if any)."""

    scale: np.ndarray
    voltages: dict[str, np.ndarray]
    currents: dict = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    aborted: bool = False
    gave_up_at: float | None = None
    folder: Path | None = None
    log: str = ""  # the engine's output, kept for the errors its caller raises (never parsed there)
    engine: str = ""

    def table(self, nodes: Iterable[str]) -> np.ndarray:
        """The voltages of ``nodes`` as columns [points, nodes]."""
        nodes = list(nodes)
        if not nodes:
            return np.empty((len(self.scale), 0))
        return np.stack([self.voltages[n] for n in nodes], axis=1)

    def error(self, message: str) -> SimError:
        """A SimError about this run: its folder and the engine's output come with it."""
        return SimError(message, self.folder, self.log, self.engine)


def add_counters(total: dict[str, float], counters: dict[str, float]) -> None:
    """Sum one run's counters into ``total`` (a simulation's, over all its runs)."""
    for k, v in counters.items():
        total[k] = total.get(k, 0.0) + v


@dataclass(frozen=True)
class Tuning:
    """What was measured to run fastest on one engine (the measurements are beside the values)."""

    part_elements: int  # nonlinear elements per part of a split circuit (anasim.sim.partition)
    part_linear: int  # linear elements per part
    sweep: Tolerances  # a DC sample sweep's tolerances
    fast_sweep: Tolerances  # the same for the batched runner's rewritten circuits
    sweep_extra: dict = field(default_factory=dict)  # a sweep's Run.extra (engine-only settings)
    # the engine's own exact rewrite of a circuit whose ideal TIA inputs are virtual grounds
    # (applied by the batched runner after anasim.sim.partition.ground_devices)
    rewrite: Callable[[Circuit], Circuit] = lambda c: c
    # scheduled branches switch this fraction of a layer's period after its boundary (KirchhoffNet)
    switch_lag: float = 0.0
    # what one Newton iteration of a wired tile's mesh costs on this engine, measured (the note a
    # slow run prints: anasim.sim.batch.slow)
    mesh_cost: str = ""


@dataclass
class SimResult:
    """Outputs of one simulation: ``outputs`` [N, out] with NaN rows for the samples in ``failed``
    (sample -> why); ``run_dir`` is where decks and logs stay (None once a clean temporary run
    directory is removed); ``rusage`` sums the engine's own counters over every run."""

    outputs: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)
    run_dir: Path | None = None
    mode: str = ""
    simulator: str = ""
    rusage: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # analysis-specific figures (settling, power)
    solver: str = ""  # klu or sparse: the solver the decks asked for
    # samples that did not converge under KLU and were run again under Sparse (batched DC runs)
    solver_fallback: list[int] = field(default_factory=list)


LOCK_FILE = ".anasim-lock"


class RunDir:
    """Where one simulation's decks, logs and partial results go. ``keep`` is set when the user
    named the folder or when anything failed; otherwise the temporary folder is removed. A named
    folder is locked while the run lasts: two runs writing the same chunk folders would read
    each other's outputs. The lock is an flock, so it dies with its process (no stale locks)."""

    def __init__(self, path: str | Path | None = None):
        self.keep = path is not None
        self.lock = None
        if not path:
            self.path = Path(tempfile.mkdtemp(prefix="anasim-run-"))
            return
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.lock = hold(self.path / LOCK_FILE)  # held until release()
        except OSError as exc:
            raise AnasimError(
                f"--run-dir {self.path}: cannot create or write the folder ({exc.strerror or exc}); "
                "choose a writable --run-dir"
            ) from None
        except LockHeld as held:
            raise AnasimError(
                f"--run-dir {self.path} is in use by another anasim run (pid {held.holder}); wait for it to finish "
                "or choose another --run-dir"
            ) from None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing the file drops the flock
            self.lock = None


@contextmanager
def run_directory(path: str | Path | None = None):
    """A :class:`RunDir`, kept on an exception (Ctrl-C included) and removed otherwise unless kept."""
    rd = RunDir(path)
    try:
        yield rd
    except BaseException:
        # a temporary folder stays with what was written before the error (decks, logs, partial
        # outputs); one the error left empty (bad input found before any run) goes
        try:
            rd.keep = rd.keep or any(rd.path.iterdir())
        except OSError:  # the folder is gone or unreadable: nothing to keep, and the error is the user's
            pass
        raise
    finally:
        rd.release()
        if not rd.keep:
            shutil.rmtree(rd.path, ignore_errors=True)


def finish(result: SimResult, rd: RunDir, engine=None) -> SimResult:
    """Record in ``result`` whether its run directory stays (failures, or a named folder), and the
    solver and simulator of ``engine`` (default: :func:`anasim.sim.engine.get_engine`'s)."""
    if engine is None:
        from .engine import get_engine  # late: the engine registry imports the engines, which import this module

        engine = get_engine()
    rd.keep = rd.keep or bool(result.failed)
    result.run_dir = rd.path if rd.keep else None
    result.solver = result.solver or engine.active_solver()
    result.simulator = engine.label(result.solver)
    return result
