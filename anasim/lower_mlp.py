"""Lowering of device-activation MLPs: model -> circuit IR (the MLP branch of ``compile``).

Each Linear layer is a resistive differential crossbar: a resistor of conductance
``|W_ji| / Rf`` from row i to column j+ (W > 0) or j- (W < 0), columns at the virtual grounds of
the same TIA pair and difference amplifier as the TD-KAN neurons, so ``out_j = sum W_ji v_i + b_j``
with the bias as a current into a column. The activation is a device between ``out_j`` and the
virtual ground of a TIA of feedback ``1 / A_per_unit``, whose output is ``-I(out_j)`` in the
device's unit; ReLU and sigmoid are behavioural sources with the same sign convention. The next
crossbar swaps its columns to undo that sign.
"""

from __future__ import annotations

import numpy as np

from .errors import AnasimError
from .ir import BSource, Circuit, Func, Instance, ISource, Resistor, num
from .lower import HwOptions, _column, _neuron_subckt, func_name, opamp_subckt
from .models import DeviceMLP


def lower_mlp(model: DeviceMLP, opts: HwOptions | None = None) -> tuple[Circuit, dict]:
    """The MLP as one circuit from nodes ``in_<i>`` (standardized inputs, volts) to ``y_<j>``."""
    opts = (opts or HwOptions()).check()
    act = model.act
    dev = act.device_model
    circuit = Circuit(
        title="anasim device-MLP crossbar",
        funcs=[Func(func_name(dev), dev.spice_current("x"))] if dev is not None else [],
        subckts=[opamp_subckt(opts.opamp_gain, opts.gbw), _neuron_subckt(opts)],
    )
    rows = [f"in_{i}" for i in range(model.linears[0].in_features)]
    info = {"layers": []}
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
            col = _column(li, j, w[j, i], 1.0, inverted=li > 0)
            circuit.elements.append(Resistor(f"w{li}_{j}_{i}", rows[i], col, 1.0 / g[j, i]))
        for j, out in enumerate(outs):
            cp, cn = f"l{li}_c{j}p", f"l{li}_c{j}n"
            if b[j] != 0:
                circuit.elements.append(ISource(f"b{li}_{j}", "0", cp if b[j] > 0 else cn, abs(b[j]) / rf))
            circuit.elements.append(Instance(f"tia{li}_{j}", "neuron", [cp, cn, out, f"{out}_ap", f"{out}_an"]))
            circuit.elements.append(Resistor(f"fp{li}_{j}", cp, f"{out}_ap", rf))
            circuit.elements.append(Resistor(f"fn{li}_{j}", cn, f"{out}_an", rf))
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
            _activation(circuit, li, j, out, rows[j], act.name, dev, opts)
    circuit.outputs = [f"y_{j}" for j in range(model.linears[-1].out_features)]
    return circuit.validate(), info


def _activation(circuit, li, j, src, dst, name, dev, opts) -> None:
    """V(dst) = -act(V(src)): a device into a TIA, or a behavioural source for relu/sigmoid."""
    if dev is None:
        expr = f"-max(V({src}),0)" if name == "relu" else f"-1/(1+exp(-V({src})))"
        circuit.elements.append(BSource(f"act{li}_{j}", dst, "0", "V", expr))
        return
    sense = f"l{li}_s{j}"
    circuit.elements.append(
        BSource(f"act{li}_{j}", src, sense, "I", f"{num(dev.amps_per_unit)}*{func_name(dev)}(V({src},{sense}))")
    )
    circuit.elements.append(Instance(f"s{li}_{j}", "opamp", ["0", sense, dst]))
    circuit.elements.append(Resistor(f"s{li}_{j}", sense, dst, 1.0 / dev.amps_per_unit))
