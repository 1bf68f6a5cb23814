"""``anasim simulate model.pt``: run the circuit in ngspice and compare with PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from ._hw import given, hw_options
from ._util import friendly, table


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
@click.option("--jobs", type=click.IntRange(1), default=None, help="Parallel ngspice runs [cores].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Keep decks and logs here [temporary, removed].")
@click.option(
    "--analysis",
    type=click.Choice(["dc", "tran"]),
    default=None,
    help="Crossbars: dc (default) or tran, samples in sequence in one transient with line capacitance and op-amp bandwidth.",
)
@click.option("--period", type=float, default=2e-6, show_default=True, help="tran: time per sample (s).")
@click.option("--line-cap", type=float, help="tran, TD-KAN: capacitance per row/column line (F) [1e-12].")
@click.option("--gbw", type=float, help="tran: op-amp gain-bandwidth (Hz) [1e8].")
@click.option("--reltol", type=click.FloatRange(1e-12, 1e-2), help="KirchhoffNet: ngspice reltol [1e-6].")
@click.option("--whole", is_flag=True, help="Simulate the whole network in one deck (default: stage by stage).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report (and an .npz beside it).")
@hw_options
@friendly
def simulate(
    checkpoint, netlist_path, dataset, data_dir, samples, split, jobs, run_dir, analysis, period, whole, json_out, **hw
):
    """Simulate CHECKPOINT's circuit on test samples and compare with the PyTorch reference."""
    from anasim.families import SimSettings
    from anasim.pipeline import compare, load

    settings = SimSettings(
        jobs, analysis, period, whole=whole, netlist=Path(netlist_path).resolve() if netlist_path else None
    )
    result = compare(load(checkpoint), dataset, samples, split, given(**hw), settings, data_dir, run_dir, json_out)
    table(result.rows())
