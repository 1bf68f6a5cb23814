"""Model families, registered in one dict: the checkpoint's ``arch`` -> :class:`Family`.

Each family owns its folder: model, options, lowering, reference and simulation. Adding a
fourth family is its folder plus one line here.
"""

from __future__ import annotations

from ..errors import CheckpointError
from .base import Deck, Family, SimSettings, make_options
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


def build_model(config: dict):
    """Model from its config dict (as stored in a checkpoint)."""
    return family_named(config.get("arch")).build(config)


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
