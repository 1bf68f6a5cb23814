"""Lowering: trained model -> circuit IR (the ``compile`` step; the netlister writes it out).

TD-KAN layer, per-edge mapping (the physical default): row line i is driven at the clipped input
voltage; every edge (i, j) and basis k is a device of area ``|Theta_ijk| / scale`` between row i
and column j+ (Theta > 0) or j- (Theta < 0), so its current is ``area * I_k(V_row - V_col)``.
Column currents sum by KCL into two TIAs (op-amp macro-model, gain ``opamp_gain``, feedback
``Rf_j``) and a unity difference amplifier: ``out_j = Rf_j (I_j+ - I_j-)``. BatchNorm is fused:
its scale sets ``Rf_j`` (a negative scale swaps the two columns) and the rest becomes a bias
current into a column. A behavioural limiter (the clipper) drives the next layer's rows.

Shared mapping (``mapping="shared"``): each (input, basis) device is evaluated once into a
virtual-ground TIA whose output voltage drives a linear resistive crossbar of in*K rows by
2*out columns. Both agree exactly only with ideal virtual grounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .devices import DeviceModel
from .errors import AnasimError
from .ir import VCCS, VCVS, BSource, Capacitor, Circuit, Func, Instance, ISource, Resistor, Subckt, num
from .models import TDKAN


@dataclass
class HwOptions:
    mapping: str = "edge"  # "edge" (one device per edge and basis) or "shared"
    area_max: float = 10.0  # the largest device, in units of the unit-area device
    levels: int | None = None  # quantize areas to this many levels in [0, area_max]
    opamp_gain: float = 1e9  # open-loop gain of every op-amp (1e9: ideal virtual ground)
    r_diff: float = 10e3  # resistors of the difference amplifier
    r_sense: float = 10e3  # shared mapping: TIA feedback of the per-(input, basis) device
    # shared mapping: crossbar cells as conductances into ideal virtual grounds ("vccs": fast, the
    # column voltage is taken as exactly 0) or as resistors that see the column voltage ("resistor")
    crossbar: str = "vccs"
    line_cap: float = 0.0  # parasitic capacitance of every row and column line to ground (F)
    gbw: float | None = None  # op-amp gain-bandwidth (Hz): one pole at gbw / gain; None: no pole

    def check(self) -> HwOptions:
        if self.crossbar not in ("vccs", "resistor"):
            raise AnasimError(f"crossbar {self.crossbar!r}: use vccs or resistor")
        if self.mapping not in ("edge", "shared"):
            raise AnasimError(f"mapping {self.mapping!r}: use edge or shared")
        if not (self.area_max > 0 and self.opamp_gain > 0 and self.r_diff > 0):
            raise AnasimError("area_max, opamp_gain and r_diff must be positive")
        if self.line_cap < 0 or (self.gbw is not None and self.gbw <= 0):
            raise AnasimError("line capacitance must be >= 0 and the op-amp gain-bandwidth > 0")
        if self.levels is not None and self.levels < 2:
            raise AnasimError(f"--levels {self.levels}: need at least 2 area levels")
        return self


def func_name(dev: DeviceModel) -> str:
    return f"iv_{dev.name}"


def _fused_layers(model: TDKAN) -> list[dict]:
    """Per layer: Theta [in, out, K], bias [out], and the fused norm scale s and shift t."""
    layers = []
    for idx, layer in enumerate(model.layers):
        theta = layer.coeffs.detach().double().numpy()
        bias = layer.bias.detach().double().numpy()
        s, t = np.ones(len(bias)), np.zeros(len(bias))
        if idx < len(model.norms):
            norm = model.norms[idx]
            if isinstance(norm, torch.nn.LayerNorm):
                raise AnasimError(
                    "this model uses LayerNorm, which depends on each sample's own statistics and has no "
                    "circuit; retrain with --norm batch (BatchNorm is fused into the TIAs)"
                )
            if isinstance(norm, torch.nn.BatchNorm1d):
                inv = 1.0 / np.sqrt(norm.running_var.double().numpy() + norm.eps)
                s = norm.weight.detach().double().numpy() * inv
                t = norm.bias.detach().double().numpy() - s * norm.running_mean.double().numpy()
        for name, arr in (("coefficients", theta), ("bias", bias), ("norm scale", s), ("norm shift", t)):
            if not np.all(np.isfinite(arr)):
                raise AnasimError(f"layer {idx}: {name} hold NaN or inf; the model cannot be compiled")
        layers.append({"theta": theta, "bias": bias, "s": s, "t": t, "bases": layer.bases})
    return layers


def quantize(area: np.ndarray, opts: HwOptions) -> np.ndarray:
    if opts.levels is None:
        return area
    step = opts.area_max / (opts.levels - 1)
    return np.round(area / step) * step


def opamp_subckt(gain: float, gbw: float | None = None) -> Subckt:
    """Op-amp macro-model: out = gain * (inp - inn), with one pole at gbw / gain if gbw is given."""
    if gbw is None:
        return Subckt(
            "opamp", ["inp", "inn", "out"], [VCVS("amp", "out", "0", "inp", "inn", gain)], "op-amp macro-model"
        )
    # A transconductance integrator rather than a huge VCVS into an RC: its node swings only as
    # far as the output, which keeps the transient well conditioned even at gain 1e9.
    gm = 1e-3
    return Subckt(
        "opamp",
        ["inp", "inn", "out"],
        [
            VCCS("gm", "0", "p", "inp", "inn", gm),
            Resistor("o", "p", "0", gain / gm),
            Capacitor("c", "p", "0", gm / (2 * np.pi * gbw)),
            VCVS("buf", "out", "0", "p", "0", 1.0),
        ],
        f"op-amp macro-model, gain {gain:g}, gain-bandwidth {gbw:g} Hz",
    )


def limiter_expr(node: str, v_range, mapping: str) -> str:
    lo, hi = v_range
    if mapping == "clip":
        return f"max({num(lo)},min({num(hi)},V({node})))"
    mid, span = (lo + hi) / 2, hi - lo
    return f"{num(lo)}+{num(span)}/(1+exp(-{num(4 / span)}*(V({node})-{num(mid)})))"


def _min_slope(dev: DeviceModel, v_range) -> float:
    """Most negative dI/dV of a device over the clip range (per unit area, in its unit per volt)."""
    v = np.linspace(v_range[0], v_range[1], 2001)
    return float(np.min(np.diff(dev.current(v)) / np.diff(v)))


def _base_circuit(title: str, bases: list[DeviceModel], opts: HwOptions) -> Circuit:
    return Circuit(
        title=title,
        funcs=[Func(func_name(d), d.spice_current("x")) for d in bases],
        subckts=[opamp_subckt(opts.opamp_gain, opts.gbw), _neuron_subckt(opts)],
    )


def lower_tdkan(model: TDKAN, opts: HwOptions | None = None) -> tuple[Circuit, dict]:
    """The network as one circuit whose inputs are nodes ``in_<i>`` (pre-clip row voltages) and
    whose outputs are nodes ``y_<j>``; returns the circuit and a summary of its hardware values."""
    opts = (opts or HwOptions()).check()
    bases = model.layers[0].bases
    circuit = _base_circuit("anasim TD-KAN crossbar", bases, opts)
    layers = _fused_layers(model)
    rows = [f"in_{i}" for i in range(layers[0]["theta"].shape[0])]
    info = {"layers": []}
    for li, L in enumerate(layers):
        last = li == len(layers) - 1
        outs = [f"y_{j}" if last else f"l{li}_o{j}" for j in range(L["theta"].shape[1])]
        info["layers"].append(_lower_layer(circuit, li, L, rows, outs, model, opts))
        rows = outs
    circuit.outputs = rows
    return circuit.validate(), info


def lower_tdkan_layers(model: TDKAN, opts: HwOptions | None = None) -> list[Circuit]:
    """One circuit per layer, each from nodes ``in_<i>`` to ``y_<j>``, for layer-by-layer runs.

    The clipper that drives a layer's rows is an ideal behavioural source: it draws no current
    from the previous layer's output and holds its rows whatever they draw. Cutting the network
    there and feeding one layer's simulated outputs to the next is therefore exact, and each run
    needs fewer Newton iterations per sample than the whole network.
    """
    opts = (opts or HwOptions()).check()
    bases = model.layers[0].bases
    circuits = []
    for li, L in enumerate(_fused_layers(model)):
        d_in, d_out, k_n = L["theta"].shape
        # Shared mapping: the sense TIAs' outputs are ideal sources too, so a second cut there
        # leaves one small nonlinear run and one linear run (few Newton iterations) per layer.
        stages = [("all", d_out)] if opts.mapping == "edge" else [("sense", d_in * k_n), ("crossbar", d_out)]
        width = d_in
        for part, n_out in stages:
            circuit = _base_circuit(f"anasim TD-KAN crossbar, layer {li} ({part})", bases, opts)
            circuit.outputs = [f"y_{j}" for j in range(n_out)]
            _lower_layer(circuit, li, L, [f"in_{i}" for i in range(width)], circuit.outputs, model, opts, part)
            circuits.append(circuit.validate())
            width = n_out
    return circuits


def _lower_layer(
    circuit: Circuit, li: int, L: dict, rows: list[str], outs: list[str], model, opts, part: str = "all"
) -> dict:
    """Append layer ``li`` (clippers, devices, TIAs) driven from ``rows`` into ``outs``.

    With the shared mapping a layer can also be written in two parts: ``"sense"`` (clippers and
    the per-(input, basis) devices, outputs = the phi voltages) and ``"crossbar"`` (inputs = the
    phi voltages, linear crossbar and TIAs)."""
    theta, s, bases = L["theta"], L["s"], L["bases"]
    d_in, d_out, k_n = theta.shape
    amps = np.array([d.amps_per_unit for d in bases])  # [K]
    lim = f"l{li}_r"
    expr_map = model.layers[li].mapping
    if part in ("all", "sense"):
        for i, src in enumerate(rows):  # the clipper in front of this layer's rows
            circuit.elements.append(
                BSource(f"lim{li}_{i}", f"{lim}{i}", "0", "V", limiter_expr(src, model.v_range, expr_map))
            )
    if part == "sense":
        _shared_sense(circuit, li, bases, lim, d_in, opts, phi=lambda _, i, k: outs[i * k_n + k])
        return {}
    raw = np.abs(theta) / amps  # [in, out, K] area * scale
    scale = raw.max() / opts.area_max if raw.max() > 0 else 1.0
    area = quantize(raw / scale, opts)
    rf = np.abs(s) * scale  # ohms: out = Rf (I+ - I-) reproduces s * sum(theta * phi)
    rf = np.where(rf > 0, rf, scale)
    c = s * L["bias"] + L["t"]  # fused constant of each output
    if opts.mapping == "edge":
        _edge_devices(circuit, li, theta, s, area, bases, lim, d_in)
    elif part == "crossbar":
        _shared_crossbar(circuit, li, theta, s, area, opts, phi=lambda _, i, k: rows[i * k_n + k])
    else:
        _shared_sense(circuit, li, bases, lim, d_in, opts)
        _shared_crossbar(circuit, li, theta, s, area, opts)
    # Worst-case negative input conductance of each column [out, (+, -)], for the stabilizer.
    slopes = np.array([max(0.0, -_min_slope(d, model.v_range)) for d in bases])  # [K] per unit area
    g_dev = area * (amps * slopes)[None, None, :]  # [in, out, K] siemens
    pos = (
        ((theta > 0) == (s >= 0)[None, :, None]) if opts.mapping == "edge" else ((theta > 0) != (s >= 0)[None, :, None])
    )
    g_neg = np.stack([(g_dev * pos).sum(axis=(0, 2)), (g_dev * ~pos).sum(axis=(0, 2))], axis=1)
    if opts.mapping == "shared":
        g_neg = np.zeros_like(g_neg)  # crossbar cells are linear; the sense TIAs see the devices
    if opts.line_cap > 0:
        lines = [f"{lim}{i}" for i in range(d_in) if part == "all"]
        lines += [f"l{li}_c{j}{pol}" for j in range(d_out) for pol in "pn"]
        circuit.elements += [Capacitor(f"line_{node}", node, "0", opts.line_cap) for node in lines]
    for j in range(d_out):
        cp, cn = f"l{li}_c{j}p", f"l{li}_c{j}n"
        ib = c[j] / rf[j]
        if ib != 0:
            circuit.elements.append(ISource(f"b{li}_{j}", "0", cp if ib > 0 else cn, abs(ib)))
        circuit.elements.append(Instance(f"tia{li}_{j}", "neuron", [cp, cn, outs[j], f"{outs[j]}_ap", f"{outs[j]}_an"]))
        circuit.elements.append(Resistor(f"fp{li}_{j}", cp, f"{outs[j]}_ap", rf[j]))
        circuit.elements.append(Resistor(f"fn{li}_{j}", cn, f"{outs[j]}_an", rf[j]))
        if opts.gbw is not None:
            # NDR devices give a column a negative input conductance (down to g_neg); when
            # Rf * g_neg < -1 the TIA loop turns into positive feedback and the column latches or
            # drifts. A shunt to ground worth 1.5 x the worst case keeps it stable; at a true
            # virtual ground it carries no current, so DC outputs are unchanged.
            for col, g in ((cp, g_neg[j, 0]), (cn, g_neg[j, 1])):
                if g > 0:
                    circuit.elements.append(Resistor(f"shunt_{col}", col, "0", 1.0 / (1.5 * g)))
        if opts.line_cap > 0 and opts.gbw is not None:
            # A TIA with a capacitive input rings without feedback capacitance; this Cf gives
            # about 45 degrees of phase margin: Cf = sqrt(C_in / (2 pi Rf GBW)).
            cf = float(np.sqrt(opts.line_cap / (2 * np.pi * rf[j] * opts.gbw)))
            circuit.elements.append(Capacitor(f"fp{li}_{j}", cp, f"{outs[j]}_ap", cf))
            circuit.elements.append(Capacitor(f"fn{li}_{j}", cn, f"{outs[j]}_an", cf))
    return {
        "inputs": d_in,
        "outputs": d_out,
        "devices": int(np.count_nonzero(area)) if opts.mapping == "edge" else d_in * len(bases),
        "area_range": [float(area[area > 0].min()) if (area > 0).any() else 0.0, float(area.max())],
        "scale_ohm": float(scale),
        "rf_ohm": [float(rf.min()), float(rf.max())],
    }


def _column(li: int, j: int, theta: float, s: float, inverted: bool) -> str:
    """Column of output j that realizes the sign of s * theta (+ column adds, - subtracts)."""
    positive = ((theta > 0) == (s >= 0)) != inverted
    return f"l{li}_c{j}{'p' if positive else 'n'}"


def _edge_devices(circuit, li, theta, s, area, bases, lim, d_in) -> None:
    d_out, k_n = theta.shape[1], theta.shape[2]
    for i in range(d_in):
        for j in range(d_out):
            for k in range(k_n):
                a = area[i, j, k]
                if a == 0:
                    continue
                col = _column(li, j, theta[i, j, k], s[j], inverted=False)
                gain = a * bases[k].amps_per_unit
                expr = f"{num(gain)}*{func_name(bases[k])}(V({lim}{i},{col}))"
                circuit.elements.append(BSource(f"d{li}_{i}_{j}_{k}", f"{lim}{i}", col, "I", expr))


def _phi(li: int, i: int, k: int) -> str:
    return f"l{li}_v{i}_{k}"


def _shared_sense(circuit, li, bases, lim, d_in, opts, phi=_phi) -> None:
    """One device per (input, basis) into a virtual-ground TIA: V(phi) = -Rs * A_k * I_k(u_i)."""
    # worst-case negative conductance of one unit device (see the column shunts in _lower_layer)
    g_neg = [d.amps_per_unit * max(0.0, -_min_slope(d, (d.v_range[0] - 1, d.v_range[1] + 1))) for d in bases]
    for i in range(d_in):
        for k, dev in enumerate(bases):
            sense = f"l{li}_s{i}_{k}"
            expr = f"{num(dev.amps_per_unit)}*{func_name(dev)}(V({lim}{i},{sense}))"
            circuit.elements.append(BSource(f"d{li}_{i}_{k}", f"{lim}{i}", sense, "I", expr))
            circuit.elements.append(Instance(f"s{li}_{i}_{k}", "opamp", ["0", sense, phi(li, i, k)]))
            circuit.elements.append(Resistor(f"s{li}_{i}_{k}", sense, phi(li, i, k), opts.r_sense))
            if opts.gbw is not None and g_neg[k] > 0:
                circuit.elements.append(Resistor(f"shunt_{sense}", sense, "0", 1.0 / (1.5 * g_neg[k])))


def _shared_crossbar(circuit, li, theta, s, area, opts, phi=_phi) -> None:
    """Linear crossbar from the phi voltages into the differential columns."""
    # The sense TIA turns A_k * I_k into Rs * A_k * I_k volts; a conductance area / Rs then carries
    # area * A_k * I_k, the same current as the per-edge device of that area.
    g = area / opts.r_sense  # [in, out, K]
    for i, j, k in zip(*np.nonzero(g)):
        # phi sits at -Rs*I: the sense TIA inverts, so the columns swap
        col = _column(li, j, theta[i, j, k], s[j], inverted=True)
        if opts.crossbar == "resistor":
            circuit.elements.append(Resistor(f"x{li}_{i}_{j}_{k}", phi(li, i, k), col, 1.0 / g[i, j, k]))
        else:  # current g * V(phi) into the column, as a resistor into 0 V would carry
            circuit.elements.append(VCCS(f"x{li}_{i}_{j}_{k}", "0", col, phi(li, i, k), "0", g[i, j, k]))


def _neuron_subckt(opts: HwOptions) -> Subckt:
    """Two TIAs (feedback resistors outside, per column) and a unity difference amplifier."""
    r = opts.r_diff
    return Subckt(
        "neuron",
        ["cp", "cn", "out", "ap", "an"],
        [
            Instance("p", "opamp", ["0", "cp", "ap"]),
            Instance("n", "opamp", ["0", "cn", "an"]),
            Resistor("a", "ap", "m", r),
            Resistor("b", "m", "out", r),
            Resistor("c", "an", "q", r),
            Resistor("d", "q", "0", r),
            Instance("d", "opamp", ["q", "m", "out"]),
        ],
        "differential TIA pair + difference amplifier: out = V(an) - V(ap)",
    )
