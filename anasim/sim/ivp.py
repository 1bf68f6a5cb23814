"""Initial-value runs (a plan's ``ivp`` analysis, KirchhoffNet): one transient per stage, state carried.

Where it sits: :func:`anasim.sim.driver.simulate` hands a :class:`~anasim.sim.plan.Plan` whose
stage circuits are the network's layers (already perturbed) and whose ``x`` is the initial node
voltages. Each stage runs from the node voltages the one before left (new nodes start at 0 V,
vanished ones are dropped: the reference's rule), which keeps each deck a plain RC circuit and
avoids ideal switches whose breakpoints would cost the solver accuracy. Samples go in decks of
``carry.chunk`` copies of the circuit (:func:`replicate`), decks in parallel; a deck that fails
is re-run sample by sample, so a sample the solver cannot follow costs only its own row and is
named with its layer and time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.stimulus import InitialState, Run, Tolerances, Tran
from ..errors import SimError
from .batch import default_jobs, run_chunks
from .engine import get_engine, sparse_fallback
from .plan import Carry, Plan, SimSettings
from .run import SimResult, add_counters


def copy_node(b: int, n: str) -> str:
    """Name or node ``n`` in copy b of a replicated circuit (ground stays 0)."""
    return "0" if n == "0" else f"s{b}_{n}"


def replicate(circuit: Circuit, copies: int) -> Circuit:
    """``copies`` independent copies of ``circuit``: every name and node n gets the prefix s<b>_
    (the *same* circuit in each, so a perturbed chip stays one chip across its samples)."""
    elements = tuple(
        replace(e, name=copy_node(b, e.name), p=copy_node(b, e.p), n=copy_node(b, e.n))
        for b in range(copies)
        for e in circuit.elements
    )
    outputs = tuple(copy_node(b, o) for b in range(copies) for o in circuit.outputs)
    return replace(circuit, elements=elements, outputs=outputs)


def initial_value_run(circuit: Circuit, v0: np.ndarray, stop: float, step: float, tolerances: Tolerances) -> Run:
    """A transient of ``stop`` seconds (steps up to ``step``) from node voltages v0 [copies, N+1]
    (column 0 = ground) on the outputs of ``circuit``, saving every output over time."""
    voltages = {o: float(v) for o, v in zip(circuit.outputs, v0[:, 1:].reshape(-1))}
    return Run(InitialState(voltages), Tran(step, stop, step, uic=True), circuit.outputs, tolerances)


def carry_state(v: np.ndarray, nodes: int) -> np.ndarray:
    """State [B, M+1] at the end of a stage -> initial state [B, nodes+1] of the next one: nodes
    the next stage adds start at 0 V, nodes it drops vanish (the reference's ``carry_state``)."""
    if v.shape[1] == nodes + 1:
        return v
    w = np.zeros((v.shape[0], nodes + 1), dtype=v.dtype)
    k = min(v.shape[1], w.shape[1])
    w[:, :k] = v[:, :k]
    return w


def run_stage(one: Circuit, v0: np.ndarray, carry: Carry, work: Path, rusage: dict,
              solver: str | None = None) -> np.ndarray:  # fmt: skip
    """Node voltages [B, N] at the end of a transient of ``one`` (a stage, one copy) from v0
    [B, N+1]; a SimError naming the time point when the engine stops early (it still gives the
    vectors up to there). ``solver``: this run's, not the scope's."""
    circuit = replicate(one, len(v0))
    engine = get_engine()
    stop = carry.stop
    run = initial_value_run(circuit, v0, stop, carry.step, carry.tolerances)
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


def states(stages: list[Circuit], x: np.ndarray, carry: Carry, work: Path, rusage: dict | None = None,
           fallback: set | None = None) -> tuple[np.ndarray, dict[int, str]]:  # fmt: skip
    """Node voltages [B, M+1] after the last stage for initial states x [B, N+1], and {sample: why}
    for the rows (NaN) the engine could not follow. A sample that fails alone under KLU is run
    again under Sparse (as DC sweeps do, batch.py) and its index goes into ``fallback``."""
    rusage = {} if rusage is None else rusage
    klu = sparse_fallback()
    v = np.array(x, dtype=float)
    failed: dict[int, str] = {}
    for n, one in enumerate(stages):
        v = carry_state(v, len(one.outputs))
        alive = np.array([b for b in range(len(v)) if b not in failed], dtype=int)
        if len(alive) == 0:
            break
        try:
            v[alive, 1:] = run_stage(one, v[alive], carry, work / f"layer{n}", rusage)
        except SimError:
            for b in alive:
                try:
                    v[b, 1:] = run_stage(one, v[b : b + 1], carry, work / f"layer{n}_sample{b}", rusage)[0]
                except SimError as exc:
                    again = None
                    if klu:  # KLU gave up where Sparse may not (batch.py's rule for DC sweeps)
                        where = work / f"layer{n}_sample{b}_sparse"
                        try:
                            again = run_stage(one, v[b : b + 1], carry, where, rusage, "sparse")
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


def simulate(plan: Plan, s: SimSettings, run_dir: Path) -> SimResult:
    """Output node voltages [N, out] of ``plan``, ``carry.chunk`` samples per deck in parallel."""
    carry, x = plan.carry, plan.x
    circuits = [stage.circuit for stage in plan.stages]
    chunk, outputs = carry.chunk, list(carry.outputs)
    starts = list(range(0, len(x), chunk))
    parts, failed, rusage, fallback = {}, {}, {}, set()

    def job(start):
        mine: set[int] = set()
        v, bad = states(circuits, x[start : start + chunk], carry, run_dir / f"chunk_{start:06d}", rusage, mine)
        parts[start] = v[:, outputs]
        failed.update({start + b: why for b, why in bad.items()})
        fallback.update(start + b for b in mine)

    def result():
        out = np.full((len(x), len(outputs)), np.nan)
        for st, part in list(parts.items()):
            out[st : st + len(part)] = part
        res = SimResult(out, dict(sorted(failed.items())), run_dir, mode=mode, rusage=rusage, extra=dict(plan.extra))
        res.solver, res.solver_fallback = get_engine().active_solver(), sorted(fallback)
        return res

    mode = f"one transient per layer, {chunk} sample(s) per deck, reltol {carry.tolerances.reltol:g}"
    # large nets take seconds per sample: samples done and time left, on a terminal or in a log
    run_chunks(job, starts, len(x), chunk, s.jobs or default_jobs(), s.progress, result)
    return result()
