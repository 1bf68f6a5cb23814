"""Device models: the one representation of a device's I-V curve shared by torch and netlists.

A :class:`DeviceModel` is either a piecewise-linear table (fitted from a sweep, clamped flat
beyond its end points) or an analytic expression (:mod:`anasim.devices.expr`). The same object gives
``torch_current`` for training and ``spice_current`` for the netlist writer, so the two cannot
drift. Models are JSON files: bundled ones in the data package ``anasim.device_models`` (the
top-level ``device_models/`` of a checkout, read with :mod:`importlib.resources` so that an
installed wheel finds them too), a user's own in
``$ANASIM_DEVICE_DIR`` (default ``~/.local/share/anasim/devices``). Registry = a plain dict. Checkpoints carry the device models they use; while one loads, its
models take precedence over the local registry (``embedded``), so a checkpoint compiles anywhere.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
import os
import re
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AnasimWarning, DeviceError
from ..outputs import WriteError, reason, write_text
from .expr import Expr

if TYPE_CHECKING:  # imported where a curve is evaluated: a Monte Carlo worker runs circuits without torch
    import torch

FORMAT = "anasim-device/1"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def bundled_dir() -> Path:
    """The folder of the bundled device models, in a checkout or an installed wheel (a real
    folder in both: setuptools installs package data as files, never inside a zip)."""
    return Path(str(importlib.resources.files("anasim.device_models")))


def sweeps_dir() -> Path:
    """The raw DFT-NEGF sweeps the bundled models are fitted from (see its README.md)."""
    return bundled_dir() / "sweeps" / "cmtd_dft_negf"


def user_device_dir() -> Path:
    env = os.environ.get("ANASIM_DEVICE_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "anasim" / "devices"


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise DeviceError(
            f"device name {name!r} is not allowed: use 1-32 characters a-z, 0-9, '_', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class DeviceModel:
    """I(V) of one device of unit area, in ``unit``; ``amps_per_unit`` converts to amperes."""

    name: str
    kind: str  # "pwl" or "expr"
    v_range: tuple[float, float]  # operating range; inputs are clipped into it
    unit: str
    amps_per_unit: float
    knots_v: tuple[float, ...] = ()
    knots_i: tuple[float, ...] = ()
    expr: str = ""
    constants: dict[str, float] = field(default_factory=dict)
    description: str = ""
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        check_name(self.name)
        lo, hi = self.v_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DeviceError(f"device {self.name}: v_range {self.v_range} must be finite with low < high")
        if not (math.isfinite(self.amps_per_unit) and self.amps_per_unit > 0):
            raise DeviceError(f"device {self.name}: amps_per_unit must be a positive number")
        if self.kind == "pwl":
            v, i = np.asarray(self.knots_v), np.asarray(self.knots_i)
            if len(v) < 2 or len(v) != len(i) or not np.all(np.isfinite(v)) or not np.all(np.isfinite(i)):
                raise DeviceError(f"device {self.name}: pwl needs >= 2 finite (v, i) knots of equal count")
            if not np.all(np.diff(v) > 0):
                raise DeviceError(f"device {self.name}: pwl knots must have strictly increasing bias")
        elif self.kind == "expr":
            object.__setattr__(self, "_expr", Expr(self.expr, self.constants))
            # an expression that overflows (exp(1000*V)) or leaves its domain (ln(V) at 0) would
            # put inf or NaN into training and the netlist: refuse it over the operating range
            import torch

            v = torch.linspace(lo, hi, 201, dtype=torch.float64)
            with torch.no_grad():
                bad = ~torch.isfinite(self._expr.torch(v) + 0 * v)
            if bad.any():
                raise DeviceError(
                    f"device {self.name}: expression {self.expr!r} is not finite at V = {float(v[bad][0]):.4g} "
                    f"(within its range {lo:g}..{hi:g} V); keep it finite there"
                )
        else:
            raise DeviceError(f"device {self.name}: kind {self.kind!r} is not 'pwl' or 'expr'")
        text = json.dumps(self._defining(), sort_keys=True)
        object.__setattr__(self, "_hash", hashlib.sha256(text.encode()).hexdigest()[:16])

    # -- evaluation ------------------------------------------------------------------------
    def torch_current(self, v: torch.Tensor) -> torch.Tensor:
        """Differentiable, batched I(v) in ``unit``; any shape."""
        import torch

        if self.kind == "expr":
            return self._expr.torch(v)
        xs, ys = _knot_tensors(self, v.dtype, v.device)
        x = v.clamp(xs[0], xs[-1])  # flat beyond the end points, as in the netlist
        idx = torch.searchsorted(xs, x.detach().contiguous()).clamp(1, len(xs) - 1)
        x0, y0 = xs[idx - 1], ys[idx - 1]
        slope = (ys[idx] - y0) / (xs[idx] - x0)
        return y0 + slope * (x - x0)

    def current(self, v) -> np.ndarray:
        """I(v) as float64 numpy, for plots and fit reports."""
        import torch

        t = torch.as_tensor(np.asarray(v, dtype=np.float64))
        return self.torch_current(t).detach().numpy()

    def spice_current(self, v: str) -> str:
        """ngspice B-source expression for I in ``unit`` with ``v`` the controlling voltage."""
        if self.kind == "expr":
            return self._expr.spice(v)
        return "pwl(" + v + "," + ",".join(repr(t) for t in self.pwl_table()) + ")"

    def pwl_table(self) -> tuple[float, ...]:
        """The pwl points as netlists write them (x0, i0, x1, i1, ...); () for an expression."""
        if self.kind == "expr":
            return ()
        xs, ys = self.knots_v, self.knots_i
        # ngspice's pwl() extrapolates the end segments linearly: flat extra points clamp it.
        pts = [(xs[0] - 1.0, ys[0]), *zip(xs, ys), (xs[-1] + 1.0, ys[-1])]
        return tuple(float(t) for p in pts for t in p)

    # -- identity ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["v_range"] = list(self.v_range)
        d["knots_v"], d["knots_i"] = list(self.knots_v), list(self.knots_i)
        return {"format": FORMAT, **d}

    def _defining(self) -> dict:
        d = self.to_dict()
        return {
            k: d[k] for k in ("kind", "v_range", "unit", "amps_per_unit", "knots_v", "knots_i", "expr", "constants")
        }

    def same_fit(self, other: DeviceModel) -> bool:
        """The same I(V), number for number: a fit hash also tells -0.0 from 0.0, which a fit
        gives on one machine and not another (the hash stays: checkpoints record it)."""
        return self._defining() == other._defining()

    @property
    def fit_hash(self) -> str:
        """Hash of everything that defines I(V); recorded in checkpoints and netlists."""
        return self._hash

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> DeviceModel:
        if d.get("format") != FORMAT:
            raise DeviceError(f"{source}: not an anasim device model (format {d.get('format')!r}, want {FORMAT})")
        d = {k: v for k, v in d.items() if k != "format"}
        try:
            d["v_range"] = tuple(float(x) for x in d["v_range"])
            d["knots_v"] = tuple(float(x) for x in d.get("knots_v", ()))
            d["knots_i"] = tuple(float(x) for x in d.get("knots_i", ()))
            return cls(**d)
        except (KeyError, TypeError, ValueError) as exc:
            raise DeviceError(f"{source}: invalid device model: {exc}") from None

    def save(self, path: Path) -> Path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        except (OSError, WriteError) as exc:
            raise DeviceError(
                f"{path}: cannot write the device model ({reason(exc)}); set ANASIM_DEVICE_DIR to a writable folder"
            ) from None
        return path


_TENSORS: dict = {}


def _knot_tensors(dev: DeviceModel, dtype, device):
    import torch

    key = (dev.name, dev.fit_hash, dtype, str(device))
    if key not in _TENSORS:
        _TENSORS[key] = (
            torch.tensor(dev.knots_v, dtype=dtype, device=device),
            torch.tensor(dev.knots_i, dtype=dtype, device=device),
        )
    return _TENSORS[key]


def load_device_file(path: Path) -> DeviceModel:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DeviceError(f"{path}: cannot read device model: {exc}") from None
    return DeviceModel.from_dict(data, str(path))


@cache
def bundled_models() -> dict[str, DeviceModel]:
    """The devices shipped with anasim, by name (the user's own are :func:`registry`'s too)."""
    return {p.stem: load_device_file(p) for p in sorted(bundled_dir().glob("*.json"))}


_WARNED: set[str] = set()


def load_user_device(path: Path) -> DeviceModel:
    """A device of the user's folder, whose file name must be its name (the registry's key is the
    file name, netlists and checkpoints use the model's name)."""
    model = load_device_file(path)
    if model.name != path.stem:
        raise DeviceError(
            f"{path}: the device inside is named {model.name!r}, not {path.stem!r} like its file; rename the file "
            f"to {model.name}.json or set its name to {path.stem!r}"
        )
    return model


