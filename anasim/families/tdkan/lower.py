"""TD-KAN lowering: trained model -> circuit IR (the TD-KAN part of ``compile``).

Per-edge mapping (the physical default): row line i is driven at the clipped input voltage;
every edge (i, j) and basis k is a :class:`Device` of area ``|Theta_ijk| / scale`` between row i
and column j+ (Theta > 0) or j- (Theta < 0), so its current is ``area * I_k(V_row - V_col)``.
Column currents sum by KCL into two TIAs (feedback ``Rf_j``) and a unity difference amplifier:
``out_j = Rf_j (I_j+ - I_j-)``. BatchNorm is fused: its scale sets ``Rf_j`` (a negative scale
swaps the two columns) and the rest becomes a bias current into a column. An ideal clipper drives
the next layer's rows.

Shared mapping: each (input, basis) device is evaluated once into a virtual-ground TIA whose
output voltage drives a linear crossbar of in*K rows by 2*out columns. Both agree exactly only
with ideal virtual grounds. Each stage below is one function returning elements; tiles, wires,
line capacitance and stabilizers are in :mod:`anasim.families.tdkan.physical`.

``--swing``: each layer's feedback resistors (and the shared mapping's sense resistors) and its
difference gain are scaled down so that every op-amp output stays within the swing on the
training data (:func:`swing_scales`); the next layer's clippers divide by the layer's output
scale, so every row sees the voltage it sees without the swing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ...circuit.blocks import clipper, column, summing, tias
from ...circuit.ir import VCCS, Circuit, Curve, Device, ISource, OpAmp, Resistor
from ...errors import AnasimError
from .model import TDKAN
from .options import TdkanOptions
from .physical import crossing, line_caps, min_slope, negative_conductance, stabilizers, tile_column, tiling, wires


@dataclass(frozen=True)
class KanLayer:
    """One layer's hardware values (numpy, float64)."""

    index: int
    theta: np.ndarray  # [in, out, K] coefficients
    s: np.ndarray  # [out] fused norm scale
    area: np.ndarray  # [in, out, K] device areas in unit devices (0: no device)
    scale: float  # ohms: |Theta| = area * A_k * scale
    rf: np.ndarray  # [out] TIA feedback resistors (ohms)
    c: np.ndarray  # [out] fused constant of each output (volts at the TIA outputs: its bias current is c / rf)
    bases: list
    v_range: tuple[float, float]
    mapping: str  # "clip" or "sigmoid": the clipper in front of the rows
    # --swing (see swing_scales): the difference amplifier's gain, the clippers' input gain (1 /
    # the previous layer's output scale), the shared mapping's sense resistors (ohms)
    k_diff: float = 1.0
    gain_in: float = 1.0
    r_sense: float = 10e3
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0)  # (TIA, output, sense) scale of swing_scales

    @property
    def rows(self) -> str:  # prefix of the clipped row nodes
        return f"l{self.index}_r"

    def column(self, i: int, j: int, k: int, inverted: bool = False) -> str:
        """Column of output j that realizes the sign of s * theta (+ column adds, - subtracts)."""
        return column(self.index, j, self.theta[i, j, k], self.s[j], inverted)


def curves(bases) -> tuple[Curve, ...]:
    return tuple(Curve(d.name, d.spice_current("x"), d.amps_per_unit, d.pwl_table()) for d in bases)


