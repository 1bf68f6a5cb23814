"""The seam between anasim and a circuit simulator: the :class:`Engine` protocol and its registry.

Where it sits in the flow: lowering gives a :class:`~anasim.circuit.ir.Circuit`; a runner
(``batch``, ``tran``, a family's own) builds a :class:`~anasim.circuit.stimulus.Run` (intent
only: stimulus, analysis, the nodes to save, tolerances) and calls ``engine.run(circuit, run,
folder)``; the engine writes its dialect, runs, reads its own files and log, and returns
:class:`~anasim.sim.run.Vectors` (named arrays and its counters) or raises a SimError carrying the
folder and its log. Nothing outside an engine's package knows its file names, log lines or
syntax; this module is the only one that imports an engine (tests/test_engine.py checks it).

``ENGINES`` is a plain dict: an engine is one line here. Solvers of one engine (KLU, Sparse) are
not engines: ``solver_scope`` picks one for the Runs built inside it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from ..circuit.ir import Circuit
from ..circuit.stimulus import Run
from ..errors import AnasimError
from ..outputs import write_text
from .ngspice import Ngspice
from .run import Tuning, Vectors
from .vacask import Vacask


@runtime_checkable
class Engine(Protocol):
    """What anasim asks of a circuit simulator."""

    name: str  # "ngspice"
    runs_as: str  # how results describe its runs, e.g. "ngspice -b subprocesses"
    # what it runs: "dc-sweep", "op", "tran", "static-power", "lockstep"; "klu" when it has KLU;
    # "reruns" when a batch of Monte Carlo realizations can share its process (:meth:`reruns`);
    # "scaled-reruns" when it runs realizations given as scaled fields of one circuit (``rerun_scaled``)
    capabilities: frozenset[str]
    tuning: Tuning  # part sizes and sweep settings measured on it

    def version(self) -> str:
        """Its version, e.g. ``ngspice-46``: recorded with results and hashed into resumed runs."""

    def write(self, circuit: Circuit, run: Run | None = None) -> str:
        """``circuit`` (and ``run``: stimulus, analysis, what to save) as text in its dialect."""

    def run(self, circuit: Circuit, run: Run, folder: Path, *, deck: str | None = None, timeout: float = 3600.0,
            on_point=None, stall: float | None = None) -> Vectors:  # fmt: skip
        """Run in ``folder``: the saved vectors and its counters; SimError (folder and log) when it
        fails, :class:`~anasim.errors.Stalled` when a sweep point takes more than ``stall`` s,
        :class:`~anasim.errors.Stopped` after :meth:`stop_all`."""

    def results_file(self, run: Run) -> str:
        """The file a deck of ``run`` writes its saved vectors to when run alone (``compile``)."""

    def standalone(self, run: Run, finals: str, saved: str) -> str:
        """What a compiled deck of ``run`` gives when run alone, for its header: the values it
        prints at the end (``run.finals``, described as ``finals``) where the engine prints them,
        and the file it writes ``saved`` (a description of ``run.save``) to."""

    def load(self, circuit: Circuit, run: Run, folder: Path) -> Vectors | None:
        """The vectors a finished run left in ``folder`` (no counters), or None."""

    def check_included(self, path) -> list[Path]:
        """Refuse a user's netlist that holds more than a circuit; the files it reads."""

    def resolve_solver(self, solver: str) -> str:
        """``klu`` or ``sparse`` for ``--solver`` auto|klu|sparse, or an error naming what to install."""

    def active_solver(self) -> str:
        """The solver of the Runs built now."""

    def deck_label(self) -> str:
        """The engine a deck written now names in its header."""

    def solver_scope(self, solver: str | None = None, label: str | None = None,
                     check: bool = True) -> AbstractContextManager[str]:  # fmt: skip
        """Runs built inside carry ``solver`` and name ``label`` in their header."""

    def label(self, solver: str | None = None) -> str:
        """What results record as the simulator: version and solver, e.g. ``ngspice-46, klu``."""

    def lockstep(self, circuit, plant_step, x0, inputs, outputs, dt: float, t_stop: float, observe=None, options=None):
        """A Python plant in lock-step with ``circuit`` in one transient (capability ``lockstep``;
        an engine without it raises AnasimError)."""

    def reruns(self) -> AbstractContextManager:
        """Capability ``reruns``: inside, the runs of the threads that join the yielded session
        (``join``/``leave``) wait for each other and run the decks that differ only in instance
        parameters and samples as one process, the circuit parsed once (Monte Carlo batches)."""

    def rerun_scaled(self, circuit: Circuit, runs: list[Run], fields: list, folder: Path, timeout: float = 3600.0,
                     stall: float | None = None) -> list[Vectors]:  # fmt: skip
        """Capability ``scaled-reruns``: ``circuit`` under each of ``runs``, realization k with the
        :class:`~anasim.sim.run.Scaled` fields ``fields[k]``, in one process (the Monte Carlo lane)."""

    def stop_all(self) -> None:
        """Kill every run in progress and refuse new ones until :meth:`resume_runs` (Ctrl-C)."""

    def resume_runs(self) -> None: ...


