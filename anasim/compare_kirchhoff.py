"""KirchhoffNet compile and compare: checkpoint -> transient decks, and ngspice vs torchdiffeq.

The KirchhoffNet branch of ``anasim compile`` / ``anasim simulate`` (``compare`` dispatches here).
The reference is solved tightly in float64 and the circuit at reltol RELTOL, samples in decks of
up to ``KN_CHUNK`` copies run in parallel; a sample ngspice cannot follow is named with its layer and
time point, and the others' results are kept (JSON + .npz written before the error is raised).
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import load_dataset
from .errors import AnasimError, SimError
from .ir import file_name
from .lower_kirchhoff import RELTOL, layer_deck, simulate_kirchhoff
from .report import write_report
from .runner import ngspice_version

# Copies of the network in one deck share the finest time step any of them needs, so a deck of
# many copies takes more steps per sample: measured on a 3,872-branch digits net, 1 / 5 / 20
# copies took 1,106 / 1,801 / 2,578 Newton iterations. Small nets still gain from sharing a run.
KN_CHUNK, KN_DECK_BRANCHES = 20, 2000


def chunk_size(model) -> int:
    """Samples per deck: up to KN_CHUNK, with at most about KN_DECK_BRANCHES branches per deck."""
    branches = max(len(layer.src) for layer in model.layers)
    return max(1, min(KN_CHUNK, KN_DECK_BRANCHES // branches))


REF_TOL = (1e-9, 1e-11)  # torchdiffeq rtol, atol for the reference


def compile_kirchhoff(ckpt: dict, model, out: Path, stimulus, dataset, data_dir, a):
    """Layer 0 of a loaded float64 ``model`` as a standalone transient deck (inputs = capacitor
    initial voltages); later layers, whose initial state is the previous layer's result, go to
    ``<stem>_layer<n>.cir`` with 0 V."""
    if stimulus:
        z = load_dataset(dataset or ckpt["dataset"]["name"], data_dir).x_test[:stimulus]
    else:
        z = torch.zeros(1, model.in_dim)
    v0 = model.initial_state(z.double()).numpy()
    stem = file_name(out.stem)
    info = {"layers": []}
    for n, layer in enumerate(model.layers):
        path = out if n == 0 else out.with_name(f"{out.stem}_layer{n}{out.suffix}")
        state = v0 if n == 0 else np.zeros((len(v0), layer.num_nodes + 1))
        text = layer_deck(layer, state, a, model.period, f"{stem}_layer{n}_voltages.txt")
        head = (
            f"* KirchhoffNet {stem}, layer {n} of {len(model.layers)}: {layer.num_nodes} nodes, "
            f"{len(layer.src)} branches ({layer.branch}), C = {layer.capacitance * a:g} F, {model.period * a:g} s; "
            f"{len(v0)} sample(s) as copies s<b>_n<j>; outputs are nodes {model.outputs} of the last layer\n"
        )
        try:
            path.write_text(head + text)
        except OSError as exc:
            raise AnasimError(f"{path}: cannot write netlist: {exc.strerror or exc}") from None
        info["layers"].append({"devices": int(len(layer.src)), "nodes": layer.num_nodes})
    return out, info


def reference(model, z: torch.Tensor) -> tuple[np.ndarray, dict[int, str]]:
    """torchdiffeq outputs [B, out] in float64, solved tightly; a batch the solver gives up on is
    re-solved sample by sample so that only the diverging samples are lost (NaN rows)."""
    model.rtol, model.atol = REF_TOL
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


def simulate_kirchhoff_checkpoint(
    ckpt, model, dataset, samples, split, json_out, run_dir, jobs, data_dir, a, t0, reltol=RELTOL
):
    """ngspice transients (one per layer, ``chunk_size`` samples per deck) vs torchdiffeq; the report."""
    if not a > 0:
        raise AnasimError(f"--scale-a {a!r}: the hardware scale must be positive (farads and seconds per unit)")
    data = load_dataset(dataset or ckpt["dataset"]["name"], data_dir)
    z, target = data.split(split)
    z, target = z[:samples].double(), target[:samples].numpy()
    if len(z) == 0:
        raise AnasimError("--samples must be at least 1")
    ref, ref_failed = reference(model, z)
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="anasim-run-"))
    x = z.numpy()
    chunk = chunk_size(model)
    starts = list(range(0, len(x), chunk))
    parts, failed = {}, {}

    def job(s):
        v, bad = simulate_kirchhoff(model, x[s : s + chunk], a, run_dir / f"chunk_{s:06d}", reltol)
        parts[s] = v[:, model.outputs]
        failed.update({s + b: why for b, why in bad.items()})

    with ThreadPoolExecutor(max_workers=jobs or min(len(os.sched_getaffinity(0)), 8)) as pool:
        # a progress bar on terminals only (disable=None): large nets take seconds per sample
        list(tqdm(pool.map(job, starts), total=len(starts), desc="ngspice", unit="deck", disable=None))
    out = np.concatenate([parts[s] for s in starts])
    for b, why in ref_failed.items():
        failed[b] = f"{failed[b]}; {why}" if b in failed else why
    ok = np.isfinite(out).all(axis=1) & np.isfinite(ref).all(axis=1)
    err = np.abs(out[ok] - ref[ok])
    report = {
        "samples": int(len(x)),
        "engine": {
            "simulator": ngspice_version(),
            "mode": f"one transient per layer, {chunk} sample(s) per deck, reltol {reltol:g}",
            "reference": f"torchdiffeq {model.method}, rtol {REF_TOL[0]:g}, atol {REF_TOL[1]:g}",
        },
        "dataset": data.name,
        "split": split,
        "scale_a": a,
        "end_time_s": len(model.layers) * model.period * a,
        "max_abs_error": float(err.max()) if err.size else float("nan"),
        "mean_abs_error": float(err.mean()) if err.size else float("nan"),
        "output_scale": float(np.ptp(ref)) or 1.0,
        "failed_samples": {str(k): failed[k] for k in sorted(failed)},
        "wall_s": round(time.perf_counter() - t0, 3),
        "run_dir": str(run_dir),
    }
    if data.task == "regression":
        report["reference_loss"] = float(((ref[ok] - target[ok]) ** 2).mean()) if ok.any() else float("nan")
        report["circuit_loss"] = float(((out[ok] - target[ok]) ** 2).mean()) if ok.any() else float("nan")
    else:
        pred = out[ok].argmax(1)
        report["reference_accuracy"] = float((ref[ok].argmax(1) == target[ok]).mean()) if ok.any() else 0.0
        report["circuit_accuracy"] = float((pred == target[ok]).mean()) if ok.any() else 0.0
        report["argmax_agreement"] = float((pred == ref[ok].argmax(1)).mean()) if ok.any() else 0.0
    if json_out is not None:
        write_report(json_out, report, x=x, target=target, reference=ref, circuit=out)
    if failed:
        first = min(failed)
        raise SimError(
            f"{len(failed)} of {len(x)} samples could not be simulated; sample {first}, {failed[first]}; "
            f"the other {int(ok.sum())} samples' results are kept" + (f" in {json_out}" if json_out else ""),
            run_dir,
        )
    return report