def swing_scales(opts: TdkanOptions, n_layers: int) -> list[tuple[float, float, float]]:
    """Per layer, the (TIA, output, sense) scale that brings the nominal circuit's largest
    |TIA output|, |difference-amplifier output| and |sense-TIA output| on the training data
    (``opts.swing_peaks``) within ``opts.swing``: swing / peak, or 1 where the peak is within
    the swing. Never above 1: a swing the nominal circuit already fits leaves it as it is (same
    netlist), and no signal is amplified beyond what the design gives. The TIA scale multiplies
    the feedback resistors, the output scale / TIA scale is the difference amplifier's gain, and
    the next layer's clippers divide by the output scale; the last layer's outputs are the
    model's times its output scale, which the comparison divides out."""
    if opts.swing is None:
        return [(1.0, 1.0, 1.0)] * n_layers
    if opts.swing_peaks is None:
        raise AnasimError(
            "--swing is fitted on the model's training data: lower a network loaded with anasim.load "
            "(anasim.lower(net, swing=V)), or give swing_peaks from anasim.families.tdkan.swing.peaks"
        )
    if len(opts.swing_peaks) != n_layers:
        raise AnasimError(
            f"swing_peaks hold {len(opts.swing_peaks)} layers but the model has {n_layers}; fit them on this model"
        )
    fit = lambda peak: 1.0 if peak <= opts.swing else opts.swing / peak  # noqa: E731
    return [(fit(t), fit(d), fit(sn)) for t, d, sn in opts.swing_peaks]


def kan_layers(model: TDKAN, opts: TdkanOptions) -> list[KanLayer]:
    layers = []
    scales = swing_scales(opts, len(model.layers))
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
        amps = np.array([d.amps_per_unit for d in layer.bases])  # [K]
        raw = np.abs(theta) / amps  # [in, out, K] area * scale
        scale = raw.max() / opts.area_max if raw.max() > 0 else 1.0
        area = raw / scale
        if opts.levels is not None:
            step = opts.area_max / (opts.levels - 1)
            area = np.round(area / step) * step
        if opts.area_min > 0:  # no device below area_min: the nearer of none and the smallest one
            small = (area > 0) & (area < opts.area_min)
            area = np.where(small, np.where(area >= opts.area_min / 2, opts.area_min, 0.0), area)
        rf = np.abs(s) * scale  # ohms: out = Rf (I+ - I-) reproduces s * sum(theta * phi)
        rf = np.where(rf > 0, rf, scale)
        c = s * bias + t
        # --swing: TIA outputs (and with them the bias's share, c) scale with Rf, the bias current
        # c / rf stays; the difference gain turns the TIA scale into the output scale
        a, beta, sigma = scales[idx]
        rf, c, gain_in = rf * a, c * a, 1.0 / scales[idx - 1][1] if idx else 1.0
        L = KanLayer(idx, theta, s, area, scale, rf, c, layer.bases, model.v_range, layer.mapping, beta / a, gain_in)
        layers.append(replace(L, r_sense=opts.r_sense * sigma, scales=scales[idx]))
    return layers


def clippers(L: KanLayer, inputs: list[str]) -> list:
    return [
        clipper(f"lim{L.index}_{i}", src, f"{L.rows}{i}", L.v_range, L.mapping, L.gain_in)
        for i, src in enumerate(inputs)
    ]


