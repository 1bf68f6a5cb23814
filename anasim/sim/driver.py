"""The one simulation driver: a family's :class:`~anasim.sim.plan.Plan` in, a SimResult out.

Where it sits: ``Family.plan`` lowers the model into stage circuits and input voltages (torch
side); :func:`simulate` applies the Monte Carlo perturbation to every circuit of the plan with
its stage key (the only place that does), runs the plan's analysis with the runners of this
package (DC sweeps stage by stage or whole or of a compiled netlist, ``batch.py``; transients
in one deck or stage by stage plus static power, ``tran.py``; initial-value transients with
the state carried, ``ivp.py``) and applies the plan's post-step. Every family and engine goes
through here, the pipeline and the Monte Carlo workers alike.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.ir import Circuit
from ..circuit.stimulus import TimeSequence
from ..errors import AnasimError
from ..progress import Progress
from . import batch, ivp, tran
from .engine import get_engine
from .plan import Plan, Rescale, SimSettings, Stage
from .run import SimResult


def simulate(plan: Plan, s: SimSettings, run_dir: Path) -> SimResult:
    """Outputs [N, plan.n_out] of ``plan`` under ``s`` (perturbed by ``s.perturb``) in ``run_dir``."""
    parts_of = after_rewrites(plan, s)
    plan = perturbed(plan, s.perturb, with_stages=parts_of is None)
    if plan.analysis == "ivp":
        res = ivp.simulate(plan, s, run_dir)
    elif plan.analysis == "tran":
        res = transient(plan, s, run_dir)
    elif plan.analysis == "dc":
        res = dc(plan, s, run_dir, parts_of)
    else:
        raise AnasimError(f"a plan's analysis is dc, tran or ivp, not {plan.analysis!r}")
    return rescaled(res, plan.post)


def perturbed(plan: Plan, perturb, with_stages: bool = True) -> Plan:
    """Every circuit of ``plan`` through ``perturb(circuit, key)`` (the stages only ``with_stages``);
    the plan's own are left as they are (a perturbation copies a circuit), so one plan serves
    every realization."""
    if perturb is None:
        return plan
    if plan.netlist is not None:
        raise AnasimError("Monte Carlo perturbs the lowered circuit; a compiled --netlist cannot be varied")
    stages = plan.stages
    if with_stages:
        stages = tuple(Stage(st.key, perturb(st.circuit, st.key)) for st in plan.stages)
    whole = None if plan.whole is None else Stage(plan.whole.key, perturb(plan.whole.circuit, plan.whole.key))
    return replace(plan, stages=stages, whole=whole)


def after_rewrites(plan: Plan, s: SimSettings):
    """``parts_of(i, circuit)`` for the batched runner: stage i's parts, rewritten once from the
    nominal circuit (:func:`~anasim.sim.batch.nominal_parts`) and then perturbed, where the
    perturbation can vary the rewritten parts (``perturb.rewritten``: its variations only scale
    currents) and gives them; otherwise the stage perturbed, then rewritten. None when the run is
    not stages of DC sweeps on the fast path with a perturbation that can. The same circuits up
    to rounding: a digits realization's rewrites were 82% of its Python (issue 31)."""
    perturb = s.perturb
    if plan.analysis != "dc" or not plan.stages or s.plain or plan.netlist is not None:
        return None
    if not callable(getattr(perturb, "rewritten", None)) or not perturb.linear():
        return None
    keys = [st.key for st in plan.stages]

    def parts_of(i: int, circuit: Circuit) -> list:
        done = perturb.rewritten(circuit, keys[i], batch.nominal_parts(circuit))
        return done if done is not None else batch.fast_parts(perturb(circuit, keys[i]))

    return parts_of


def compiled_netlist(path: Path, like: Circuit) -> Circuit:
    """A circuit that includes a netlist written by ``anasim compile``, with ``like``'s ports. The
    deck and what it includes must be circuit only (the engine's ``check_included``)."""
    get_engine().check_included(path)
    return replace(like, title=f"anasim run of {Path(path).name}", elements=(), curves=(), includes=(str(path),))


def parts(s: SimSettings) -> str | None:
    """Nonlinear elements per deck of the runner's fast path (the engine's tuning), or None for plain decks."""
    return None if s.plain else batch.TUNED


