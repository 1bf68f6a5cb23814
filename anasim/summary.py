"""What a results file records besides the numbers: the model, its devices and the environment.

``simulate --json`` calls these once per run so that ``anasim report`` can describe the model,
draw the device curves and say how the figures were made without loading the checkpoint, torch
or ngspice again (the report reads result files only). The model and its layers are records of
:mod:`anasim.results` (:class:`~anasim.results.ModelRecord`); the devices and environment plain JSON.
"""

from __future__ import annotations

import datetime
import platform
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from . import __version__
from .circuit.ir import Capacitor, Device, OpAmp, Resistor
from .devices import get_device
from .results import LayerRecord, ModelRecord

CURVE_POINTS = 200  # samples of each device curve in the results file: smooth at report size


def git_commit() -> str | None:
    """The commit of the anasim source tree (with '+dirty' for local changes), None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not head:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def environment(simulator: str | None = None, seeds: dict | None = None) -> dict:
    """Versions, commit, date and command line of this run."""
    import torch

    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    return {
        "anasim": __version__,
        "simulator": simulator,  # engine version and solver, e.g. "vacask-0.3.4.dev3, klu"
        # the key of results before other engines ran them: ngspice's label, or None
        "ngspice": simulator if simulator is None or str(simulator).startswith("ngspice") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(argv),
        "host": platform.node(),
        "seeds": seeds or {},
    }


def circuit_counts(circuit) -> dict:
    """Element counts of a lowered circuit: devices by curve, op-amps, resistors, capacitors, areas."""
    kinds = Counter(type(e).__name__ for e in circuit.elements)
    by_curve = Counter(e.curve for e in circuit.elements if isinstance(e, Device))
    areas = [e.area for e in circuit.elements if isinstance(e, Device)]
    return {
        "devices_by_basis": dict(sorted(by_curve.items())),
        "opamps": sum(isinstance(e, OpAmp) for e in circuit.elements),
        "resistors": sum(isinstance(e, Resistor) for e in circuit.elements),
        "capacitors": sum(isinstance(e, Capacitor) for e in circuit.elements),
        "branches": kinds.get("Branch", 0),
        "area_range": [float(min(areas)), float(max(areas))] if areas else None,
    }


def model_summary(net, opts) -> ModelRecord:
    """Family, architecture, parameters and the lowered circuit's size, for the report; the layer
    rows (crossbar size, tiles) are what the lowering reports."""
    from .checkpoint import summary

    info = summary(net.ckpt)
    circuit, lowered = net.family.lower(net.model, opts)
    layers = []
    for n, L in enumerate(lowered.get("layers", [])):
        row = {k: v for k, v in L.items() if k in ("inputs", "outputs", "devices", "nodes")}
        if "crossbar" in L:  # TD-KAN: the lowering's tiles (row tiles x column tiles) and one tile's size
            row |= {"crossbar_rows": L["crossbar"][0], "crossbar_columns": L["crossbar"][1]}
            row |= {"tiles": L["tiles"][0] * L["tiles"][1], "tile_grid": list(L["tiles"])}
        elif "inputs" in L and "outputs" in L:  # MLP: one crossbar per layer, a differential column pair per output
            row |= {"crossbar_rows": L["inputs"], "crossbar_columns": 2 * L["outputs"], "tiles": 1}
        for key in ("area_range", "rf_ohm"):
            if key in L:  # a range [lo, hi], or one value for all (MLP feedback resistors)
                row[key] = [float(v) for v in np.ravel([L[key]])][:2] * (2 if np.ndim(L[key]) == 0 else 1)
        layers.append(LayerRecord(n, **row))
    return ModelRecord(
        family=net.family.name,
        title=net.family.title,
        checkpoint=str(net.path),
        checkpoint_sha256=net.digest,
        arch=info["arch"],
        dims=info["dims"],
        bases=info["bases"],
        activation=info["activation"],
        params=info["params"],
        dataset=info["dataset"],
        test_accuracy=info["test_accuracy"],
        test_loss=info["test_loss"],
        train_seed=net.ckpt.get("metrics", {}).get("options", {}).get("seed"),
        layers=layers,
        # KirchhoffNet's lowering is its first layer; the others have the same kind of elements
        circuit=circuit_counts(circuit),
    )


def device_curves(names) -> dict:
    """I-V of each device used: the fit sampled over its range, and the table knots of pwl fits
    (the measured sweep points themselves: a pwl fit is exact there)."""
    out = {}
    for name in names:
        d = get_device(name)
        v = np.linspace(d.v_range[0], d.v_range[1], CURVE_POINTS)
        err = d.provenance.get("fit_error", {})
        out[name] = {
            "kind": d.kind,
            "unit": d.unit,
            "amps_per_unit": d.amps_per_unit,
            "v_range": list(d.v_range),
            "description": d.description,
            "fit_method": d.provenance.get("fit_method"),
            "fit_rms": err.get("rms"),
            "fit_hash": d.fit_hash,
            "fit_v": v.tolist(),
            "fit_i": d.current(v).tolist(),
            "data_v": list(d.knots_v) if d.provenance.get("fit_method") == "pwl" else [],
            "data_i": list(d.knots_i) if d.provenance.get("fit_method") == "pwl" else [],
        }
    return out
