"""TD-KAN reference model (torch): the ``model`` end of the flow that the circuit must reproduce.

* :class:`TDKAN`: stacked tunnel-diode KAN layers ``y_j = sum_i sum_k Theta_ijk phi_k(u_i) + b_j``
  (paper eq. 2) with ``u = map(x)`` a hard clip (or a unit-slope sigmoid) into the device range,
  BatchNorm (fusable into TIA gains) or LayerNorm (training only) between layers, Gaussian
  coefficient noise in training (eq. 3) and multiplicative noise at evaluation (eq. 6).

Signals between layers are voltages: the first layer receives standardized pixels turned into
row-line voltages by the row drive (``in_offset + in_gain * z``, a DAC with a DC offset), hidden
layers receive the norm's output. The drive is ``fixed`` (one offset and gain for all rows, set by
``in_gain``: checkpoints from before ``drive`` existed) or ``row`` (trainable per-row offset and
gain, kept within the DAC limits of :data:`DRIVES`), so that it suits any set of bases without
hand tuning. Built from a plain config dict (stored in checkpoints) by
:func:`build`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...devices import DeviceModel, get_device
from ...errors import CheckpointError
from .options import MAPPINGS, NORMS

# Row drive kinds. ``row``: per-row offset within the bias range [lo, hi] and gain with |gain| <=
# hi - lo volts per standard deviation (a DAC whose full scale is the device range), trained with
# the coefficients and projected back into these limits after every step.
DRIVES = ("fixed", "row")


def common_range(devices: list[DeviceModel]) -> tuple[float, float]:
    """The bias range every basis covers (inputs are clipped into it)."""
    lo = max(d.v_range[0] for d in devices)
    hi = min(d.v_range[1] for d in devices)
    if not lo < hi:
        raise CheckpointError(f"devices {[d.name for d in devices]} share no common bias range")
    return lo, hi


def map_input(x: torch.Tensor, v_range: tuple[float, float], mapping: str) -> torch.Tensor:
    lo, hi = v_range
    if mapping == "clip":
        return x.clamp(lo, hi)
    # Soft clip: slope 1 at mid-range, saturating at the range ends.
    mid, span = (lo + hi) / 2, hi - lo
    return lo + span * torch.sigmoid(4.0 * (x - mid) / span)


class TDKANLayer(nn.Module):
    def __init__(self, d_in, d_out, bases: list[DeviceModel], v_range, mapping="clip", train_noise=0.0):
        super().__init__()
        self.bases, self.v_range, self.mapping = bases, tuple(v_range), mapping
        self.train_noise = train_noise  # eq. 3: additive N(0, sigma^2) on Theta while training
        self.eval_rel_noise = 0.0  # eq. 6: Theta * (1 + delta) at evaluation, delta ~ N(0, s^2)
        k = len(bases)
        self.coeffs = nn.Parameter(torch.randn(d_in, d_out, k) / (d_in * k) ** 0.5)  # [in, out, K]
        self.bias = nn.Parameter(torch.zeros(d_out))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        held = self.__dict__.get("held_basis")  # (x, its basis), kept by an eq. 6 twin's first layer
        if held is not None and held[0].shape == x.shape and torch.equal(held[0], x):
            return held[1]
        u = map_input(x, self.v_range, self.mapping)  # [B, in] volts on the row lines
        phi = torch.stack([d.torch_current(u) for d in self.bases], dim=-1)  # [B, in, K]
        if "held_basis" in self.__dict__ and not torch.is_grad_enabled():
            self.__dict__["held_basis"] = (x.detach().clone(), phi)
        return phi

    def effective_coeffs(self) -> torch.Tensor:
        theta = self.coeffs
        if self.training and self.train_noise > 0:
            theta = theta + self.train_noise * torch.randn_like(theta)
        if not self.training and self.eval_rel_noise > 0:
            theta = theta * (1 + self.eval_rel_noise * torch.randn_like(theta))
        return theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = self.basis(x)  # [B, in, K]
        return torch.einsum("bik,iok->bo", phi, self.effective_coeffs()) + self.bias


class TDKAN(nn.Module):
    def __init__(
        self,
        dims,
        bases,
        norm="batch",
        mapping="clip",
        v_range=None,
        train_noise=0.0,
        in_gain=0.5,
        hidden_gain=None,
        drive="fixed",
    ):
        super().__init__()
        if len(dims) < 2:
            raise CheckpointError(f"dims {dims} need at least an input and an output size")
        if norm not in NORMS or mapping not in MAPPINGS or drive not in DRIVES:
            raise CheckpointError(f"norm must be one of {NORMS}, mapping one of {MAPPINGS} and drive one of {DRIVES}")
        devices = [get_device(b) for b in bases]
        lo, hi = v_range if v_range is not None else common_range(devices)
        self.v_range = (float(lo), float(hi))
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        # Row-line drive of the first layer: volts = in_offset + in_gain * standardized pixel.
        self.drive = drive
        if drive == "fixed":
            self.register_buffer("in_offset", torch.tensor(mid))
            self.register_buffer("in_gain", torch.tensor(in_gain * half))
        else:
            self.in_offset = nn.Parameter(torch.full((dims[0],), mid))
            self.in_gain = nn.Parameter(torch.full((dims[0],), in_gain * half))
        self.layers = nn.ModuleList(
            TDKANLayer(a, b, devices, self.v_range, mapping, train_noise) for a, b in zip(dims, dims[1:])
        )
        self.norms = nn.ModuleList()
        for width in dims[1:-1]:
            n = nn.BatchNorm1d(width) if norm == "batch" else nn.LayerNorm(width) if norm == "layer" else None
            if n is None:
                self.norms.append(nn.Identity())
                continue
            # Start hidden signals centred in the device range, like the first layer's drive.
            nn.init.constant_(n.weight, (in_gain if hidden_gain is None else hidden_gain) * half)
            nn.init.constant_(n.bias, mid)
            self.norms.append(n)

    def drive_limits(self) -> tuple[tuple[float, float], float]:
        """The DAC limits of the ``row`` drive: the offset's range and the largest |gain| (V/std)."""
        lo, hi = self.v_range
        return (lo, hi), hi - lo

    @torch.no_grad()
    def project_(self) -> None:
        """Bring a trainable drive back within its DAC limits (called after every optimizer step)."""
        if self.drive == "row":
            (lo, hi), g = self.drive_limits()
            self.in_offset.clamp_(lo, hi)
            self.in_gain.clamp_(-g, g)

    def limit_errors(self, tol: float = 1e-6) -> list[str]:
        """What in a loaded row drive lies beyond its DAC limits (by more than ``tol`` volts, float32
        rounding of a value projected onto a limit); training never leaves them."""
        if self.drive != "row":
            return []
        (lo, hi), g = self.drive_limits()
        errs = []
        for name, t, bad in (
            ("in_offset", self.in_offset.detach(), lambda x: (x < lo - tol) | (x > hi + tol)),
            ("in_gain", self.in_gain.detach(), lambda x: x.abs() > g + tol),
        ):
            for i in torch.nonzero(bad(t)).flatten().tolist()[:1]:
                errs.append(
                    f"row drive {name}[{i}] = {float(t[i]):.6g} is beyond the DAC limits (offset {lo:g}..{hi:g} V, "
                    f"|gain| <= {g:g} V/std); retrain it with anasim train (which keeps it within them)"
                )
        return errs

    def row_drive(self, z: torch.Tensor) -> torch.Tensor:
        """First-layer row voltages (before the clipper) for standardized inputs z: what the DAC
        applies to the row inputs ``in_<i>`` of the circuit."""
        return self.in_offset + self.in_gain * z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.row_drive(z)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.norms):
                x = self.norms[i](x)
        return x

    def set_eval_noise(self, rel: float) -> None:
        for layer in self.layers:
            layer.eval_rel_noise = rel


