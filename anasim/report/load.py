"""Report step, input side: read the result files of ``simulate --json`` and of Monte Carlo runs.

Results only: nothing here imports torch or runs ngspice. Each file is checked before any figure
is drawn: it must exist, be a results file of a known format version (a simulate file without a
``format`` field is from an older anasim), carry its per-sample arrays, and all files of one
report must come from one checkpoint (compared by its sha256). The JSON is read into the typed
records of :mod:`anasim.results` (``from_json``); the sections read their attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AnasimError
from ..results import McRecord, McRow, SimRecord, read_rows


@dataclass
class SimRun:
    """One ``simulate --json`` result: its record and the arrays of the .npz beside it."""

    path: Path
    record: SimRecord
    arrays: dict = field(default_factory=dict)

    @property
    def classification(self) -> bool:
        return self.record.classification


@dataclass
class McRun:
    """One Monte Carlo summary and the rows of its folder (one per realization)."""

    path: Path
    record: McRecord
    rows: list[McRow] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.record.key


@dataclass
class Results:
    sims: list[SimRun]
    mcs: list[McRun]
    checkpoint: str  # sha256 (16 hex digits) shared by every file
    name: str  # checkpoint file name, for titles


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise AnasimError(f"{path}: no such results file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise AnasimError(f"{path}: cannot read results file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # a checkpoint (a zip) or another binary file given for its results
        what = "a PyTorch checkpoint" if path.read_bytes()[:4] == b"PK\x03\x04" else "a binary file"
        raise AnasimError(
            f"{path}: not an anasim results JSON ({what}); give the JSON of 'anasim simulate MODEL --json "
            "FILE' (or of an --mc run)"
        ) from None
    if not text.strip():
        raise AnasimError(f"{path}: the file is empty (a run cut short before it wrote its results?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnasimError(f"{path}: not a results file (invalid JSON at line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise AnasimError(f"{path}: not a results file (a JSON object was expected)")
    return data


def read_sim(path: Path, data: dict) -> SimRun:
    record = SimRecord.from_json(data, str(path))
    npz = path.with_suffix(".npz")
    if not npz.is_file():
        raise AnasimError(f"{path}: its per-sample arrays {npz.name} are missing (they are written beside the JSON)")
    try:
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise AnasimError(f"{npz}: cannot read per-sample arrays: {exc}") from None
    for key in ("reference", "circuit", "target"):
        if key not in arrays:
            raise AnasimError(f"{npz}: no {key!r} array; not written by 'anasim simulate --json'")
    return SimRun(path, record, arrays)


def read_mc(path: Path, data: dict) -> McRun:
    record = McRecord.from_json(data, str(path))
    if not any(p.realizations for p in record.points):
        raise AnasimError(f"{path}: the Monte Carlo holds no finished realization; nothing to report")
    folder = Path(record.results or path.with_suffix(".mc"))
    if not folder.is_dir():  # moved with its summary: look beside it
        folder = path.with_suffix(".mc")
    rows = read_rows(folder / "rows.jsonl") if (folder / "rows.jsonl").is_file() else []
    return McRun(path, record, rows)


def load_results(paths) -> Results:
    """Every file read and checked; one checkpoint for all, or an error naming each file's."""
    if not paths:
        raise AnasimError("no results files given: pass the JSON of 'anasim simulate --json' (and of --mc runs)")
    sims, mcs = [], []
    for p in map(Path, paths):
        data = _read_json(p)
        if data.get("kind") == "monte-carlo":
            mcs.append(read_mc(p, data))
        elif data.get("kind") == "simulate" or "format" not in data and "samples" in data:
            sims.append(read_sim(p, data))  # an old simulate file has no kind: refused by its format
        else:
            raise AnasimError(f"{p}: not an anasim results file (no 'kind': 'simulate' or 'monte-carlo')")
    owners = {}
    for r in sims:
        owners[r.path] = (r.record.model.checkpoint_sha256, Path(r.record.model.checkpoint).name)
    for m in mcs:
        owners[m.path] = (m.record.checkpoint_sha256, Path(m.record.checkpoint or "?").name)
    if len({sha for sha, _ in owners.values()}) > 1:
        listing = "; ".join(f"{p}: {name} (sha256 {sha})" for p, (sha, name) in owners.items())
        raise AnasimError(f"results of different models in one report: {listing}; make one report per model")
    sha, name = next(iter(owners.values()))
    return Results(sims, mcs, sha, name)
