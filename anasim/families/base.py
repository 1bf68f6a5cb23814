"""What a model family provides, and the settings every simulation shares.

A :class:`Family` is a plain record of functions (torchdiffeq's registries as plain dicts, one
level up): its model builder, option dataclass, lowering, torch reference, simulation plan
(the circuits and input voltages :mod:`anasim.sim.driver` runs), compile decks and ``info``
rows, and what training and the controllers ask of a model (its config from options, its input
drive, its hardware limits). ``anasim.families.FAMILIES`` maps the checkpoint's ``arch`` to
one; nothing else in anasim dispatches on the model type (tests/test_layering.py checks it).
:class:`SimSettings` lives with the plan in the sim layer (:mod:`anasim.sim.plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from ..errors import AnasimError
from ..sim.plan import SimSettings

__all__ = ["Deck", "Family", "SimSettings", "crossbar_params", "make_options", "option_names", "picked"]


@dataclass(frozen=True)
class Deck:
    """One file ``compile`` writes: a circuit, and the run that makes it standalone (or None)."""

    suffix: str  # "" for the main file (every family writes one deck today)
    circuit: object
    run: object | None


def crossbar_params(config: dict) -> int:
    """A crossbar's weights: one per edge and device basis."""
    dims = config["dims"]
    return sum(a * b for a, b in zip(dims, dims[1:])) * max(1, len(config.get("bases") or ()))


def picked(name: str, dims, given: dict, keys: tuple[str, ...]) -> dict:
    """The config ``{"arch": name, "dims": dims}`` and those of ``keys`` that are in ``given``."""
    return {"arch": name, "dims": dims} | {k: given[k] for k in keys if k in given}


@dataclass(frozen=True)
class Family:
    name: str  # the checkpoint's config["arch"]
    title: str  # for messages: "TD-KAN"
    model_class: type
    build: Callable  # config -> model
    options: type  # frozen dataclass of hardware options, with .check()
    lower: Callable  # (model, options) -> (Circuit of the whole network, info)
    reference: Callable  # (model, z [N, in] float64) -> (outputs [N, out], {sample: why})
    # (model, z [N, in], options, SimSettings) -> anasim.sim.plan.Plan: the circuits lowered once,
    # the first stage's input voltages and the post-step, torch-free; anasim.sim.driver.simulate
    # perturbs, runs and post-processes it (for every family: no family runs its own simulation)
    plan: Callable
    compile: Callable  # (model, options, z | None, data_file stem) -> (list[Deck], info)
    describe: Callable  # (summary dict) -> [(label, value)] rows for `anasim info`
    prepare: Callable = lambda config, data: config  # train: sizes or layout taken from the data
    devices: Callable = lambda config: list(config.get("bases", []))  # device names a config uses
    analyses: tuple[str, ...] = ("dc", "tran")
    # (model, z [B, in], options, run_dir) -> arrays of node voltages over time, ngspice and reference
    trajectories: Callable | None = None
    # Monte Carlo: (model, sigma, seed, dist) -> the model with eq. 6 coefficient noise (TD-KAN only)
    eq6: Callable | None = None
    # (model, options, training inputs loader) -> the options fitted to the training data (TD-KAN --swing)
    fit: Callable | None = None
    # (dims, given) -> the model config ``train`` builds: arch, dims and the keys of ``given`` (train's
    # or a controller's options, already parsed) that this family reads, in its order
    config: Callable = lambda dims, given: {}
    params: Callable = crossbar_params  # config -> about how many weights it makes (checked before building)
    # model -> (offset, gain) from a model input to its input node's volts (scalars or one per input)
    drive: Callable = lambda model: (np.float64(0.0), np.float64(1.0))
    project: Callable = lambda model: None  # after each optimizer step: parameters back within hardware limits
    limit_errors: Callable = lambda model: []  # model -> what in loaded weights lies beyond its hardware limits


def option_names(family: Family) -> set[str]:
    return {f.name for f in fields(family.options)}


def make_options(family: Family, given: dict, registry: dict[str, Family], defaults: dict | None = None):
    """The family's options from the ones the user ``given`` (refused, naming the families that
    use them, if this family has no such option) and ``defaults`` that apply only where they fit."""
    mine = option_names(family)
    for key in given:
        if key not in mine:
            users = [f.title for f in registry.values() if key in option_names(f)]
            flag = "--" + key.replace("_", "-")
            where = f"applies to {' and '.join(users)} models" if users else "is not an option of any model family"
            raise AnasimError(f"{flag} {where}; this checkpoint is a {family.title}: drop {flag}")
    values = {k: v for k, v in (defaults or {}).items() if k in mine} | given
    return family.options(**values).check()
