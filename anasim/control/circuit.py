"""The circuit loop: plant and compiled controller in one transient of the engine, one deck per episode.

Each plant state is the voltage of a 1 F capacitor to ground, charged by a behavioural current
source equal to its derivative (C dV/dt = f: the ODE-to-RC step KirchhoffNet's lowering uses),
so circuit time is plant time. Behavioural voltage sources turn the state voltages into the
controller's row drive (the plant's observation through the model's input affine) and the
controller's output node into the torque or force (``limit * clip``). The controller is the
family's own lowering of the checkpoint, unchanged: the same crossbar ``compile`` writes.

One deck per episode, not many episodes per deck: each transient keeps its own step sizes
(a shared deck steps at the pace of its fastest episode), and decks run in parallel.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..circuit.ir import BSource, Capacitor, Circuit, num
from ..circuit.stimulus import InitialState, Run, Tolerances, Tran
from ..errors import SimError
from ..families import FAMILIES, family_of, make_options
from ..progress import Progress
from ..sim.engine import get_engine
from .plants import Plant, Spice, ops

# Tolerances of the loop: ngspice's defaults (reltol 1e-3) already keep a pendulum episode within
# 1.5e-5 of the state range of the torchdiffeq loop (measured: 1.6 s per 10 s episode); reltol
# 1e-4 gave the same deviation at 2.6x the time, 1e-5 at 55x (rejected steps at the pwl kinks).
LOOP_TOLERANCES = Tolerances()


def state_node(name: str) -> str:
    return f"x_{name}"


def drive_affine(model) -> tuple[np.ndarray, np.ndarray]:
    """(offset, gain) from a model input to its input node's volts, scalars or one per input (a
    TD-KAN's ``row`` drive): the TD-KAN's row drive, or the identity (the device MLP's inputs
    are its row voltages)."""
    return family_of(model).drive(model)


def observations(plant: Plant, states: np.ndarray) -> np.ndarray:
    """The controller's inputs [N, n_obs] (model inputs, before the drive) in states [N, S]."""
    return np.stack(plant.observe(list(states.T), ops("numpy")), axis=1)


def episode_label(plant: Plant, e: int, x0: np.ndarray) -> str:
    """How a failed episode is named: its index and initial condition."""
    return f"episode {e} from " + ", ".join(f"{n}={num(v)}" for n, v in zip(plant.states, x0))


def controller_circuit(model, defaults: dict | None = None, **options) -> Circuit:
    """The family's lowering of ``model`` with ``options`` (refused if the family has no such
    option) and ``defaults`` (used where the family has them)."""
    family = family_of(model)
    return family.lower(model, make_options(family, options, FAMILIES, defaults))[0]


def loop_circuit(drive, plant: Plant, controller: Circuit) -> Circuit:
    """``controller`` (ports in_<i> -> y_0) closed around ``plant``, its inputs driven by ``drive``
    ((offset, gain): :func:`drive_affine`) of the observations; saved nodes: states, then u."""
    s = ops("spice")
    x = [Spice.node(state_node(n)) for n in plant.states]
    u = Spice.node("u")
    offset, gain = drive
    plant_parts = []
    for name, f in zip(plant.states, plant.deriv(x, u, s)):
        plant_parts += [
            Capacitor(f"p_{name}", state_node(name), "0", 1.0),
            BSource(f"p_{name}", "0", state_node(name), "I", Spice.of(f)),  # 1 F: dV/dt = f
        ]
    n = len(controller.inputs)
    offsets, gains = np.broadcast_to(offset, (n,)), np.broadcast_to(gain, (n,))
    for node, z, o, g in zip(controller.inputs, plant.observe(x, s), offsets, gains):
        plant_parts.append(BSource(f"obs_{node}", node, "0", "V", Spice.of(float(o) + float(g) * z)))
    act = plant.act(Spice.node(controller.outputs[0]), s)
    plant_parts.append(BSource("act", "u", "0", "V", Spice.of(act)))
    header = (*controller.header, f"plant {plant.name}: states {', '.join(plant.states)} as 1 F capacitor voltages")
    return replace(
        controller,
        title=f"anasim closed loop: {plant.name}",
        elements=(*controller.elements, *plant_parts),
        inputs=(),
        outputs=(*(state_node(n) for n in plant.states), "u"),
        header=header,
    ).validate()


def loop_run(plant: Plant, x0: np.ndarray, max_step: float) -> Run:
    """One episode's transient from the states x0 [S], saving the states, then u."""
    ic = {state_node(n): float(v) for n, v in zip(plant.states, x0)}
    nodes = (*(state_node(n) for n in plant.states), "u")
    return Run(InitialState(ic), Tran(max_step, plant.horizon, max_step, uic=True), nodes, LOOP_TOLERANCES)


@dataclass
class LoopResult:
    states: np.ndarray  # [E, T, S] on the time grid, NaN for failed episodes
    actions: np.ndarray  # [E, T]
    failed: dict[int, str]  # episode -> why (its initial condition and the engine's message)
    run_dir: Path


def simulate_loop(
    circuit: Circuit,
    plant: Plant,
    x0: np.ndarray,
    t: np.ndarray,
    work: Path,
    jobs: int = 2,
    max_step: float = 0.01,
    progress: Progress | None = None,
) -> LoopResult:
    """Episodes from x0 [E, S] through the circuit loop, resampled onto the time grid t [T];
    ``progress`` advances by one per finished episode."""
    n_s = len(plant.states)
    states = np.full((len(x0), len(t), n_s), np.nan)
    actions = np.full((len(x0), len(t)), np.nan)
    failed: dict[int, str] = {}
    lock = threading.Lock()  # the episodes finish in pool threads; one progress line at a time

    def episode(e: int) -> None:
        where = work / f"episode{e:04d}"
        try:
            run = loop_run(plant, x0[e], max_step)
            vec = get_engine().run(circuit, run, where)
            table = np.column_stack([vec.scale, vec.table(run.save)])  # [points, 1 + S + 1]
            tt = table[:, 0]
            if tt[-1] < t[-1] * (1 - 1e-9) or not np.isfinite(table).all():
                raise SimError(f"transient stopped at t = {tt[-1]:.4g} s of {t[-1]:g} s", where)
            for k in range(n_s):
                states[e, :, k] = np.interp(t, tt, table[:, 1 + k])
            actions[e] = np.interp(t, tt, table[:, 1 + n_s])
        except SimError as exc:
            failed[e] = f"{episode_label(plant, e, x0[e])}: {exc}"
        if progress is not None:
            with lock:
                progress.update(1, f"{len(failed)} failed" if failed else "")

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(episode, range(len(x0))))
    return LoopResult(states, actions, failed, work)
