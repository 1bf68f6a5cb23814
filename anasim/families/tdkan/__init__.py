"""TD-KAN / KANalogue: Kolmogorov-Arnold layers whose basis functions are tunnel-diode I-V curves."""

from __future__ import annotations

import torch

from ...devices import parse_bases
from ...sim.plan import Plan, Rescale
from .. import crossbar
from ..base import Family, SimSettings, picked
from .lower import lower, lower_stages, swing_scales
from .model import TDKAN, build, eq6_twin
from .options import TdkanOptions
from .swing import FIT_SAMPLES, fit

# --swing's held-out check: an op-amp output beyond the swing by more than this fraction (ten
# times the DC sweeps' reltol, so that solver noise at a peak fitted exactly is not counted)
SWING_TOL = 1e-5


def plan(model: TDKAN, z: torch.Tensor, opts: TdkanOptions, s: SimSettings) -> Plan:
    x = model.row_drive(z.double()).detach().numpy()  # [N, in] row voltages before the clippers
    x0 = model.row_drive(torch.zeros(1, x.shape[1], dtype=torch.float64)).detach().numpy()[0]
    stages = None if s.whole else (lambda: lower_stages(model, opts))
    n_out = model.layers[-1].bias.numel()
    post = swing_step(opts, len(model.layers), s)
    return crossbar.plan(lambda: lower(model, opts)[0], stages, x, x0, n_out, s, opts.swing is not None, post)


def swing_step(opts: TdkanOptions, n_layers: int, s: SimSettings) -> Rescale | None:
    """With ``--swing`` (or a compiled netlist that used it): the post-step that divides the
    outputs by the last layer's output scale and records under ``extra["swing"]`` the scales and
    how many samples took an op-amp output beyond the swing (stage by stage, where every op-amp
    output is a stage output)."""
    if s.netlist is not None:  # the deck that ran decides: its sidecar records its output scale
        if s.netlist_scale is None:
            return None
        return Rescale(s.netlist_scale, "swing", {"output_scale": s.netlist_scale, "from": str(s.netlist)})
    if opts.swing is None:
        return None
    scales = swing_scales(opts, n_layers)
    beta = scales[-1][1]
    info = {
        "volts": opts.swing,
        "output_scale": beta,
        "fit": f"peaks of the nominal circuit on the first {FIT_SAMPLES} training samples (at most)",
        "layers": [{"peaks_v": list(p), "scales": list(sc)} for p, sc in zip(opts.swing_peaks, scales)],
    }
    return Rescale(beta, "swing", info, opts.swing, SWING_TOL)


def compile_(model: TDKAN, opts: TdkanOptions, z, data_file: str):
    circuit, info = lower(model, opts)
    x = None if z is None else model.row_drive(z.double()).detach().numpy()
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
        *swing_header(opts, info),
        drive_header(model),
        "inputs: nodes in_<i> (row drive in volts, clipped in the circuit); outputs: nodes y_<j> (volts)",
    ]
    info["output_scale"] = info["layers"][-1]["swing"]["output_scale"] if opts.swing is not None else None
    return crossbar.compile_decks(circuit, x, f"{data_file}_outputs"), info


def drive_header(model: TDKAN) -> str:
    """What the DAC in front of the rows does: in_<i> = offset_i + gain_i * z_i for standardized
    inputs z (the stimulus holds these volts)."""
    off, gain = model.in_offset.detach().double(), model.in_gain.detach().double()
    if model.drive == "fixed":
        return f"row drive (DAC): in_<i> = {float(off):.6g} + {float(gain):.6g} * z_i V, z the standardized input"
    return (
        f"row drive (DAC, trained per row): in_<i> = offset_i + gain_i * z_i V, z the standardized input; "
        f"offsets {float(off.min()):.4g}..{float(off.max()):.4g} V, gains {float(gain.min()):.4g}.."
        f"{float(gain.max()):.4g} V/std (limits: offset in the bias range, |gain| <= its width)"
    )


def swing_header(opts: TdkanOptions, info: dict) -> list[str]:
    """Header lines of a swing-fitted deck; ``output scale`` is read back when it is simulated."""
    if opts.swing is None:
        return []
    beta = info["layers"][-1]["swing"]["output_scale"]
    return [
        *(
            f"layer {i} swing {opts.swing:g} V: peaks {L['swing']['peaks_v'][0]:.4g} V (TIAs), "
            f"{L['swing']['peaks_v'][1]:.4g} V (outputs); Rf x {L['swing']['tia_scale']:.6g}, difference gain "
            f"{L['swing']['diff_gain']:.6g}, outputs x {L['swing']['output_scale']:.6g}"
            for i, L in enumerate(info["layers"])
        ),
        f"output scale {beta!r}: y_<j> are the model's outputs times this (--swing); anasim simulate divides it out",
    ]


def describe(s: dict) -> list[tuple[str, object]]:
    return [
        ("bases", ",".join(s["bases"])),
        ("norm / mapping", f"{s['norm']} / {s['mapping']}"),
        ("devices (fit hash)", ", ".join(f"{k}:{v}" for k, v in s["devices"].items()) or "-"),
    ]


def config(dims, given: dict) -> dict:
    """The bases are checked against the device registry before training."""
    given = given | ({"bases": parse_bases(given["bases"])} if "bases" in given else {})
    return picked("tdkan", dims, given, ("bases", "norm", "mapping", "in_gain", "drive", "train_noise"))


def drive(model: TDKAN):
    """The row drive: in_<i> = offset_i + gain_i * z_i (the DAC in front of the rows)."""
    return model.in_offset.detach().double().numpy(), model.in_gain.detach().double().numpy()


FAMILY = Family(
    name="tdkan",
    title="TD-KAN",
    model_class=TDKAN,
    build=build,
    options=TdkanOptions,
    lower=lower,
    reference=crossbar.reference,
    plan=plan,
    compile=compile_,
    describe=describe,
    eq6=eq6_twin,
    fit=fit,
    config=config,
    drive=drive,
    project=TDKAN.project_,
    limit_errors=TDKAN.limit_errors,
)
