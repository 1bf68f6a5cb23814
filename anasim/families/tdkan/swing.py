"""``--swing`` fitting: what the nominal TD-KAN circuit's op-amps put out on the training data.

The compiler scales each layer so that its op-amp outputs stay within the swing
(:func:`~anasim.families.tdkan.lower.swing_scales`); this module measures what it scales: the
largest |TIA output|, |difference-amplifier output| and |sense-TIA output| (shared mapping) of
every layer, computed in numpy from the lowered hardware values (areas, Rf, column signs, bias
currents) the way the circuit adds them with ideal op-amps and ideal wires, each layer fed the
previous one's circuit outputs. No ngspice: the fit is a function of the model, the options and
the samples, and the runner checks the held-out samples against the swing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .lower import kan_layers
from .model import TDKAN, map_input
from .options import TdkanOptions
from .physical import tiling

FIT_SAMPLES = 2000  # training samples the fit sees at most (the first ones of the split)


def node_voltages(model: TDKAN, opts: TdkanOptions, z: torch.Tensor) -> list[dict[str, np.ndarray]]:
    """Per layer of the nominal circuit (no swing scaling) for standardized inputs ``z`` [N, in]:
    ``tia`` [N, tiles, out, 2] the (+, -) TIA outputs of every row tile, ``out`` [N, out] the
    difference amplifiers' outputs and ``sense`` [N, in, K] the sense-TIA outputs (shared
    mapping; empty for edge). Volts, ideal op-amps and wires."""
    nominal = replace(opts, swing=None, swing_peaks=None)
    x = model.row_drive(z.double()).detach()
    layers = []
    for L in kan_layers(model, nominal):
        u = map_input(x, L.v_range, L.mapping).numpy()  # [N, in] row voltages
        cur = np.stack([d.current(u) * d.amps_per_unit for d in L.bases], axis=-1)  # [N, in, K] A per unit area
        pos = (L.theta > 0) == (L.s >= 0)[None, :, None]  # [in, out, K] device on the + column
        per, _, n_b = tiling(L, nominal)
        ib = L.c / L.rf  # bias current into tile 0's + column (negative: its - column)
        tia = np.zeros((len(u), n_b, L.area.shape[1], 2))
        for b in range(n_b):
            rows = slice(b * per, (b + 1) * per)
            ip = np.einsum("nik,ijk->nj", cur[:, rows], L.area[rows] * pos[rows])
            im = np.einsum("nik,ijk->nj", cur[:, rows], L.area[rows] * ~pos[rows])
            if nominal.mapping == "shared":  # cells carry -area * I (the sense TIAs invert) into swapped columns
                ip, im = -im, -ip
            if b == 0:
                ip, im = ip + np.maximum(ib, 0), im + np.maximum(-ib, 0)
            tia[:, b, :, 0], tia[:, b, :, 1] = -L.rf * ip, -L.rf * im  # the column current leaves through Rf
        out = (tia[..., 1] - tia[..., 0]).sum(axis=1)  # sum V(an) - sum V(ap)
        sense = -L.r_sense * cur if nominal.mapping == "shared" else np.zeros((len(u), 0, 0))
        layers.append({"tia": tia, "out": out, "sense": sense})
        x = torch.from_numpy(out)
    return layers


def peaks(model: TDKAN, opts: TdkanOptions, z: torch.Tensor) -> tuple[tuple[float, float, float], ...]:
    """What ``--swing`` is fitted to: per layer, the largest |TIA|, |difference-amplifier| and
    |sense-TIA| output over ``z`` (see :func:`node_voltages`)."""
    top = lambda a: float(np.abs(a).max()) if a.size else 0.0  # noqa: E731
    return tuple((top(v["tia"]), top(v["out"]), top(v["sense"])) for v in node_voltages(model, opts, z))


def fit(model: TDKAN, opts: TdkanOptions, train_inputs) -> TdkanOptions:
    """``opts`` with ``swing_peaks`` measured on the first :data:`FIT_SAMPLES` of the training
    inputs ``train_inputs()`` loads (not called without ``--swing`` or when the peaks are given)."""
    if opts.swing is None or opts.swing_peaks is not None:
        return opts
    return replace(opts, swing_peaks=peaks(model, opts, train_inputs()[:FIT_SAMPLES])).check()
