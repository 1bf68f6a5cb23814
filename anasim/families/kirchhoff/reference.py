"""KirchhoffNet's torchdiffeq reference, and trajectories of both sides for the report.

The circuit side runs through the one driver (:func:`anasim.families.kirchhoff.lower.plan`,
then :mod:`anasim.sim.ivp`: one transient per layer, state carried); here are the reference it
is compared with (solved tightly, a batch the solver gives up on re-solved sample by sample)
and, for the report's plot, node voltages over the first layer from the engine and from torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...sim.engine import get_engine
from .lower import layer_run, lower_layer, replicate
from .model import KirchhoffNet

REF_TOL = (1e-9, 1e-11)  # torchdiffeq rtol, atol for the reference


def reference(model: KirchhoffNet, z: torch.Tensor):
    """torchdiffeq outputs [B, out] in float64, solved tightly; a batch the solver gives up on is
    re-solved sample by sample so that only the diverging samples are lost (NaN rows)."""
    saved = model.rtol, model.atol
    model.rtol, model.atol = REF_TOL
    z = z.double()
    try:
        with torch.no_grad():
            try:
                return model(z).numpy(), {}
            except (AssertionError, RuntimeError):  # torchdiffeq: "underflow in dt", non-finite state
                pass
            ref, failed = np.full((len(z), len(model.outputs)), np.nan), {}
            for b in range(len(z)):
                try:
                    ref[b] = model(z[b : b + 1]).numpy()[0]
                except (AssertionError, RuntimeError) as exc:
                    failed[b] = f"torchdiffeq reference: the solver gave up ({exc})"
            return ref, failed
    finally:
        model.rtol, model.atol = saved


def trajectories(model: KirchhoffNet, z: torch.Tensor, opts, work: Path, points: int = 41) -> dict:
    """Node voltages over the first layer for a few samples, for the report's trajectory plot:
    ngspice at its own time points (``traj_t_spice`` [T] in model time units, ``traj_v_spice``
    [T, B, N]) and torchdiffeq at ``points`` even times (``traj_t_ref``, ``traj_v_ref`` [S, B, N])."""
    layer, a = model.layers[0], opts.scale_a
    v0 = model.initial_state(z.double())
    stop = model.period * a
    circuit = replicate(lower_layer(layer, a), len(v0))
    vec = get_engine().run(circuit, layer_run(circuit, v0.numpy(), stop, opts.reltol, a=a), work)
    table = np.column_stack([vec.scale, vec.table(circuit.outputs)])
    saved = model.rtol, model.atol
    model.rtol, model.atol = REF_TOL
    try:
        with torch.no_grad():
            t_ref, v_ref = model.trajectory(z.double(), points)[0]
    finally:
        model.rtol, model.atol = saved
    n = layer.num_nodes
    return {
        "traj_t_spice": table[:, 0] / a,
        "traj_v_spice": table[:, 1:].reshape(len(table), len(v0), n),
        "traj_t_ref": t_ref.numpy(),
        "traj_v_ref": v_ref.numpy()[:, :, 1:],
    }
