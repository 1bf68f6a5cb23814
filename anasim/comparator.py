"""The comparator: the same samples through the torch reference and the circuit, on one engine or
several, compared sample by sample (:class:`~anasim.metrics.Comparison`), each other engine in
a block of its own with the largest difference between the engines (``engine_agreement``).
The results file (JSON + .npz) is written before any failure is raised; on Ctrl-C the samples
that finished are written, marked partial (a rerun in the same run folder reuses the engine runs
that finished).

Where it sits in the flow: after :mod:`anasim.jobs` (inputs checked) and the driver
(:mod:`anasim.sim.driver`, which runs the plan); :func:`write_results` writes the typed record
(:mod:`anasim.results`) that the report reads. :func:`anasim.pipeline.compare` calls :func:`run`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace

import numpy as np

from .errors import AnasimError, Interrupted, SimError
from .families import SimSettings
from .jobs import Job, Network, check_engine, check_netlist, prepare
from .metrics import Bounds, Comparison
from .results import FORMAT, Agreement, EngineBlock, SimRecord, jsonable, write_record
from .sim import driver
from .sim.batch import SimInterrupted
from .sim.engine import engine_names, engine_scope, get_engine
from .sim.live import children_cpu
from .sim.run import SimResult, finish, run_directory

TRAJECTORY_SAMPLES = 3  # KirchhoffNet: samples whose node voltages over time the results keep


def engine_solvers(names: list[str], solver: str) -> dict[str, str]:
    """``--solver`` for each engine of a run: every engine that has it takes it, the others run
    their own (auto); refused when none has it (the first engine's words say why)."""

    def takes(name: str) -> bool:
        try:
            get_engine(name).resolve_solver(solver)
        except AnasimError:
            return False
        return True

    found = {n: solver if takes(n) else "auto" for n in names}
    if solver != "auto" and solver not in found.values():
        get_engine(names[0]).resolve_solver(solver)  # raises, naming what to do
    return found


def run(net: Network, job: Job, bounds: Bounds | None, solvers: dict | None = None) -> Comparison:
    """The comparison of :func:`anasim.pipeline.compare`, with the first engine active (and its
    solver); ``solvers``: each engine's (:func:`engine_solvers`)."""
    t0 = time.perf_counter()
    family = net.family
    samples, split, run_dir, json_out = job.samples, job.split, job.run_dir, job.json_out
    settings, opts, data = prepare(net, job)
    names = engine_names(settings.engine)
    for name in names:
        check_engine(settings, name)
    if settings.netlist is not None:
        for name in names:  # every engine of the run reads the deck
            with engine_scope(name):
                card = check_netlist(net, settings.netlist)
        settings = replace(settings, netlist_scale=card.output_scale)
    z_all, t_all = data.split(split)
    z, target = z_all[:samples].double(), t_all[:samples].numpy()
    info = {"family": family.name, "dataset": data.name, "split": split, "requested_samples": samples}
    if samples > len(z_all):
        more = "" if split == "all" else f"; --split all has {sum(data.preprocessing['sizes'].values())}"
        info["note"] = f"the {split} split of {data.name} holds {len(z_all)}{more}"
    if settings.progress:  # an ODE reference on many samples takes a while before ngspice starts
        print(f"reference: {family.title} in torch on {len(z)} samples", file=sys.stderr, flush=True)
    ref, ref_failed = family.reference(net.model, z)
    span = float(np.ptp(ref[np.isfinite(ref).all(axis=1)])) if np.isfinite(ref).any() else 1.0
    settings = replace(settings, settle_v=settings.settle_tol * span)
    interrupted, cpu0, wall0 = False, children_cpu(), time.perf_counter()
    with run_directory(run_dir) as rd:
        try:
            plan = family.plan(net.model, z, opts, settings)  # lowered once, run on every engine
            res = driver.simulate(plan, settings, rd.path)
        except KeyboardInterrupt as exc:  # what finished is written below, then Interrupted
            interrupted, rd.keep = True, True
            res = exc.result if isinstance(exc, SimInterrupted) else SimResult(np.full(ref.shape, np.nan))
        res = finish(res, rd)
        primary = (time.perf_counter() - wall0, children_cpu() - cpu0)
        others: dict[str, tuple[SimResult, tuple[float, float]]] = {}
        for name in names[1:] if not interrupted else []:  # the same circuit on each other engine
            t1, cpu1 = time.perf_counter(), children_cpu()
            with engine_scope(name) as engine, engine.solver_scope((solvers or {}).get(name, "auto")):
                try:
                    other = driver.simulate(plan, settings, rd.path / f"engine_{name}")
                except KeyboardInterrupt as exc:
                    interrupted, rd.keep = True, True
                    other = exc.result if isinstance(exc, SimInterrupted) else SimResult(np.full(ref.shape, np.nan))
                others[name] = (finish(other, rd, engine), (time.perf_counter() - t1, children_cpu() - cpu1))
            if interrupted:
                break
    failed = dict(res.failed)
    for name, (other, _) in others.items():  # a sample another engine lost is named with it
        for b, why in other.failed.items():
            failed[b] = f"{failed[b]}; {name}: {why}" if b in failed else f"{name}: {why}"
    for b, why in ref_failed.items():
        failed[b] = f"{failed[b]}; {why}" if b in failed else why
    done = int(np.isfinite(res.outputs).all(axis=1).sum())
    info |= {
        "checkpoint": str(net.path.resolve()),
        "checkpoint_sha256": net.sha256,
        "netlist": str(settings.netlist) if settings.netlist is not None else None,
        "partial": interrupted,
        "samples_done": done,
        "engine": {
            "name": get_engine().name,
            "simulator": res.simulator,
            "mode": f"{get_engine().runs_as}, {res.mode}",
            "jobs": settings.jobs,
            "solver": res.solver,
            # samples KLU did not converge on, run again under Sparse (their rows are Sparse's)
            "solver_fallback": res.solver_fallback,
        },
        "analysis": settings.analysis,
        "hardware": {**asdict(opts), "analysis": settings.analysis},
        "rusage": res.rusage,
        **res.extra,
        "wall_s": round(time.perf_counter() - t0, 3),
        "run_dir": str(res.run_dir) if res.run_dir else None,
    }
    if others:
        info["engines"] = {names[0]: engine_block(get_engine(), res, primary, ref).to_json()}
        info["engines"] |= {n: engine_block(get_engine(n), r, w, ref).to_json() for n, (r, w) in others.items()}
        info |= agreement(names[0], res.outputs, {n: r.outputs for n, (r, _) in others.items()})
    result = Comparison(data.task, ref, res.outputs, target, dict(sorted(failed.items())), info, bounds or Bounds())
    if json_out is not None:
        # after Ctrl-C: no more ngspice runs (the KirchhoffNet trajectories are left out)
        write_results(net, opts, settings, result, json_out, z, target, ref, res, trajectories=not interrupted,
                      others={n: r.outputs for n, (r, _) in others.items()})  # fmt: skip
    if interrupted:
        again = "run the same command" + ("" if run_dir is not None else f" with --run-dir {rd.path}")
        resume = f"{again} to continue from them" if settings.analysis == "dc" else "run the command again"
        raise Interrupted(
            f"interrupted: {done} of {len(z)} samples finished"
            + (f"; partial results in {json_out} and its .npz" if json_out is not None else "")
            + f"; the {get_engine().name} runs are kept in {rd.path}: {resume}"
        )
    if failed:
        first = min(failed)
        raise SimError(
            f"{len(failed)} of {len(z)} samples could not be simulated; sample {first}, {failed[first]}; "
            f"the other {int(result.ok.sum())} samples' results are kept"
            + (f" in {json_out}" if json_out else "")
            + "".join(f"; IMPLAUSIBLE: {flag}" for flag in result.plausibility()["flags"]),
            res.run_dir,
        )
    return result


def engine_block(engine, res: SimResult, times: tuple[float, float], ref: np.ndarray) -> EngineBlock:
    """One engine's run of a simulation on several engines: what ran, its counters, its samples,
    its wall time and the CPU seconds of its processes (``engine_cpu_s``; the engines run one
    after the other, so each one's processes are its own)."""
    wall, cpu = times
    ok = np.isfinite(res.outputs).all(axis=1) & np.isfinite(ref).all(axis=1)
    err = np.abs(res.outputs[ok] - ref[ok])
    span = float(np.ptp(ref[ok])) if ok.any() else float("nan")
    return EngineBlock(
        simulator=res.simulator,
        mode=f"{engine.runs_as}, {res.mode}",
        solver=res.solver,
        solver_fallback=res.solver_fallback,
        samples_done=int(np.isfinite(res.outputs).all(axis=1).sum()),
        failed_samples={str(k): res.failed[k] for k in sorted(res.failed)},
        max_error_rel_range=float(err.max()) / span if err.size and span else None,
        rusage=res.rusage,
        wall_s=round(wall, 3),
        engine_cpu_s=round(cpu, 3),
    )


def agreement(first: str, outputs: np.ndarray, others: dict[str, np.ndarray]) -> dict:
    """The largest difference between the engines' outputs over the output range (of ``first``'s
    outputs, on the samples every engine finished): ``engine_agreement`` (the worst engine against
    the first) and one row per other engine in ``engine_agreements``."""
    rows = []
    for name, out in others.items():
        ok = np.isfinite(outputs).all(axis=1) & np.isfinite(out).all(axis=1)
        diff = np.abs(outputs[ok] - out[ok])
        span = float(np.ptp(outputs[ok])) if ok.any() else float("nan")
        worst = int(np.flatnonzero(ok)[np.argmax(diff.max(axis=1))]) if diff.size else None
        rows.append(Agreement(
            engines=[first, name],
            samples_compared=int(ok.sum()),
            max_abs_diff_v=float(diff.max()) if diff.size else None,
            output_range_v=span,
            max_diff_rel_range=float(diff.max()) / span if diff.size and span else None,
            worst_sample=worst,
        ))  # fmt: skip
    worst = max(rows, key=lambda r: -1.0 if r.max_diff_rel_range is None else r.max_diff_rel_range)
    # the console table (Comparison.rows) and the record read them from the run's info
    return {"engine_agreement": worst.to_json(), "engine_agreements": [r.to_json() for r in rows]}


def write_results(
    net: Network,
    opts,
    settings: SimSettings,
    result: Comparison,
    json_out,
    z,
    target,
    ref,
    res,
    trajectories=True,
    others: dict | None = None,
) -> None:
    """The results file of ``compare``: metrics and provenance, the model and device summary and
    the environment the report shows, per-sample arrays (and KirchhoffNet trajectories) in the .npz."""
    from .summary import device_curves, environment, model_summary

    model = model_summary(net, opts)
    arrays = {"x": z.numpy(), "target": target, "reference": ref, "circuit": res.outputs}
    arrays |= {f"circuit_{name}": out for name, out in (others or {}).items()}  # the other engines' outputs
    if trajectories and net.family.trajectories is not None and result.ok.any():
        # a few samples' node voltages over time, ngspice and torchdiffeq: the report's trajectory plot
        first = np.flatnonzero(result.ok)[:TRAJECTORY_SAMPLES]
        with run_directory(None) as rd:
            arrays |= net.family.trajectories(net.model, z[first], opts, rd.path)
        arrays["trajectory_samples"] = first
    seeds = {"train": model.train_seed}
    record = SimRecord.from_json(
        jsonable({"format": FORMAT, "kind": "simulate", **result.to_dict(), "model": model.to_json()}),
        "the simulate results",
    )
    record.devices = device_curves(net.family.devices(net.ckpt["config"]))
    record.environment = environment(res.simulator, seeds)
    if settings.analysis == "tran":
        record.period_s = settings.period  # the time one inference holds the circuit: energy = power x period
    write_record(json_out, record, **arrays)
