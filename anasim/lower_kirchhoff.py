"""KirchhoffNet -> RC circuits -> ngspice transients (the KirchhoffNet branch of compile/simulate).

Hardware scaling of the paper's eq. 9: every capacitor is ``a`` farads (C_sw * a) and a layer
lasts ``T * a`` seconds; branch currents are g(...) amperes, so the circuit's v(t_hw) equals the
model's v(t_hw / a). Each branch is one behavioural current source between its nodes; inputs are
the capacitors' initial voltages. Layers whose topology differs are realized as one transient
per layer with the state carried over (the end voltages become the next layer's initial
conditions; new nodes start at 0 V): it is exact, keeps each deck a plain RC circuit, and avoids
ideal switches whose breakpoints would cost the solver accuracy. Many samples share one deck:
each sample is its own copy of the network (nodes ``s<b>_n<j>``), independent of the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .errors import AnasimError, SimError
from .ir import BSource, Capacitor, Circuit, num
from .kirchhoff import KirchhoffLayer, KirchhoffNet, carry_state
from .netlist import netlist
from .transient import _run

# ngspice's relative tolerance: 1e-6 keeps the circuit within about 1e-4 of the output range of
# the torchdiffeq solution on a 10,000-branch digits net; 1e-7 costs 2x the time steps there.
RELTOL = 1e-6
_ABORT = re.compile(r"Timestep too small; time = ([-+0-9.eE]+)")
_G = {
    "relu": "max({a}*({vs}-{vd})+{b},0)",
    "tanh": "tanh({a}*({vs}-{vd})+{b})",
    "relu3": "max({a}*{vs}+{b}*{vd}+{c},0)",
    "tanh3": "tanh({a}*{vs}+{b}*{vd}+{c})",
    "shifted": "{b}*max({vs}-{vd}-{a},0)",
}


def _node(b: int, j: int) -> str:
    return "0" if j == 0 else f"s{b}_n{j}"


def lower_layer(layer: KirchhoffLayer, v0: np.ndarray, a: float) -> Circuit:
    """One layer for a batch: v0 [B, N+1] initial voltages (column 0 = ground)."""
    if not a > 0:
        raise AnasimError(f"hardware scale a = {a!r} must be positive (seconds and farads per unit)")
    theta = layer.theta.detach().double().numpy()
    if not np.all(np.isfinite(theta)):
        raise AnasimError("KirchhoffNet parameters hold NaN or inf; the model cannot be compiled")
    src, dst = layer.src.numpy(), layer.dst.numpy()
    circuit = Circuit(title="anasim KirchhoffNet layer")
    for b in range(len(v0)):
        for j in range(1, layer.num_nodes + 1):
            cap = layer.capacitance * a
            circuit.elements.append(Capacitor(f"s{b}_n{j}", _node(b, j), "0", cap, ic=float(v0[b, j])))
        for e, (s, d) in enumerate(zip(src, dst)):
            vs = "0" if s == 0 else f"V({_node(b, s)})"
            vd = "0" if d == 0 else f"V({_node(b, d)})"
            names = dict(zip("abc", (num(t) for t in theta[e])))
            expr = _G[layer.branch].format(vs=vs, vd=vd, **names)
            circuit.elements.append(BSource(f"e{b}_{e}", _node(b, s), _node(b, d), "I", expr))
    circuit.outputs = [_node(b, j) for b in range(len(v0)) for j in range(1, layer.num_nodes + 1)]
    return circuit.validate()


def layer_deck(
    layer: KirchhoffLayer,
    v0: np.ndarray,
    a: float,
    period: float,
    data_file: str,
    points: int = 50,
    reltol: float = RELTOL,
) -> str:
    """A standalone deck: the layer from initial voltages v0 [B, N+1] for period*a seconds,
    writing every node voltage over time to ``data_file``."""
    circuit = lower_layer(layer, v0, a)
    stop = period * a
    control = [
        f"option reltol={num(reltol)} abstol=1e-15 vntol=1e-10 trtol=1",
        f"tran {num(stop / points)} {num(stop)} 0 {num(stop / points)} uic",  # initial conditions from C ic=
        "set wr_singlescale",
        "set wr_vecnames",
        "option numdgt=12",
        f"wrdata {data_file} {' '.join(circuit.outputs)}",
        "quit",
    ]
    return netlist(circuit, control=control)


def run_layer(
    layer: KirchhoffLayer, v0: np.ndarray, a: float, period: float, work: Path, reltol: float = RELTOL
) -> np.ndarray:
    """Node voltages [B, N] at the end of one layer's transient; a SimError naming the time point
    when ngspice stops early (it still writes the data up to there, so the file alone is no proof)."""
    stop = period * a
    log = _run(layer_deck(layer, v0, a, period, "out.txt", reltol=reltol), work, "out.txt")
    table = np.loadtxt(work / "out.txt", skiprows=1, ndmin=2)
    end = table[-1, 0] if len(table) else 0.0
    if end < stop * (1 - 1e-6) or not np.isfinite(table[-1]).all():
        hit = _ABORT.search(log)
        t = float(hit.group(1)) if hit else end
        why = "time step too small" if hit else "transient stopped early"
        raise SimError(f"ngspice: {why} at t = {t:.4g} s ({t / stop:.3g} of the layer's {stop:.4g} s)", work, log)
    return table[-1, 1:].reshape(len(v0), layer.num_nodes)


def simulate_kirchhoff(
    net: KirchhoffNet, x: np.ndarray, a: float, work: Path, reltol: float = RELTOL
) -> tuple[np.ndarray, dict[int, str]]:
    """Node voltages [B, N+1] at t = D*T*a for inputs x [B, in]: one transient per layer, state
    carried. A deck that fails is re-run sample by sample, so one sample the solver cannot follow
    costs only its own row (NaN); returns the voltages and {sample: why} for those rows."""
    v = net.initial_state(torch.as_tensor(x, dtype=torch.float64)).numpy()
    failed: dict[int, str] = {}
    for n, layer in enumerate(net.layers):
        v = carry_state(torch.from_numpy(v), layer.num_nodes).numpy()  # the reference's rule
        alive = np.array([b for b in range(len(v)) if b not in failed], dtype=int)
        if len(alive) == 0:
            break
        try:
            v[alive, 1:] = run_layer(layer, v[alive], a, net.period, work / f"layer{n}", reltol)
        except SimError:
            for b in alive:
                try:
                    v[b, 1:] = run_layer(layer, v[b : b + 1], a, net.period, work / f"layer{n}_sample{b}", reltol)[0]
                except SimError as exc:
                    failed[int(b)] = f"layer {n}: {exc.args[0]} (run directory: {exc.run_dir})"
        v[list(failed)] = np.nan
    return v, failed
