"""TD-KAN physical crossbar: row tiles, wire ladders, line capacitance, column stabilizers.

Part of the TD-KAN lowering (:mod:`anasim.families.tdkan.lower` calls these per layer): what
``--tile``, ``--wire-r``, ``--line-cap`` and ``--gbw`` add to the ideal crossbar. Each function
returns IR elements or the node names where they meet the rest of the layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...circuit.ir import Capacitor, Resistor
from .options import TdkanOptions

if TYPE_CHECKING:
    from .lower import KanLayer


def min_slope(dev, v_range) -> float:
    """Most negative dI/dV of a device over a bias range (per unit area, in its unit per volt)."""
    v = np.linspace(v_range[0], v_range[1], 2001)
    return float(np.min(np.diff(dev.current(v)) / np.diff(v)))


def tiling(L: KanLayer, opts: TdkanOptions) -> tuple[int, int, int]:
    """(rows, outputs) of one tile of the layer and its number of row tiles: ``--tile ROWS,COLS``
    holds COLS // 2 outputs (two column lines each); a tile larger than the layer is the layer
    (the shared mapping has no tiles)."""
    d_in, d_out = L.area.shape[:2]
    if opts.tile is None:
        return d_in, d_out, 1
    rows = min(opts.tile[0], d_in)
    return rows, min(max(1, opts.tile[1] // 2), d_out), -(-d_in // rows)


def tile_column(col: str, b: int, n_b: int) -> str:
    """The node of column ``col`` (``l<li>_c<j>p|n``) in row tile b of n_b: its own TIA input
    ``l<li>_t<b>_c<j>p|n`` when the layer's rows span several tiles."""
    return col if n_b == 1 else col.replace("_c", f"_t{b}_c", 1)


def crossing(li: int, i: int, col: str) -> tuple[str, str]:
    """Row and column nodes where row i crosses column ``col`` (``l<li>_c<j>p`` or ``n``): the
    columns lie along a row in the order 0p, 0n, 1p, 1n, ..., so column number c = 2j (+1 for n)."""
    j, pol = col.rsplit("_c", 1)[1][:-1], col[-1]
    c = 2 * int(j) + (pol == "n")
    return f"l{li}_w{i}_{c}", f"l{li}_k{i}_{c}"


def wires(L: KanLayer, opts: TdkanOptions) -> list:
    """Row and column lines as resistor ladders of ``wire_r`` per segment. In each tile, row i
    runs from its driver (the clipper) along the tile's columns 0p, 0n, 1p, ...: one segment to
    the first crossing and one between adjacent crossings. Column c runs from the tile's first
    row down past its last row into the tile's TIA. The K devices of an edge sit at the crossing
    of its row with the column of their sign."""
    d_in, d_out, li, r, out = L.area.shape[0], L.area.shape[1], L.index, opts.wire_r, []
    per_rows, per_outs, n_b = tiling(L, opts)
    for i in range(d_in):
        for q in range(0, d_out, per_outs):  # a row line per column tile, each from its own driver end
            prev = f"{L.rows}{i}"
            for c in range(2 * q, 2 * min(q + per_outs, d_out)):
                out.append(Resistor(f"wr{li}_{i}_{c}", prev, f"l{li}_w{i}_{c}", r))
                prev = f"l{li}_w{i}_{c}"
    for c, tia in enumerate(f"l{li}_c{j}{pol}" for j in range(d_out) for pol in "pn"):
        for i in range(d_in):
            last = min((i // per_rows + 1) * per_rows, d_in)  # the tile's rows end here
            below = f"l{li}_k{i + 1}_{c}" if i + 1 < last else tile_column(tia, i // per_rows, n_b)
            out.append(Resistor(f"wc{li}_{i}_{c}", f"l{li}_k{i}_{c}", below, r))
    return out


def line_caps(L: KanLayer, opts: TdkanOptions, with_rows: bool) -> list:
    if opts.line_cap <= 0:
        return []
    n_b = tiling(L, opts)[2]
    lines = [f"{L.rows}{i}" for i in range(L.area.shape[0])] if with_rows else []
    lines += [
        tile_column(f"l{L.index}_c{j}{pol}", b, n_b) for b in range(n_b) for j in range(L.area.shape[1]) for pol in "pn"
    ]
    return [Capacitor(f"line_{node}", node, "0", opts.line_cap) for node in lines]


def negative_conductance(L: KanLayer, opts: TdkanOptions, rows: slice = slice(None)) -> np.ndarray:
    """Worst-case negative input conductance of each column [out, (+, -)] (siemens) over ``rows``,
    edge mapping; the shared mapping's crossbar cells are linear (its sense TIAs see the devices)."""
    if opts.mapping == "shared":
        return np.zeros((L.area.shape[1], 2))
    amps = np.array([d.amps_per_unit for d in L.bases])
    slopes = np.array([max(0.0, -min_slope(d, L.v_range)) for d in L.bases])  # [K] per unit area
    g_dev = L.area[rows] * (amps * slopes)[None, None, :]  # [rows, out, K]
    pos = (L.theta[rows] > 0) == (L.s >= 0)[None, :, None]
    return np.stack([(g_dev * pos).sum(axis=(0, 2)), (g_dev * ~pos).sum(axis=(0, 2))], axis=1)


def stabilizers(L: KanLayer, opts: TdkanOptions, g_neg, nodes: tuple[str, str, str, str], j: int, tag: str) -> list:
    """With op-amp poles (``gbw``): column shunts against NDR devices, feedback capacitors against
    line capacitance. ``nodes``: the columns and their TIA outputs (cp, cn, ap, an)."""
    cp, cn, ap, an = nodes
    out = []
    if opts.gbw is not None:
        # NDR devices give a column a negative input conductance (down to g_neg); when
        # Rf * g_neg < -1 the TIA loop turns into positive feedback and the column latches or
        # drifts. A shunt to ground worth 1.5 x the worst case keeps it stable; at a true
        # virtual ground it carries no current, so DC outputs are unchanged.
        for col, g in ((cp, g_neg[0]), (cn, g_neg[1])):
            if g > 0:
                out.append(Resistor(f"shunt_{col}", col, "0", 1.0 / (1.5 * g)))
    if opts.line_cap > 0 and opts.gbw is not None:
        # A TIA with a capacitive input rings without feedback capacitance; this Cf gives
        # about 45 degrees of phase margin: Cf = sqrt(C_in / (2 pi Rf GBW)).
        cf = float(np.sqrt(opts.line_cap / (2 * np.pi * L.rf[j] * opts.gbw)))
        out.append(Capacitor(f"fp{L.index}_{j}{tag}", cp, ap, cf))
        out.append(Capacitor(f"fn{L.index}_{j}{tag}", cn, an, cf))
    return out
