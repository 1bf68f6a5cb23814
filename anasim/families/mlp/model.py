"""Device-activation MLP reference model (torch): Linear -> device activation -> Linear (TD-KAN
paper section 2.3). The activation is a device I-V curve of the registry, or relu / sigmoid."""

from __future__ import annotations

import torch
from torch import nn

from ...devices import get_device
from ...errors import CheckpointError

IDEAL = ("relu", "sigmoid")  # activations written as behavioural sources, not devices


class DeviceActivation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.device_model = None if name in IDEAL else get_device(name)

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


def build(config: dict) -> DeviceMLP:
    return DeviceMLP(config["dims"], config.get("activation", "a21"))
