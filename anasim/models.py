"""PyTorch reference models: the ``model`` end of the flow that the circuit must reproduce.

* :class:`TDKAN`: stacked tunnel-diode KAN layers ``y_j = sum_i sum_k Theta_ijk phi_k(u_i) + b_j``
  (paper eq. 2) with ``u = map(x)`` a hard clip (or a unit-slope sigmoid) into the device range,
  BatchNorm (fusable into TIA gains) or LayerNorm (training only) between layers, Gaussian
  coefficient noise in training (eq. 3) and multiplicative noise at evaluation (eq. 6).
* :class:`DeviceMLP`: Linear -> device activation -> Linear (paper section 2.3).

Signals between layers are voltages: the first layer receives standardized pixels turned into
row-line voltages by a fixed affine (``in_offset + in_gain * z``, a DAC with a DC offset), hidden
layers receive the norm's output. Models are built from a plain config dict (stored in
checkpoints) via :func:`build_model`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .devices import DeviceModel, get_device
from .errors import CheckpointError

MAPPINGS = ("clip", "sigmoid")
NORMS = ("batch", "layer", "none")
ACTIVATIONS = ("rtd", "a21", "emosfet", "relu", "sigmoid")


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
        u = map_input(x, self.v_range, self.mapping)  # [B, in] volts on the row lines
        return torch.stack([d.torch_current(u) for d in self.bases], dim=-1)  # [B, in, K]

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
        self, dims, bases, norm="batch", mapping="clip", v_range=None, train_noise=0.0, in_gain=0.5, hidden_gain=None
    ):
        super().__init__()
        if len(dims) < 2:
            raise CheckpointError(f"dims {dims} need at least an input and an output size")
        if norm not in NORMS or mapping not in MAPPINGS:
            raise CheckpointError(f"norm must be one of {NORMS} and mapping one of {MAPPINGS}")
        devices = [get_device(b) for b in bases]
        lo, hi = v_range if v_range is not None else common_range(devices)
        self.v_range = (float(lo), float(hi))
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        # Row-line drive of the first layer: volts = in_offset + in_gain * standardized pixel.
        self.register_buffer("in_offset", torch.tensor(mid))
        self.register_buffer("in_gain", torch.tensor(in_gain * half))
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

    def row_drive(self, z: torch.Tensor) -> torch.Tensor:
        """First-layer row voltages (before the clipper) for standardized inputs z."""
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


class DeviceActivation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.device_model = None if name in ("relu", "sigmoid") else get_device(name)

    def forward(self, x):
        if self.name == "relu":
            return torch.relu(x)
        if self.name == "sigmoid":
            return torch.sigmoid(x)
        return self.device_model.torch_current(x)


class DeviceMLP(nn.Module):
    def __init__(self, dims, activation="a21"):
        super().__init__()
        if len(dims) < 2:
            raise CheckpointError(f"dims {dims} need at least an input and an output size")
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.act = DeviceActivation(activation)

    def forward(self, z):
        for i, lin in enumerate(self.linears):
            z = lin(z)
            if i < len(self.linears) - 1:
                z = self.act(z)
        return z


def build_model(config: dict) -> nn.Module:
    """Model from its config dict (as stored in a checkpoint)."""
    arch = config.get("arch")
    if arch == "tdkan":
        return TDKAN(
            config["dims"],
            config["bases"],
            norm=config.get("norm", "batch"),
            mapping=config.get("mapping", "clip"),
            v_range=config.get("v_range"),
            train_noise=config.get("train_noise", 0.0),
            in_gain=config.get("in_gain", 0.5),
            hidden_gain=config.get("hidden_gain"),
        )
    if arch == "mlp":
        return DeviceMLP(config["dims"], config.get("activation", "a21"))
    if arch == "kirchhoffnet":
        return build_kirchhoffnet(config)
    raise CheckpointError(f"unknown architecture {arch!r}; valid: tdkan, mlp, kirchhoffnet")


def build_kirchhoffnet(config: dict) -> nn.Module:
    """KirchhoffNet layers (time periods) from a config: ``topology`` "fc" (one FC layer of
    ``nodes[i]`` nodes each) or "proj" (the paper's Proj layer over the input ``grid`` [c, w, h]:
    a ``kernel`` x kernel NE layer plus ``proj_nodes[i]`` projected nodes). ``repeat`` parallel
    branches per pair, optional ground leaks; inputs start on nodes 1..in, outputs are the last
    ``out`` nodes of the last layer (for "proj", projected nodes)."""
    from .kirchhoff import KirchhoffNet
    from .topology import fc, proj, to_ground

    d_in, d_out = config["dims"][0], config["dims"][-1]
    repeat, topology = config.get("repeat", 2), config.get("topology", "fc")
    if topology == "fc":
        nodes = list(config["nodes"])
        edges = [fc(n, repeat) for n in nodes]
    elif topology == "proj":
        grid, k = config.get("grid"), config.get("kernel", 3)
        if not grid or len(grid) != 3 or math.prod(grid) != d_in:
            raise CheckpointError(f"Proj topology: grid {grid} (channels, width, height) must hold the {d_in} inputs")
        if config["proj_nodes"][-1] < d_out:
            raise CheckpointError(
                f"the last Proj layer has {config['proj_nodes'][-1]} projected nodes; the {d_out} outputs "
                f"are read from projected nodes: use --proj-nodes {d_out} or more"
            )
        nodes = [math.prod(grid) + p for p in config["proj_nodes"]]
        edges = [proj(*grid, k, p, (repeat, repeat)) for p in config["proj_nodes"]]
    else:
        raise CheckpointError(f"unknown KirchhoffNet topology {topology!r}; valid: fc, proj")
    if nodes[-1] < d_out:
        raise CheckpointError(f"the last layer has {nodes[-1]} nodes, fewer than the {d_out} outputs")
    ground = config.get("ground")
    layers = [
        {
            "nodes": n,
            "edges": e + (to_ground(range(1, n + 1)) if ground else []),
            "branch": config.get("branch", "relu"),
            "init_std": config.get("init_std"),
        }
        for n, e in zip(nodes, edges)
    ]
    outputs = list(range(nodes[-1] - d_out + 1, nodes[-1] + 1))
    return KirchhoffNet(
        layers,
        d_in,
        outputs,
        config.get("period", 1.0),
        config.get("rtol", 1e-5),
        config.get("atol", 1e-7),
        adjoint=config.get("adjoint", False),
        train_tol=config.get("train_tol", 1e-5),
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
