"""KirchhoffNet as one standalone deck (what ``anasim compile`` writes): all layers in one transient.

Layer n's branches conduct from t = n T a to (n+1) T a, ideal switches on a clock (``Branch.on``
and ``off``), and the transient has breakpoints at the layer boundaries. A node the next layer
keeps is the same circuit node, so its capacitor carries the state across the boundary by
itself; a node a layer adds is a node of its own, idle at 0 V until then; a node a layer drops
keeps its voltage, unconnected. That is the reference's ``carry_state``. Node j is ``n<j>`` while
it lives from the first layer on, ``l<k>_n<j>`` when layer k added it. One layer gives the
circuit and transient that ``simulate`` runs (one transient per layer, ``anasim.sim.ivp``).

Chosen by measurement (2 layers of 7 and 9 nodes and 3 layers of 7, 5 and 9 nodes, FC with
ground leaks, 4 samples, a = 1 ns, reltol 1e-6; errors as fractions of the output range):
this deck is within 5e-6 of ``simulate``'s per-layer transients and as close to torchdiffeq as
they are (tanh, 3 layers: 4.18e-5 against 4.19e-5). A .control block that runs one transient per
layer and carries the end voltages into the next one's initial conditions (``let``, ``alter``,
gate sources switching the layers) equals ``simulate`` to 1e-12, but it is a script rather than
a circuit, its table holds the last layer's transient only, and it needs an ``alter`` per node
and sample per layer. Switches into a fresh set of nodes per layer were not tried: their
on-resistance and charge sharing change the ODE by construction.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...circuit.ir import Branch, Capacitor, Circuit
from ...circuit.stimulus import InitialState, Run, Tran
from ...errors import AnasimError
from ...sim.engine import get_engine
from .lower import POINTS, copy_node, lower_layer, tran_options
from .model import KirchhoffNet


def _time(t: float) -> float:
    """A switching time to 12 significant digits, as the deck shows it: 1.000000001e-09 rather than
    1.0000000010000002e-09 (the lag sits in the 10th digit)."""
    return float(f"{t:.12g}")


def node_name(sizes: list[int], n: int, j: int) -> str:
    """The circuit node of model node j in layer n (``sizes``: nodes per layer; 0 is ground)."""
    if j == 0:
        return "0"
    k = n
    while k > 0 and sizes[k - 1] >= j:
        k -= 1
    return f"n{j}" if k == 0 else f"l{k}_n{j}"


def lower_network(model: KirchhoffNet, a: float) -> Circuit:
    """One copy of the whole network: a capacitor of ``C a`` farads per circuit node, each
    layer's branches switched on for its own period T a; the outputs are the last layer's nodes."""
    layers = list(model.layers)
    c = layers[0].capacitance
    if any(layer.capacitance != c for layer in layers):
        raise AnasimError(
            f"layer capacitances {[layer.capacitance for layer in layers]}: a standalone deck keeps each node's "
            "capacitor across the layers, so they must be equal; simulate runs such a net layer by layer"
        )
    sizes, stop = [layer.num_nodes for layer in layers], model.period * a
    # the switches act a lag after each boundary, so that the time point the engine puts on the
    # breakpoint still belongs to the layer that ends there (its tuning says how much)
    lag = get_engine().tuning.switch_lag
    nodes = dict.fromkeys(node_name(sizes, n, j) for n in range(len(sizes)) for j in range(1, sizes[n] + 1))
    elements = [Capacitor(v, v, "0", c * a) for v in nodes]
    for n, layer in enumerate(layers):
        on = None if n == 0 else _time((n + lag) * stop)
        off = None if n == len(layers) - 1 else _time((n + 1 + lag) * stop)
        at = {"0": "0"} | {f"n{j}": node_name(sizes, n, j) for j in range(1, sizes[n] + 1)}  # layer -> network
        for e in lower_layer(layer, a).elements:  # checks a and the thetas
            if isinstance(e, Branch):
                name = e.name if n == 0 else f"l{n}_{e.name}"
                elements.append(replace(e, name=name, p=at[e.p], n=at[e.n], on=on, off=off))
    title = "anasim KirchhoffNet layer" if len(layers) == 1 else f"anasim KirchhoffNet, {len(layers)} layers"
    outputs = tuple(node_name(sizes, len(sizes) - 1, j) for j in range(1, sizes[-1] + 1))
    return Circuit(title, tuple(elements), outputs=outputs).validate()


def network_run(circuit: Circuit, model: KirchhoffNet, v0: np.ndarray, a: float, name: str, reltol: float) -> Run:
    """A transient through all layers of ``circuit`` (``lower_network`` copied per sample) from
    the first layer's node voltages v0 [copies, N+1] (column 0 = ground; other nodes at 0 V): the
    last layer's node voltages over time, results called ``name``, the outputs printed at the end as
    ``s<b>_y<k>`` (sample b, output k)."""
    voltages = {e.p: 0.0 for e in circuit.elements if isinstance(e, Capacitor)}
    for b, row in enumerate(v0):
        voltages |= {copy_node(b, f"n{j}"): float(row[j]) for j in range(1, len(row))}
    sizes, stop = [layer.num_nodes for layer in model.layers], model.period * a
    step, last = stop / POINTS, len(sizes) - 1
    tran = Tran(
        step, len(sizes) * stop, step, uic=True, breakpoints=tuple(_time(n * stop) for n in range(1, len(sizes)))
    )
    finals = tuple(
        (f"s{b}_y{k}", copy_node(b, node_name(sizes, last, o)))
        for b in range(len(v0))
        for k, o in enumerate(model.outputs)
    )
    return Run(InitialState(voltages), tran, circuit.outputs, tran_options(a, reltol), name=name, finals=finals)
