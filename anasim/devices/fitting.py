"""Fitting: IVSweep -> DeviceModel (the step between raw sweeps and the device registry).

Two fits, both ending in the same clamped piecewise-linear table so that torch and ngspice
evaluate exactly the same function:

* ``pwl``: least-squares knot currents on a chosen bias grid (the sweep's own points by default,
  which interpolates the data exactly), solved as a banded (pentadiagonal) system: time and
  memory grow with points + knots, not their product (the dense solve took 2 min and 1.5 GB for
  5,000 points);
* ``smooth``: a smoothing spline (scipy's ``make_smoothing_spline``, penalty chosen by GCV unless
  given) sampled on a fine grid, for noisy sweeps.

Each fit reports its RMS and max error against the data points, recorded in the provenance.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.interpolate import make_smoothing_spline
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded

from ..errors import DataError
from .ivdata import IVSweep
from .models import DeviceModel, check_name

METHODS = ("pwl", "smooth")
# The knot table is written into the device file, every checkpoint that uses the device and every
# netlist (about 40 bytes of text a knot): 100,000 knots make 4 MB in each, far finer than any
# sweep's features need.
MAX_KNOTS = 100_000
PENALTY = 1e-6  # weight of the second differences that fix knots no data point constrains
# The CSV reader holds about 30 bytes of Python objects per byte of file (755 MB for a 25 MB,
# 1,000,000-point sweep): 50 MB of CSV is about 1.5 GB while it reads.
MAX_SWEEP_BYTES = 50_000_000
# make_smoothing_spline's penalty search (GCV) takes about 70 us a point and fails as ill-posed
# on large, finely sampled sweeps (20,000 evenly spaced noisy points here): pwl fits those.
MAX_SMOOTH_POINTS = 100_000


@dataclass(frozen=True)
class FitReport:
    rms: float
    max_abs: float
    peak: float  # max |I| of the data, to read the errors relative to

    def as_dict(self) -> dict:
        return {"rms": self.rms, "max_abs": self.max_abs, "rms_rel_peak": self.rms / self.peak}


def _grid(sweep: IVSweep, step: float | None) -> np.ndarray:
    lo, hi = sweep.v_range
    if step is None:
        if len(sweep.v) > MAX_KNOTS:
            raise DataError(
                f"{sweep.source}: {len(sweep.v):,} points would make as many knots, more than the limit of "
                f"{MAX_KNOTS:,} (the table goes into every netlist and checkpoint); give --grid "
                f"{_step_for(lo, hi):.3g} or coarser"
            )
        return sweep.v.copy()
    if not (math.isfinite(step) and step > 0):
        raise DataError(f"fit grid step {step!r} must be a finite number > 0 (volts)")
    count = (hi - lo) / step  # inf for a denormal step: refused below, never rounded
    if count + 1 > MAX_KNOTS:  # refused before any array of that size exists
        raise DataError(
            f"--grid {step:g}: {count + 1:,.0f} knots over {lo:g}..{hi:g} V, more than the limit of {MAX_KNOTS:,} "
            f"(the table goes into every netlist and checkpoint); give --grid {_step_for(lo, hi):.3g} or coarser"
        )
    return np.linspace(lo, hi, max(1, round(count)) + 1)


def _step_for(lo: float, hi: float) -> float:
    """The finest grid step within MAX_KNOTS, rounded up to 2 significant digits."""
    step = (hi - lo) / (MAX_KNOTS - 1)
    return float(f"{step * 1.01:.2g}")


def _hat_matrix(x: np.ndarray, knots: np.ndarray) -> sparse.csr_matrix:
    """A[p, k] = weight of knot k in linear interpolation at x[p]; two entries a row."""
    j = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    t = (x - knots[j]) / (knots[j + 1] - knots[j])
    rows = np.arange(len(x))
    return sparse.csr_matrix(
        (np.concatenate([1 - t, t]), (np.concatenate([rows, rows]), np.concatenate([j, j + 1]))),
        shape=(len(x), len(knots)),
    )


def fit_pwl(sweep: IVSweep, step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Knot currents minimizing |A c - i|^2 + |PENALTY * D2 c|^2 (A: linear interpolation at the
    data points, D2: second differences). Solved by the normal equations, which are banded
    (pentadiagonal), by a banded Cholesky factorization, then refined on the least-squares residual
    (corrected semi-normal equations) to the accuracy of a QR solve: a grid finer than the data
    leaves knots only the weak penalty sets, and the normal equations alone lose digits there."""
    knots = _grid(sweep, step)
    a = _hat_matrix(sweep.v, knots)
    d2 = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(len(knots) - 2, len(knots))) * PENALTY
    lhs = sparse.vstack([a, d2]).tocsr()
    rhs = np.concatenate([sweep.i, np.zeros(d2.shape[0])])
    normal = (lhs.T @ lhs).todia()
    bands = np.zeros((3, len(knots)))  # upper form: bands[2 - d, d:] holds diagonal d
    for d in range(3):
        bands[2 - d, d:] = normal.diagonal(d)
    try:
        factor = (cholesky_banded(bands), False)
    except LinAlgError:
        factor = None
    values = cho_solve_banded(factor, lhs.T @ rhs) if factor else None
    scale = float(np.max(np.abs(sweep.i))) or 1.0
    for _ in range(10 if factor else 0):
        delta = cho_solve_banded(factor, lhs.T @ (rhs - lhs @ values))
        values += delta
        if np.max(np.abs(delta)) <= 1e-12 * scale:
            return knots, values
    spacing = float(np.median(np.diff(sweep.v)))
    raise DataError(
        f"{sweep.source}: the fit on {len(knots):,} knots does not converge: the grid is far finer than the data "
        f"(points about {spacing:.3g} V apart), so most knots are set by no data point; give --grid {spacing:.3g}"
    )