def registry() -> dict[str, DeviceModel]:
    """All known devices by name: bundled first, then the user's (which may not shadow them).
    A user file that cannot be read is skipped with a warning naming it (it breaks only a
    command that asks for that device, see get_device)."""
    devices = dict(bundled_models())
    udir = user_device_dir()
    if udir.is_dir():
        for p in sorted(udir.glob("*.json")):
            if p.stem not in devices:
                try:
                    devices[p.stem] = load_user_device(p)
                except DeviceError as exc:
                    if str(exc) not in _WARNED:  # once per process, however often the registry is read
                        _WARNED.add(str(exc))
                        warnings.warn(f"skipped: {exc}", AnasimWarning, stacklevel=2)
    return devices


_EMBEDDED: ContextVar[dict[str, DeviceModel] | None] = ContextVar("embedded_devices", default=None)


@contextmanager
def embedded(models: dict[str, DeviceModel]):
    """Within the block, ``get_device`` returns these models (a checkpoint's own) before the registry's."""
    token = _EMBEDDED.set({**(_EMBEDDED.get() or {}), **models})
    try:
        yield
    finally:
        _EMBEDDED.reset(token)


def get_device(name: str) -> DeviceModel:
    key = (name or "").strip().lower()
    own = _EMBEDDED.get() or {}
    if key in own:
        return own[key]
    devices = registry()
    if key not in devices:
        own_file = user_device_dir() / f"{key}.json"
        if NAME_RE.match(key) and own_file.is_file():
            load_user_device(own_file)  # the device asked for is the one that cannot be read: its error
        raise DeviceError(f"unknown device {name!r}; valid devices: {', '.join(devices)}")
    return devices[key]


def parse_bases(text: str | list[str]) -> list[str]:
    """'z15,zaz21' -> ['z15', 'zaz21'], each checked against the registry."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise DeviceError(f"no device bases given; valid devices: {', '.join(registry())}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DeviceError(f"--bases {','.join(names)}: {', '.join(twice)} given more than once; name each basis once")
    for n in names:
        get_device(n)
    return names
