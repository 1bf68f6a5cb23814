"""What a model family provides, and the settings every simulation shares.

A :class:`Family` is a plain record of functions (torchdiffeq's registries as plain dicts, one
level up): its model builder, option dataclass, lowering, torch reference, ngspice simulation,
compile decks and ``info`` rows, and what training and the controllers ask of a model (its config
from options, its input drive, its hardware limits). ``anasim.families.FAMILIES`` maps the
checkpoint's ``arch`` to one; nothing else in anasim dispatches on the model type
(tests/test_layering.py checks it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import AnasimError

_LOWERING = threading.RLock()


@dataclass(frozen=True)
class SimSettings:
    """How to simulate, whatever the family: parallel runs, analysis and its timing."""

    jobs: int | None = None  # parallel ngspice runs (None: the cores, at most 8)
    analysis: str | None = None  # None: the family's own ("dc" for crossbars); "tran": time-multiplexed
    period: float = 2e-6  # tran: time per sample (s)
    settle_tol: float = 0.01  # tran: settled once every output stays within this fraction of the range
    settle_v: float = 0.01  # the same in volts (the pipeline sets it from the reference's range)
    whole: bool = False  # the whole network in one deck instead of stage by stage
    plain: bool = False  # decks as lowered, without the runner's exact rewrites (anasim.sim.partition)
    netlist: Path | None = None  # a netlist from `anasim compile` to simulate instead of lowering
    # --netlist: its outputs are the model's times this (its sidecar's output scale); None: 1
    netlist_scale: float | None = None
    chunk: int | None = None  # samples per ngspice run (None: split evenly over jobs, at most 500)
    progress: bool = False  # samples done and time left on stderr (the CLI's runs)
    power_samples: int = 0  # DC: static power at the operating points of the first N samples
    sample_timeout: float | None = None  # DC: seconds a sample may take (None: scaled to the deck)
    # linear solver: auto (KLU where ngspice has it), klu or sparse; Monte Carlo workers get the
    # resolved name, so every realization runs the solver its settings.json records
    solver: str = "auto"
    # the engine that runs the circuits (anasim.sim.engine.ENGINES); Monte Carlo workers enter it
    engine: str = "ngspice"
    # Monte Carlo: (circuit, stage key) -> perturbed circuit, applied to every circuit lowered
    perturb: Callable | None = None
    # Monte Carlo: a worker's nominal lowered circuits, kept across its realizations (lowering a
    # [196,64,10] network takes a second; perturbations copy the circuits, never edit them)
    memo: dict | None = None

    def vary(self, circuit, key: str):
        return circuit if self.perturb is None else self.perturb(circuit, key)

    def lowered(self, key: str, make: Callable):
        """``make()``, or the circuit(s) kept under ``key`` in ``memo``."""
        if self.memo is None:
            return make()
        with _LOWERING:  # the realizations of a Monte Carlo batch are threads: one lowers, the others wait
            if key not in self.memo:
                self.memo[key] = make()
            return self.memo[key]


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
    simulate: Callable  # (model, z, options, SimSettings, run_dir) -> SimResult
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