DEFAULT = "ngspice"
ENGINES: dict[str, Engine] = {"ngspice": Ngspice(), "vacask": Vacask()}
ACTIVE = "the active engine"  # get_engine()'s default: the engine of the innermost engine_scope
_ACTIVE: list[str] = [DEFAULT]


def describe() -> str:
    """Every engine and what it runs, e.g. ``ngspice (dc-sweep, lockstep, ...)``: for messages."""
    order = ("dc-sweep", "op", "tran", "static-power", "lockstep", "klu", "reruns", "scaled-reruns")
    rank = {c: i for i, c in enumerate(order)}
    return ", ".join(
        f"{n} ({', '.join(sorted(ENGINES[n].capabilities, key=lambda c: (rank.get(c, 99), c)))})"
        for n in sorted(ENGINES)
    )


def get_engine(name: str = ACTIVE) -> Engine:
    """The registered engine ``name`` (default: the active one, :func:`engine_scope`'s); an
    AnasimError listing the engines and what each runs for any other name."""
    if name is ACTIVE:
        name = _ACTIVE[-1]
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise AnasimError(f"engine {name!r} is not known; the engines are: {describe()}") from None


def engine_names(text: str) -> list[str]:
    """``--engine`` text: one engine or several, comma-separated (each checked, none twice)."""
    names = [t.strip() for t in str(text).split(",")]
    for n in names:
        get_engine(n)
    if len(set(names)) != len(names):
        raise AnasimError(f"--engine {text}: an engine is named twice")
    return names


def sparse_fallback() -> bool:
    """Whether a sample KLU gives up on runs again under Sparse: the active engine solves with KLU
    now and can switch solvers (capability ``klu``; VACASK has KLU alone)."""
    engine = get_engine()
    return engine.active_solver() == "klu" and "klu" in engine.capabilities


def require(capability: str, what: str, name: str = ACTIVE) -> Engine:
    """The engine, or an AnasimError naming the engines that can do ``what`` (never another one
    silently): ``capability`` is one of :attr:`Engine.capabilities`."""
    engine = get_engine(name)
    if capability not in engine.capabilities:
        able = [n for n in sorted(ENGINES) if capability in ENGINES[n].capabilities]
        raise AnasimError(
            f"{what} needs an engine that runs {capability}; {engine.name} does not"
            + (f": use --engine {' or '.join(able)}" if able else "")
        )
    return engine


@contextmanager
def engine_scope(name: str | None = None):
    """Inside, :func:`get_engine` () is ``name`` (None: the one active before); runs and Runs
    built inside name it. Process-wide: the threads a runner starts inside use it too."""
    engine = get_engine(name) if name is not None else get_engine()
    _ACTIVE.append(engine.name)
    try:
        yield engine
    finally:
        _ACTIVE.pop()


def netlist(circuit: Circuit, dest: str | Path | TextIO | None = None, run: Run | None = None,
            engine: str = ACTIVE) -> str:  # fmt: skip
    """``circuit`` (and ``run``, if given) in ``engine``'s dialect, written to ``dest`` (a path,
    whole or not at all, or a stream) when given; returns the text."""
    text = get_engine(engine).write(circuit, run)
    if isinstance(dest, str | Path):
        write_text(dest, text, what="netlist")  # a full disk leaves no half deck
    elif dest is not None:
        dest.write(text)
    return text
