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

from ...circuit.blocks import column, neuron
from ...circuit.expr import Neg, Num, V, add, call, div
from ...circuit.ir import BSource, Circuit, Curve, Device, ISource, OpAmp, Resistor
from ...errors import AnasimError
from .model import DeviceMLP
from .options import MlpOptions


def lower(model: DeviceMLP, opts: MlpOptions) -> tuple[Circuit, dict]:
    """The MLP as one circuit from nodes ``in_<i>`` (standardized inputs, volts) to ``y_<j>``."""
    opts = opts.check()
    rows = inputs = [f"in_{i}" for i in range(model.linears[0].in_features)]
    elements, info, weights, devices = [], {"layers": []}, [], []
    for li in range(len(model.linears)):
        last = li == len(model.linears) - 1
        outs = [f"y_{j}" if last else f"l{li}_a{j}" for j in range(model.linears[li].out_features)]
        els, w, d, layer = _layer(model, li, rows, outs, opts)
        elements, weights, devices = elements + els, weights + w, devices + d
        info["layers"].append(layer)
        rows = outs
    return _circuit(model, "anasim device-MLP crossbar", elements, inputs, rows, weights, devices).validate(), info


def lower_stages(model: DeviceMLP, opts: MlpOptions) -> list[Circuit]:
    """One circuit per layer, each from nodes ``in_<i>`` to ``y_<j>``, for stage-by-stage runs:
    a layer's outputs are the activation TIAs' (or the last difference amplifiers') outputs,
    ideal sources that the next crossbar's resistors load without changing them, so feeding one
    stage's simulated outputs to the next is exact. Each stage's rows are then inputs, and the
    runner splits its columns into independent parts."""
    opts = opts.check()
    stages = []
    for li, lin in enumerate(model.linears):
        rows, outs = [f"in_{i}" for i in range(lin.in_features)], [f"y_{j}" for j in range(lin.out_features)]
        els, w, d, _ = _layer(model, li, rows, outs, opts)
        stages.append(_circuit(model, f"anasim device-MLP crossbar, layer {li}", els, rows, outs, w, d).validate())
    return stages


def _circuit(model: DeviceMLP, title: str, elements, rows, outs, weights, devices) -> Circuit:
    dev = model.act.device_model
    return Circuit(
        title,
        tuple(elements),
        (Curve(dev.name, dev.spice_current("x"), dev.amps_per_unit, dev.pwl_table()),) if dev is not None else (),
        inputs=tuple(rows),
        outputs=tuple(outs),
        # Monte Carlo: each weight is one resistor; the devices are the activations
        groups=(("coefficients", tuple(weights)), ("areas", tuple(devices))),
    )


def _layer(model: DeviceMLP, li: int, rows: list[str], outs: list[str], opts: MlpOptions):
    """Layer ``li`` from ``rows`` to ``outs`` (after the activation, unless it is the last):
    elements, weight resistor names, activation device names, layer info."""
    dev, lin = model.act.device_model, model.linears[li]
    last = li == len(model.linears) - 1
    g_max = 1.0 / opts.r_diff  # the largest crossbar conductance equals the diff-amp resistors'
    w = lin.weight.detach().double().numpy()  # [out, in]
    b = lin.bias.detach().double().numpy()
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise AnasimError(f"layer {li}: weights hold NaN or inf; the model cannot be compiled")
    rf = float(np.abs(w).max() / g_max) if np.abs(w).max() > 0 else 1.0 / g_max
    g = np.abs(w) / rf  # [out, in] siemens
    lin_out = outs if last else [f"l{li}_o{j}" for j in range(w.shape[0])]
    elements, weights = [], []
    for j, i in zip(*np.nonzero(g)):
        # rows after the first carry -act(x): their columns swap to undo the sign
        col = column(li, j, w[j, i], 1.0, inverted=li > 0)
        elements.append(Resistor(f"w{li}_{j}_{i}", rows[i], col, 1.0 / g[j, i]))
        weights.append(elements[-1].name)
    for j, out in enumerate(lin_out):
        cp, cn = f"l{li}_c{j}p", f"l{li}_c{j}n"
        if b[j] != 0:
            elements.append(ISource(f"b{li}_{j}", "0", cp if b[j] > 0 else cn, abs(b[j]) / rf))
        elements += neuron(f"tia{li}_{j}", cp, cn, out, opts.r_diff, opts.opamp_gain, opts.gbw)
        elements.append(Resistor(f"fp{li}_{j}", cp, f"{out}_ap", rf))
        elements.append(Resistor(f"fn{li}_{j}", cn, f"{out}_an", rf))
    devices = []
    if not last:
        for j, out in enumerate(lin_out):
            elements += activation(li, j, out, outs[j], model.act.name, dev, opts)
            devices += [e.name for e in elements[-3:] if isinstance(e, Device)]
    info = {
        "inputs": w.shape[1],
        "outputs": w.shape[0],
        "resistors": int(np.count_nonzero(g)),
        "devices": 0 if last or dev is None else w.shape[0],  # activation devices
        "rf_ohm": rf,
    }
    return elements, weights, devices, info


def activation(li: int, j: int, src: str, dst: str, name: str, dev, opts: MlpOptions) -> list:
    """V(dst) = -act(V(src)): a device into a TIA, or a behavioural source for relu/sigmoid."""
    if dev is None:
        # -relu(v) or -sigmoid(v) = -1 / (1 + exp(-v))
        v = V(src)
        expr = Neg(call("max", v, Num(0))) if name == "relu" else div(Neg(Num(1)), add(Num(1), call("exp", Neg(v))))
        return [BSource(f"act{li}_{j}", dst, "0", "V", expr)]
    sense = f"l{li}_s{j}"
    return [
        Device(f"act{li}_{j}", src, sense, dev.name),
        OpAmp(f"s{li}_{j}", "0", sense, dst, opts.opamp_gain, gbw=opts.gbw),
        Resistor(f"s{li}_{j}", sense, dst, 1.0 / dev.amps_per_unit),
    ]
