"""What a simulation needs, as circuits and arrays: the :class:`Plan` a family makes, and the settings.

Where it sits: a family turns its torch model and inputs into a :class:`Plan` (``Family.plan``:
the nominal stage circuits lowered once, the first stage's input voltages, the post-step as
data); :func:`anasim.sim.driver.simulate` perturbs, rewrites, runs and post-processes it for
every family and engine. Nothing here needs torch, so a Plan pickles to a Monte Carlo worker
that has none. :class:`SimSettings` says how to run, whatever the family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.stimulus import Tolerances


@dataclass(frozen=True)
class SimSettings:
    """How to simulate, whatever the family: parallel runs, analysis and its timing."""

    jobs: int | None = None  # parallel ngspice runs (None: the cores, at most 8)
    analysis: str | None = None  # None: the family's own ("dc" for crossbars); "tran": time-multiplexed
    period: float = 2e-6  # tran: time per sample (s)
    settle_tol: float = 0.01  # tran: settled once every output stays within this fraction of the range
    settle_v: float = 0.01  # the same in volts (the pipeline sets it from the reference's range)
    whole: bool = False  # the whole network in one deck instead of stage by stage
    plain: bool = False  # decks as lowered, without the runner's exact rewrites (anasim.sim.partition)
    netlist: Path | None = None  # a netlist from `anasim compile` to simulate instead of lowering
    # --netlist: its outputs are the model's times this (its sidecar's output scale); None: 1
    netlist_scale: float | None = None
    chunk: int | None = None  # samples per ngspice run (None: split evenly over jobs, at most 500)
    progress: bool = False  # samples done and time left on stderr (the CLI's runs)
    power_samples: int = 0  # DC: static power at the operating points of the first N samples
    sample_timeout: float | None = None  # DC: seconds a sample may take (None: scaled to the deck)
    # linear solver: auto (KLU where ngspice has it), klu or sparse; Monte Carlo workers get the
    # resolved name, so every realization runs the solver its settings.json records
    solver: str = "auto"
    # the engine that runs the circuits (anasim.sim.engine.ENGINES); Monte Carlo workers enter it
    engine: str = "ngspice"
    # Monte Carlo: (circuit, stage key) -> perturbed circuit; the driver applies it to every
    # circuit of the plan with the stage's key, and nothing else does
    perturb: Callable | None = None


@dataclass(frozen=True)
class Stage:
    """One circuit of a plan and its Monte Carlo key (the draws are keyed by it: ``whole``,
    ``stage<i>``, ``layer<n>``; a new key draws new numbers, so keys stay as they are)."""

    key: str
    circuit: Circuit


@dataclass(frozen=True)
class Rescale:
    """A post-step: the circuit's outputs are the model's times ``scale`` (TD-KAN ``--swing``),
    so they are divided by it and ``info`` goes to ``extra[key]``. With stage peaks in the run's
    result (``Plan.peaks``), the samples with an output beyond ``limit_v`` (times 1 + ``tol``)
    are counted there."""

    scale: float
    key: str
    info: dict
    limit_v: float | None = None
    tol: float = 0.0


@dataclass(frozen=True)
class Carry:
    """An initial-value run (analysis ``ivp``, KirchhoffNet): one transient of ``stop`` seconds per
    stage, each stage starting from the node voltages the one before left. A stage circuit's
    outputs are its nodes 1..M in order (column 0 of the state is ground); a stage with more
    nodes than the state starts them at 0 V, one with fewer drops the last ones."""

    stop: float  # seconds per stage
    step: float  # the transients' largest step
    tolerances: Tolerances
    chunk: int  # samples per deck (copies of the stage circuit)
    outputs: tuple[int, ...]  # state columns read as the outputs after the last stage


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, torch-free. ``analysis``: ``dc`` (batched sweeps), ``tran`` (samples
    time-multiplexed in one transient) or ``ivp`` (:class:`Carry`). ``stages`` run in order, the
    first on ``x`` [N, inputs] (``ivp``: the initial state [N, nodes+1]); without stages the
    ``whole`` circuit runs alone. ``whole`` is also the circuit of the static power (tran,
    ``--power-samples``). ``netlist``: a deck from ``anasim compile`` run in place of any circuit."""

    analysis: str
    x: np.ndarray
    n_out: int
    stages: tuple[Stage, ...] = ()
    whole: Stage | None = None
    x0: np.ndarray | None = None  # tran: the input at rest, between samples
    peaks: bool = False  # DC stage by stage: every stage's largest |output| per sample (for ``post``)
    netlist: str | None = None
    post: Rescale | None = None
    carry: Carry | None = None
    extra: dict = field(default_factory=dict)  # figures the result reports as they are (KirchhoffNet: a, end time)

    def circuits(self) -> list[Stage]:
        """Every circuit of the plan with its key: what a perturbation varies."""
        return [*self.stages, *([self.whole] if self.whole is not None else [])]
