"""TD-KAN / KANalogue: Kolmogorov-Arnold layers whose basis functions are tunnel-diode I-V curves."""

from __future__ import annotations

import torch

from .. import crossbar
from ..base import Family, SimSettings
from .lower import lower, lower_stages
from .model import TDKAN, build, eq6_twin
from .options import TdkanOptions


def simulate(model: TDKAN, z: torch.Tensor, opts: TdkanOptions, s: SimSettings, run_dir):
    x = model.row_drive(z.double()).numpy()  # [N, in] row voltages before the clippers
    x0 = model.row_drive(torch.zeros(1, x.shape[1], dtype=torch.float64)).numpy()[0]
    stages = None if s.whole else (lambda: lower_stages(model, opts))
    n_out = model.layers[-1].bias.numel()
    return crossbar.simulate(lambda: lower(model, opts)[0], stages, x, x0, n_out, s, run_dir)


def compile_(model: TDKAN, opts: TdkanOptions, z, data_file: str):
    circuit, info = lower(model, opts)
    x = None if z is None else model.row_drive(z.double()).numpy()
    info["header"] = [
        *(
            f"device {d.name}: fit {d.fit_hash}, {d.provenance.get('fit_method')}, {d.amps_per_unit:g} A per "
            f"{d.unit} per unit area"
            for d in model.layers[0].bases
        ),
        *(
            f"layer {i}: {L['inputs']}x{L['outputs']}, {L['devices']} devices, areas {L['area_range'][0]:.4g}.."
            f"{L['area_range'][1]:.4g}, Rf {L['rf_ohm'][0]:.4g}..{L['rf_ohm'][1]:.4g} ohm"
            + (f", {L['tiles'][0]} x {L['tiles'][1]} tiles" if L["tiles"] != [1, 1] else "")
            for i, L in enumerate(info["layers"])
        ),
        "inputs: nodes in_<i> (row drive in volts, clipped in the circuit); outputs: nodes y_<j> (volts)",
    ]
    return crossbar.compile_decks(circuit, x, f"{data_file}_outputs.txt"), info


def describe(s: dict) -> list[tuple[str, object]]:
    return [
        ("bases", ",".join(s["bases"])),
        ("norm / mapping", f"{s['norm']} / {s['mapping']}"),
        ("devices (fit hash)", ", ".join(f"{k}:{v}" for k, v in s["devices"].items()) or "-"),
    ]


FAMILY = Family(
    name="tdkan",
    title="TD-KAN",
    model_class=TDKAN,
    build=build,
    options=TdkanOptions,
    lower=lower,
    reference=crossbar.reference,
    simulate=simulate,
    compile=compile_,
    describe=describe,
    eq6=eq6_twin,
)
