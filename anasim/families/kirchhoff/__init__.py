"""KirchhoffNet: an ODE network realized as an RC circuit (nonlinear branches between nodes, a
capacitor from every node to ground); the torchdiffeq model is the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...errors import AnasimError
from ...sim.engine import get_engine
from ..base import Deck, Family, picked
from .deck import lower_network, network_run
from .lower import RELTOL, lower_layer, plan, replicate
from .model import KirchhoffNet, build
from .reference import reference, trajectories


@dataclass(frozen=True)
class KirchhoffOptions:
    scale_a: float = 1e-9  # hardware scale a (eq. 9): farads per unit capacitance, seconds per unit time
    reltol: float = RELTOL  # the transients' relative tolerance (ngspice's reltol)

    def check(self) -> KirchhoffOptions:
        if not self.scale_a > 0:
            raise AnasimError(
                f"--scale-a {self.scale_a!r}: the hardware scale must be positive (farads and seconds per unit)"
            )
        if not 0 < self.reltol < 0.1:
            raise AnasimError(f"--reltol {self.reltol!r}: use a value between 1e-12 and 1e-2")
        return self


def layer_info(model: KirchhoffNet) -> dict:
    return {"layers": [{"devices": int(len(layer.src)), "nodes": layer.num_nodes} for layer in model.layers]}


def lower(model: KirchhoffNet, opts: KirchhoffOptions):
    """The first layer, one copy; later layers start from the state the previous one leaves."""
    return lower_layer(model.layers[0], opts.check().scale_a), layer_info(model)


def compile_(model: KirchhoffNet, opts: KirchhoffOptions, z, data_file: str):
    """One standalone deck of the whole network (``deck.py``): the samples z (or 0 V) as the first
    layer's initial voltages, one transient through all layers, the outputs printed at the end."""
    z = torch.zeros(1, model.in_dim, dtype=torch.float64) if z is None else z.double()
    v0 = model.initial_state(z).numpy()
    a = opts.check().scale_a
    circuit = replicate(lower_network(model, a), len(v0))
    run = network_run(circuit, model, v0, a, f"{data_file}_voltages", opts.reltol)
    engine = get_engine()
    stop = model.period * a
    info = layer_info(model) | {"header": []}
    for n, layer in enumerate(model.layers):
        names = "e<e>" if n == 0 else f"l{n}_e<e>"
        info["header"].append(
            f"layer {n} of {len(model.layers)}: {layer.num_nodes} nodes, {len(layer.src)} branches {names} "
            f"({layer.branch}), C = {layer.capacitance * a:g} F, t = {n * stop:g} to {(n + 1) * stop:g} s"
        )
    info["header"] += [
        f"{len(v0)} sample(s) as copies s<b>_ of the network; outputs are nodes {model.outputs} of the last layer "
        f"at t = {len(model.layers) * stop:g} s",
        engine.standalone(run, "s<b>_y<k> (sample b, output k)", "the last layer's nodes"),
    ]
    return [Deck("", circuit, run)], info


def prepare(config: dict, data) -> dict:
    """Inputs and outputs are nodes: their counts come from the data (and Proj's grid from its images)."""
    outs = 1 if data.task == "regression" else int(data.y_train.max()) + 1
    config = {**config, "dims": [data.n_features, outs]}
    if config.get("topology") == "proj":
        shape = data.preprocessing.get("shape")
        if not shape:
            raise AnasimError(f"--topology proj needs images; {data.name} has no pixel grid: use --topology fc")
        config["grid"] = [1, *shape]  # grey images: one channel
        config["nodes"] = [math.prod(shape) + p for p in config["proj_nodes"]]
    return config


def config(dims, given: dict) -> dict:
    """Proj's kernel and projection nodes only with --topology proj; init_std only when given."""
    keys = ("nodes", "repeat", "branch", "period", "topology")
    keys += ("kernel", "proj_nodes") if given.get("topology") == "proj" else ()
    keys += ("ground", "adjoint", "train_tol") + (("init_std",) if given.get("init_std") is not None else ())
    return picked("kirchhoffnet", dims, given, keys)


def params(config: dict) -> int:
    """Two weights per branch: per layer, ``repeat`` copies of every ordered node pair."""
    repeat, dims = config.get("repeat", 2), config["dims"]
    if config.get("topology", "fc") == "proj":
        return sum(2 * repeat * (dims[0] + p) * p for p in config.get("proj_nodes", ()))
    return sum(2 * repeat * n * n for n in config.get("nodes", ()))


def describe(s: dict) -> list[tuple[str, object]]:
    return [
        ("topology", s["topology"]),
        ("nodes per layer", ",".join(map(str, s["nodes"]))),
        ("branch", s["branch"]),
    ]


FAMILY = Family(
    name="kirchhoffnet",
    title="KirchhoffNet",
    model_class=KirchhoffNet,
    build=build,
    options=KirchhoffOptions,
    lower=lower,
    reference=reference,
    plan=plan,
    compile=compile_,
    describe=describe,
    prepare=prepare,
    devices=lambda config: [],
    analyses=("tran",),
    trajectories=trajectories,
    config=config,
    params=params,
)
