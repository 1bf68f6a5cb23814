"""Results on disk: what the comparator hands to the report step.

``write_report`` writes a comparison as JSON and its per-sample arrays as an .npz beside it;
the pipeline calls it before raising on failed samples or on Ctrl-C, so partial results are on
disk whatever happens next. The JSON is strict (no NaN or Infinity, which other tools refuse):
a value that is not a finite number is written as null. ``check_writable`` runs before any
work, so a run never ends in an output path it cannot write.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np

from .errors import AnasimError

# Version of the simulate results file; the report refuses files of other versions by name.
# 1: the first with "format", "kind", "model", "devices" and "environment" (anasim 0.2.0).
FORMAT = "anasim-simulate/1"


def jsonable(value):
    """``value`` with numpy scalars as Python numbers and NaN/inf as None (JSON null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_writable(path, option: str, what: str = "results") -> Path:
    """Refuse, before any work, an output file that cannot be written (its folder is created)."""
    path = Path(path)
    if path.is_dir():
        raise AnasimError(f"{option} {path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        why = "not a folder" if isinstance(exc, FileExistsError | NotADirectoryError) else exc.strerror or exc
        raise AnasimError(
            f"{option} {path}: cannot write {what} in {path.parent} ({why}); choose a writable path"
        ) from None
    return path


def write_report(json_out, report: dict, **arrays: np.ndarray) -> None:
    """``report`` to ``json_out`` and ``arrays`` to the same name with suffix .npz."""
    json_out = Path(json_out)
    try:
        json_out.write_text(json.dumps(jsonable(report), indent=1, allow_nan=False) + "\n")
        np.savez(json_out.with_suffix(".npz"), **arrays)
    except OSError as exc:
        raise AnasimError(f"{json_out}: cannot write results: {exc.strerror or exc}") from None
