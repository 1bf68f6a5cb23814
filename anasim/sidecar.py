"""A compiled netlist's sidecar: ``layer.cir.json`` beside ``layer.cir``, what ``compile`` knew.

Where it sits in the flow: ``compile`` (:func:`anasim.pipeline.compile_network`) writes each
deck and then its sidecar: the sha256 of the deck's text as written, the checkpoint's hash, the
family options, the output scale (``--swing``), the engine and solver the dialect is for, and
the stimulus it embeds. ``simulate --netlist`` reads the sidecar, never the deck's text: a deck
without its sidecar, with one of another format, or whose text no longer has the recorded hash
(edited since) is refused with what to do. The deck's header keeps the same facts for people.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import AnasimError
from .outputs import write_text

# Version of the sidecar; another one is refused, naming both (the deck is recompiled).
FORMAT = "anasim-netlist/1"
MAX_BYTES = 1_000_000  # a sidecar holds a few hundred bytes of options; larger is not ours


@dataclass(frozen=True)
class Sidecar:
    netlist: str  # the deck's file name
    netlist_sha256: str  # of the deck's bytes as compile wrote them
    model: str  # the checkpoint's file name
    model_sha256: str  # of the checkpoint file
    family: str  # the checkpoint's arch
    options: dict  # the family options the circuit was lowered with
    output_scale: float | None  # the outputs y_<j> are the model's times this (--swing); None: 1
    engine: str  # the engine whose dialect the deck is in ("ngspice")
    engine_label: str  # what the deck's header names, e.g. "ngspice-46"
    solver: str  # "klu" or "sparse"
    stimulus: int  # test samples compile embedded (--stimulus)
    runs_alone: bool  # the deck holds its own analysis (a control block): the engine runs it as it is
    anasim: str  # the version that compiled it
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps({"format": self.format, **asdict(self)}, indent=1, allow_nan=False) + "\n"


def path_of(netlist) -> Path:
    """``layer.cir`` -> ``layer.cir.json``."""
    netlist = Path(netlist)
    return netlist.with_name(netlist.name + ".json")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(netlist, text: str, **fields) -> Path:
    """The sidecar of the deck ``netlist`` whose text is ``text`` (as written to it)."""
    card = Sidecar(netlist=Path(netlist).name, netlist_sha256=digest(text.encode()), **fields)
    return write_text(path_of(netlist), card.to_json(), what="netlist sidecar")


def read(netlist, redo: str) -> Sidecar:
    """The sidecar of ``netlist``, checked against the deck's bytes; ``redo`` says how to compile
    the deck again (the refusals end with it)."""
    netlist, side = Path(netlist), path_of(netlist)
    flag = f"--netlist {netlist}"
    try:
        data = netlist.read_bytes()
    except OSError as exc:
        raise AnasimError(f"{flag}: cannot read it ({exc.strerror or exc})") from None
    if not side.is_file():
        raise AnasimError(
            f"{flag}: no sidecar {side.name} beside it (anasim compile writes one; without it the deck's model, "
            f"options and output scale are unknown); {redo}"
        )
    try:
        raw = side.read_bytes()[: MAX_BYTES + 1]
        found = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_BYTES else None
    except OSError as exc:
        raise AnasimError(f"{flag}: cannot read its sidecar {side} ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError):
        found = None
    if not isinstance(found, dict) or not str(found.get("format", "")).startswith("anasim-netlist/"):
        raise AnasimError(f"{flag}: its sidecar {side} is not an anasim netlist sidecar; {redo}")
    if found["format"] != FORMAT:
        raise AnasimError(f"{flag}: its sidecar {side} is format {found['format']}, this anasim reads {FORMAT}; {redo}")
    try:
        card = Sidecar(**found)
    except TypeError:
        card = None
    if card is None or not well_typed(card):
        raise AnasimError(f"{flag}: its sidecar {side} lacks fields of {FORMAT}, or holds others; {redo}")
    if card.netlist_sha256 != digest(data):
        raise AnasimError(
            f"{flag}: the deck was changed after anasim compile wrote it (its sha256 is not the one {side.name} "
            f"records); anasim simulates decks as compiled: {redo}"
        )
    return card


def well_typed(card: Sidecar) -> bool:
    def number(v) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    texts = (card.netlist, card.netlist_sha256, card.model, card.model_sha256, card.family, card.engine,
             card.engine_label, card.solver, card.anasim)  # fmt: skip
    return (
        all(isinstance(t, str) for t in texts)
        and isinstance(card.options, dict)
        and (card.output_scale is None or (number(card.output_scale) and card.output_scale != 0))
        and isinstance(card.stimulus, int)
        and isinstance(card.runs_alone, bool)
    )
