"""``anasim compile model.pt -o layer.cir``: a trained network as an ngspice netlist."""

from __future__ import annotations

import click

from anasim.compare import compile_checkpoint
from anasim.data import DATASETS

from ._hw import hw_options, make_hw
from ._util import friendly


@click.command("compile")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="layer.cir", show_default=True)
@click.option("--stimulus", type=click.IntRange(0), default=0, help="Embed N test samples and a .control block.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help="Dataset of the stimulus [the model's].")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--scale-a", type=float, default=1e-9, show_default=True, help="KirchhoffNet: hardware scale a (eq. 9).")
@hw_options
@friendly
def compile_(checkpoint, output, stimulus, dataset, data_dir, scale_a, **hw):
    """Compile CHECKPOINT into a crossbar netlist."""
    out, info = compile_checkpoint(checkpoint, output, make_hw(**hw), stimulus, dataset, data_dir, scale_a)
    devices = sum(L["devices"] for L in info["layers"])
    resistors = sum(L.get("resistors", 0) for L in info["layers"])
    click.echo(
        f"wrote {out}: {len(info['layers'])} layers, {devices:,} devices"
        + (f", {resistors:,} crossbar resistors" if resistors else "")
    )
    if stimulus:
        click.echo(f"run it alone with: ngspice -b {out}")
