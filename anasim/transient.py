"""Transient and power: latency of one inference and static power, from the same circuit IR.

* ``simulate_tran`` time-multiplexes samples in one ``.tran``: sample k is applied at t = k*T
  (1 ns ramp from the previous sample; before the first, every row sits at mid-range) and read at
  the end of its window. The settling time of a sample is the time from its switch until every
  output stays within ``tol`` of its end-of-window value. Parasitic line capacitances and the
  op-amps' gain-bandwidth come from :class:`anasim.lower.HwOptions` (``line_cap``, ``gbw``).
* ``static_power`` runs the DC operating point of each sample, writes every node voltage and
  source current, and sums the power delivered by all sources (V * I), with the circuit
  flattened in Python to find each source's nodes. Op-amp quiescent power is not modelled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from .errors import SimError
from .ir import VCCS, VCVS, BSource, Circuit, Instance, ISource, VSource, num
from .runner import deck_body, ngspice_path, stimulus_deck


def tran_deck(
    body: str, x: np.ndarray, x0: np.ndarray, period: float, outputs: list[str], data_file: str, rise: float = 1e-9
) -> str:
    lines = ["* inputs: sample k is applied from t = k*T (ramp 'rise') and read at t = (k+1)*T"]
    for i in range(x.shape[1]):
        pts, prev = [f"0 {num(x0[i])}"], x0[i]
        for k, value in enumerate(x[:, i]):
            t = k * period + rise  # the first switch leaves one ramp of settled mid-range
            pts += [f"{num(t)} {num(prev)}", f"{num(t + rise)} {num(value)}"]
            prev = value
        lines.append(f"Vin{i} in_{i} 0 pwl({' '.join(pts)})")
    stop = len(x) * period + 2 * rise
    control = [
        f"tran {num(period / 200)} {num(stop)} 0 {num(period / 200)}",
        "set wr_singlescale",
        "set wr_vecnames",
        "option numdgt=12",
        f"wrdata {data_file} {' '.join(outputs)}",
        "rusage everything",
        "quit",
    ]
    return body + "\n".join([*lines, ".control", *control, ".endc", ".end"]) + "\n"


def _run(deck_text: str, work: Path, data: str, timeout: float = 3600) -> str:
    work.mkdir(parents=True, exist_ok=True)
    (work / "deck.cir").write_text(deck_text)
    (work / data).unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [ngspice_path(), "-b", "deck.cir"], cwd=work, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SimError(f"ngspice did not finish within {timeout:.0f} s", work) from None
    log = proc.stdout + proc.stderr
    (work / "ngspice.log").write_text(log)
    if not (work / data).is_file():
        raise SimError(f"ngspice failed (exit {proc.returncode})", work, log)
    return log


def simulate_tran(
    circuit: Circuit, x: np.ndarray, x0: np.ndarray, period: float, work: Path, tol: float, rise: float = 1e-9
) -> dict:
    """Outputs at the end of each sample's window [N, out] and settling times [N] (seconds)."""
    x = np.asarray(x, dtype=float)
    _run(tran_deck(deck_body(circuit), x, x0, period, circuit.outputs, "tran.txt", rise), work, "tran.txt")
    table = np.loadtxt(work / "tran.txt", skiprows=1, ndmin=2)
    t, y = table[:, 0], table[:, 1 : 1 + len(circuit.outputs)]
    outs, settle = np.full((len(x), y.shape[1]), np.nan), np.full(len(x), np.nan)
    for k in range(len(x)):
        start, end = k * period + rise, (k + 1) * period + rise
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
    return {"outputs": outs, "settle_s": settle}


def _read_ascii_raw(path: Path) -> dict[str, np.ndarray]:
    lines = path.read_text().splitlines()
    n_var = int(next(ln for ln in lines if ln.startswith("No. Variables:")).split(":")[1])
    n_pts = int(next(ln for ln in lines if ln.startswith("No. Points:")).split(":")[1])
    v0 = lines.index("Variables:") + 1
    names = [lines[v0 + i].split()[1].lower() for i in range(n_var)]
    d0 = lines.index("Values:") + 1
    values = [float(ln.split()[-1]) for ln in lines[d0:] if ln.strip()]
    data = np.array(values[: n_var * n_pts]).reshape(n_pts, n_var)
    return {name: data[:, i] for i, name in enumerate(names)}


def _flatten(circuit: Circuit):
    """(instance path, element, node mapper) for every primitive element, in ngspice's flat names."""
    subs = {sc.name: sc for sc in circuit.subckts}

    def walk(elements, path, nodemap):
        for e in elements:
            if not isinstance(e, Instance):
                yield path, e, nodemap
                continue
            inner = f"{path}x{e.name}.".lower()
            ports = {p: nodemap(n) for p, n in zip(subs[e.subckt].ports, e.nodes)}

            def inner_map(n, ports=ports, inner=inner):
                return "0" if n == "0" else ports.get(n, f"{inner}{n}".lower())

            yield from walk(subs[e.subckt].elements, inner, inner_map)

    yield from walk(circuit.elements, "", str.lower)


def static_power(circuit: Circuit, x: np.ndarray, work: Path) -> np.ndarray:
    """Power delivered by all sources at each sample's operating point [N] (watts)."""
    deck = stimulus_deck(deck_body(circuit), x, circuit.outputs, "unused.txt")
    deck = deck.replace(f"wrdata unused.txt {' '.join(circuit.outputs)}", "set filetype=ascii\nwrite op.raw all")
    _run(deck, work, "op.raw")
    raw = _read_ascii_raw(work / "op.raw")

    def volt(node):
        return 0.0 if node == "0" else raw[f"v({node})"]

    power = np.zeros(len(next(iter(raw.values()))))
    for path, e, nodemap in _flatten(circuit):
        p, n = nodemap(e.p), nodemap(e.n)
        v = volt(p) - volt(n)
        if isinstance(e, (VCVS, VSource)) or (isinstance(e, BSource) and e.kind == "V"):
            prefix = {VCVS: "e", BSource: "b", VSource: "v"}[type(e)]
            name = f"{prefix}.{path}{prefix}{e.name}".lower() if path else f"{prefix}{e.name}".lower()
            power -= v * raw[f"i({name})"]  # branch current enters the + terminal
        elif isinstance(e, ISource):
            power -= v * e.dc
        elif isinstance(e, VCCS):
            power -= v * e.gain * (volt(nodemap(e.cp)) - volt(nodemap(e.cn)))
    return power[: len(x)]
