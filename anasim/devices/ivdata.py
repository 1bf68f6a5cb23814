"""Raw I-V sweeps: the first step of the device flow (CSV -> IVSweep -> fitting -> DeviceModel).

Reads a measured or simulated sweep from CSV and validates it so that every later step can trust
it: at least 3 points, finite values, strictly increasing bias. Two layouts are accepted: two
columns (bias V, current I; header optional, e.g. ``x,y`` or ``v,i``), and piecewise-linear
segments ``v0,v1,i0,i1`` (the layout of the normalized CMTD variants), turned into points.
Errors name the file and the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class IVSweep:
    """Bias points ``v`` (volts, strictly increasing) and currents ``i`` (the sweep's unit)."""

    v: np.ndarray
    i: np.ndarray
    source: str

    @property
    def v_range(self) -> tuple[float, float]:
        return float(self.v[0]), float(self.v[-1])


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: {column} value {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}:{line}: {column} value {text.strip()!r} is not finite")
    return value


def read_iv_csv(path: str | Path) -> IVSweep:
    """Read and validate an I-V sweep from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such I-V file; give a CSV with columns bias (V), current")
    try:
        # utf-8-sig drops a byte-order mark (Excel writes one): left in, it makes line 1 read as a header
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if row and any(c.strip() for c in row)]
    if not numbered:
        raise DataError(f"{path}: file is empty; expected rows 'bias,current'")
    first_line, first = numbered[0]
    try:
        [float(c) for c in first]
        header = None
    except ValueError:
        header = [c.strip().lower() for c in first]
        numbered = numbered[1:]
    segments = header == ["v0", "v1", "i0", "i1"] or (header is None and len(first) == 4)
    width = 4 if segments else 2
    points: list[tuple[float, float, int]] = []  # (bias, current, line)
    for line, row in numbered:
        if len(row) != width:
            raise DataError(f"{path}:{line}: expected {width} columns, found {len(row)}: {','.join(row)!r}")
        vals = [_number(c, path, line, name) for c, name in zip(row, ("bias", "current", "i0", "i1"))]
        if segments:
            v0, v1, i0, i1 = vals
            if points and abs(points[-1][0] - v0) < 1e-12:
                points.pop()  # shared end point of consecutive segments
            points += [(v0, i0, line), (v1, i1, line)]
        else:
            points.append((vals[0], vals[1], line))
    if len(points) < 3:
        raise DataError(f"{path}: {len(points)} data points; at least 3 are needed to fit a device")
    for (va, _, _), (vb, _, line) in zip(points, points[1:]):
        if not vb > va:
            raise DataError(
                f"{path}:{line}: bias {vb!r} does not increase (previous {va!r}); "
                "sort the sweep by bias and remove repeated points"
            )
    v = np.array([p[0] for p in points], dtype=np.float64)
    i = np.array([p[1] for p in points], dtype=np.float64)
    return IVSweep(v=v, i=i, source=str(path))
