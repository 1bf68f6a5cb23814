"""``anasim report RESULTS... -o report/``: the accuracy-vs-circuit report and the CI gates."""

from __future__ import annotations

import click

from ._util import friendly


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), default="report", show_default=True)
@click.option(
    "--gate",
    "gates",
    multiple=True,
    metavar="NAME=VALUE",
    help="Fail (exit 1) unless every simulate result passes: agreement=0.995 (minimum argmax agreement), "
    "accuracy-drop=0.5 (points), loss-ratio=1.01, max-error=1e-3 (of the output range), engines=1e-6 (the "
    "largest difference between the engines of --engine ngspice,vacask, of the output range). Repeat.",
)
@click.option("--quiet", is_flag=True, help="Do not print the comparison table.")
@friendly
def report(results, output, gates, quiet):
    """Write report.md and a self-contained report.html from the JSON of 'simulate --json' and
    'simulate --mc' runs of one model (results only: nothing is simulated again)."""
    from anasim.report import make_report, parse_gate

    rep = make_report(results, output, [parse_gate(g) for g in gates])
    if not quiet and rep.table:
        click.echo(rep.table)
    for gr in rep.gates:
        click.echo(gr.text())
    click.echo(f"wrote {rep.markdown} and {rep.html}")
    if rep.failed:
        raise click.ClickException("gate failed: " + "; ".join(gr.text() for gr in rep.failed))
