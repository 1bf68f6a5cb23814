"""``anasim control train|simulate``: analog controllers closed around a plant (train by imitating
the plant's expert; simulate the circuit loop against the torch loop)."""

from __future__ import annotations

import click

from ._util import friendly, table

PLANT_NAMES = ("pendulum", "pendulum-swingup", "cartpole")


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated hidden widths such as 8 or 8,8") from None
    if min(widths) < 1:
        raise click.BadParameter(f"{text!r}: hidden widths must be positive")
    return widths


def latency(r: dict) -> str:
    if r.get("control_step_latency_s") is None:
        return f"not measured: {r.get('control_step_latency_note')}"
    return f"{1e9 * r['control_step_latency_s']:.3g} ns, {1e9 * r['energy_per_step_j']:.3g} nJ per step"


@click.group()
def control():
    """Closed-loop control: a controller circuit in the loop with its plant."""


@control.command("train")
@click.option("--plant", type=click.Choice(PLANT_NAMES), required=True, help="The plant to control.")
@click.option("--arch", type=click.Choice(["tdkan", "mlp"]), default="tdkan", show_default=True)
@click.option("--hidden", default="8", show_default=True, help="Hidden widths (inputs and output come from the plant).")
@click.option("--bases", default="a21,z21", show_default=True, help="TD-KAN device bases.")
@click.option("--activation", default="a21", show_default=True, help="MLP activation (a device, relu or sigmoid).")
@click.option("--torque-limit", type=float, help="|u| limit in N m or N (default: the plant's own).")
@click.option("--samples", type=click.IntRange(100), default=20000, show_default=True, help="Expert states to imitate.")
@click.option("--epochs", type=click.IntRange(1), default=60, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--dagger",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="DAgger rounds: add the states the controller's own loop visits, labelled by the expert, and retrain.",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="Controller checkpoint to write.")
@friendly
def train(plant, arch, hidden, bases, activation, torque_limit, samples, epochs, lr, seed, dagger, out):
    """Train a controller by imitating the plant's expert (LQR; energy pumping for swing-up)."""
    from anasim.control.controller import train_controller
    from anasim.train import TrainOptions

    opts = TrainOptions(epochs=epochs, lr=lr, batch_size=256, patience=15, seed=seed)
    _, metrics = train_controller(
        plant, out, arch, _widths(hidden), bases.split(","), activation, samples, opts, torque_limit, dagger
    )
    click.echo(
        f"wrote {out}: {metrics['params']} parameters, imitation MSE {metrics['test_loss']:.4g} "
        f"(actions / limit, test states), {metrics['train_time_s']:.1f} s"
    )


@control.command("simulate")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--episodes", type=click.IntRange(1), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial conditions.")
@click.option(
    "--engine",
    default="netlist",
    show_default=True,
    help="netlist: the plant inside the ngspice transient; pyspice: the Python plant in lock-step "
    "(both ngspice: the loop runs in no other engine).",
)
@click.option("--horizon", type=float, help="Episode length in seconds (default: the plant's own, 10 s).")
@click.option("--jobs", type=click.IntRange(1), default=2, show_default=True, help="Episodes run in parallel.")
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), help="Summary JSON (trajectories: same stem, .npz)."
)
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG of a few episodes, circuit and torch loops.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Keep decks and ngspice logs here.")
@friendly
def simulate(checkpoint, episodes, seed, engine, horizon, jobs, json_out, plot, run_dir):
    """Run the circuit loop against the torch loop over random initial conditions."""
    from anasim.control.compare import control_simulate

    r = control_simulate(checkpoint, episodes, seed, engine, jobs, run_dir, json_out, plot=plot, horizon=horizon)
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    table(
        [
            ("plant", f"{r['plant']} (|u| <= {r['action_limit']:g}), {episodes} episodes of {r['horizon_s']:g} s"),
            ("success torch", pct(r["torch_success_rate"])),
            ("success circuit", pct(r["circuit_success_rate"])),
            ("RMS deviation", f"{r['rms_state_deviation']:.3g} of the state range (circuit vs torch)"),
            ("return", f"torch {r['torch_return']:.4g}, circuit {r['circuit_return']:.4g}"),
            ("controller power", f"{1e3 * r['controller_power_w']:.3g} mW"),
            ("latency / energy", latency(r)),
            ("time", f"circuit {r['circuit_loop_s']:.1f} s, torch {r['torch_loop_s']:.1f} s"),
        ]
    )
    for why in r["failed"].values():
        click.echo(f"failed: {why}", err=True)
    if json_out:
        click.echo(f"wrote {json_out}")
