"""Hardware options shared by ``compile`` and ``simulate``."""

from __future__ import annotations

import click

from anasim.lower import HwOptions


def hw_options(fn):
    for opt in reversed(
        [
            click.option(
                "--mapping",
                type=click.Choice(["edge", "shared"]),
                default="edge",
                show_default=True,
                help="edge: one device per edge and basis (physical default); shared: one per input and basis.",
            ),
            click.option(
                "--crossbar",
                type=click.Choice(["vccs", "resistor"]),
                default="vccs",
                show_default=True,
                help="Shared mapping: crossbar cells as conductances into ideal virtual grounds, or as resistors.",
            ),
            click.option(
                "--area-max",
                type=float,
                default=10.0,
                show_default=True,
                help="Largest device area (unit-area devices).",
            ),
            click.option("--levels", type=click.IntRange(2), default=None, help="Quantize areas to N levels."),
            click.option("--opamp-gain", type=float, default=1e9, show_default=True, help="Op-amp open-loop gain."),
        ]
    ):
        fn = opt(fn)
    return fn


def make_hw(mapping, crossbar, area_max, levels, opamp_gain) -> HwOptions:
    return HwOptions(mapping=mapping, crossbar=crossbar, area_max=area_max, levels=levels, opamp_gain=opamp_gain)
