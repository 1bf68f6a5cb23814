"""Plans, reference and compile decks shared by the crossbar families (TD-KAN, device MLP).

Inputs are node voltages ``in_<i>``, outputs ``y_<j>``. :func:`plan` lowers what a run needs:
the stages (when the family can cut its network at ideal sources) or the whole network as one
deck, the whole network too for ``tran`` (samples time-multiplexed in one transient, settling
time and static power) and for DC static power; or names a netlist compiled earlier, run in
place of the lowered circuit (included as it is, never edited). :mod:`anasim.sim.driver` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import torch

from ..circuit.ir import Circuit
from ..circuit.stimulus import sweep_run
from ..errors import AnasimError
from ..sim.engine import get_engine
from ..sim.plan import Plan, Rescale, SimSettings, Stage
from .base import Deck


def reference(model, z: torch.Tensor):
    with torch.no_grad():
        return model(z.double()).numpy(), {}


def plan(
    whole: Callable[[], Circuit],
    stages: Callable[[], list[Circuit]] | None,
    x: np.ndarray,
    x0: np.ndarray,
    n_out: int,
    s: SimSettings,
    peaks: bool = False,
    post: Rescale | None = None,
) -> Plan:
    """The plan for input voltages ``x`` [N, in] (``x0``: the tran rest input), ``n_out`` outputs:
    the circuits ``s`` asks for, each lowered once (``whole()``, ``stages()``: lowering a large
    network takes seconds). ``peaks``: stage-by-stage DC runs also return every stage's largest
    |output| per sample, for ``post`` (:func:`anasim.sim.batch.chained`)."""
    staged = not s.whole and stages is not None
    if s.analysis == "tran":
        if s.netlist is not None:
            raise AnasimError(
                "--analysis tran builds its own circuit (line capacitances, op-amp poles): drop --netlist"
            )
        chain = tuple(Stage(f"stage{i}", c) for i, c in enumerate(stages())) if staged else ()
        return Plan("tran", x, n_out, chain, Stage("whole", whole()), x0, peaks, post=post)
    if s.progress:  # lowering a large per-edge network takes seconds before the first sample runs
        print(f"lowering the network into a circuit ({len(x)} samples to simulate)", file=sys.stderr, flush=True)
    if s.netlist is not None:  # included as it is, never lowered nor varied
        return Plan("dc", x, n_out, netlist=str(s.netlist), post=post)
    chain = tuple(Stage(f"stage{i}", c) for i, c in enumerate(stages())) if staged else ()
    # the whole circuit where it runs, and for the static power at the first samples' operating points
    lowered = Stage("whole", whole()) if not staged or s.power_samples else None
    return Plan("dc", x, n_out, chain, lowered, x0, peaks, post=post)


def compile_decks(circuit: Circuit, x: np.ndarray | None, name: str) -> list[Deck]:
    """The whole network; with input voltages ``x`` a standalone DC sweep over them (with the
    engine's sweep settings), its results called ``name``."""
    if x is None:
        return [Deck("", circuit, None)]
    tuning = get_engine().tuning
    return [Deck("", circuit, sweep_run(x, circuit.outputs, tuning.sweep, tuning.sweep_extra, name=name))]
