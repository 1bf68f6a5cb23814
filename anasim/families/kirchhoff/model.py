"""KirchhoffNet reference model (torch + torchdiffeq): the ODE a KirchhoffNet circuit obeys.

Nodes 1..N carry voltages, node 0 is ground, every node has a capacitor C to ground. A branch
(s -> d) carries g(v_s, v_d, theta) from s to d, with g one of the paper's eqs. 10-13 or the
shifted form theta1 * ReLU(v_s - v_d - theta0). KCL gives C dv_j/dt = sum of currents into j -
sum of currents out of j. A network is a list of layers (time periods of length T), each with
its own node count and edges: nodes a layer adds start at 0 V, nodes it drops are discarded.
Inputs set v(0) of nodes 1..in_dim; outputs are chosen node voltages at t = D*T.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from ...errors import AnasimError, CheckpointError
from .topology import fc, proj, to_ground, validate


def _relu2(vs, vd, th):  # eq. 10
    return torch.relu(th[:, 0] * (vs - vd) + th[:, 1])


def _tanh2(vs, vd, th):  # eq. 11
    return torch.tanh(th[:, 0] * (vs - vd) + th[:, 1])


def _relu3(vs, vd, th):  # eq. 12
    return torch.relu(th[:, 0] * vs + th[:, 1] * vd + th[:, 2])


def _tanh3(vs, vd, th):  # eq. 13
    return torch.tanh(th[:, 0] * vs + th[:, 1] * vd + th[:, 2])


def _shifted(vs, vd, th):  # theta1 * ReLU(v_s - v_d - theta0): a conductance behind a one-sided switch
    return th[:, 1] * torch.relu(vs - vd - th[:, 0])


# name -> (torch function, parameters per branch, circuit law). The law is the same function as
# a behavioural current of the source and destination node voltages {vs}, {vd} and the branch's
# thetas {a}, {b}, {c}: the netlister fills it in, so torch and ngspice read one table.
BRANCHES = {
    "relu": (_relu2, 2, "max({a}*({vs}-{vd})+{b},0)"),
    "tanh": (_tanh2, 2, "tanh({a}*({vs}-{vd})+{b})"),
    "relu3": (_relu3, 3, "max({a}*{vs}+{b}*{vd}+{c},0)"),
    "tanh3": (_tanh3, 3, "tanh({a}*{vs}+{b}*{vd}+{c})"),
    "shifted": (_shifted, 2, "{b}*max({vs}-{vd}-{a},0)"),
}


def carry_state(v: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """State [B, M+1] at the end of a layer -> initial state [B, num_nodes+1] of the next one:
    nodes the next layer adds start at 0 V, nodes it drops vanish."""
    if v.shape[1] == num_nodes + 1:
        return v
    w = v.new_zeros(v.shape[0], num_nodes + 1)
    k = min(v.shape[1], w.shape[1])
    w[:, :k] = v[:, :k]
    return w


class KirchhoffLayer(nn.Module):
    """One time period: N nodes, a branch per edge, capacitors C to ground."""

    def __init__(
        self, num_nodes: int, edges, branch: str = "relu", capacitance: float = 1.0, outputs=(), init_std=None
    ):
        super().__init__()
        if branch not in BRANCHES:
            raise AnasimError(f"unknown branch function {branch!r}; valid: {', '.join(BRANCHES)}")
        if not capacitance > 0:
            raise AnasimError(f"capacitance {capacitance!r} must be positive")
        validate(edges, num_nodes, outputs)
        self.num_nodes, self.branch, self.capacitance = num_nodes, branch, float(capacitance)
        e = torch.tensor(edges, dtype=torch.long).reshape(-1, 2)
        self.register_buffer("src", e[:, 0])
        self.register_buffer("dst", e[:, 1])
        fn, p, _ = BRANCHES[branch]
        self.fn = fn
        # Default: He-normal with the branch count as fan-in (the paper's code: kaiming_normal_ on
        # [p, E]). A std of 0.5 left Friedman nets 3-10x worse than 0.15 after the same epochs.
        std = math.sqrt(2.0 / max(1, len(e))) if init_std is None else init_std
        self.theta = nn.Parameter(torch.randn(len(e), p) * std)  # [E, p]

    def forward(self, t, v: torch.Tensor) -> torch.Tensor:
        """dv/dt for v [B, N+1] (column 0 is ground and stays 0)."""
        i = self.fn(v[:, self.src], v[:, self.dst], self.theta)  # [B, E] branch currents s -> d
        net = torch.zeros_like(v)
        net.index_add_(1, self.dst, i)
        net.index_add_(1, self.src, -i)
        net[:, 0] = 0.0  # ground is held at 0 V
        return net / self.capacitance


class KirchhoffNet(nn.Module):
    def __init__(
        self,
        layers: list[dict],
        in_dim: int,
        outputs: list[int],
        period: float = 1.0,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        method: str = "dopri5",
        adjoint: bool = False,
        train_tol: float | None = None,
    ):
        super().__init__()
        if not layers:
            raise AnasimError("a KirchhoffNet needs at least one layer")
        if in_dim > layers[0]["nodes"]:
            raise AnasimError(f"{in_dim} inputs do not fit in the first layer's {layers[0]['nodes']} nodes")
        last = len(layers) - 1
        self.layers = nn.ModuleList(
            KirchhoffLayer(
                L["nodes"],
                L["edges"],
                L.get("branch", "relu"),
                L.get("capacitance", 1.0),
                outputs if n == last else (),
                L.get("init_std"),
            )
            for n, L in enumerate(layers)
        )
        self.in_dim, self.outputs, self.period = in_dim, list(outputs), float(period)
        self.rtol, self.atol, self.method, self.adjoint = rtol, atol, method, adjoint
        # looser rtol = atol in training mode (the paper's code trains at 1e-3): about 2x faster
        self.train_tol = train_tol

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        v = x.new_zeros(x.shape[0], self.layers[0].num_nodes + 1)
        v[:, 1 : 1 + self.in_dim] = x  # inputs are the initial node voltages; other nodes start at 0
        return v

    def trajectory(self, x: torch.Tensor, times_per_layer: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(times [S], voltages [S, B, N+1]) for each layer, for comparing with a transient."""
        v, out = self.initial_state(x), []
        solve = odeint_adjoint if self.adjoint else odeint
        for n, layer in enumerate(self.layers):
            v = carry_state(v, layer.num_nodes)
            t = torch.linspace(n * self.period, (n + 1) * self.period, times_per_layer, dtype=v.dtype)
            kwargs = {"adjoint_params": tuple(layer.parameters())} if self.adjoint else {}
            loose = self.training and self.train_tol is not None
            rtol, atol = (self.train_tol, self.train_tol) if loose else (self.rtol, self.atol)
            vs = solve(layer, v, t, rtol=rtol, atol=atol, method=self.method, **kwargs)  # [S, B, N+1]
            out.append((t, vs))
            v = vs[-1]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.trajectory(x)[-1][1][-1]  # [B, N+1] at t = D*T
        return v[:, self.outputs]


def build(config: dict) -> KirchhoffNet:
    """KirchhoffNet layers (time periods) from a config: ``topology`` "fc" (one FC layer of
    ``nodes[i]`` nodes each) or "proj" (the paper's Proj layer over the input ``grid`` [c, w, h]:
    a ``kernel`` x kernel NE layer plus ``proj_nodes[i]`` projected nodes). ``repeat`` parallel
    branches per pair, optional ground leaks; inputs start on nodes 1..in, outputs are the last
    ``out`` nodes of the last layer (for "proj", projected nodes)."""
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
