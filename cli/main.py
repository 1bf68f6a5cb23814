"""The ``anasim`` click group; commands live in sibling modules."""

from __future__ import annotations

import warnings

import click

from anasim import __version__

from . import compile, control, devices, info, report, simulate, train

_default_show = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    from anasim.errors import AnasimWarning

    if not issubclass(category, AnasimWarning):
        return _default_show(message, category, filename, lineno, file, line)
    # one line, no source location: the message says what is wrong and what anasim does about it
    click.echo(f"warning: {message}", err=True)


warnings.showwarning = _show_warning


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
cli.add_command(control.control)
