"""``anasim simulate model.pt``: run the circuit in ngspice and compare with PyTorch; with
``--mc N``, a Monte Carlo of circuit non-idealities (:mod:`anasim.montecarlo.realizations`)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import click

from ._hw import engine_option, given, hw_options, solver_option
from ._util import friendly, table

# --strict's exit status for a flagged result: not 1 (an error) or 2 (a usage error), so a script can tell them apart
STRICT_EXIT = 3
# --mc with failed realizations (results written, but not all of them): the same "written, not clean" status
MC_FAILED_EXIT = 3


def _positive(value: float, flag: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value!r}: give a finite time > 0 seconds", param_hint=f"'{flag}'")
    return value


def _list_variations(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from anasim.montecarlo.variations import describe

    for name, unit, families, meaning in describe():
        click.echo(f"{name:<13} {unit:<15} {families:<13} {meaning}")
    ctx.exit()


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--netlist", "netlist_path", type=click.Path(dir_okay=False), help="A netlist from 'anasim compile'.")
@click.option("--dataset", default=None, help="[the model's dataset]")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--samples", type=click.IntRange(1), default=1000, show_default=True)
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train", "all"]),
    default="test",
    show_default=True,
    help="Which samples (all: test, then validation, then training).",
)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Parallel engine runs [cores].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Keep decks and logs here [temporary, removed].")
@click.option(
    "--analysis",
    type=click.Choice(["dc", "tran"]),
    default=None,
    help="Crossbars: dc (default) or tran, samples in sequence in one transient with line capacitance and op-amp bandwidth.",
)
@click.option(
    "--period",
    type=float,
    default=2e-6,
    show_default=True,
    callback=lambda ctx, param, v: _positive(v, "--period"),
    help="tran: time per sample (s).",
)
@click.option("--line-cap", type=float, help="tran, TD-KAN: capacitance per row/column line (F) [1e-12].")
@click.option("--gbw", type=float, help="tran: op-amp gain-bandwidth (Hz) [1e8].")
@click.option("--reltol", type=click.FloatRange(1e-12, 1e-2), help="KirchhoffNet: ngspice reltol [1e-6].")
@click.option(
    "--power-samples",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="DC: also measure the static power at the operating points of the first N samples (one more ngspice "
    "run of the whole circuit); tran runs measure it on every sample.",
)
@click.option(
    "--sample-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    callback=lambda ctx, param, v: None if v is None else _positive(v, "--sample-timeout"),
    help="DC: a sample still not converged after this many CPU seconds of the simulator is recorded as "
    "failed and the others go on [60 s plus 10 ms per circuit element of its deck].",
)
@solver_option(" A sample KLU does not converge on runs again under Sparse (said in the results).")
@engine_option(several=True)
@click.option("--whole", is_flag=True, help="Simulate the whole network in one deck (default: stage by stage).")
@click.option(
    "--plain",
    is_flag=True,
    help="Run each deck as lowered: no merged parallel devices, split parts or folded clippers (slower; "
    "to check the fast path, which agrees to 1e-6 of the range).",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report (and an .npz beside it).")
@click.option(
    "--max-range",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Flag circuit outputs spanning more volts than this (op-amps on +-15 V rails) as implausible.",
)
@click.option(
    "--max-power",
    type=click.FloatRange(0, min_open=True),
    default=5.0,
    show_default=True,
    help="tran: flag a static power per inference above this many watts as implausible.",
)
@click.option(
    "--max-error",
    type=click.FloatRange(0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Flag samples whose circuit output is further from the reference than this fraction of the output range.",
)
@click.option(
    "--strict",
    is_flag=True,
    help=f"Exit with status {STRICT_EXIT} (after writing --json) when a result is flagged (range, power, max error).",
)
@click.option("--mc", type=click.IntRange(1), help="Monte Carlo: this many realizations of the varied circuit.")
@click.option("--vary", multiple=True, metavar="NAME=SIGMA", help="Monte Carlo: a variation and its sigma (repeat).")
@click.option("--sweep", multiple=True, metavar="NAME=S1,S2,..", help="Monte Carlo at each sigma of one variation.")
@click.option(
    "--noise-dist",
    type=click.Choice(["gauss", "binary", "uniform"]),
    default="binary",
    show_default=True,
    help="Monte Carlo, coeff: distribution of delta in Theta (1 + delta) (binary +-sigma: the paper's code).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Monte Carlo: realization r draws from [seed, r].")
@click.option("--workers", type=click.IntRange(1), help="Monte Carlo: local worker processes [cores].")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Monte Carlo: run on this Dask scheduler's workers.")
@click.option(
    "--resume",
    is_flag=True,
    help="Monte Carlo: continue the run recorded beside --json: run the missing realizations and again the "
    "failed ones (a lost worker may pass; a circuit failing for its own reasons fails again). A smaller --mc "
    "summarizes realizations 0..N-1.",
)
@click.option(
    "--allow-failed",
    is_flag=True,
    help=f"Monte Carlo: exit 0 when realizations failed (default: exit {MC_FAILED_EXIT} after writing --json).",
)
@click.option(
    "--list-variations",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_variations,
    help="List the Monte Carlo variations (name, unit, families, meaning) and exit.",
)
@hw_options
@friendly
def simulate(
    checkpoint,
    netlist_path,
    dataset,
    data_dir,
    samples,
    split,
    jobs,
    run_dir,
    analysis,
    period,
    power_samples,
    sample_timeout,
    solver,
    engine,
    whole,
    plain,
    json_out,
    max_range,
    max_power,
    max_error,
    strict,
    mc,
    vary,
    sweep,
    noise_dist,
    seed,
    workers,
    scheduler,
    resume,
    allow_failed,
    **hw,
):
    """Simulate CHECKPOINT's circuit on test samples and compare with the PyTorch reference.

    Exit status: 0 done, 1 error, 2 bad usage, 3 results written but flagged (--strict) or with
    failed Monte Carlo realizations (unless --allow-failed), 130 interrupted (partial results kept).
    """
    from anasim.families import SimSettings
    from anasim.metrics import Bounds
    from anasim.pipeline import Job, compare, load, monte_carlo

    settings = SimSettings(
        jobs, analysis, period, whole=whole, plain=plain, netlist=Path(netlist_path).resolve() if netlist_path else None
    )
    settings = replace(
        settings, power_samples=power_samples, sample_timeout=sample_timeout, solver=solver, engine=engine
    )
    job = Job(dataset, samples, split, given(**hw), settings, data_dir, run_dir, json_out)
    if mc is None:
        if vary or sweep or resume or workers or scheduler or allow_failed:
            raise click.UsageError("--vary, --sweep, --resume, --workers, --scheduler and --allow-failed need --mc N")
        bounds = Bounds(max_range, max_power, max_error)
        result = compare(load(checkpoint), replace(job, settings=replace(settings, progress=True)), bounds=bounds)
        table(result.rows())
        flags = result.plausibility()["flags"]
        for flag in flags:
            click.echo(f"warning: {flag}", err=True)
        if strict and flags:
            kept = f"; the results are in {json_out}" if json_out else ""
            click.echo(f"error: --strict: {len(flags)} flag(s) raised{kept}", err=True)
            click.get_current_context().exit(STRICT_EXIT)
        return
    if strict:
        raise click.UsageError("--strict applies to a single simulation, not to --mc")
    from anasim.montecarlo.realizations import MonteCarlo
    from anasim.montecarlo.summary import summary_rows
    from anasim.montecarlo.variations import parse_sigma, parse_sweep

    if len(sweep) > 1:
        raise click.UsageError(f"--sweep is given {len(sweep)} times: a Monte Carlo sweeps one variation")
    spec = MonteCarlo(
        mc, tuple(parse_sigma(v) for v in vary), parse_sweep(sweep[0]) if sweep else None, seed, noise_dist
    )
    json_out = json_out or f"{Path(checkpoint).stem}-mc.json"
    job = replace(job, json_out=json_out)
    summary = monte_carlo(load(checkpoint), spec, job, workers=workers, scheduler=scheduler, resume=resume)
    table(summary_rows(summary))
    failed = sum(len(p["failed"]) for p in summary["points"])
    if failed and not allow_failed:
        click.echo(
            f"error: {failed} realization(s) failed (see failed in {json_out}); --resume runs them again, "
            "--allow-failed accepts them",
            err=True,
        )
        click.get_current_context().exit(MC_FAILED_EXIT)
