"""Hardware options shared by ``compile`` and ``simulate``.

Every option defaults to None: only the options a user gives reach the library, whose family
option dataclasses hold the defaults and refuse an option the checkpoint's family does not use.
"""

from __future__ import annotations

import click

HW_OPTIONS = [
    click.option(
        "--mapping",
        type=click.Choice(["edge", "shared"]),
        help="TD-KAN: edge, one device per edge and basis (physical, default); shared, one per input and basis.",
    ),
    click.option(
        "--crossbar",
        type=click.Choice(["vccs", "resistor"]),
        help="TD-KAN shared mapping: cells as conductances into ideal virtual grounds (vccs, default) or resistors.",
    ),
    click.option("--area-max", type=float, help="TD-KAN: largest device area in unit-area devices [10]."),
    click.option("--levels", type=click.IntRange(2), help="TD-KAN: quantize areas to N levels."),
    click.option(
        "--area-min",
        type=float,
        help="TD-KAN: smallest device area; smaller ones are dropped (below half of it) or made this size [0].",
    ),
    click.option("--opamp-gain", type=float, help="TD-KAN, MLP: op-amp open-loop gain [1e9]."),
    click.option(
        "--wire-r",
        type=float,
        help="TD-KAN edge mapping: resistance of each row and column line segment between crossings (ohms) [0].",
    ),
    click.option(
        "--tile",
        callback=lambda ctx, param, value: _tile(value),
        metavar="ROWS,COLS",
        help="TD-KAN edge mapping: crossbar tile of ROWS rows and COLS column lines (two per output); a larger "
        "layer is split into tiles whose partial sums add in each output's difference amplifier [one tile].",
    ),
    click.option(
        "--rails",
        type=float,
        help="TD-KAN: op-amp outputs saturate smoothly (tanh) at +-RAILS volts; needs --opamp-gain 1e7 or less "
        "[none: no limit].",
    ),
    click.option(
        "--swing",
        type=float,
        help="TD-KAN: choose feedback resistors and difference gains so that every op-amp output stays within "
        "+-SWING volts on the training data (never scaled up); the next stage undoes the scale and the "
        "comparison divides the outputs' scale out [none: nominal design].",
    ),
    click.option("--scale-a", type=float, help="KirchhoffNet: hardware scale a, farads and seconds per unit [1e-9]."),
]


def _tile(value: str | None):
    if value is None:
        return None
    try:
        rows, cols = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give ROWS,COLS as two integers, e.g. --tile 64,64") from None
    return rows, cols


def hw_options(fn):
    for opt in reversed(HW_OPTIONS):
        fn = opt(fn)
    return fn


def solver_option(more: str = ""):
    """``--solver``, the same on ``compile`` (the deck's .options) and ``simulate`` (the runs)."""
    return click.option(
        "--solver",
        type=click.Choice(["auto", "klu", "sparse"]),
        default="auto",
        show_default=True,
        help="ngspice's linear solver: auto is KLU where ngspice has it (42+ built with KLU), else Sparse "
        "(VACASK: KLU, its only one; auto only)." + more,
    )


def engine_option(several: bool = False):
    """``--engine``: the simulator (``anasim.sim.engine.ENGINES``), checked by the library, which
    lists the engines and what each runs for an unknown name."""
    more = (
        " Several, comma-separated (ngspice,vacask), run the same circuit on each and compare them." if several else ""
    )
    return click.option(
        "--engine",
        default="ngspice",
        show_default=True,
        metavar="NAME",
        help="The circuit simulator: ngspice or vacask." + more,
    )


def given(**values) -> dict:
    """The options the user gave (click passes None for the others)."""
    return {k: v for k, v in values.items() if v is not None}
