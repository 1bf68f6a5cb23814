"""The second circuit loop: the Python plant in lock-step with ngspice's shared library.

For plants that cannot be written as ngspice expressions. The controller circuit is the same
lowering as in :mod:`.circuit`; its input nodes are driven by external voltage sources whose
values the plant supplies at every Newton iteration (the engine's ``lockstep``:
:func:`anasim.sim.ngspice.lockstep.run_lockstep`),
and the plant takes one RK4 step per accepted ngspice time point. One library instance per
process, so episodes run in worker processes. On the pendulum it must agree with the netlist
loop, which integrates the same plant inside ngspice.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit, VSource
from ..errors import AnasimError
from ..progress import Progress
from ..sim.engine import get_engine
from .circuit import LoopResult, episode_label, observations
from .plants import NUMPY, Plant


def lockstep_circuit(controller: Circuit) -> Circuit:
    """The controller with an external source on each input node (``obs<i>``)."""
    sources = tuple(VSource(f"obs{i}", node, "0", external=True) for i, node in enumerate(controller.inputs))
    return replace(controller, elements=(*controller.elements, *sources), inputs=())


def episode(circuit: Circuit, plant: Plant, affine, x0: np.ndarray, t: np.ndarray, dt: float):
    """States [T, S] and actions [T] of one episode on the time grid ``t``."""
    offset, gain = affine

    def plant_step(x, y):
        return np.array(plant.deriv(list(x), plant.act(y[0], NUMPY), NUMPY), dtype=float)

    def observe(_, x):
        return offset + gain * observations(plant, x[None, :])[0]

    n_in = sum(1 for e in circuit.elements if isinstance(e, VSource) and e.external)
    res = get_engine().lockstep(
        circuit, plant_step, x0, [f"obs{i}" for i in range(n_in)], [circuit.outputs[0]], dt, t[-1], observe
    )
    xs, ys = res.resample(t)
    return xs, plant.act(ys[:, 0], NUMPY)


def _task(args):
    try:
        return episode(*args), None
    except AnasimError as exc:
        return None, str(exc)


def simulate_lockstep(
    controller: Circuit,
    plant: Plant,
    affine,
    x0: np.ndarray,
    t: np.ndarray,
    work: Path,
    jobs: int = 2,
    dt: float = 0.01,
    progress: Progress | None = None,
) -> LoopResult:
    """Episodes from x0 [E, S] in lock-step, ``jobs`` worker processes (one ngspice library each);
    ``progress`` advances by one per finished episode."""
    circuit = lockstep_circuit(controller)
    states = np.full((len(x0), len(t), len(plant.states)), np.nan)
    actions = np.full((len(x0), len(t)), np.nan)
    failed: dict[int, str] = {}
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        tasks = [(circuit, plant, affine, x, t, dt) for x in x0]
        for e, (out, err) in enumerate(pool.map(_task, tasks)):
            if err is not None:
                failed[e] = f"{episode_label(plant, e, x0[e])}: {err}"
            else:
                states[e], actions[e] = out
            if progress is not None:
                progress.update(1, f"{len(failed)} failed" if failed else "")
    return LoopResult(states, actions, failed, work)
