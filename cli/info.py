"""``anasim info model.pt [--json]``: what a checkpoint holds."""

from __future__ import annotations

import json

import click

from anasim.checkpoint import load_checkpoint, summary

from ._util import friendly


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@friendly
def info(checkpoint, as_json):
    """Print architecture, parameter count, bases and test accuracy of CHECKPOINT."""
    ckpt, _ = load_checkpoint(checkpoint)
    s = summary(ckpt)
    if as_json:
        click.echo(json.dumps(s, indent=1))
        return
    acc = s["test_accuracy"]
    if s["arch"] == "kirchhoffnet":
        rows = [
            ("architecture", "kirchhoffnet"),
            ("dims (in, out)", ",".join(map(str, s["dims"]))),
            ("topology", s["topology"]),
            ("nodes per layer", ",".join(map(str, s["nodes"]))),
            ("branch", s["branch"]),
            ("parameters", f"{s['params']:,}"),
            ("dataset", s["dataset"]),
            (
                "test loss" if s["test_loss"] is not None else "test accuracy",
                f"{s['test_loss']:.4g}"
                if s["test_loss"] is not None
                else ("-" if acc is None else f"{100 * acc:.2f}%"),
            ),
            ("epochs", s["epochs"]),
        ]
        for k, v in rows:
            click.echo(f"{k:<20} {v}")
        return
    rows = [
        ("architecture", s["arch"]),
        ("dims", ",".join(map(str, s["dims"]))),
        ("bases" if s["arch"] == "tdkan" else "activation", ",".join(s["bases"]) or s["activation"]),
        ("norm / mapping", f"{s['norm']} / {s['mapping']}" if s["arch"] == "tdkan" else "-"),
        ("parameters", f"{s['params']:,}"),
        ("dataset", s["dataset"]),
        ("test accuracy", "-" if acc is None else f"{100 * acc:.2f}%"),
        ("epochs", s["epochs"]),
        ("devices (fit hash)", ", ".join(f"{k}:{v}" for k, v in s["devices"].items()) or "-"),
    ]
    for k, v in rows:
        click.echo(f"{k:<20} {v}")
