"""The library calls behind the CLI and the public API: checkpoint -> lower -> simulate -> compare.

``load`` verifies a checkpoint once and picks its family (:mod:`anasim.jobs`, with the checks
every run makes before any work); ``lower`` and ``simulate`` work on a model or on circuits;
``compile_network`` writes netlists with their provenance; ``compare`` runs the same samples
through the engines and the torch reference (:mod:`anasim.comparator`) and returns a
:class:`~anasim.metrics.Comparison`, written to disk (JSON + .npz) before any failure is raised;
``monte_carlo`` runs :mod:`anasim.montecarlo.realizations`. Inputs (dataset, netlist) and outputs
are checked before work: no output may overwrite an input or another output, and ``--json`` is
locked while a run writes it.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from . import __version__, comparator, sidecar
from .circuit.ir import Circuit, file_name
from .data import load_dataset
from .errors import AnasimError
from .families import FAMILIES, SimSettings, family_of, make_options
from .jobs import TRAN_DEFAULTS, Job, Network, check_engine, check_sim_outputs, fit_options, job_of, load, prepare
from .metrics import Bounds, Comparison
from .montecarlo import variations
from .outputs import check_outputs, output_lock
from .results import check_writable, jsonable
from .sim import batch, driver
from .sim.engine import engine_names, engine_scope, get_engine, netlist
from .sim.run import SimResult, finish, run_directory

# the API (anasim/__init__.py) and callers take these from here
__all__ = ["TRAN_DEFAULTS", "Job", "Network", "compare", "compile_network", "load", "lower", "monte_carlo",
           "simulate"]  # fmt: skip


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
    solvers = comparator.engine_solvers(names, solver)
    # two runs replacing one file: neither's results would be whole
    with output_lock(job.json_out, "--json"), engine_scope(names[0]) as engine:
        with engine.solver_scope(solvers[names[0]]):
            return comparator.run(net, job, bounds, solvers)
