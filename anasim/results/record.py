"""The base of the typed result records: fields to JSON and back, format versions.

A record is a dataclass. ``to_json`` gives a plain dict in the file's field order: a field left
None is not written unless the class keeps it (``KEEP_NULL``: a field the file has always carried,
as null when it has no value); nested records are named in ``NESTED``; fields a record does not
know are kept in its ``extra`` (written back in place) where it has one. ``from_json`` refuses a
missing required field or a value of the wrong shape, naming the file and the field.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from ..errors import AnasimError

# Version of the simulate results file; the report refuses files of other versions by name.
# 1: the first with "format", "kind", "model", "devices" and "environment" (anasim 0.2.0).
FORMAT = "anasim-simulate/1"
# Version of the Monte Carlo summary. Summaries written before it (no "format", no "environment",
# the same fields otherwise) are still read.
MC_FORMAT = "anasim-montecarlo/1"


class RecordError(AnasimError):
    """A results file whose content is not the record its format promises."""


@dataclass
class Record:
    KEEP_NULL: ClassVar[frozenset[str]] = frozenset()
    NESTED: ClassVar[dict[str, tuple[str, type]]] = {}  # field -> ("one" | "list" | "dict", record class)

    def to_json(self) -> dict:
        """A plain dict in the file's field order (numpy values and NaN are :func:`jsonable`'s business)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                out |= value
            elif value is not None or f.name in self.KEEP_NULL:
                out[f.name] = encode(value)
        return out

    @classmethod
    def from_json(cls, data, where: str = "results"):
        """The record of ``data`` (a dict read from JSON); a missing required field or a value of the
        wrong shape is a RecordError naming ``where`` and the field."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: a JSON object was expected, found {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        kw = {}
        for f in fields(cls):
            if f.name == "extra":
                kw["extra"] = {k: v for k, v in data.items() if k not in names}
            elif f.name in data:
                kw[f.name] = decode(cls.NESTED.get(f.name), data[f.name], f"{where}: field {f.name!r}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise RecordError(f"{where}: no {f.name!r} field; not written by this anasim's 'simulate --json'")
        return cls(**kw)


def encode(value):
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(nested, value, where: str):
    if nested is None or value is None:
        return value
    kind, cls = nested
    if kind == "one":
        return cls.from_json(value, where)
    if kind == "list" and isinstance(value, list):
        return [cls.from_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "dict" and isinstance(value, dict):
        return {k: cls.from_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise RecordError(f"{where}: a JSON {'list' if kind == 'list' else 'object'} was expected")


def check_format(data, want: str, where: str, older_ok: bool = False) -> None:
    """Refuse ``data`` of another format version than ``want``, naming both; ``older_ok``: a file
    without a format field (written before there was one) is read."""
    got = data.get("format") if isinstance(data, dict) else None
    if got == want or (got is None and older_ok):
        return
    if got is None:
        raise RecordError(
            f"{where}: results file without a format version (written by an older anasim); this anasim reads "
            f"{want}: run 'anasim simulate --json' again with this anasim"
        )
    raise RecordError(f"{where}: results format {got!r}; this anasim reads {want}: run it again with this anasim")
