"""KirchhoffNet lowering: one layer -> an RC circuit; a network and its inputs -> a Plan.

Hardware scaling of the paper's eq. 9: every capacitor is ``a`` farads (C_sw * a) and a layer
lasts ``T * a`` seconds; branch currents are g(...) amperes, so the circuit's v(t_hw) equals the
model's v(t_hw / a). Each branch is one typed :class:`Branch` between its nodes (law and theta
from ``BRANCHES``); inputs are initial node voltages. :func:`plan` gives the driver a circuit
per layer, run one transient each with the state carried (:mod:`anasim.sim.ivp`, whose
``replicate`` makes one independent copy per sample, nodes ``s<b>_n<j>``, of the *same*
circuit, so a perturbed chip stays one chip across its samples).
"""

from __future__ import annotations

import numpy as np
import torch

from ...circuit.ir import Branch, Capacitor, Circuit
from ...circuit.stimulus import Run, Tolerances
from ...errors import AnasimError
from ...sim.ivp import copy_node, initial_value_run, replicate
from ...sim.plan import Carry, Plan, SimSettings, Stage
from .model import BRANCHES, KirchhoffLayer, KirchhoffNet

__all__ = ["copy_node", "layer_run", "lower_layer", "plan", "replicate", "tran_options"]

# The transients' relative tolerance and largest step (T / POINTS). Both engines bound each step's
# truncation error by reltol, but a KirchhoffNet layer amplifies the errors of its early steps
# (ngspice's error on the Friedman example grows 20x from t = 0.4 T to T): at reltol 1e-6 and
# steps up to T/50 ngspice ended 1.3e-5 of the output range from torchdiffeq (rtol 1e-12) and
# VACASK 2.8e-6, so the engines differed by 1.0e-5 and neither was as close as the 1e-6 at which
# they are compared. At 1e-8 and T/200 (and ngspice's trtol scaled, sim/ngspice/writer.py) both
# are within 3.5e-7 on the Friedman examples. Tried and dropped: 1e-8 with T/50 left the 3-layer
# example's engines 9.6e-7 apart; T/1000 at 1e-6 cost 11x ngspice's time on a 20-node net whose
# own steps were few (fc, 760 branches), against 3.5x for 1e-8 with T/200 there (ngspice's trtol
# unscaled). What it costs: ngspice ~10x its CPU seconds on the Friedman example (20 samples),
# 5.7x on the 3-layer one, 8.5x the time points on the CI's 200 samples; VACASK 5-6x (issue 31).
RELTOL = 1e-8
POINTS = 200
# ngspice's default charge tolerance (coulombs) and the hardware scale a it suits. Capacitor
# charges are C a V, so below a = 1 ns they shrink under 1e-14 C and ngspice's charge-based
# step control stops limiting the error (a = 1e-15: 10x the error of a = 1e-9 on a Friedman
# net); chgtol scaled with a keeps every a as accurate as 1 ns. Branch currents are g(...)
# amperes whatever a is, so abstol needs no scaling.
CHGTOL, A_REF = 1e-14, 1e-9
# Copies of the network in one deck share the finest time step any of them needs, so a deck of
# many copies takes more steps per sample: measured on a 3,872-branch digits net, 1 / 5 / 20
# copies took 1,106 / 1,801 / 2,578 Newton iterations. Small nets still gain from sharing a run.
KN_CHUNK, KN_DECK_BRANCHES = 20, 2000


def node(j: int) -> str:
    return "0" if j == 0 else f"n{j}"


def lower_layer(layer: KirchhoffLayer, a: float) -> Circuit:
    """One copy of one layer: nodes n1..nN with a capacitor of ``C a`` farads each, a branch per edge."""
    if not a > 0:
        raise AnasimError(f"hardware scale a = {a!r} must be positive (seconds and farads per unit)")
    theta = layer.theta.detach().double().numpy()
    if not np.all(np.isfinite(theta)):
        raise AnasimError("KirchhoffNet parameters hold NaN or inf; the model cannot be compiled")
    law = BRANCHES[layer.branch][2]
    caps = [Capacitor(node(j), node(j), "0", layer.capacitance * a) for j in range(1, layer.num_nodes + 1)]
    branches = [
        Branch(f"e{e}", node(s), node(d), law, tuple(float(t) for t in theta[e]))
        for e, (s, d) in enumerate(zip(layer.src.tolist(), layer.dst.tolist()))
    ]
    outputs = tuple(node(j) for j in range(1, layer.num_nodes + 1))
    return Circuit("anasim KirchhoffNet layer", tuple(caps + branches), outputs=outputs).validate()


def tran_options(a: float, reltol: float = RELTOL) -> Tolerances:
    """The tolerances of a layer's transient at hardware scale ``a``: chgtol falls with a below
    1 ns (and is left at the engine's default above, so 1 ns decks are unchanged)."""
    chgtol = float(f"{CHGTOL * a / A_REF:.12g}") if a < A_REF else None  # 1e-20, not 1.0000000000000001e-20
    return Tolerances(reltol=reltol, abstol=1e-15, vntol=1e-10, trtol=1.0, chgtol=chgtol)


def layer_run(circuit: Circuit, v0: np.ndarray, stop: float, reltol: float = RELTOL, *, a: float, points=POINTS) -> Run:
    """A transient of ``stop`` seconds from node voltages v0 [copies, N+1] (column 0 = ground)
    at hardware scale ``a``, saving every node voltage over time."""
    return initial_value_run(circuit, v0, stop, stop / points, tran_options(a, reltol))


def chunk_size(model: KirchhoffNet) -> int:
    """Samples per deck: up to KN_CHUNK, with at most about KN_DECK_BRANCHES branches per deck."""
    branches = max(len(layer.src) for layer in model.layers)
    return max(1, min(KN_CHUNK, KN_DECK_BRANCHES // branches))


def plan(model: KirchhoffNet, z: torch.Tensor, opts, s: SimSettings | None = None) -> Plan:
    """One transient per layer (``anasim.sim.ivp``): each layer lowered once (key ``layer<n>``),
    the inputs as the first layer's initial node voltages [N, nodes+1], ``chunk_size`` samples
    per deck, the outputs read at t = D*T*a."""
    a = opts.scale_a
    stages = tuple(Stage(f"layer{n}", lower_layer(layer, a)) for n, layer in enumerate(model.layers))
    with torch.no_grad():
        x = model.initial_state(z.double()).numpy()
    stop = model.period * a
    carry = Carry(stop, stop / POINTS, tran_options(a, opts.reltol), chunk_size(model), tuple(model.outputs))
    extra = {"scale_a": opts.scale_a, "end_time_s": len(model.layers) * model.period * opts.scale_a}
    return Plan("ivp", x, len(model.outputs), stages, carry=carry, extra=extra)