def edge_devices(L: KanLayer, opts: TdkanOptions) -> list:
    """One device per edge and basis, from row i to its column (in row i's tile, see
    :func:`tile_column`); with wires, from row i's node to the column's node where the two lines
    cross (see :func:`wires`)."""
    d_in, d_out, k_n = L.area.shape
    per, _, n_b = tiling(L, opts)
    wired, out = opts.wire_r > 0, []
    for i in range(d_in):
        for j in range(d_out):
            for k in range(k_n):
                if L.area[i, j, k] != 0:
                    col = L.column(i, j, k)
                    p, n = crossing(L.index, i, col) if wired else (f"{L.rows}{i}", tile_column(col, i // per, n_b))
                    out.append(Device(f"d{L.index}_{i}_{j}_{k}", p, n, L.bases[k].name, L.area[i, j, k]))
    return out


def sense(L: KanLayer, opts: TdkanOptions, phi: list[str]) -> list:
    """One unit device per (input, basis) into a virtual-ground TIA: V(phi) = -Rs * A_k * I_k(u_i)."""
    li, out = L.index, []
    # worst-case negative conductance of one unit device (see the column shunts)
    g_neg = [d.amps_per_unit * max(0.0, -min_slope(d, (d.v_range[0] - 1, d.v_range[1] + 1))) for d in L.bases]
    for i in range(L.area.shape[0]):
        for k, dev in enumerate(L.bases):
            node, p = f"l{li}_s{i}_{k}", phi[i * len(L.bases) + k]
            out.append(Device(f"d{li}_{i}_{k}", f"{L.rows}{i}", node, dev.name))
            out.append(OpAmp(f"s{li}_{i}_{k}", "0", node, p, opts.opamp_gain, rails=opts.rails, gbw=opts.gbw))
            out.append(Resistor(f"s{li}_{i}_{k}", node, p, L.r_sense))
            if opts.gbw is not None and g_neg[k] > 0:
                out.append(Resistor(f"shunt_{node}", node, "0", 1.0 / (1.5 * g_neg[k])))
    return out


def crossbar(L: KanLayer, opts: TdkanOptions, phi: list[str]) -> list:
    """Linear crossbar from the phi voltages into the differential columns."""
    # The sense TIA turns A_k * I_k into Rs * A_k * I_k volts; a conductance area / Rs then carries
    # area * A_k * I_k, the same current as the per-edge device of that area.
    g = L.area / L.r_sense  # [in, out, K]
    k_n, out = g.shape[2], []
    for i, j, k in zip(*np.nonzero(g)):
        col = L.column(i, j, k, inverted=True)  # phi sits at -Rs*I: the sense TIA inverts
        name, src = f"x{L.index}_{i}_{j}_{k}", phi[i * k_n + k]
        if opts.crossbar == "resistor":
            out.append(Resistor(name, src, col, 1.0 / g[i, j, k]))
        else:  # current g * V(phi) into the column, as a resistor into 0 V would carry
            out.append(VCCS(name, "0", col, src, "0", g[i, j, k]))
    return out


def columns(L: KanLayer, opts: TdkanOptions, outs: list[str], cut: bool = False) -> tuple[list, list]:
    """Per output: bias current, a TIA pair per row tile (feedback, stabilizers) and the
    difference amplifier, which with several row tiles sums their partial outputs
    (:func:`~anasim.circuit.blocks.summing`). With ``cut`` the difference amplifiers are left
    out and returned as (name, aps, ans, out) per output, for a stage of their own: an ideal TIA
    output is an ideal source, so its load does not change it."""
    li, out, amps = L.index, [], []
    per, _, n_b = tiling(L, opts)
    g_negs = [negative_conductance(L, opts, slice(b * per, (b + 1) * per)) for b in range(n_b)]
    for j, y in enumerate(outs):
        ib = L.c[j] / L.rf[j]
        if ib != 0:  # into the first tile's column
            cp, cn = tile_column(f"l{li}_c{j}p", 0, n_b), tile_column(f"l{li}_c{j}n", 0, n_b)
            out.append(ISource(f"b{li}_{j}", "0", cp if ib > 0 else cn, abs(ib)))
        aps, ans, tiles = [], [], []
        for b in range(n_b):
            cp, cn = tile_column(f"l{li}_c{j}p", b, n_b), tile_column(f"l{li}_c{j}n", b, n_b)
            tag = "" if n_b == 1 else f"_t{b}"
            ap, an = f"{y}{tag}_ap", f"{y}{tag}_an"
            tiles.append(tias(f"tia{li}_{j}{tag}", cp, cn, ap, an, opts.opamp_gain, opts.gbw, opts.rails))
            tiles.append([Resistor(f"fp{li}_{j}{tag}", cp, ap, L.rf[j]), Resistor(f"fn{li}_{j}{tag}", cn, an, L.rf[j])])
            tiles.append(stabilizers(L, opts, g_negs[b][j], (cp, cn, ap, an), j, tag))
            aps.append(ap)
            ans.append(an)
        amp = (f"tia{li}_{j}", aps, ans, y)
        if cut:
            amps.append(amp)
        else:  # one tile: after its TIAs, as a neuron's elements come (the netlists stay as they were)
            tiles.insert(1 if n_b == 1 else len(tiles), difference_amps([amp], opts, L.k_diff))
        out += [e for group in tiles for e in group]
    return out, amps


def difference_amps(amps: list, opts: TdkanOptions, k: float, inputs: list[str] | None = None) -> list:
    """The difference (summing) amplifier of gain ``k`` of every output; ``inputs`` renames the
    partial outputs, in the order [ap, an] per tile per output, to a stage's input nodes."""
    out, m = [], 0
    for name, aps, ans, y in amps:
        if inputs is not None:
            n = len(aps)
            aps, ans = [inputs[m + 2 * t] for t in range(n)], [inputs[m + 2 * t + 1] for t in range(n)]
            m += 2 * n
        out += summing(name, aps, ans, y, opts.r_diff, opts.opamp_gain, opts.gbw, opts.rails, k)
    return out


def partials(amps: list) -> list[str]:
    """The TIA outputs the difference amplifiers read, [ap, an] per tile per output."""
    return [node for _, aps, ans, _ in amps for pair in zip(aps, ans) for node in pair]


def layer_info(L: KanLayer, opts: TdkanOptions) -> dict:
    area, (rows, outs, n_b) = L.area, tiling(L, opts)
    return {
        "inputs": area.shape[0],
        "outputs": area.shape[1],
        "devices": int(np.count_nonzero(area)) if opts.mapping == "edge" else area.shape[0] * len(L.bases),
        "area_range": [float(area[area > 0].min()) if (area > 0).any() else 0.0, float(area.max())],
        "scale_ohm": float(L.scale),
        "rf_ohm": [float(L.rf.min()), float(L.rf.max())],
        "tiles": [n_b, -(-area.shape[1] // outs)],
        # (rows, column lines) of one tile; the shared mapping's one crossbar has a row per input and basis
        "crossbar": [rows if opts.mapping == "edge" else area.shape[0] * len(L.bases), 2 * outs],
        **({"swing": swing_info(L, opts)} if opts.swing is not None else {}),
    }


def swing_info(L: KanLayer, opts: TdkanOptions) -> dict:
    tia, out, sense = L.scales
    info = {"peaks_v": list(opts.swing_peaks[L.index]), "tia_scale": tia, "diff_gain": L.k_diff, "output_scale": out}
    return info | ({"sense_scale": sense} if opts.mapping == "shared" else {})


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def lower(model: TDKAN, opts: TdkanOptions) -> tuple[Circuit, dict]:
    """The network as one circuit from nodes ``in_<i>`` (pre-clip row voltages) to ``y_<j>``;
    returns the circuit and a summary of its hardware values per layer."""
    layers = kan_layers(model, opts.check())
    rows, elements, info = names("in_", layers[0].area.shape[0]), [], {"layers": []}
    coefficients, wire_names = [], []
    for L in layers:
        d_in, d_out, k_n = L.area.shape
        outs = names("y_", d_out) if L is layers[-1] else names(f"l{L.index}_o", d_out)
        elements += clippers(L, rows)
        if opts.mapping == "edge":
            cells = edge_devices(L, opts)
            lines = wires(L, opts) if opts.wire_r > 0 else []
            elements += cells + lines
            wire_names += [e.name for e in lines]
        else:
            phi = [f"l{L.index}_v{i}_{k}" for i in range(d_in) for k in range(k_n)]
            cells = crossbar(L, opts, phi)
            elements += sense(L, opts, phi) + cells
        coefficients += [e.name for e in cells]
        elements += line_caps(L, opts, True) + columns(L, opts, outs)[0]
        info["layers"].append(layer_info(L, opts))
        rows = outs
    circuit = Circuit("anasim TD-KAN crossbar", tuple(elements), curves(model.layers[0].bases))
    circuit = replace(circuit, groups=groups(coefficients, wire_names))
    return _ports(circuit, layers[0].area.shape[0], rows), info


def groups(coefficients: list[str], wire_names: list[str] = ()) -> tuple:
    """Monte Carlo groups: the element realizing each coefficient, and the elements whose area
    mismatch is that of a per-edge device. They are the same elements: the per-edge device, or in
    the shared mapping the crossbar cell standing for it (a cell of conductance area / Rs carries
    area * A_k * I_k into an ideal virtual ground, so scaling the cell scales the device exactly).
    And the line segments of ``--wire-r``, which no variation of the op-amp resistors may touch."""
    names = tuple(coefficients)
    return (("coefficients", names), ("areas", names), ("wires", tuple(wire_names)))


def coefficient_index(name: str) -> tuple[int, int, int, int]:
    """(layer, i, j, k) of a coefficient element named by ``edge_devices`` or ``crossbar``."""
    layer, i, j, k = name[1:].split("_")
    return int(layer), int(i), int(j), int(k)


def lower_stages(model: TDKAN, opts: TdkanOptions) -> list[Circuit]:
    """One circuit per stage, each from nodes ``in_<i>`` to ``y_<j>``, for stage-by-stage runs.

    A layer's clippers are ideal sources: they draw no current from the previous layer's output
    and hold their rows whatever they draw. Cutting the network there and feeding one stage's
    simulated outputs to the next is therefore exact, and each run needs fewer Newton
    iterations per sample. Shared mapping: the sense TIAs' outputs are ideal sources too, so a
    second cut there leaves one small nonlinear run and one linear run per layer.
    """
    stages, cv = [], curves(model.layers[0].bases)
    for L in kan_layers(model, opts.check()):
        d_in, d_out, k_n = L.area.shape
        if opts.mapping == "edge":
            # the row tiles' partial sums meet in the difference amplifiers: a linear stage; with
            # --swing always, so that every TIA output is a stage output the runner reads
            cut = tiling(L, opts)[2] > 1 or opts.swing is not None
            cells = edge_devices(L, opts)
            lines = wires(L, opts) if opts.wire_r > 0 else []
            tiles, amps = columns(L, opts, names("y_", d_out), cut=cut)
            parts = [("all", d_in, clippers(L, names("in_", d_in)) + cells + lines + line_caps(L, opts, True) + tiles)]
            if cut:
                parts = [("tiles", d_in, parts[0][2], partials(amps))]
        else:
            cut = opts.swing is not None  # the column TIAs' outputs a stage's outputs, as above
            cells, lines = crossbar(L, opts, names("in_", d_in * k_n)), []
            sensed = clippers(L, names("in_", d_in)) + sense(L, opts, names("y_", d_in * k_n))
            summed = cells + line_caps(L, opts, False)
            tiles, amps = columns(L, opts, names("y_", d_out), cut=cut)
            parts = [
                ("sense", d_in, sensed),
                ("crossbar", d_in * k_n, summed + tiles, *([partials(amps)] if cut else [])),
            ]
        if cut:
            nodes = partials(amps)
            parts.append(("sum", len(nodes), difference_amps(amps, opts, L.k_diff, names("in_", len(nodes)))))
        for part, width, elements, *outputs in parts:
            n_out = d_in * k_n if part == "sense" else d_out
            circuit = Circuit(f"anasim TD-KAN crossbar, layer {L.index} ({part})", tuple(elements), cv)
            if part not in ("sense", "sum"):
                circuit = replace(circuit, groups=groups([e.name for e in cells], [e.name for e in lines]))
            stages.append(_ports(circuit, width, outputs[0] if outputs else names("y_", n_out)))
    return stages


def _ports(circuit: Circuit, n_in: int, outputs: list[str]) -> Circuit:
    return replace(circuit, inputs=tuple(names("in_", n_in)), outputs=tuple(outputs)).validate()
