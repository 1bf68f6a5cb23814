"""``anasim info model.pt [--json]``: what a checkpoint holds."""

from __future__ import annotations

import json

import click

from ._util import friendly, table


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@friendly
def info(checkpoint, as_json):
    """Print architecture, parameter count, bases and test accuracy (or loss) of CHECKPOINT."""
    from anasim.checkpoint import load_checkpoint, summary
    from anasim.families import FAMILIES

    ckpt, _ = load_checkpoint(checkpoint)
    s = summary(ckpt)
    if as_json:
        click.echo(json.dumps(s, indent=1))
        return
    acc, loss = s["test_accuracy"], s["test_loss"]
    score = (
        ("test loss", f"{loss:.4g}")
        if loss is not None
        else ("test accuracy", "-" if acc is None else f"{100 * acc:.2f}%")
    )
    table(
        [
            ("architecture", s["arch"]),
            ("dims", ",".join(map(str, s["dims"]))),
            *FAMILIES[s["arch"]].describe(s),
            ("parameters", f"{s['params']:,}"),
            ("dataset", s["dataset"]),
            score,
            ("epochs", s["epochs"]),
        ]
    )
