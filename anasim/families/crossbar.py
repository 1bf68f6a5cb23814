"""Simulation, reference and compile decks shared by the crossbar families (TD-KAN, device MLP).

Inputs are node voltages ``in_<i>``, outputs ``y_<j>``. DC runs go stage by stage (when the
family can cut its network at ideal sources) or as one deck; ``tran`` time-multiplexes the
samples in one transient and adds settling time and static power; a netlist compiled earlier
can be simulated in place of the lowered circuit (included as it is, never edited).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..circuit.ir import Circuit
from ..circuit.stimulus import TimeSequence, sweep_run
from ..errors import AnasimError
from ..progress import Progress
from ..sim import batch, tran
from ..sim.engine import get_engine
from ..sim.run import SimResult
from .base import Deck, SimSettings


def reference(model, z: torch.Tensor):
    with torch.no_grad():
        return model(z.double()).numpy(), {}


def compiled_netlist(path: Path, like: Circuit) -> Circuit:
    """A circuit that includes a netlist written by ``anasim compile``, with ``like``'s ports. The
    deck and what it includes must be circuit only (the engine's ``check_included``)."""
    get_engine().check_included(path)
    return replace(like, title=f"anasim run of {Path(path).name}", elements=(), curves=(), includes=(str(path),))


def simulate(
    whole: Callable[[], Circuit],
    stages: Callable[[], list[Circuit]] | None,
    x: np.ndarray,
    x0: np.ndarray,
    n_out: int,
    s: SimSettings,
    run_dir: Path,
    peaks: bool = False,
) -> SimResult:
    """Circuit outputs [N, n_out] for input voltages ``x`` [N, in]; ``x0`` is the tran rest input.
    ``peaks``: stage-by-stage runs also return every stage's largest |output| per sample
    (:func:`anasim.sim.batch.chained`)."""
    if s.analysis == "tran":
        if s.netlist is not None:
            raise AnasimError(
                "--analysis tran builds its own circuit (line capacitances, op-amp poles): drop --netlist"
            )
        circuit = s.vary(s.lowered("whole", whole), "whole")
        seq = TimeSequence(x, x0, s.period)
        if s.whole or stages is None:
            bar = Progress(2, get_engine().name, "runs (transient, operating points)") if s.progress else None
            res = tran.sequence(circuit, seq, run_dir / "tran", s.settle_v)
            res.mode = f"one transient, samples time-multiplexed every {s.period:g} s"
            if bar is not None:
                bar.update(1)
        else:
            circuits = [s.vary(c, f"stage{i}") for i, c in enumerate(s.lowered("stages", stages))]
            jobs = s.jobs or batch.default_jobs()
            res = tran.chained(circuits, seq, run_dir / "tran", s.settle_v, jobs, progress=s.progress)
            res.mode = f"transients stage by stage in parts cut at ideal sources, samples time-multiplexed every {s.period:g} s"
            bar = Progress(1, get_engine().name, "runs (operating points)") if s.progress else None
        power = tran.static_power(circuit, x, run_dir / "power")
        if bar is not None:
            bar.update(1)
            bar.close()
        settle = res.extra.pop("settle_s")
        res.extra |= {
            "analysis": "tran",
            "settle_tolerance_v": s.settle_v,
            "settling_time_s": {"median": float(np.median(settle)), "max": float(np.max(settle))},
            "settled_within_period": bool(np.isfinite(settle).all()),
        }
        res.extra |= power_keys(power, settle)
        return res
    if s.progress:  # lowering a large per-edge network takes seconds before the first sample runs
        print(f"lowering the network into a circuit ({len(x)} samples to simulate)", file=sys.stderr, flush=True)
    if s.netlist is not None:
        if s.perturb is not None:
            raise AnasimError("Monte Carlo perturbs the lowered circuit; a compiled --netlist cannot be varied")
        ports = Circuit("ports", inputs=tuple(f"in_{i}" for i in range(x.shape[1])))
        ports = replace(ports, outputs=tuple(f"y_{j}" for j in range(n_out)))
        circuit = compiled_netlist(s.netlist, ports)
        res = batch.sweep(circuit, x, run_dir, s.jobs, s.chunk, s.progress, None, s.sample_timeout)
        res.mode = f"batched DC sweeps of {Path(s.netlist).name}"
    elif s.whole or stages is None:
        circuit = s.vary(s.lowered("whole", whole), "whole")
        res = batch.sweep(circuit, x, run_dir, s.jobs, s.chunk, s.progress, parts(s), s.sample_timeout)
        res.mode = "batched DC sweeps, whole network" + (" in one deck" if s.plain else "")
    else:
        circuits = [s.vary(c, f"stage{i}") for i, c in enumerate(s.lowered("stages", stages))]
        res = batch.layers(circuits, x, run_dir, s.jobs, s.chunk, s.progress, parts(s), peaks, s.sample_timeout)
        res.mode = "batched DC sweeps, stage by stage, cut at ideal sources" + (", plain decks" if s.plain else "")
    if s.power_samples and s.netlist is None:
        n = min(s.power_samples, len(x))
        power = tran.static_power(s.vary(s.lowered("whole", whole), "whole"), x[:n], run_dir / "power")
        res.extra |= power_keys(power, None) | {"power_samples": n}
    return res


def power_keys(power: dict, settle: np.ndarray | None) -> dict:
    """Per inference: mean static power and its split; with a transient, the median settling time
    as the latency and energy = power x latency (a DC run has no latency: None)."""
    total = power["total"]
    out = {
        "static_power_w": {"mean": float(total.mean()), "max": float(total.max())},
        "power_w": float(total.mean()),
        "power_split_w": {k: float(v.mean()) for k, v in power.items() if k != "total" and np.any(v)},
        "latency_s": None if settle is None else float(np.median(settle)),
    }
    out["energy_j"] = None if settle is None else out["power_w"] * out["latency_s"]
    return out


def parts(s: SimSettings) -> str | None:
    """Nonlinear elements per deck of the runner's fast path (the engine's tuning), or None for plain decks."""
    return None if s.plain else batch.TUNED


def compile_decks(circuit: Circuit, x: np.ndarray | None, name: str) -> list[Deck]:
    """The whole network; with input voltages ``x`` a standalone DC sweep over them (with the
    engine's sweep settings), its results called ``name``."""
    if x is None:
        return [Deck("", circuit, None)]
    tuning = get_engine().tuning
    return [Deck("", circuit, sweep_run(x, circuit.outputs, tuning.sweep, tuning.sweep_extra, name=name))]
