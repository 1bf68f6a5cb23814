"""Device-MLP lowering: model -> circuit IR (the MLP part of ``compile``).

Each Linear layer is a resistive differential crossbar: a resistor of conductance ``|W_ji| / Rf``
from row i to column j+ (W > 0) or j- (W < 0), columns at the virtual grounds of the same TIA
pair and difference amplifier as the TD-KAN neurons, so ``out_j = sum W_ji v_i + b_j`` with the
bias as a current into a column. The activation is a device between ``out_j`` and the virtual
ground of a TIA of feedback ``1 / A_per_unit``, whose output is ``-I(out_j)`` in the device's
unit; ReLU and sigmoid are behavioural sources with the same sign convention. The next crossbar
swaps its columns to undo that sign.
"""

from __future__ import annotations

import numpy as np

from ...circuit.blocks import neuron
from ...circuit.ir import BSource, Circuit, Curve, Device, ISource, OpAmp, Resistor
from ...errors import AnasimError
from ..tdkan.lower import column
from .model import DeviceMLP
from .options import MlpOptions


def lower(model: DeviceMLP, opts: MlpOptions) -> tuple[Circuit, dict]:
    """The MLP as one circuit from nodes ``in_<i>`` (standardized inputs, volts) to ``y_<j>``."""
    opts = opts.check()
    dev = model.act.device_model
    rows = [f"in_{i}" for i in range(model.linears[0].in_features)]
    elements, info, weights, devices = [], {"layers": []}, [], []
    g_max = 1.0 / opts.r_diff  # the largest crossbar conductance equals the diff-amp resistors'
    for li, lin in enumerate(model.linears):
        w = lin.weight.detach().double().numpy()  # [out, in]
        b = lin.bias.detach().double().numpy()
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise AnasimError(f"layer {li}: weights hold NaN or inf; the model cannot be compiled")
        last = li == len(model.linears) - 1
        rf = float(np.abs(w).max() / g_max) if np.abs(w).max() > 0 else 1.0 / g_max
        g = np.abs(w) / rf  # [out, in] siemens
        outs = [f"y_{j}" if last else f"l{li}_o{j}" for j in range(w.shape[0])]
        for j, i in zip(*np.nonzero(g)):
            # rows after the first carry -act(x): their columns swap to undo the sign
            col = column(li, j, w[j, i], 1.0, inverted=li > 0)
            elements.append(Resistor(f"w{li}_{j}_{i}", rows[i], col, 1.0 / g[j, i]))
            weights.append(elements[-1].name)
        for j, out in enumerate(outs):
            cp, cn = f"l{li}_c{j}p", f"l{li}_c{j}n"
            if b[j] != 0:
                elements.append(ISource(f"b{li}_{j}", "0", cp if b[j] > 0 else cn, abs(b[j]) / rf))
            elements += neuron(f"tia{li}_{j}", cp, cn, out, opts.r_diff, opts.opamp_gain, opts.gbw)
            elements.append(Resistor(f"fp{li}_{j}", cp, f"{out}_ap", rf))
            elements.append(Resistor(f"fn{li}_{j}", cn, f"{out}_an", rf))
        info["layers"].append(
            {
                "inputs": w.shape[1],
                "outputs": w.shape[0],
                "resistors": int(np.count_nonzero(g)),
                "devices": 0 if last or dev is None else w.shape[0],  # activation devices
                "rf_ohm": rf,
            }
        )
        if last:
            break
        rows = [f"l{li}_a{j}" for j in range(len(outs))]
        for j, out in enumerate(outs):
            elements += activation(li, j, out, rows[j], model.act.name, dev, opts)
            devices += [e.name for e in elements[-3:] if isinstance(e, Device)]
    circuit = Circuit(
        "anasim device-MLP crossbar",
        tuple(elements),
        (Curve(dev.name, dev.spice_current("x"), dev.amps_per_unit, dev.pwl_table()),) if dev is not None else (),
        inputs=tuple(f"in_{i}" for i in range(model.linears[0].in_features)),
        outputs=tuple(f"y_{j}" for j in range(model.linears[-1].out_features)),
        # Monte Carlo: each weight is one resistor; the devices are the activations
        groups=(("coefficients", tuple(weights)), ("areas", tuple(devices))),
    )
    return circuit.validate(), info


def activation(li: int, j: int, src: str, dst: str, name: str, dev, opts: MlpOptions) -> list:
    """V(dst) = -act(V(src)): a device into a TIA, or a behavioural source for relu/sigmoid."""
    if dev is None:
        expr = f"-max(V({src}),0)" if name == "relu" else f"-1/(1+exp(-V({src})))"
        return [BSource(f"act{li}_{j}", dst, "0", "V", expr)]
    sense = f"l{li}_s{j}"
    return [
        Device(f"act{li}_{j}", src, sense, dev.name),
        OpAmp(f"s{li}_{j}", "0", sense, dst, opts.opamp_gain, gbw=opts.gbw),
        Resistor(f"s{li}_{j}", sense, dst, 1.0 / dev.amps_per_unit),
    ]
