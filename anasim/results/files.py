"""Results on disk: strict JSON and the per-sample arrays beside it, written together or not at all.

``write_report`` writes a comparison as JSON and its per-sample arrays as an .npz beside it;
the pipeline calls it before raising on failed samples or on Ctrl-C, so partial results are on
disk whatever happens next. The JSON is strict (no NaN or Infinity, which other tools refuse):
a value that is not a finite number is written as null. ``check_writable`` runs before any
work, so a run never ends in an output path it cannot write. Both files are written whole or not
at all (:mod:`anasim.outputs`); when they cannot be written (a full disk), the computed results are
kept in the system's temporary folder and the error says where.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np

from ..errors import AnasimError
from ..outputs import WriteError, atomic_write_all, npz_writer, text_writer, why_not_written


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
    """``report`` to ``json_out`` and ``arrays`` to the same name with suffix .npz, both new or
    both as they were. A WriteError says where the results were kept instead."""
    write_pair(Path(json_out), json.dumps(jsonable(report), indent=1, allow_nan=False) + "\n", arrays)


def write_pair(json_out: Path, text: str, arrays: dict, compressed: bool = False) -> None:
    """``text`` to ``json_out`` and ``arrays`` to its .npz, together (:func:`~anasim.outputs.atomic_write_all`);
    when they cannot be written, kept in the system's temporary folder, which the WriteError names."""
    files = [(json_out.with_suffix(".npz"), npz_writer(arrays, compressed)), (json_out, text_writer(text))]
    try:
        atomic_write_all(files)
    except WriteError as exc:
        raise WriteError(f"{exc}; {keep_elsewhere(json_out, files)}", exc.path, exc.errno, exc.reason) from None


def keep_elsewhere(json_out: Path, files) -> str:
    """Write ``files`` (path, writer) that could not go beside ``json_out`` into a new folder of
    the system's temporary folder (often another disk); what the error message says about them."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="anasim-results-"))
        atomic_write_all([(folder / Path(path).name, write) for path, write in files])
    except (OSError, WriteError) as exc:
        why = why_not_written(tempfile.gettempdir(), exc) if isinstance(exc, OSError) else exc
        return f"they could not be kept elsewhere either ({why}); free space and run the command again"
    return (
        f"the computed results are kept in {folder / json_out.name} and its .npz: free space and move them to "
        f"{json_out}"
    )


def write_record(json_out, record, **arrays: np.ndarray) -> None:
    """A simulate record (:class:`~anasim.results.simulate.SimRecord`) to ``json_out`` and ``arrays`` to its .npz (:func:`write_report`)."""
    write_report(json_out, record.to_json(), **arrays)


def mc_json(record) -> dict:
    """A Monte Carlo summary as the JSON written to disk (strict: NaN as null)."""
    return jsonable(record.to_json())
