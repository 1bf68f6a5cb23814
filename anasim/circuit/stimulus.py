"""Stimulus and analyses as data: what drives a circuit's inputs and what ngspice does with it.

A deck is a :class:`~anasim.circuit.ir.Circuit` plus one :class:`Run`: a stimulus (samples swept
by index, a time sequence, or initial node voltages), the analysis it implies, the simulator
options and what to save. The runner builds Runs; only the netlister turns them into text.
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
class WrData:
    """Save node voltages over the analysis (sweep index or time first) to a text table."""

    file: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class RawFile:
    """Save every node voltage and branch current to an ASCII raw file."""

    file: str


def _active_solver() -> str:
    from ..sim.ngspice import active_solver  # the engine decides: imported late (sim imports circuit)

    return active_solver()


def _active_engine() -> str:
    from ..sim.ngspice import active_engine

    return active_engine()


@dataclass(frozen=True)
class Run:
    stimulus: SampleSweep | TimeSequence | Waveforms | InitialState | None
    analysis: Dc | Tran
    save: WrData | RawFile
    options: dict[str, float] = field(default_factory=dict)  # ngspice options, e.g. reltol
    rusage: bool = True  # timing and iteration counts in the log
    # Each device its own pwl table with its gain folded in, instead of gain * .func: the same
    # currents to the last bit or two, parsed 3x and loaded 1.15x faster by ngspice 39; the
    # standalone decks of `compile` keep the readable .func form.
    inline_curves: bool = False
    # (label, node): the node's voltage at the end of the analysis, printed as "label = value"
    # (a compiled deck run alone shows its outputs, not only the table it writes)
    finals: tuple[tuple[str, str], ...] = ()
    # "klu" (the deck carries .options klu) or "sparse"; by default the one of the
    # anasim.sim.ngspice.solver_scope the Run is built in (auto: KLU where the engine has it)
    solver: str = field(default_factory=_active_solver)
    engine: str = field(default_factory=_active_engine)  # named in the deck's header: what runs it


# The DC sweeps' tolerances: 1e-6 relative keeps outputs well inside the comparator's 1e-3 of range.
# gminsteps 100: when an operating point fails (a sample re-run alone), SPICE3's gmin stepping in
# 100 decades instead of ngspice's dynamic stepping, which fails on saturated op-amps (--rails)
# with linear devices; a point that converges directly does not use it, so outputs are unchanged.
SWEEP_OPTIONS = {"reltol": 1e-6, "vntol": 1e-9, "abstol": 1e-15, "gminsteps": 100}
# The runner's rewritten decks (anasim.circuit.partition): a folded column pair's tables carry
# plus minus scaled minus currents, which pass through 0 A where a device's convergence test
# falls back on abstol alone. At 1e-15 A that cost a fourth Newton iteration on most samples of
# the digits edge mapping (27 against 21 per sample over its 7 decks), at 1e-13 A it does not;
# the outputs were the same to 1e-9 of their range (benchmarks/speed.py, tests/test_partition.py).
FAST_SWEEP_OPTIONS = {**SWEEP_OPTIONS, "abstol": 1e-13}


def sweep_run(x: np.ndarray, outputs, data_file: str, options=None, inline_curves: bool = False) -> Run:
    """One DC point per sample of ``x`` [N, inputs], the outputs saved to ``data_file``."""
    n = len(x)
    return Run(
        SampleSweep(np.asarray(x, dtype=float)),
        Dc("idx", 0.0, float(max(n - 1, 0)), 1.0),
        WrData(data_file, tuple(outputs)),
        SWEEP_OPTIONS if options is None else options,
        inline_curves=inline_curves,
    )


def sequence_run(seq: TimeSequence, outputs, data_file: str, stimulus: Waveforms | None = None) -> Run:
    """One transient over the time sequence, 200 points per sample window; ``stimulus``: the
    inputs as waveforms over the sequence's time instead of its steps."""
    step = seq.period / 200
    return Run(seq if stimulus is None else stimulus, Tran(step, seq.stop, step), WrData(data_file, tuple(outputs)), {})
