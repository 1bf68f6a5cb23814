"""KirchhoffNet benchmark: the paper's speed claim in simulation, and circuit vs torchdiffeq throughput.

For FC networks of growing size (repeat 2, eq. 10, seeded parameters) at one hardware scale a,
the circuit is simulated in ngspice and read at t = D*T*a; its outputs are compared with the
torchdiffeq solution. The forward time is D*T*a whatever the parameter count; the simulation
(wall) time, by contrast, grows with size. Then one size at several a. Both sides run on one
core (ngspice decks cut as ``anasim simulate`` cuts them, torch with one thread), so the wall
times give the circuit-vs-torchdiffeq throughput ratio of one run. Last, the cost of a training
step by backpropagation through the solver and by the adjoint method. Writes results/kirchhoff.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from anasim.families import count_params
from anasim.families.kirchhoff import KirchhoffOptions
from anasim.families.kirchhoff.lower import plan
from anasim.families.kirchhoff.model import KirchhoffNet
from anasim.families.kirchhoff.topology import fc
from anasim.sim import ivp

OUT = Path(__file__).parent / "results"


def run(nodes, a, samples=20):
    torch.manual_seed(0)
    net = KirchhoffNet([{"nodes": nodes, "edges": fc(nodes, 2), "branch": "relu"}], 5, [nodes], rtol=1e-9, atol=1e-11)
    net = net.double()
    with torch.no_grad():
        net.layers[0].theta.mul_(2.0 / nodes)  # keep node currents of order 1 as the fan-in grows
    x = torch.rand(samples, 5, dtype=torch.float64)
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = net.trajectory(x)[-1][1][-1].numpy()
    t_torch = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = plan(net, x, KirchhoffOptions(scale_a=a))
    work, step, stages = Path(tempfile.mkdtemp(prefix="anasim-kn-")), p.carry.chunk, [st.circuit for st in p.stages]
    v = np.concatenate(  # decks as `simulate` cuts them, one after another
        [ivp.states(stages, p.x[s : s + step], p.carry, work / f"c{s}")[0] for s in range(0, samples, step)]
    )
    t_spice = time.perf_counter() - t0
    row = {
        "nodes": nodes,
        "params": count_params(net),
        "scale_a": a,
        "forward_time_s": net.period * a,
        "samples": samples,
        "max_error_rel_range": float(np.abs(v - ref).max() / np.ptp(ref)),
        "ngspice_wall_s": round(t_spice, 3),
        "torchdiffeq_wall_s": round(t_torch, 3),
        "circuit_vs_torchdiffeq_slowdown": round(t_spice / t_torch, 1),
    }
    print(
        f"{nodes:3d} nodes, {row['params']:6,d} params, a = {a:g}: forward time {row['forward_time_s']:.0e} s, "
        f"error {row['max_error_rel_range']:.1e} of range; wall: ngspice {t_spice:.2f} s, "
        f"torchdiffeq {t_torch:.2f} s ({row['circuit_vs_torchdiffeq_slowdown']}x) for {samples} samples",
        flush=True,
    )
    return row


def adjoint_cost(nodes=12, batch=64, repeats=5):
    """One training step (forward + backward) by backpropagation through the solver and by the
    adjoint method, at the training tolerance 1e-5: wall time and the solver's function calls."""
    out = {"nodes": nodes, "batch": batch}
    x = torch.rand(batch, 5)
    for adjoint in (False, True):
        torch.manual_seed(0)
        net = KirchhoffNet([{"nodes": nodes, "edges": fc(nodes, 2)}], 5, [nodes], rtol=1e-5, atol=1e-5, adjoint=adjoint)
        calls = [0]
        net.layers[0].register_forward_hook(lambda *_, c=calls: c.__setitem__(0, c[0] + 1))
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x).pow(2).mean().backward()
        key = "adjoint" if adjoint else "backprop"
        out[key] = {"step_s": round((time.perf_counter() - t0) / repeats, 4), "ode_calls": calls[0] // repeats}
    print(
        f"training step, {nodes} nodes, batch {batch}: backprop {out['backprop']['step_s'] * 1e3:.0f} ms "
        f"({out['backprop']['ode_calls']} ODE calls), adjoint {out['adjoint']['step_s'] * 1e3:.0f} ms "
        f"({out['adjoint']['ode_calls']} calls)",
        flush=True,
    )
    return out


def main():
    OUT.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    rows = [run(n, 1e-9) for n in (7, 12, 20, 40)]
    rows += [run(12, a) for a in (1e-6, 1e-12)]
    result = {"speed_claim": rows, "adjoint": adjoint_cost()}
    (OUT / "kirchhoff.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
