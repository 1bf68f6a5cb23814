"""The library calls behind the CLI and the public API: checkpoint -> lower -> simulate -> compare.

``load`` verifies a checkpoint once and picks its family; ``lower`` and ``simulate`` work on a
model or on circuits; ``compile_network`` writes netlists with their provenance; ``compare``
runs the same samples through ngspice and the torch reference and returns a
:class:`~anasim.metrics.Comparison`, written to disk (JSON + .npz) before any failure is raised,
and on Ctrl-C the samples that finished, marked partial (a rerun in the same run folder reuses
the ngspice runs that finished). Inputs (dataset, netlist) and outputs are checked before work:
no output may overwrite an input or another output, and ``--json`` is locked while a run writes it.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import __version__, sidecar
from .checkpoint import load_checkpoint
from .circuit.ir import Circuit, file_name
from .data import load_dataset
from .errors import AnasimError, Interrupted, SimError
from .families import FAMILIES, Family, SimSettings, family_of, make_options
from .metrics import Bounds, Comparison
from .montecarlo import variations
from .outputs import check_outputs, json_outputs, output_lock
from .results import FORMAT, Agreement, EngineBlock, SimRecord, check_writable, jsonable, write_record
from .sim import batch, driver
from .sim.batch import SimInterrupted
from .sim.engine import engine_names, engine_scope, get_engine, netlist, require
from .sim.live import children_cpu
from .sim.run import SimResult, finish, run_directory

# Hardware the time-multiplexed transient adds unless told otherwise: 1 pF lines, 100 MHz op-amps.
TRAN_DEFAULTS = {"line_cap": 1e-12, "gbw": 1e8}
TRAJECTORY_SAMPLES = 3  # KirchhoffNet: samples whose node voltages over time the results keep


@dataclass(frozen=True)
class Job:
    """What a simulation or a Monte Carlo reads and writes, besides the checkpoint: its samples
    (dataset, split, how many), the family's hardware ``options`` (None: its defaults), how to
    simulate (:class:`SimSettings`), and where runs and results go."""

    dataset: str | None = None  # None: the checkpoint's own
    samples: int = 1000
    split: str = "test"
    options: dict | None = None
    settings: SimSettings | None = None
    data_dir: str | Path | None = None
    run_dir: str | Path | None = None  # the engine's run folders (None: a temporary one)
    json_out: str | Path | None = None  # the results file (and .npz, or a Monte Carlo's .mc folder)


def job_of(job: Job | None, fields: dict) -> Job:
    """``job`` (default: all defaults) with ``fields`` (a library caller's keywords) set."""
    return replace(job or Job(), **fields)


@dataclass(frozen=True)
class Network:
    """A verified checkpoint: its dict, the model in float64 (eval mode) and its family."""

    path: Path
    ckpt: dict
    model: torch.nn.Module
    family: Family
    sha256: str  # of the file, read once when it was loaded

    @property
    def digest(self) -> str:
        """The first 16 hex digits of the sha256: what netlist headers and summaries show."""
        return self.sha256[:16]


def load(path: str | Path) -> Network:
    ckpt, model = load_checkpoint(path)
    sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return Network(Path(path), ckpt, model.double(), family_of(model), sha256)


def _model(target):
    return target.model if isinstance(target, Network) else target


def lower(target, **options) -> Circuit:
    """The whole network as a circuit (KirchhoffNet: its first layer), with ``options`` of its family."""
    model = _model(target)
    family = family_of(model)
    opts = make_options(family, options, FAMILIES)
    return family.lower(model, fit_options(target, opts) if isinstance(target, Network) else opts)[0]


def simulate(target, x, *, jobs: int | None = None, run_dir=None, **options) -> SimResult:
    """The engine's outputs for ``x``: a Circuit or a list of stage circuits takes input node voltages
    [N, inputs]; a Network or model takes model inputs [N, features] and its family's options."""
    with run_directory(run_dir) as rd:
        if isinstance(target, Circuit):
            res = batch.sweep(target, np.asarray(x, dtype=float), rd.path, jobs)
        elif isinstance(target, list | tuple):
            res = batch.layers(list(target), np.asarray(x, dtype=float), rd.path, jobs)
        else:
            model = _model(target)
            family = family_of(model)
            opts = make_options(family, options, FAMILIES)
            opts = fit_options(target, opts) if isinstance(target, Network) else opts
            z = torch.as_tensor(np.asarray(x), dtype=torch.float64)
            settings = SimSettings(jobs=jobs)
            res = driver.simulate(family.plan(model, z, opts, settings), settings, rd.path)
        return finish(res, rd)


def fit_options(net: Network, opts, data_dir=None, data=None):
    """``opts`` fitted to the checkpoint's training data where its family fits any (TD-KAN
    ``--swing``); the data is loaded only then (``data``: already loaded, when it is that set)."""
    if net.family.fit is None:
        return opts

    def train_inputs():
        name = net.ckpt.get("dataset", {}).get("name")
        if name is None:
            raise AnasimError(f"{net.path.name} records no dataset, and --swing is fitted on its training data")
        return (data if data is not None and data.name == name else load_dataset(name, data_dir)).x_train

    return net.family.fit(net.model, opts, train_inputs)


def provenance(net: Network, opts) -> list[str]:
    cfg = net.ckpt["config"]
    return [
        f"model {net.path.name} sha256 {net.digest}, {cfg['arch']} dims {cfg['dims']}, anasim {__version__}",
        "options " + ", ".join(f"{k} {v}" for k, v in asdict(opts).items()),
    ]


def compile_network(net: Network, out, options=None, stimulus: int = 0, dataset=None, data_dir=None,
                    solver: str = "auto", engine: str | None = None, check_solver: bool = True,
                    simulator: str = "ngspice"):  # fmt: skip
    """Write the netlist of ``net`` to ``out`` (a family may add files beside it, ``<stem><suffix>``)
    in the dialect of the engine ``simulator``; with ``stimulus`` N, N test samples and a control
    block make it run alone (``ngspice -b out``, ``vacask out``), with ``solver`` (auto|klu|sparse,
    checked against the engine unless ``check_solver`` is False) and ``engine`` (default: the
    engine's version) named in its header."""
    with engine_scope(simulator) as eng, eng.solver_scope(solver, engine, check_solver):
        if check_solver:
            eng.resolve_solver(solver)  # what the user asked for (an engine with one solver takes auto only)
        return _compile_network(net, out, options, stimulus, dataset, data_dir)


def _compile_network(net: Network, out, options, stimulus, dataset, data_dir):
    out = Path(out)
    check_outputs([(f"the checkpoint {net.path}", net.path)], [(f"-o {out}", out, "-o")])
    opts = fit_options(net, make_options(net.family, options or {}, FAMILIES), data_dir)
    z = None
    if stimulus:
        z = load_dataset(dataset or net.ckpt["dataset"]["name"], data_dir).x_test[:stimulus]
    decks, info = net.family.compile(net.model, opts, z, file_name(out.stem))
    paths = [out.with_name(f"{out.stem}{deck.suffix}{out.suffix}") for deck in decks]
    written = [(f"the netlist {p}", p, "-o") for p in paths]
    written += [(f"the netlist sidecar {sidecar.path_of(p)}", sidecar.path_of(p), "-o") for p in paths]
    check_outputs([(f"the checkpoint {net.path}", net.path)], written)
    engine = get_engine()
    for deck, path in zip(decks, paths):
        header = (*provenance(net, opts), *info.get("header", ()))
        text = netlist(replace(deck.circuit, header=header), path, deck.run)
        # what simulate --netlist reads instead of the deck's text
        sidecar.write(
            path, text, model=net.path.name, model_sha256=net.sha256, family=net.family.name,
            options=jsonable(asdict(opts)), output_scale=info.get("output_scale"), engine=engine.name,
            engine_label=engine.deck_label(), solver=engine.active_solver(), stimulus=int(stimulus),
            runs_alone=deck.run is not None, anasim=__version__,
        )  # fmt: skip
    return paths, info


def check_sim_outputs(net: Network, job: Job, mc: bool = False) -> None:
    """Refuse, before any work, outputs of a simulation that would overwrite its checkpoint or
    netlist or each other: --json, what goes beside it (.npz arrays, a Monte Carlo's .mc folder), --run-dir."""
    settings, json_out, run_dir = job.settings, job.json_out, job.run_dir
    inputs = [(f"the checkpoint {net.path}", net.path)]
    if settings is not None and settings.netlist is not None:
        inputs.append((f"the netlist {settings.netlist}", settings.netlist))
    outputs = [] if run_dir is None else [(f"--run-dir {run_dir}", run_dir, "--run-dir")]
    outputs += json_outputs(json_out, ".mc" if mc else ".npz", "Monte Carlo folder" if mc else "arrays")
    check_outputs(inputs, outputs)


def settings_for(family: Family, settings: SimSettings, given: dict) -> tuple[SimSettings, dict | None]:
    """Check the settings against the family; the option defaults the analysis implies."""
    if settings.analysis is not None and settings.analysis not in family.analyses:
        raise AnasimError(
            f"--analysis {settings.analysis}: a {family.title} runs {' or '.join(family.analyses)} only; drop --analysis"
        )
    analysis = settings.analysis or family.analyses[0]
    if family.analyses == ("tran",) and (settings.whole or settings.netlist is not None):
        raise AnasimError(f"--whole and --netlist apply to crossbar models; a {family.title} runs layer by layer")
    for key in ("line_cap", "gbw"):
        if key in given and analysis != "tran":
            raise AnasimError(
                f"--{key.replace('_', '-')} applies to --analysis tran (DC has no poles or line charging)"
            )
    return replace(settings, analysis=analysis), (TRAN_DEFAULTS if analysis == "tran" else None)


def prepare(net: Network, job: Job):
    """Settings, family options and dataset of a simulation, checked before any work."""
    dataset, samples, options, settings, data_dir = job.dataset, job.samples, job.options, job.settings, job.data_dir
    if samples < 1:
        raise AnasimError("--samples must be at least 1")
    given = dict(options or {})
    settings, defaults = settings_for(net.family, settings or SimSettings(), given)
    opts = make_options(net.family, given, FAMILIES, defaults)
    trained = net.ckpt["dataset"]["name"]
    if dataset is None and trained.startswith("control-"):  # a controller's data is its plant's closed loop
        # (control simulate names the plants it has; this layer does not look them up)
        plant = trained[len("control-") :]
        raise AnasimError(
            f"{net.path.name} is a controller for the {plant} plant: simulate its closed loop with "
            f"'anasim control simulate {net.path.name}'"
        )
    data = check_data(net, load_dataset(dataset or trained, data_dir))
    return settings, fit_options(net, opts, data_dir, data), data


def check_data(net: Network, data):
    """Refuse a dataset the model cannot read: another input width or task (or fewer classes)."""
    trained, dims = net.ckpt.get("dataset", {}).get("name", "?"), net.ckpt["config"]["dims"]
    fix = f"drop --dataset to simulate on {trained}, or give a model trained on {data.name}"
    if data.n_features != dims[0]:
        raise AnasimError(
            f"--dataset {data.name} has {data.n_features} input features but {net.path.name} was trained on "
            f"{trained} with {dims[0]}; {fix}"
        )
    task = net.ckpt.get("dataset", {}).get("task", data.task)
    if task != data.task:
        raise AnasimError(f"--dataset {data.name} is a {data.task} set but {net.path.name} does {task}; {fix}")
    if data.task == "classification" and int(data.y_train.max()) + 1 > dims[-1]:
        raise AnasimError(
            f"--dataset {data.name} has {int(data.y_train.max()) + 1} classes but {net.path.name} has {dims[-1]} "
            f"outputs; {fix}"
        )
    return data


def check_engine(settings: SimSettings, name=None) -> None:
    """Refuse, before any work, an analysis the engine (default: the active one) does not run,
    naming the ones that do."""
    name = get_engine().name if name is None else name
    require("tran" if settings.analysis == "tran" else "dc-sweep", f"--analysis {settings.analysis}", name)
    if settings.power_samples or settings.analysis == "tran":
        require("static-power", "the static power (--power-samples, or a transient's power)", name)


def check_netlist(net: Network, path) -> sidecar.Sidecar:
    """A --netlist must be an ``anasim compile`` deck of this very checkpoint, as compiled, for the
    engine that runs it: its sidecar says so (another model's netlist would run and give a wrong
    accuracy with exit 0). Its text is never read back; the sidecar is returned."""
    redo = f"compile one with 'anasim compile {net.path} -o {Path(path).name}'"
    card = sidecar.read(path, redo)
    if card.model_sha256 != net.sha256:
        raise AnasimError(
            f"--netlist {path} was compiled from model {card.model} sha256 {card.model_sha256[:16]}, but "
            f"{net.path.name} has sha256 {net.digest}; {redo}, or simulate the checkpoint it came from"
        )
    if card.runs_alone:
        run = "ngspice -b" if card.engine == "ngspice" else card.engine
        raise AnasimError(
            f"--netlist {path} was compiled with --stimulus {card.stimulus}: it holds its own analysis (anasim "
            f"writes the analysis); compile it without --stimulus to simulate it with anasim ('anasim compile "
            f"{net.path} -o {Path(path).name}'), or run it alone with {run} {path}"
        )
    if card.engine != get_engine().name:
        raise AnasimError(
            f"--netlist {path} is a deck for {card.engine} ({sidecar.path_of(path).name}), and this run's engine is "
            f"{get_engine().name}: simulate it with --engine {card.engine}, or compile one with --engine "
            f"{get_engine().name}"
        )
    return card


def monte_carlo(net: Network, mc, job: Job | None = None, *, workers: int | None = None, scheduler: str | None = None,
                resume: bool = False, **fields) -> dict:  # fmt: skip
    """``mc`` (a :class:`~anasim.montecarlo.realizations.MonteCarlo`) on ``net``'s circuit for ``job``
    (or a Job of ``fields``: dataset=, samples=, ...; results in ``mc.json`` unless ``json_out``),
    on ``workers`` local processes or a Dask ``scheduler``, continuing its rows with ``resume``;
    see :mod:`anasim.montecarlo.realizations`."""
    from .montecarlo import realizations as montecarlo

    job = job_of(job, fields)
    job = job if job.json_out is not None else replace(job, json_out="mc.json")
    if job.settings is not None and job.settings.netlist is not None:
        raise AnasimError("Monte Carlo perturbs the lowered circuit; drop --netlist")
    check_sim_outputs(net, job, mc=True)
    check_writable(job.json_out, "--json", "the Monte Carlo results")
    name = job.settings.engine if job.settings is not None else "ngspice"
    if len(engine_names(name)) > 1:
        raise AnasimError(f"--engine {name}: a Monte Carlo runs on one engine; give one")
    # two runs on one folder would write every row twice
    with output_lock(job.json_out, "--json"), engine_scope(name):
        settings, opts, data = prepare(net, job)
        check_engine(settings)
        for name in [n for n, _ in mc.vary] + ([mc.sweep[0]] if mc.sweep else []):
            variations.parse_sigma(f"{name}=0", net.family.name)  # refuses a variation of another family
        fanout = montecarlo.Fanout(workers, scheduler)
        return montecarlo.run(net, mc, data, replace(job, settings=settings), opts, fanout, resume)


def compare(net: Network, job: Job | None = None, *, bounds: Bounds | None = None, **fields) -> Comparison:
    """Circuit against reference for ``job`` (or a Job of ``fields``: samples=, split=, ...); a
    SimError after writing ``json_out`` when some samples could not be simulated, Interrupted
    after writing the finished ones (``"partial": true``) on Ctrl-C. Results outside ``bounds``
    are flagged."""
    job = job_of(job, fields)
    check_sim_outputs(net, job)
    if job.json_out is not None:
        check_writable(job.json_out, "--json")
    settings = job.settings
    names = engine_names(settings.engine if settings is not None else "ngspice")
    solver = settings.solver if settings is not None else "auto"
    solvers = engine_solvers(names, solver)
    # two runs replacing one file: neither's results would be whole
    with output_lock(job.json_out, "--json"), engine_scope(names[0]) as engine:
        with engine.solver_scope(solvers[names[0]]):
            return _compare(net, job, bounds, solvers)


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


def _compare(net: Network, job: Job, bounds: Bounds | None, solvers: dict | None = None) -> Comparison:
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