def check_sweep_file(path: str | Path) -> int:
    """The size of the sweep CSV at ``path`` in bytes, refused before it is read when too large."""
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    if size > MAX_SWEEP_BYTES:
        raise DataError(
            f"{path}: {size / 1e6:.0f} MB of CSV, more than the {MAX_SWEEP_BYTES / 1e6:.0f} MB a fit reads (reading "
            "takes about 30 times the file size in memory); thin the sweep, e.g. every 10th point"
        )
    return size


def fit_smooth(sweep: IVSweep, step: float = 0.025, lam: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    if len(sweep.v) < 5:
        raise DataError(f"{sweep.source}: a smoothing spline needs at least 5 points, found {len(sweep.v)}")
    if len(sweep.v) > MAX_SMOOTH_POINTS:
        raise DataError(
            f"{sweep.source}: {len(sweep.v):,} points, more than the {MAX_SMOOTH_POINTS:,} a smoothing spline fits "
            "(its penalty search is slow and ill-posed on that many); use --method pwl with a --grid"
        )
    knots = _grid(sweep, step)
    try:
        spline = make_smoothing_spline(sweep.v, sweep.i, lam=lam)
    except (ValueError, LinAlgError) as exc:  # scipy: "Seems like the problem is ill-posed", not PD
        raise DataError(
            f"{sweep.source}: the smoothing spline fails on these {len(sweep.v):,} points ({exc}); use --method pwl"
        ) from None
    return knots, spline(knots)


def report(sweep: IVSweep, model: DeviceModel) -> FitReport:
    err = model.current(sweep.v) - sweep.i
    peak = float(np.max(np.abs(sweep.i))) or 1.0
    return FitReport(rms=float(np.sqrt(np.mean(err**2))), max_abs=float(np.max(np.abs(err))), peak=peak)


def fit_device(
    sweep: IVSweep,
    name: str,
    method: str = "pwl",
    step: float | None = None,
    unit: str = "a.u.",
    amps_per_unit: float = 1e-6,
    description: str = "",
    lam: float | None = None,
) -> tuple[DeviceModel, FitReport]:
    """Fit ``sweep`` into a named DeviceModel with provenance; returns the model and its errors."""
    check_name(name)
    if method == "pwl":
        knots, values = fit_pwl(sweep, step)
    elif method == "smooth":
        knots, values = fit_smooth(sweep, 0.025 if step is None else step, lam)
    else:
        raise DataError(f"unknown fit method {method!r}; valid methods: {', '.join(METHODS)}")
    src = Path(sweep.source)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16] if src.is_file() else ""
    base = dict(
        name=name,
        kind="pwl",
        v_range=sweep.v_range,
        unit=unit,
        amps_per_unit=float(amps_per_unit),
        knots_v=tuple(round(float(x), 9) for x in knots),
        knots_i=tuple(round(float(y), 9) for y in values),
        description=description,
    )
    rep = report(sweep, DeviceModel(**base))
    provenance = {
        "source": src.name,
        "source_sha256": digest,
        "fit_method": method,
        "grid_step_v": step if method == "pwl" else (0.025 if step is None else step),
        "knots": len(knots),
        "data_points": len(sweep.v),
        "fit_error": rep.as_dict(),
        "extrapolation": "clamped to end values",
        "current_scale": f"1 {unit} = {amps_per_unit:g} A per unit area",
    }
    return DeviceModel(**base, provenance=provenance), rep
