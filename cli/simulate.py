"""``anasim simulate model.pt``: run the circuit in ngspice and compare with PyTorch."""

from __future__ import annotations

import click

from anasim.compare import simulate_checkpoint
from anasim.data import DATASETS

from ._hw import hw_options, make_hw
from ._util import friendly


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--netlist", "netlist_path", type=click.Path(dir_okay=False), help="A netlist from 'anasim compile'.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help="[the model's dataset]")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--samples", type=click.IntRange(1), default=1000, show_default=True)
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train", "all"]),
    default="test",
    show_default=True,
    help="Which samples (all: test, then validation, then training).",
)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Parallel ngspice runs [cores].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Keep decks and logs here [a temp dir].")
@click.option(
    "--analysis",
    type=click.Choice(["dc", "tran"]),
    default="dc",
    show_default=True,
    help="tran: samples in sequence in one transient, with line capacitance and op-amp bandwidth.",
)
@click.option("--period", type=float, default=2e-6, show_default=True, help="tran: time per sample (s).")
@click.option(
    "--line-cap", type=float, default=1e-12, show_default=True, help="tran: capacitance per row/column line (F)."
)
@click.option("--gbw", type=float, default=1e8, show_default=True, help="tran: op-amp gain-bandwidth (Hz).")
@click.option(
    "--scale-a",
    type=float,
    default=1e-9,
    show_default=True,
    help="KirchhoffNet: hardware scale a (farads per unit capacitance, seconds per unit time).",
)
@click.option("--reltol", type=click.FloatRange(1e-12, 1e-2), default=None, help="KirchhoffNet: ngspice reltol [1e-6].")
@click.option("--whole", is_flag=True, help="Simulate the whole network in one deck (default: layer by layer).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report (and an .npz beside it).")
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
    line_cap,
    gbw,
    scale_a,
    reltol,
    whole,
    json_out,
    **hw,
):
    """Simulate CHECKPOINT's circuit on test samples and compare with the PyTorch reference."""
    hardware = make_hw(**hw)
    if analysis == "tran":
        hardware.line_cap, hardware.gbw = line_cap, gbw
    r = simulate_checkpoint(
        checkpoint,
        dataset,
        samples,
        hardware,
        netlist_path,
        json_out,
        run_dir,
        jobs,
        data_dir,
        whole,
        analysis,
        period,
        split=split,
        scale_a=scale_a,
        reltol=reltol,
    )
    if "circuit_loss" in r or "end_time_s" in r:
        _kirchhoff_table(r)
        return
    rows = [
        ("samples", r["samples"]),
        ("engine", r["engine"]["simulator"]),
        ("reference accuracy", f"{100 * r['reference_accuracy']:.2f}%"),
        ("circuit accuracy", f"{100 * r['circuit_accuracy']:.2f}%"),
        ("argmax agreement", f"{100 * r['argmax_agreement']:.2f}%"),
        ("max abs error", f"{r['max_abs_error']:.3g} V ({r['max_abs_error'] / r['output_scale']:.2e} of range)"),
        ("mean abs error", f"{r['mean_abs_error']:.3g} V"),
        ("output range", f"{r['output_scale']:.4g} V"),
        ("wall time", f"{r['wall_s']:.2f} s"),
    ]
    if analysis == "tran":
        rows += [
            (
                "settling time",
                f"median {r['settling_time_s']['median'] * 1e9:.0f} ns, max {r['settling_time_s']['max'] * 1e9:.0f} ns",
            ),
            ("static power", f"mean {r['static_power_w']['mean'] * 1e3:.2f} mW per inference"),
        ]
    for k, v in rows:
        click.echo(f"{k:<20} {v}")


def _kirchhoff_table(r: dict) -> None:
    rows = [
        ("samples", r["samples"]),
        ("engine", r["engine"]["simulator"]),
        ("forward time", f"{r['end_time_s']:.3g} s (a = {r['scale_a']:g})"),
    ]
    if "circuit_loss" in r:
        rows += [("reference loss", f"{r['reference_loss']:.4g}"), ("circuit loss", f"{r['circuit_loss']:.4g}")]
    else:
        rows += [
            ("reference accuracy", f"{100 * r['reference_accuracy']:.2f}%"),
            ("circuit accuracy", f"{100 * r['circuit_accuracy']:.2f}%"),
            ("argmax agreement", f"{100 * r['argmax_agreement']:.2f}%"),
        ]
    rows += [
        ("max abs error", f"{r['max_abs_error']:.3g} V ({r['max_abs_error'] / r['output_scale']:.2e} of range)"),
        ("wall time", f"{r['wall_s']:.2f} s"),
    ]
    for k, v in rows:
        click.echo(f"{k:<20} {v}")
