"""The ``anasim`` click group; commands live in sibling modules."""

from __future__ import annotations

import click

from anasim import __version__

from . import compile, devices, info, report, simulate, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="anasim")
def cli():
    """anasim: compile analog neural networks to ngspice circuits and check them against PyTorch."""


cli.add_command(devices.devices)
cli.add_command(train.train)
cli.add_command(info.info)
cli.add_command(compile.compile_)
cli.add_command(simulate.simulate)
cli.add_command(report.report)