def dc(plan: Plan, s: SimSettings, run_dir: Path, parts_of=None) -> SimResult:
    """Batched DC sweeps: of a compiled netlist, of the stages in a chain (``parts_of``: see
    :func:`after_rewrites`), or of the whole circuit."""
    x = plan.x
    if plan.netlist is not None:
        ports = Circuit("ports", inputs=tuple(f"in_{i}" for i in range(x.shape[1])))
        ports = replace(ports, outputs=tuple(f"y_{j}" for j in range(plan.n_out)))
        circuit = compiled_netlist(Path(plan.netlist), ports)
        res = batch.sweep(circuit, x, run_dir, s.jobs, s.chunk, s.progress, None, s.sample_timeout)
        res.mode = f"batched DC sweeps of {Path(plan.netlist).name}"
    elif not plan.stages:
        res = batch.sweep(plan.whole.circuit, x, run_dir, s.jobs, s.chunk, s.progress, parts(s), s.sample_timeout)
        res.mode = "batched DC sweeps, whole network" + (" in one deck" if s.plain else "")
    else:
        circuits = [st.circuit for st in plan.stages]
        res = batch.layers(circuits, x, run_dir, s.jobs, s.chunk, s.progress, parts(s), plan.peaks, s.sample_timeout,
                           parts_of)  # fmt: skip
        res.mode = "batched DC sweeps, stage by stage, cut at ideal sources" + (", plain decks" if s.plain else "")
    if s.power_samples and plan.netlist is None:
        n = min(s.power_samples, len(x))
        power = tran.static_power(plan.whole.circuit, x[:n], run_dir / "power")
        res.extra |= power_keys(power, None) | {"power_samples": n}
    return res


def transient(plan: Plan, s: SimSettings, run_dir: Path) -> SimResult:
    """The samples time-multiplexed every ``s.period`` in one transient (the whole circuit) or
    stage by stage, settling time per sample, and the static power of the whole circuit."""
    circuit, x = plan.whole.circuit, plan.x
    seq = TimeSequence(x, plan.x0, s.period)
    if not plan.stages:
        bar = Progress(2, get_engine().name, "runs (transient, operating points)") if s.progress else None
        res = tran.sequence(circuit, seq, run_dir / "tran", s.settle_v)
        res.mode = f"one transient, samples time-multiplexed every {s.period:g} s"
        if bar is not None:
            bar.update(1)
    else:
        circuits = [st.circuit for st in plan.stages]
        jobs = s.jobs or batch.default_jobs()
        res = tran.chained(circuits, seq, run_dir / "tran", s.settle_v, jobs, progress=s.progress)
        res.mode = (
            f"transients stage by stage in parts cut at ideal sources, samples time-multiplexed every {s.period:g} s"
        )
        bar = Progress(1, get_engine().name, "runs (operating points)") if s.progress else None
    power = tran.static_power(circuit, x, run_dir / "power")
    if bar is not None:
        bar.update(1)
        bar.close()
    settle = res.extra.pop("settle_s")
    res.extra |= {
        "analysis": "tran",
        "settle_tolerance_v": s.settle_v,
        "settling_time_s": {"median": float(np.median(settle)), "max": float(np.max(settle))},
        "settled_within_period": bool(np.isfinite(settle).all()),
    }
    res.extra |= power_keys(power, settle)
    return res


def power_keys(power: dict, settle: np.ndarray | None) -> dict:
    """Per inference: mean static power and its split; with a transient, the median settling time
    as the latency and energy = power x latency (a DC run has no latency: None)."""
    total = power["total"]
    out = {
        "static_power_w": {"mean": float(total.mean()), "max": float(total.max())},
        "power_w": float(total.mean()),
        "power_split_w": {k: float(v.mean()) for k, v in power.items() if k != "total" and np.any(v)},
        "latency_s": None if settle is None else float(np.median(settle)),
    }
    out["energy_j"] = None if settle is None else out["power_w"] * out["latency_s"]
    return out


def rescaled(res: SimResult, post: Rescale | None) -> SimResult:
    """The post-step: outputs divided by ``post.scale`` and ``extra[post.key]``: its info and how
    many samples took a stage output beyond ``post.limit_v`` (stage by stage, where every op-amp
    output is a stage output; the stage peaks leave the result either way)."""
    stage_peak = res.extra.pop("stage_peak_v", None)
    if post is None:
        return res
    info = dict(post.info)
    res.outputs = res.outputs / post.scale
    if stage_peak is None or post.limit_v is None:
        info["held_out"] = "not checked: only stage-by-stage DC runs read every op-amp output"
    else:
        done = np.isfinite(stage_peak).all(axis=1)
        worst = np.where(done, stage_peak.max(axis=1, initial=0.0, where=done[:, None]), 0.0)
        outside = np.flatnonzero(done & (worst > post.limit_v * (1 + post.tol)))
        info |= {
            "samples_checked": int(done.sum()),
            "samples_outside": len(outside),
            "outside": outside[:20].tolist(),
            "max_abs_v": float(worst.max()) if done.any() else None,
            "tolerance": post.tol,
        }
    res.extra[post.key] = info
    return res
