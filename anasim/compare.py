"""Compile and compare: checkpoint -> netlist, and circuit outputs vs the PyTorch reference.

``compile_checkpoint`` is the library call behind ``anasim compile`` (lower + header + netlister,
optionally with embedded test samples and a control block). ``simulate_checkpoint`` is behind
``anasim simulate``: it runs the same inputs through ngspice and through the model in float64 and
reports agreement sample by sample; per-sample outputs go to an ``.npz`` beside the JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .checkpoint import load_checkpoint
from .compare_kirchhoff import compile_kirchhoff, simulate_kirchhoff_checkpoint
from .data import load_dataset
from .errors import AnasimError, SimError
from .ir import Circuit, file_name
from .kirchhoff import KirchhoffNet
from .lower import HwOptions, lower_tdkan, lower_tdkan_layers
from .lower_kirchhoff import RELTOL
from .lower_mlp import lower_mlp
from .models import TDKAN, DeviceMLP
from .netlist import netlist
from .report import write_report
from .runner import SweepResult, deck_body, ngspice_version, simulate_dc, simulate_layers, stimulus_deck
from .transient import simulate_tran, static_power


def load_model(ckpt_path: str | Path) -> tuple[dict, TDKAN | DeviceMLP]:
    """A verified checkpoint and its model in float64 (the compiler's input)."""
    ckpt, model = load_checkpoint(ckpt_path)
    return ckpt, model.double()


def circuit_inputs(model, z: torch.Tensor) -> np.ndarray:
    """Input-node voltages for standardized samples z: TD-KAN row drive, or z itself for an MLP."""
    z = z.double()
    return (model.row_drive(z) if isinstance(model, TDKAN) else z).numpy()


def build_circuit(ckpt_path: str | Path, hw: HwOptions, loaded=None) -> tuple[dict, TDKAN | DeviceMLP, Circuit, dict]:
    """The circuit of a checkpoint, headed by its provenance; ``loaded`` is (ckpt, model) when
    the caller has already loaded it (loading verifies hashes and weights: not worth doing twice)."""
    ckpt, model = loaded or load_model(ckpt_path)
    digest = hashlib.sha256(Path(ckpt_path).read_bytes()).hexdigest()[:16]
    header = [
        f"model {Path(ckpt_path).name} sha256 {digest}, {ckpt['config']['arch']} dims {ckpt['config']['dims']}",
        f"anasim {__version__}, compiled {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC",
        f"op-amp gain {hw.opamp_gain:g}, gain-bandwidth {hw.gbw}, line capacitance {hw.line_cap:g} F",
    ]
    if isinstance(model, DeviceMLP):
        circuit, info = lower_mlp(model, hw)
        dev = model.act.device_model
        header += [
            f"activation {model.act.name}"
            + (f": fit {dev.fit_hash}, {dev.amps_per_unit:g} A per {dev.unit}" if dev else " (behavioural)")
        ]
        header += [
            f"layer {i}: {L['inputs']}x{L['outputs']}, {L['resistors']} resistors, Rf {L['rf_ohm']:.4g} ohm"
            for i, L in enumerate(info["layers"])
        ]
        header += ["inputs: nodes in_<i> (standardized inputs in volts); outputs: nodes y_<j> (logits in volts)"]
        circuit.header = header
        return ckpt, model, circuit, info
    circuit, info = lower_tdkan(model, hw)
    circuit.header = header + [
        f"mapping {hw.mapping}, crossbar {hw.crossbar}, area max {hw.area_max:g}, levels {hw.levels}",
        *(
            f"device {d.name}: fit {d.fit_hash}, {d.provenance.get('fit_method')}, {d.amps_per_unit:g} A per {d.unit} per unit area"
            for d in model.layers[0].bases
        ),
        *(
            f"layer {i}: {L['inputs']}x{L['outputs']}, {L['devices']} devices, areas {L['area_range'][0]:.4g}..{L['area_range'][1]:.4g}, "
            f"Rf {L['rf_ohm'][0]:.4g}..{L['rf_ohm'][1]:.4g} ohm"
            for i, L in enumerate(info["layers"])
        ),
        "inputs: nodes in_<i> (row drive in volts, clipped in the circuit); outputs: nodes y_<j> (logits in volts)",
    ]
    return ckpt, model, circuit, info


def compile_checkpoint(
    ckpt_path, out, hw: HwOptions, stimulus: int = 0, dataset: str | None = None, data_dir=None, scale_a: float = 1e-9
):
    """Write the netlist of ``ckpt_path`` to ``out``; with ``stimulus`` N embed N test samples."""
    out = Path(out)
    loaded = load_model(ckpt_path)
    if isinstance(loaded[1], KirchhoffNet):
        return compile_kirchhoff(*loaded, out, stimulus, dataset, data_dir, scale_a)
    ckpt, model, circuit, info = build_circuit(ckpt_path, hw, loaded)
    if stimulus:
        data = load_dataset(dataset or ckpt["dataset"]["name"], data_dir)
        x = circuit_inputs(model, data.x_test[:stimulus])
        data_file = file_name(out.stem) + "_outputs.txt"
        text = stimulus_deck(deck_body(circuit), x, circuit.outputs, data_file)
        try:
            out.write_text(text)
        except OSError as exc:
            raise AnasimError(f"{out}: cannot write netlist: {exc.strerror or exc}") from None
    else:
        netlist(circuit, out)
    return out, info


def simulate_checkpoint(
    ckpt_path,
    dataset: str | None = None,
    samples: int = 1000,
    hw: HwOptions | None = None,
    netlist_path=None,
    json_out=None,
    run_dir=None,
    jobs: int | None = None,
    data_dir=None,
    whole: bool = False,
    analysis: str = "dc",
    period: float = 2e-6,
    settle_tol: float = 0.01,
    split: str = "test",
    scale_a: float = 1e-9,
    reltol: float | None = None,
) -> dict:
    """Circuit vs reference on ``samples`` test images; ``analysis`` "dc" (batched operating
    points) or "tran" (time-multiplexed transient: settling time and static power as well)."""
    hw = hw or HwOptions()
    if analysis not in ("dc", "tran"):
        raise AnasimError(f"--analysis {analysis!r}: use dc or tran")
    if analysis == "tran" and netlist_path is not None:
        raise AnasimError("--analysis tran builds its own circuit (line capacitances, op-amp poles): drop --netlist")
    t0 = time.perf_counter()
    ckpt, model = load_model(ckpt_path)
    if isinstance(model, KirchhoffNet):
        return simulate_kirchhoff_checkpoint(
            ckpt, model, dataset, samples, split, json_out, run_dir, jobs, data_dir, scale_a, t0, reltol or RELTOL
        )
    outputs = [f"y_{j}" for j in range(ckpt["config"]["dims"][-1])]
    data = load_dataset(dataset or ckpt["dataset"]["name"], data_dir)
    z, labels = data.split(split)
    z, labels = z[:samples], labels[:samples].numpy()
    if len(z) == 0:
        raise AnasimError("--samples must be at least 1")
    x = circuit_inputs(model, z)
    with torch.no_grad():
        ref = model(z.double()).numpy()
    # the one-deck circuit is built only where it is used (it costs seconds for large nets)
    whole = whole or isinstance(model, DeviceMLP)  # MLPs are simulated as one deck
    wanted = (whole or analysis == "tran") and netlist_path is None
    circuit = build_circuit(ckpt_path, hw, (ckpt, model))[2] if wanted else None
    source = circuit
    if netlist_path is not None:
        try:
            source = Path(netlist_path).read_text()
        except OSError as exc:
            raise AnasimError(f"{netlist_path}: cannot read netlist: {exc.strerror or exc}") from None
    jobs = jobs or min(len(os.sched_getaffinity(0)), 8)
    extra = {}
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="anasim-run-"))
    if analysis == "tran":
        mode = f"one transient, samples time-multiplexed every {period:g} s"
        tol = settle_tol * float(np.ptp(ref))
        tr = simulate_tran(
            circuit,
            x,
            circuit_inputs(model, torch.zeros(1, x.shape[1]))[0],
            period,
            run_dir / "tran",
            tol,
        )
        power = static_power(circuit, x, run_dir / "power")
        res = SweepResult(
            tr["outputs"], [int(i) for i in np.nonzero(~np.isfinite(tr["outputs"]).all(axis=1))[0]], run_dir
        )
        settle = tr["settle_s"]
        extra = {
            "analysis": "tran",
            "line_cap_f": hw.line_cap,
            "opamp_gbw_hz": hw.gbw,
            "settle_tolerance_v": tol,
            "settling_time_s": {"median": float(np.median(settle)), "max": float(np.max(settle))},
            "static_power_w": {"mean": float(power.mean()), "max": float(power.max())},
            "settled_within_period": bool(np.isfinite(settle).all()),
        }
    elif netlist_path is not None or whole:
        mode = "batched DC sweeps, whole network in one deck"
        res = simulate_dc(source, x, run_dir=run_dir, jobs=jobs, outputs=outputs)
    else:
        mode = "batched DC sweeps, layer by layer, cut at ideal sources"
        res = simulate_layers(lower_tdkan_layers(model, hw), x, run_dir=run_dir, jobs=jobs)
    wall = time.perf_counter() - t0
    ok = np.isfinite(res.outputs).all(axis=1)
    err = np.abs(res.outputs[ok] - ref[ok])
    report = {
        "samples": int(len(z)),
        "engine": {
            "simulator": ngspice_version(),
            "mode": f"ngspice -b subprocesses, {mode}",
            "jobs": jobs,
        },
        "dataset": data.name,
        "split": split,
        "mapping": hw.mapping,
        "opamp_gain": hw.opamp_gain,
        "reference_accuracy": float((ref.argmax(1) == labels).mean()),
        "circuit_accuracy": float((res.outputs[ok].argmax(1) == labels[ok]).mean()) if ok.any() else 0.0,
        "argmax_agreement": float((res.outputs[ok].argmax(1) == ref[ok].argmax(1)).mean()) if ok.any() else 0.0,
        "max_abs_error": float(err.max()) if err.size else float("nan"),
        "mean_abs_error": float(err.mean()) if err.size else float("nan"),
        "output_scale": float(np.ptp(ref)),
        "failed_samples": res.failed,
        "wall_s": round(wall, 3),
        "run_dir": str(res.run_dir),
        **extra,
    }
    if json_out is not None:
        write_report(json_out, report, x=x, labels=labels, reference=ref, circuit=res.outputs)
    if res.failed:
        raise SimError(
            f"ngspice did not converge for samples {res.failed[:20]}{' ...' if len(res.failed) > 20 else ''}; "
            f"the other {int(ok.sum())} samples' results are kept" + (f" in {json_out}" if json_out else ""),
            res.run_dir,
        )
    return report
