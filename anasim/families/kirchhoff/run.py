"""KirchhoffNet in ngspice and in torchdiffeq: one transient per layer, state carried between them.

Layers whose topology differs are realized as one transient per layer with the state carried
over (the end voltages become the next layer's initial state; new nodes start at 0 V, by the
reference's own ``carry_state``): exact, it keeps each deck a plain RC circuit and avoids ideal
switches whose breakpoints would cost the solver accuracy. Samples go in decks of up to
``chunk_size`` copies, decks in parallel; a deck that fails is re-run sample by sample, so a
sample the solver cannot follow costs only its own row and is named with its layer and time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ...circuit.ir import Circuit
from ...errors import SimError
from ...sim.batch import default_jobs, run_chunks
from ...sim.engine import get_engine, sparse_fallback
from ...sim.run import SimResult, add_counters
from .lower import RELTOL, layer_run, lower_layer, replicate
from .model import KirchhoffNet, carry_state

# Copies of the network in one deck share the finest time step any of them needs, so a deck of
# many copies takes more steps per sample: measured on a 3,872-branch digits net, 1 / 5 / 20
# copies took 1,106 / 1,801 / 2,578 Newton iterations. Small nets still gain from sharing a run.
KN_CHUNK, KN_DECK_BRANCHES = 20, 2000
REF_TOL = (1e-9, 1e-11)  # torchdiffeq rtol, atol for the reference


def chunk_size(model: KirchhoffNet) -> int:
    """Samples per deck: up to KN_CHUNK, with at most about KN_DECK_BRANCHES branches per deck."""
    branches = max(len(layer.src) for layer in model.layers)
    return max(1, min(KN_CHUNK, KN_DECK_BRANCHES // branches))


def run_layer(one: Circuit, v0: np.ndarray, a: float, stop: float, work: Path, reltol, rusage,
              solver: str | None = None) -> np.ndarray:  # fmt: skip
    """Node voltages [B, N] at the end of a transient of ``stop`` seconds of ``one`` (a layer, one
    copy, hardware scale ``a``) from v0 [B, N+1]; a SimError naming the time point when the engine
    stops early (it still gives the vectors up to there). ``solver``: this run's, not the scope's."""
    circuit = replicate(one, len(v0))
    engine = get_engine()
    run = layer_run(circuit, v0, stop, reltol, a=a)
    run = run if solver is None else replace(run, solver=solver)
    vec = engine.run(circuit, run, work)
    add_counters(rusage, vec.counters)
    table = vec.table(circuit.outputs)
    end = vec.scale[-1] if len(vec.scale) else 0.0
    if end < stop * (1 - 1e-6) or not (np.isfinite(end) and np.isfinite(table[-1]).all()):
        t = end if vec.gave_up_at is None else vec.gave_up_at
        why = "transient stopped early" if vec.gave_up_at is None else "time step too small"
        raise vec.error(f"{engine.name}: {why} at t = {t:.4g} s ({t / stop:.3g} of the layer's {stop:.4g} s)")
    return table[-1].reshape(len(v0), len(one.outputs))


def simulate_states(net: KirchhoffNet, x: np.ndarray, a: float, work: Path, reltol=RELTOL, rusage=None, perturb=None,
                    fallback: set | None = None):  # fmt: skip
    """Node voltages [B, N+1] at t = D*T*a for inputs x [B, in], and {sample: why} for the rows
    (NaN) ngspice could not follow. ``perturb`` (Monte Carlo) varies each layer's circuit once,
    before it is copied per sample: one chip for all samples. A sample that fails alone under KLU
    is run again under Sparse (as DC sweeps do, batch.py) and its index goes into ``fallback``."""
    rusage = {} if rusage is None else rusage
    klu = sparse_fallback()
    v = net.initial_state(torch.as_tensor(x, dtype=torch.float64)).numpy()
    failed: dict[int, str] = {}
    for n, layer in enumerate(net.layers):
        v = carry_state(torch.from_numpy(v), layer.num_nodes).numpy()  # the reference's rule
        alive = np.array([b for b in range(len(v)) if b not in failed], dtype=int)
        if len(alive) == 0:
            break
        one, stop = lower_layer(layer, a), net.period * a
        one = one if perturb is None else perturb(one, f"layer{n}")
        try:
            v[alive, 1:] = run_layer(one, v[alive], a, stop, work / f"layer{n}", reltol, rusage)
        except SimError:
            for b in alive:
                try:
                    alone = run_layer(one, v[b : b + 1], a, stop, work / f"layer{n}_sample{b}", reltol, rusage)
                    v[b, 1:] = alone[0]
                except SimError as exc:
                    again = None
                    if klu:  # KLU gave up where Sparse may not (batch.py's rule for DC sweeps)
                        where = work / f"layer{n}_sample{b}_sparse"
                        try:
                            again = run_layer(one, v[b : b + 1], a, stop, where, reltol, rusage, "sparse")
                        except SimError:
                            pass
                    if again is None:
                        failed[int(b)] = f"layer {n}: {exc.args[0]} (run directory: {exc.run_dir})"
                    else:
                        v[b, 1:] = again[0]
                        if fallback is not None:
                            fallback.add(int(b))
        v[list(failed)] = np.nan
    return v, failed


def simulate(model: KirchhoffNet, z: torch.Tensor, opts, s, run_dir: Path) -> SimResult:
    """Output node voltages [N, out] for inputs z, ``chunk_size`` samples per deck in parallel."""
    x = z.double().numpy()
    chunk = chunk_size(model)
    starts = list(range(0, len(x), chunk))
    parts, failed, rusage, fallback = {}, {}, {}, set()

    def job(start):
        mine: set[int] = set()
        v, bad = simulate_states(
            model,
            x[start : start + chunk],
            opts.scale_a,
            run_dir / f"chunk_{start:06d}",
            opts.reltol,
            rusage,
            s.perturb,
            mine,
        )
        parts[start] = v[:, model.outputs]
        failed.update({start + b: why for b, why in bad.items()})
        fallback.update(start + b for b in mine)

    def result():
        out = np.full((len(x), len(model.outputs)), np.nan)
        for st, part in list(parts.items()):
            out[st : st + len(part)] = part
        res = SimResult(out, dict(sorted(failed.items())), run_dir, mode=mode, rusage=rusage, extra=extra)
        res.solver, res.solver_fallback = get_engine().active_solver(), sorted(fallback)
        return res

    mode = f"one transient per layer, {chunk} sample(s) per deck, reltol {opts.reltol:g}"
    extra = {"scale_a": opts.scale_a, "end_time_s": len(model.layers) * model.period * opts.scale_a}
    # large nets take seconds per sample: samples done and time left, on a terminal or in a log
    run_chunks(job, starts, len(x), chunk, s.jobs or default_jobs(), s.progress, result)
    return result()


def reference(model: KirchhoffNet, z: torch.Tensor):
    """torchdiffeq outputs [B, out] in float64, solved tightly; a batch the solver gives up on is
    re-solved sample by sample so that only the diverging samples are lost (NaN rows)."""
    saved = model.rtol, model.atol
    model.rtol, model.atol = REF_TOL
    z = z.double()
    try:
        with torch.no_grad():
            try:
                return model(z).numpy(), {}
            except (AssertionError, RuntimeError):  # torchdiffeq: "underflow in dt", non-finite state
                pass
            ref, failed = np.full((len(z), len(model.outputs)), np.nan), {}
            for b in range(len(z)):
                try:
                    ref[b] = model(z[b : b + 1]).numpy()[0]
                except (AssertionError, RuntimeError) as exc:
                    failed[b] = f"torchdiffeq reference: the solver gave up ({exc})"
            return ref, failed
    finally:
        model.rtol, model.atol = saved


def trajectories(model: KirchhoffNet, z: torch.Tensor, opts, work: Path, points: int = 41) -> dict:
    """Node voltages over the first layer for a few samples, for the report's trajectory plot:
    ngspice at its own time points (``traj_t_spice`` [T] in model time units, ``traj_v_spice``
    [T, B, N]) and torchdiffeq at ``points`` even times (``traj_t_ref``, ``traj_v_ref`` [S, B, N])."""
    layer, a = model.layers[0], opts.scale_a
    v0 = model.initial_state(z.double())
    stop = model.period * a
    circuit = replicate(lower_layer(layer, a), len(v0))
    vec = get_engine().run(circuit, layer_run(circuit, v0.numpy(), stop, opts.reltol, a=a), work)
    table = np.column_stack([vec.scale, vec.table(circuit.outputs)])
    saved = model.rtol, model.atol
    model.rtol, model.atol = REF_TOL
    try:
        with torch.no_grad():
            t_ref, v_ref = model.trajectory(z.double(), points)[0]
    finally:
        model.rtol, model.atol = saved
    n = layer.num_nodes
    return {
        "traj_t_spice": table[:, 0] / a,
        "traj_v_spice": table[:, 1:].reshape(len(table), len(v0), n),
        "traj_t_ref": t_ref.numpy(),
        "traj_v_ref": v_ref.numpy()[:, :, 1:],
    }
