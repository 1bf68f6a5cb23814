"""Stimulus and analyses as data: what drives a circuit's inputs and what a simulator does with it.

A simulation is a :class:`~anasim.circuit.ir.Circuit` plus one :class:`Run`, which holds intent
only: a stimulus (samples swept by index, a time sequence, or initial node voltages), the analysis
it implies, the nodes to save, typed :class:`Tolerances` and, per engine, settings only that
engine reads. Runners build Runs; an engine (:mod:`anasim.sim.engine`) turns them into its own
dialect, files and options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dc:
    """DC sweep of source ``source`` from ``start`` to ``stop`` in ``step``."""

    source: str
    start: float
    stop: float
    step: float


@dataclass(frozen=True)
class Tran:
    step: float
    stop: float
    max_step: float | None = None
    uic: bool = False  # start from the InitialState instead of an operating point
    # times the solver must land on (and restart its integration from, at order 1): where
    # scheduled elements switch; ngspice takes them from a pwl source's corners
    breakpoints: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class SampleSweep:
    """Sample s of ``x`` [N, inputs] applied while a sample-index source sits at s: one parse and
    set-up serve all N samples of a DC sweep."""

    x: np.ndarray


@dataclass(frozen=True, eq=False)
class TimeSequence:
    """Sample k of ``x`` [N, inputs] applied from t = k*period + rise (ramp ``rise`` from the
    previous sample; before the first, the inputs sit at ``x0``) and read at t = (k+1)*period + rise."""

    x: np.ndarray
    x0: np.ndarray
    period: float
    rise: float = 1e-9

    @property
    def stop(self) -> float:
        return len(self.x) * self.period + 2 * self.rise


@dataclass(frozen=True, eq=False)
class Waveforms:
    """Input i follows the piecewise-linear waveform ``t[i]``, ``v[i]`` (seconds, volts): a stage
    of a transient run stage by stage, driven by the outputs the stage before computed."""

    t: tuple[np.ndarray, ...]
    v: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class InitialState:
    """Initial node voltages of a transient (node -> volts), set on each node's capacitor to ground."""

    voltages: dict[str, float]


@dataclass(frozen=True)
class Tolerances:
    """The solver's tolerances, in SPICE's meanings; None leaves the engine's default."""

    reltol: float | None = None  # relative, of node voltages and branch currents
    abstol: float | None = None  # absolute, of currents (amperes)
    vntol: float | None = None  # absolute, of node voltages (volts)
    chgtol: float | None = None  # absolute, of charges (coulombs)
    trtol: float | None = None  # transient: factor on the truncation-error estimate


def _active_solver() -> str:
    from ..sim.engine import get_engine  # the engine decides: imported late (sim imports circuit)

    return get_engine().active_solver()


def _active_engine() -> str:
    from ..sim.engine import get_engine

    return get_engine().deck_label()


@dataclass(frozen=True)
class Run:
    stimulus: SampleSweep | TimeSequence | Waveforms | InitialState | None
    analysis: Dc | Tran
    # node voltages to keep, in this order; None: every node voltage and every branch current of
    # a voltage-defined element (what a power breakdown needs)
    save: tuple[str, ...] | None
    tolerances: Tolerances = Tolerances()
    # engine name -> settings only that engine reads (an escape hatch; ngspice: more options)
    extra: dict[str, dict] = field(default_factory=dict)
    # what a deck run alone calls its results (its data file, named by the engine); "" in a run
    # the engine makes itself, whose files are the engine's business
    name: str = ""
    # a deck only a runner reads: the engine may trade readability for parse time (ngspice: each
    # device its own pwl table with its gain folded in, instead of gain * .func: the same currents
    # to the last bit or two, parsed 3x and loaded 1.15x faster by ngspice 39); the standalone
    # decks of `compile` keep the readable form
    compact: bool = False
    # (label, node): the node's voltage at the end of the analysis, shown as "label = value"
    # (a compiled deck run alone shows its outputs, not only the table it writes)
    finals: tuple[tuple[str, str], ...] = ()
    # "klu" or "sparse": the linear solver; by default the one of the engine's solver_scope the
    # Run is built in (auto: KLU where the engine has it)
    solver: str = field(default_factory=_active_solver)
    engine: str = field(default_factory=_active_engine)  # named in the deck's header: what runs it


def sweep_run(x: np.ndarray, outputs, tolerances: Tolerances, extra: dict | None = None, *, name: str = "",
              compact: bool = False) -> Run:  # fmt: skip
    """One DC point per sample of ``x`` [N, inputs], the ``outputs`` saved; ``tolerances`` and
    ``extra``: an engine's sweep settings (its :class:`~anasim.sim.run.Tuning`)."""
    n = len(x)
    return Run(
        SampleSweep(np.asarray(x, dtype=float)),
        Dc("idx", 0.0, float(max(n - 1, 0)), 1.0),
        tuple(outputs),
        tolerances,
        dict(extra or {}),
        name=name,
        compact=compact,
    )


def sequence_run(seq: TimeSequence, outputs, stimulus: Waveforms | None = None) -> Run:
    """One transient over the time sequence, 200 points per sample window; ``stimulus``: the
    inputs as waveforms over the sequence's time instead of its steps."""
    step = seq.period / 200
    return Run(seq if stimulus is None else stimulus, Tran(step, seq.stop, step), tuple(outputs))