def build(config: dict) -> TDKAN:
    return TDKAN(
        config["dims"],
        config["bases"],
        norm=config.get("norm", "batch"),
        mapping=config.get("mapping", "clip"),
        v_range=config.get("v_range"),
        train_noise=config.get("train_noise", 0.0),
        in_gain=config.get("in_gain", 0.5),
        hidden_gain=config.get("hidden_gain"),
        drive=config.get("drive", "fixed"),  # checkpoints from before the trainable drive: fixed
    )


def scale_coefficients(model: TDKAN, factors: dict[tuple[int, int, int, int], float]) -> TDKAN:
    """A copy of ``model`` with Theta[l][i, j, k] multiplied by ``factors[(l, i, j, k)]`` (eq. 6
    with given draws: the torch twin of a circuit Monte Carlo realization)."""
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for (li, i, j, k), f in factors.items():
            twin.layers[li].coeffs[i, j, k] *= f
    return twin


def eq6_twin(model: TDKAN, sigma: float, seed, dist: str = "gauss", scratch: TDKAN | None = None) -> TDKAN:
    """A copy of ``model`` whose every coefficient is multiplied by 1 + delta, the paper's eq. 6
    in software, delta drawn by ``variations.eq6`` from ``np.random.default_rng(seed)``: the torch
    Monte Carlo a circuit realization is shown beside. ``scratch``: an earlier twin of ``model``
    to write it into (its coefficients set anew), not a new copy: a copy was 2 ms a realization."""
    from ...montecarlo.variations import eq6

    rng = np.random.default_rng(seed)
    twin = copy.deepcopy(model) if scratch is None else scratch
    # its first layer's basis depends on the samples only: kept for the next realization's twin
    # (written into this one as ``scratch``), half of a digits twin's 3 ms
    twin.layers[0].__dict__.setdefault("held_basis", None)
    with torch.no_grad():
        for layer, nominal in zip(twin.layers, model.layers, strict=True):
            f = eq6(rng, sigma, layer.coeffs.numel(), dist).reshape(tuple(layer.coeffs.shape))  # [in, out, K]
            layer.coeffs.copy_(nominal.coeffs * torch.as_tensor(f, dtype=layer.coeffs.dtype))
    return twin
