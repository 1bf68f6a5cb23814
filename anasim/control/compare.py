"""``anasim control simulate``: torch loop against circuit loop over random initial conditions.

checkpoint -> plant (from its config) -> episodes' initial conditions (seeded) -> torch loop
(:mod:`.rollout`) and circuit loop (:mod:`.circuit`) on one time grid -> success, RMS state
deviation relative to the state range, return -> controller power along the circuit's
trajectories (DC operating points, split by element kind) and the latency of one control step
(a transient with line capacitance and op-amp poles) -> summary JSON + trajectories .npz.
Failed episodes are named with their initial condition; the others are kept. Outputs that would
overwrite the checkpoint or each other are refused before any work, and --json is locked while
a run writes it (:mod:`anasim.outputs`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..circuit.stimulus import TimeSequence
from ..errors import AnasimError, SimError
from ..outputs import check_outputs, json_outputs, output_lock
from ..pipeline import TRAN_DEFAULTS, load
from ..progress import Progress
from ..results import check_writable, write_pair
from ..sim import tran
from ..sim.engine import ENGINES as SIMULATORS
from ..sim.engine import get_engine, require
from ..sim.run import run_directory
from .circuit import controller_circuit, drive_affine, loop_circuit, observations, simulate_loop
from .controller import plant_of
from .lockstep import simulate_lockstep
from .plants import Plant
from .rollout import rollout, time_grid

ENGINES = ("netlist", "pyspice")
POWER_POINTS = 50  # operating points along the circuit's trajectories for the power figures
LATENCY_STEPS = 10  # control steps timed in the controller's transient
# each step's window: a small controller settles in tens of ns, and the transient's resolution
# is the window / 200 (1 ns here; 10 ns at the crossbar default of 2 us read 0 s)
LATENCY_PERIOD = 2e-7


def episode_return(plant: Plant, states: np.ndarray, actions: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per episode [E]: minus the time integral of the squared state (relative to the state
    range) and 0.01 x the squared action (relative to the limit): 0 is perfect."""
    cost = ((states / plant.span()) ** 2).sum(-1) + 0.01 * (actions / plant.action_limit) ** 2  # [E, T]
    return -np.trapezoid(cost, t, axis=1)


def control_simulate(
    path,
    episodes: int = 100,
    seed: int = 0,
    engine: str = "netlist",
    jobs: int = 2,
    run_dir=None,
    json_out=None,
    dt: float = 0.01,
    plot=None,
    horizon: float | None = None,
    progress: bool = True,
    **options,
) -> dict:
    if not (isinstance(seed, int) and seed >= 0):  # numpy's generators take no negative seed
        raise AnasimError(f"--seed {seed!r}: give a whole number >= 0")
    outputs = json_outputs(json_out, ".npz", "trajectories")
    outputs += [(f"{flag} {p}", p, flag) for p, flag in ((plot, "--plot"), (run_dir, "--run-dir"))]
    check_outputs([(f"the checkpoint {path}", path)], outputs)
    if json_out is not None:
        check_writable(json_out, "--json")  # its folder too, where the lock goes
    with output_lock(json_out, "--json"):
        return _control_simulate(
            path, episodes, seed, engine, jobs, run_dir, json_out, dt, plot, horizon, progress, **options
        )


