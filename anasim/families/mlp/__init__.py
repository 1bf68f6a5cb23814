"""Device-activation MLPs: resistive crossbars with a device I-V curve as the activation."""

from __future__ import annotations

import numpy as np

from ...devices import parse_bases
from .. import crossbar
from ..base import Family, picked
from .lower import lower, lower_stages
from .model import IDEAL, DeviceMLP, build
from .options import MlpOptions


def plan(model: DeviceMLP, z, opts: MlpOptions, s):
    x = z.double().numpy()  # standardized inputs are the row voltages
    n_out = model.linears[-1].out_features
    stages = None if s.whole else (lambda: lower_stages(model, opts))
    return crossbar.plan(lambda: lower(model, opts)[0], stages, x, np.zeros(x.shape[1]), n_out, s)


def compile_(model: DeviceMLP, opts: MlpOptions, z, data_file: str):
    circuit, info = lower(model, opts)
    dev = model.act.device_model
    info["header"] = [
        f"activation {model.act.name}"
        + (f": fit {dev.fit_hash}, {dev.amps_per_unit:g} A per {dev.unit}" if dev else " (behavioural)"),
        *(
            f"layer {i}: {L['inputs']}x{L['outputs']}, {L['resistors']} resistors, Rf {L['rf_ohm']:.4g} ohm"
            for i, L in enumerate(info["layers"])
        ),
        "inputs: nodes in_<i> (standardized inputs in volts); outputs: nodes y_<j> (volts)",
    ]
    return crossbar.compile_decks(circuit, None if z is None else z.double().numpy(), f"{data_file}_outputs"), info


def describe(s: dict) -> list[tuple[str, object]]:
    return [
        ("activation", s["activation"]),
        ("devices (fit hash)", ", ".join(f"{k}:{v}" for k, v in s["devices"].items()) or "-"),
    ]


def config(dims, given: dict) -> dict:
    """A device activation is checked against the registry before training (relu, sigmoid are not devices)."""
    if given.get("activation") not in (*IDEAL, None):
        parse_bases(given["activation"])
    return picked("mlp", dims, given, ("activation",))


FAMILY = Family(
    name="mlp",
    title="device MLP",
    model_class=DeviceMLP,
    build=build,
    options=MlpOptions,
    lower=lower,
    reference=crossbar.reference,
    plan=plan,
    compile=compile_,
    describe=describe,
    devices=lambda config: [] if config.get("activation") in (*IDEAL, None) else [config["activation"]],
    config=config,
)
