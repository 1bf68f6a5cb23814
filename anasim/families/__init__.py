"""Model families, registered in one dict: the checkpoint's ``arch`` -> :class:`Family`.

Each family owns its folder: model, options, lowering, reference and simulation. Adding a
fourth family is its folder plus one line here.
"""

from __future__ import annotations

import math

from ..errors import CheckpointError
from .base import Deck, Family, SimSettings, crossbar_params, make_options
from .kirchhoff import FAMILY as KIRCHHOFFNET
from .mlp import FAMILY as MLP
from .tdkan import FAMILY as TDKAN

FAMILIES: dict[str, Family] = {f.name: f for f in (TDKAN, MLP, KIRCHHOFFNET)}

__all__ = [
    "FAMILIES",
    "Deck",
    "Family",
    "SimSettings",
    "build_model",
    "check_config",
    "count_params",
    "family_named",
    "family_of",
    "make_options",
]


def family_named(arch: str) -> Family:
    if arch not in FAMILIES:
        raise CheckpointError(f"unknown architecture {arch!r}; valid: {', '.join(FAMILIES)}")
    return FAMILIES[arch]


def family_of(model) -> Family:
    for family in FAMILIES.values():
        if isinstance(model, family.model_class):
            return family
    raise CheckpointError(f"{type(model).__name__} is not a model of any anasim family ({', '.join(FAMILIES)})")


# The largest model anasim builds: 20 million parameters are 80 MB of float32 weights and about
# 0.5 GB while training (gradients, Adam's two moments, the best copy), and every one becomes a
# circuit element; the largest model of the benchmarks has 0.4 million (Fashion-MNIST, 784,256,10).
MAX_PARAMS = 20_000_000
# Numbers of a config: (lowest, lowest allowed too); each must be finite
NUMBERS = {"in_gain": (0.0, False), "hidden_gain": (0.0, False), "train_noise": (0.0, True),
           "period": (0.0, False), "train_tol": (0.0, False), "init_std": (0.0, False)}  # fmt: skip


def _ints(config: dict, key: str, label: str) -> list[int]:
    value = config.get(key)
    if not isinstance(value, list | tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CheckpointError(f"{label} {value!r}: give a list of whole numbers")
    if not value or min(value) < 1:
        raise CheckpointError(f"{label} {','.join(map(str, value))}: every width must be >= 1")
    return list(value)


def estimated_params(config: dict) -> int:
    """About how many weights ``config`` makes (the coefficients or edges that dominate)."""
    family = FAMILIES.get(config.get("arch"))
    return (family.params if family is not None else crossbar_params)(config)


def check_config(config, where: str = "") -> dict:
    """A model config that can be built: a mapping, whole positive widths, finite numbers, and
    at most MAX_PARAMS weights, checked before any tensor is allocated. ``where`` prefixes the
    message (a checkpoint's path); without it the values are named by their train options."""

    def name(key: str) -> str:
        return f"{where}config {key!r}" if where else "--" + key.replace("_", "-")

    if not isinstance(config, dict):
        raise CheckpointError(f"{where or 'config: '}the model config is a {type(config).__name__}, not a mapping")
    dims = _ints(config, "dims", name("dims"))
    for key in ("nodes", "proj_nodes"):
        if config.get(key) is not None:
            _ints(config, key, name(key))
    for key, (low, closed) in NUMBERS.items():
        value = config.get(key)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and (value >= low if closed else value > low)):
            raise CheckpointError(f"{name(key)} {value!r}: give a finite number {'>=' if closed else '>'} {low:g}")
    n = estimated_params(config)
    if n > MAX_PARAMS:
        raise CheckpointError(
            f"{name('dims')} {','.join(map(str, dims))}: about {n:,} parameters, more than the limit of "
            f"{MAX_PARAMS:,} ({4 * n / 1e9:.3g} GB of weights, several times that to train); give smaller widths"
        )
    return config


def build_model(config: dict):
    """Model from its config dict (as stored in a checkpoint)."""
    return family_named(config.get("arch")).build(config)


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