def _control_simulate(
    path, episodes, seed, engine, jobs, run_dir, json_out, dt, plot, horizon, progress, **options
) -> dict:
    if engine in SIMULATORS and engine != "ngspice":  # a simulator's name: the loop runs in ngspice only
        require("lockstep", f"--engine {engine}: the controller loop (the plant in lock-step, or inside the transient)",
                engine)  # fmt: skip
    if engine == "ngspice":
        engine = "netlist"
    if engine not in ENGINES:
        raise AnasimError(f"--engine {engine!r}; valid: {', '.join(ENGINES)} (both run ngspice)")
    if episodes < 1:
        raise AnasimError(f"--episodes {episodes}: give at least 1")
    for dest, flag in ((json_out, "--json"), (plot, "--plot")):
        if dest is not None:
            check_writable(Path(dest), flag, "results")
    net = load(path)
    plant = plant_of(net.ckpt["config"], path, horizon)
    ctrl = controller_circuit(net.model, **options)
    if len(ctrl.inputs) != plant.n_obs or len(ctrl.outputs) != 1:
        raise AnasimError(
            f"{path}: a controller of {len(ctrl.inputs)} inputs and {len(ctrl.outputs)} outputs; the "
            f"{plant.name} plant gives {plant.n_obs} observations and takes 1 action: train it with "
            f"anasim control train --plant {plant.name}"
        )
    x0 = plant.sample(plant.init_box, episodes, np.random.default_rng(seed))  # [E, S]
    t = time_grid(plant, dt)
    t0 = time.perf_counter()
    ref_states, ref_actions = rollout(net.model, plant, x0, t)
    torch_s = time.perf_counter() - t0
    bar = Progress(episodes, f"{get_engine().name} ({engine})", "episodes") if progress else None
    with run_directory(run_dir) as rd:
        t0 = time.perf_counter()
        try:
            if engine == "netlist":
                loop = loop_circuit(drive_affine(net.model), plant, ctrl)
                res = simulate_loop(loop, plant, x0, t, rd.path / "loop", jobs, dt, bar)
            else:
                res = simulate_lockstep(ctrl, plant, drive_affine(net.model), x0, t, rd.path / "loop", jobs, dt, bar)
        finally:
            if bar is not None:
                bar.close()
        circuit_s = time.perf_counter() - t0
        ok = np.array([e not in res.failed for e in range(episodes)])
        power = controller_power(net, plant, res.states[ok], rd.path, **options)
        rd.keep = rd.keep or bool(res.failed)
    dev = (res.states - ref_states) / plant.span()  # [E, T, S]
    rms = np.sqrt((dev[ok] ** 2).mean(axis=(1, 2)))  # [E_ok]
    circuit_success = plant.success(res.states, t) & ok
    out = {
        "checkpoint": str(path),
        "plant": plant.name,
        "action_limit": plant.action_limit,
        "engine": engine,
        "episodes": episodes,
        "seed": seed,
        "horizon_s": plant.horizon,
        "dt_s": dt,
        "torch_success_rate": float(plant.success(ref_states, t).mean()),
        "circuit_success_rate": float(circuit_success.sum() / episodes),
        "rms_state_deviation": float(np.sqrt((dev[ok] ** 2).mean())) if ok.any() else None,
        "rms_state_deviation_max_episode": float(rms.max()) if ok.any() else None,
        "max_state_deviation": float(np.abs(dev[ok]).max()) if ok.any() else None,
        "torch_return": float(episode_return(plant, ref_states, ref_actions, t).mean()),
        "circuit_return": float(episode_return(plant, res.states[ok], res.actions[ok], t).mean()) if ok.any() else None,
        "failed": {str(k): v for k, v in sorted(res.failed.items())},
        "torch_loop_s": round(torch_s, 3),
        "circuit_loop_s": round(circuit_s, 3),
        "circuit_vs_torch_time": round(circuit_s / torch_s, 2),
        "run_dir": str(rd.path) if rd.keep else None,
        **power,
    }
    if json_out is not None:
        arrays = {"t": t, "x0": x0, "torch_states": ref_states, "circuit_states": res.states}
        arrays |= {"torch_actions": ref_actions, "circuit_actions": res.actions}
        write_pair(Path(json_out), json.dumps(out, indent=2) + "\n", arrays, compressed=True)
    if plot is not None:
        from ..devices.plots import plot_trajectories

        title = f"{plant.name}: torch loop (lines) and circuit loop (dashed, {engine})"
        plot_trajectories(t, ref_states, res.states, plant.states, plot, title)
    return out


def controller_power(net, plant: Plant, states: np.ndarray, work: Path, **options) -> dict:
    """Static power of the controller at operating points along the circuit's trajectories, split
    by element kind, and the energy of one control step: mean power x the settling time of the
    controller's transient (1 pF lines, 100 MHz op-amps unless told otherwise)."""
    if len(states) == 0:
        return {}
    pts = states.reshape(-1, states.shape[-1])  # [E*T, S]
    pick = np.linspace(0, len(pts) - 1, min(POWER_POINTS, len(pts))).astype(int)
    z = observations(plant, pts[pick])  # [P, n_obs] model inputs
    offset, gain = drive_affine(net.model)
    x = offset + gain * z  # [P, n_obs] input node voltages
    split = tran.static_power(controller_circuit(net.model, **options), x, work / "power")
    timed = controller_circuit(net.model, TRAN_DEFAULTS, **options)
    # Full-swing steps: the operating points of the lowest and highest output, alternating, each
    # settled to 1% of that swing (points near the goal differ by less than any tolerance).
    with torch.no_grad():
        y = net.model(torch.as_tensor(z))[:, 0].numpy()  # [P]
    lo, hi = np.argsort(y)[: LATENCY_STEPS // 2], np.argsort(y)[::-1][: LATENCY_STEPS // 2]
    order = np.stack([hi, lo], axis=1).reshape(-1)  # hi, lo, hi, lo, ...
    tol = max(0.01 * float(y.max() - y.min()), 1e-3)
    seq = TimeSequence(x[order], x[order[-1]], LATENCY_PERIOD)
    note = None
    try:
        res = tran.sequence(timed, seq, work / "latency", tol)
        settle = res.extra["settle_s"]
        if not np.isfinite(settle).all():  # a window without output: the transient stopped early
            note = f"the controller's transient stopped before step {int(np.argmin(np.isfinite(settle)))}"
    except SimError as exc:
        note = f"the controller's transient failed: {exc}"
    latency = None if note else float(np.median(settle))
    mean = {k: float(v.mean()) for k, v in split.items()}
    return {
        "controller_power_w": mean["total"],
        "controller_power_split_w": {k: v for k, v in mean.items() if k != "total"},
        "controller_power_max_w": float(split["total"].max()),
        "control_step_latency_s": latency,
        "control_step_latency_resolution_s": LATENCY_PERIOD / 200,
        "control_step_swing_v": float(y.max() - y.min()),
        "control_step_latency_note": note,
        "energy_per_step_j": None if latency is None else mean["total"] * latency,
    }
