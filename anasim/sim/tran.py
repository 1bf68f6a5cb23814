"""Transient and power: latency of one inference and static power, from the same circuit IR.

* ``sequence`` time-multiplexes samples in one ``.tran``
  (:class:`~anasim.circuit.stimulus.TimeSequence`) and reads each at the end of its window. The
  settling time of a sample is the time from its switch until every output stays within ``tol``
  of its end-of-window value. Line capacitances and op-amp poles are lowering options.
* ``static_power`` runs the DC operating point of each sample, writes every node voltage and
  source current, and sums the power delivered by all sources (V * I) over the circuit's
  primitives (op-amps expanded by their macro-model). Op-amp quiescent power is not modelled.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..circuit.ir import VCCS, VCVS, BSource, Circuit, ISource, VSource
from ..circuit.netlist import card_name, netlist, primitives
from ..circuit.stimulus import RawFile, TimeSequence, sequence_run, sweep_run
from .ngspice import SimResult, add_rusage, read_ascii_raw, read_wrdata, run_deck


def sequence(circuit: Circuit, seq: TimeSequence, work: Path, tol: float) -> SimResult:
    """Outputs at the end of each sample's window [N, out]; ``extra["settle_s"]`` [N] in seconds."""
    rusage: dict[str, float] = {}
    add_rusage(rusage, run_deck(netlist(circuit, run=sequence_run(seq, circuit.outputs, "tran.txt")), work, "tran.txt"))
    table = read_wrdata(work / "tran.txt", len(circuit.outputs))
    t, y = table[:, 0], table[:, 1:]
    n = len(seq.x)
    outs, settle = np.full((n, y.shape[1]), np.nan), np.full(n, np.nan)
    for k in range(n):
        start, end = k * seq.period + seq.rise, (k + 1) * seq.period + seq.rise
        win = (t >= start) & (t <= end + 1e-15)
        if not win.any():
            continue
        tw, yw = t[win], y[win]
        final = yw[-1]
        outs[k] = final
        off = np.nonzero(np.abs(yw - final).max(axis=1) > tol)[0]
        if len(off) == 0:
            settle[k] = 0.0
        elif off[-1] + 1 < len(tw):
            settle[k] = tw[off[-1] + 1] - start
        else:
            settle[k] = np.inf  # never settled within the window
    failed = {int(k): "transient: no output in the sample's window" for k in np.nonzero(~np.isfinite(outs).all(1))[0]}
    return SimResult(outs, failed, work, rusage=rusage, extra={"settle_s": settle})


def static_power(circuit: Circuit, x: np.ndarray, work: Path) -> np.ndarray:
    """Power delivered by all sources at each sample's operating point [N] (watts)."""
    run = replace(sweep_run(x, circuit.outputs, "op.raw"), save=RawFile("op.raw"))
    run_deck(netlist(circuit, run=run), work, "op.raw")
    raw = read_ascii_raw(work / "op.raw")

    def volt(node):
        return 0.0 if node == "0" else raw[f"v({node})".lower()]

    power = np.zeros(len(next(iter(raw.values()))))
    for e in primitives(circuit):
        if isinstance(e, VCVS | VSource) or (isinstance(e, BSource) and e.kind == "V"):
            power -= (volt(e.p) - volt(e.n)) * raw[f"i({card_name(e)})".lower()]  # current enters +
        elif isinstance(e, ISource):
            power -= (volt(e.p) - volt(e.n)) * e.dc
        elif isinstance(e, VCCS):
            power -= (volt(e.p) - volt(e.n)) * e.gain * (volt(e.cp) - volt(e.cn))
    return power[: len(x)]
