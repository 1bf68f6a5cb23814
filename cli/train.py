"""``anasim train``: train a TD-KAN or device-MLP reference model on a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from anasim.data import DATASETS

from ._util import friendly


def _dims(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated layer widths such as 64,16,10") from None
    if len(dims) < 2 or min(dims) < 1:
        raise click.BadParameter(f"{text!r}: need at least two positive widths (input,...,output)")
    return dims


def _nodes(text: str) -> list[int]:
    try:
        nodes = [int(n) for n in text.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give comma-separated node counts, one per layer, such as 7 or 12,12"
        ) from None
    if min(nodes) < 1:
        raise click.BadParameter(f"{text!r}: node counts must be positive")
    return nodes


@click.command()
@click.option("--arch", type=click.Choice(["tdkan", "mlp", "kirchhoffnet"]), default="tdkan", show_default=True)
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with IDX files (MNIST).")
@click.option(
    "--dims",
    default=None,
    help="Layer widths input,hidden..,output: input = the data's features, output = its classes or targets "
    "[features,16,outputs] (KirchhoffNet: inputs and outputs are nodes; see --nodes).",
)
@click.option("--bases", default="a21,z21", show_default=True, help="TD-KAN device bases (see 'anasim devices list').")
@click.option("--activation", default="a21", show_default=True, help="MLP activation: a device name, relu or sigmoid.")
@click.option("--nodes", default="7", show_default=True, help="KirchhoffNet: nodes of each FC layer (time period).")
@click.option(
    "--repeat", type=click.IntRange(1), default=2, show_default=True, help="KirchhoffNet: parallel edges per pair."
)
@click.option(
    "--branch",
    type=click.Choice(["relu", "tanh", "relu3", "tanh3", "shifted"]),
    default="relu",
    show_default=True,
    help="KirchhoffNet branch current: paper eqs. 10-13, or theta1*ReLU(vs-vd-theta0).",
)
@click.option(
    "--topology",
    type=click.Choice(["fc", "proj"]),
    default="fc",
    show_default=True,
    help="KirchhoffNet layer: fully connected (--nodes), or the paper's Proj layer over the image grid.",
)
@click.option(
    "--kernel", type=click.IntRange(1), default=3, show_default=True, help="KirchhoffNet Proj: NE kernel size."
)
@click.option(
    "--proj-nodes",
    default="20",
    show_default=True,
    help="KirchhoffNet Proj: projected nodes of each layer, e.g. 20,20.",
)
@click.option(
    "--period",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="KirchhoffNet: duration T of each layer.",
)
@click.option(
    "--train-tol",
    type=click.FloatRange(0, 0.1, min_open=True),
    default=1e-5,
    show_default=True,
    help="KirchhoffNet: ODE solver rtol = atol while training (1e-3 is faster but the model learns the solver's error).",
)
@click.option(
    "--init-std", type=click.FloatRange(0, min_open=True), default=None, help="KirchhoffNet: theta init std [He]."
)
@click.option("--ground", is_flag=True, help="KirchhoffNet: learnable branches from every node to ground.")
@click.option("--adjoint", is_flag=True, help="KirchhoffNet: adjoint-method gradients (less memory).")
@click.option("--norm", default="batch", show_default=True, help="TD-KAN: batch (fused into the TIAs), layer or none.")
@click.option("--mapping", default="clip", show_default=True, help="TD-KAN input clipper: clip or sigmoid.")
@click.option(
    "--in-gain",
    type=float,
    default=0.1,
    show_default=True,
    help="Row drive (its start with --drive row): volts per std, over half the range.",
)
@click.option(
    "--drive",
    type=click.Choice(["row", "fixed"]),
    default="row",
    show_default=True,
    help="TD-KAN row drive: row = trainable per-row offset and gain within the DAC limits (from --in-gain); "
    "fixed = one offset and gain for all rows.",
)
@click.option(
    "--train-noise",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Gaussian coefficient noise sigma (eq. 3).",
)
@click.option("--epochs", type=click.IntRange(1), default=60, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-2, show_default=True)
@click.option("--batch-size", type=click.IntRange(2), default=64, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option(
    "--patience", type=click.IntRange(1), default=15, show_default=True, help="Early-stopping patience (epochs)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="CPU threads for torch. 1 is fastest here and gives the same result run after run; more "
    "threads change float sums (digits: 97.78% at 1 thread, 98.61% at 2).",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="model.pt", show_default=True)
@friendly
def train(
    arch,
    dataset,
    data_dir,
    dims,
    bases,
    activation,
    nodes,
    repeat,
    branch,
    topology,
    kernel,
    proj_nodes,
    period,
    train_tol,
    init_std,
    ground,
    adjoint,
    norm,
    mapping,
    in_gain,
    drive,
    train_noise,
    output,
    **opts,
):
    """Train a reference model and write a self-describing checkpoint."""
    from anasim.families import family_named
    from anasim.train import TrainOptions
    from anasim.train import train as run_train

    # every family option, parsed; the family keeps its own (anasim.families: no dispatch here)
    given = {"bases": bases, "norm": norm, "mapping": mapping, "in_gain": in_gain, "drive": drive,
             "train_noise": train_noise, "activation": activation, "nodes": _nodes(nodes), "repeat": repeat,
             "branch": branch, "period": period, "topology": topology, "kernel": kernel,
             "proj_nodes": _nodes(proj_nodes), "ground": ground,
             "adjoint": adjoint, "train_tol": train_tol, "init_std": init_std}  # fmt: skip
    config = family_named(arch).config(_dims(dims) if dims else None, given)
    _, metrics = run_train(config, dataset, TrainOptions(**opts), Path(output), data_dir=data_dir)
    if "test_loss" in metrics:
        head = f"test loss (MSE, target scaled to [0, 1]) {metrics['test_loss']:.3g} (val {metrics['val_loss']:.3g}), "
    else:
        head = f"test accuracy {100 * metrics['test_accuracy']:.2f}% (val {100 * metrics['val_accuracy']:.2f}%), "
    click.echo(head + f"{metrics['params']:,} parameters, {metrics['train_time_s']:.1f} s -> {output}")
