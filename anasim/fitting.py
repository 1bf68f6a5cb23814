"""Fitting: IVSweep -> DeviceModel (the step between raw sweeps and the device registry).

Two fits, both ending in the same clamped piecewise-linear table so that torch and ngspice
evaluate exactly the same function:

* ``pwl``: least-squares knot currents on a chosen bias grid (the sweep's own points by default,
  which interpolates the data exactly);
* ``smooth``: a smoothing spline (scipy's ``make_smoothing_spline``, penalty chosen by GCV unless
  given) sampled on a fine grid, for noisy sweeps.

Each fit reports its RMS and max error against the data points, recorded in the provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import make_smoothing_spline

from .devices import DeviceModel, check_name
from .errors import DataError
from .ivdata import IVSweep

METHODS = ("pwl", "smooth")


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
        return sweep.v.copy()
    if not step > 0:
        raise DataError(f"fit grid step {step!r} must be positive (volts)")
    n = max(1, int(round((hi - lo) / step)))
    return np.linspace(lo, hi, n + 1)


def _hat_matrix(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """A[p, k] = weight of knot k in linear interpolation at x[p]."""
    a = np.zeros((len(x), len(knots)))
    j = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    t = (x - knots[j]) / (knots[j + 1] - knots[j])
    a[np.arange(len(x)), j] = 1 - t
    a[np.arange(len(x)), j + 1] = t
    return a


def fit_pwl(sweep: IVSweep, step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    knots = _grid(sweep, step)
    a = _hat_matrix(sweep.v, knots)
    # A weak second-difference penalty fixes knots that no data point constrains.
    d2 = np.diff(np.eye(len(knots)), n=2, axis=0) * 1e-6
    lhs = np.vstack([a, d2])
    rhs = np.concatenate([sweep.i, np.zeros(len(d2))])
    values, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    return knots, values


def fit_smooth(sweep: IVSweep, step: float = 0.025, lam: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    if len(sweep.v) < 5:
        raise DataError(f"{sweep.source}: a smoothing spline needs at least 5 points, found {len(sweep.v)}")
    spline = make_smoothing_spline(sweep.v, sweep.i, lam=lam)
    knots = _grid(sweep, step)
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
