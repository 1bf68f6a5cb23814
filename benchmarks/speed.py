"""Circuit speed benchmark: the runner's fast path vs plain decks vs one run per sample vs PyTorch.

The paper's MNIST-size TD-KAN [196,64,10] with 3 bases and the Fashion-MNIST [784,256,10] one
with 2 bases (seeded initial weights, BatchNorm statistics from random inputs: simulation speed
does not depend on training), in the edge and the shared mapping. In one run per network it
times: the batched stage-by-stage DC sweeps on both cores through the fast path (parallel
devices merged, parts of about 2,000 devices per deck, clippers folded, tables inlined) and as
plain decks, one ngspice run of the whole network per sample (``ngspice -b`` and PySpice), the
float64 PyTorch forward pass, and the floor: numpy evaluating every device's table once per
sample, as one Newton iteration must. Prints ratios (edge vs shared, fast vs plain) and ngspice's
time split (parse and set-up, matrix load, the rest of the Newton iterations) and writes
results/speed.json.

    python speed.py            # all four networks (about 20 minutes on 2 cores)
    python speed.py --quick    # fewer samples
    python speed.py --fashion-10k   # the 10,000-image Fashion-MNIST test set, edge mapping, via the CLI
    python speed.py --paired   # edge against shared in turns, with and without fold_pairs (40 min)
    python speed.py --paired --digits   # the same for [196,64,10] only (8 min)
    python speed.py --paired --fashion  # [784,256,10] edge against shared only, no unfolded runs
    python speed.py --against c1c8bec   # Fashion-MNIST edge run, 1,000 images: this code against another commit's

The machine is shared and its speed drifts by 2x between runs, so ``--paired`` times the edge
mapping, the shared mapping and the edge mapping without the column-pair fold in turns on the
same samples, and divides each edge run by the shared run beside it: the median of those
ratios is the edge/shared figure (results/speed_paired.json). For the same reason ``--against REV``
times the user's command (``anasim simulate fashion.pt --samples 1000 --mapping edge --jobs 2``,
the decks of the 10,000-image run: chunks of 500 on two cores) with this code and with commit REV
(a git worktree) in turns, and scales REV's own recorded 10,000-image time by the ratio: how long
this code would take on the machine that recorded REV's figure (results/speed_against_REV.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anasim.circuit.ir import VSource
from anasim.families.tdkan.lower import lower, lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.sim import batch
from anasim.sim.engine import get_engine, netlist

PART_ELEMENTS = get_engine().tuning.part_elements  # the runner's default part size

OUT = Path(__file__).parent / "results"


def network(dims, bases):
    torch.manual_seed(0)
    m = TDKAN(dims, bases).double()
    m.train()
    m(torch.randn(256, dims[0], dtype=torch.float64))
    return m.eval()


def pyspice_per_sample(circuit, x, n):
    """What a naive PySpice user writes: load the circuit, run .op, read outputs, per sample."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared

    ng = NgSpiceShared.new_instance()
    t0 = time.perf_counter()
    for s in range(n):
        sources = tuple(VSource(f"in{i}", node, "0", v) for i, (node, v) in enumerate(zip(circuit.inputs, x[s])))
        ng.load_circuit(netlist(replace(circuit, elements=circuit.elements + sources)))
        ng.exec_command("option reltol=1e-6 vntol=1e-9 abstol=1e-15")
        ng.exec_command("op")
        plot = ng.plot(simulation=None, plot_name=ng.last_plot)
        [float(np.asarray(plot[o].to_waveform()).ravel()[0]) for o in circuit.outputs]
        ng.remove_circuit()  # PySpice 1.5 grows by every circuit it keeps
    return (time.perf_counter() - t0) / n


def floor(m, x, mapping: str) -> float:
    """Seconds per sample for numpy to evaluate every device's pwl table once (float64, one core):
    the per-edge devices of every layer (edge), or one device per input and basis (shared)."""
    t0, n = time.perf_counter(), len(x)
    u = np.clip(x, *m.v_range)  # [N, in] row voltages at virtual-ground columns
    for layer in m.layers:
        d_out = layer.coeffs.shape[1]
        for dev in layer.bases:
            t = np.reshape(dev.pwl_table(), (-1, 2))
            v = u if mapping == "shared" else np.repeat(u, d_out, axis=1)  # [N, in(*out)]: one per device
            np.interp(v, t[:, 0], t[:, 1])
        u = np.clip(np.random.default_rng(0).standard_normal((n, d_out)), *m.v_range)  # next rows
    return (time.perf_counter() - t0) / n


def batched(stages, x, parts, jobs):
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        res = batch.layers(stages, x, Path(work), jobs=jobs, part_elements=parts)
        return res, (time.perf_counter() - t0) / len(x)


def split_of(r: dict) -> dict:
    """ngspice's time by phase, as fractions of its whole run (summed over its runs)."""
    el = r["elapsed_s"]
    return {
        "parse_setup": round((el - r["analysis_s"]) / el, 3),
        "matrix_load": round(r["load_s"] / el, 3),
        "newton_rest": round((r["analysis_s"] - r["load_s"]) / el, 3),
    }


def bench(dims, bases, mapping, n_batched, n_plain, n_single, jobs=2):
    m = network(dims, bases)
    z = torch.randn(n_batched, dims[0], dtype=torch.float64)
    x = m.row_drive(z).detach().numpy()
    hw = TdkanOptions(mapping=mapping)
    stages = lower_stages(m, hw)
    res, fast = batched(stages, x, PART_ELEMENTS, jobs)
    plain_res, plain = batched(stages, x[:n_plain], None, jobs) if n_plain else (None, None)
    per_sample = pyspice = None
    if n_single:
        whole = lower(m, hw)[0]
        t0 = time.perf_counter()
        for s in range(n_single):
            batched([whole], x[s : s + 1], None, 1)
        per_sample = (time.perf_counter() - t0) / n_single
        pyspice = pyspice_per_sample(whole, x, n_single)
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = m(z).numpy()
    torch_s = (time.perf_counter() - t0) / n_batched
    floor_s = floor(m, x[: min(200, n_batched)], mapping)
    n_dev = sum(int(np.prod(L.coeffs.shape)) if mapping == "edge" else L.coeffs.shape[0] * L.coeffs.shape[2]
                for L in m.layers)  # fmt: skip
    err = float(np.abs(res.outputs - ref).max() / np.ptp(ref))
    row = {
        "dims": dims,
        "bases": bases,
        "mapping": mapping,
        "jobs": jobs,
        "devices": n_dev,
        "samples_batched": n_batched,
        "batched_s_per_sample": round(fast, 5),
        "ngspice_time_split": split_of(res.rusage),
        "ngspice_cpu_s_per_sample": round(res.rusage["elapsed_s"] / n_batched, 5),
        "samples_plain": n_plain,
        "plain_s_per_sample": None if plain is None else round(plain, 5),
        "fast_speedup_vs_plain": None if plain is None else round(plain / fast, 1),
        "fast_vs_plain_max_diff_rel_range": None
        if plain is None
        else float(np.abs(res.outputs[:n_plain] - plain_res.outputs).max() / np.ptp(plain_res.outputs)),
        "per_sample_run_s": None if per_sample is None else round(per_sample, 4),
        "pyspice_per_sample_s": None if pyspice is None else round(pyspice, 4),
        "batched_speedup_vs_per_sample": None if per_sample is None else round(per_sample / fast, 1),
        "torch_s_per_sample": torch_s,
        "circuit_slowdown_vs_torch": round(fast / torch_s),
        "floor_s_per_sample": floor_s,
        "floor_ns_per_device": round(floor_s / n_dev * 1e9, 2),
        "circuit_vs_floor": round(fast * jobs / floor_s, 1),  # core-seconds against one core
        "max_abs_error_rel_range": err,
    }
    extra = "" if plain is None else f"; plain decks {plain * 1e3:.1f} ms/sample (fast path {plain / fast:.1f}x)"
    if per_sample is not None:
        extra += f"; one run per sample {per_sample:.2f} s (ngspice -b), {pyspice:.2f} s (PySpice)"
    print(
        f"{dims} {len(bases)} bases, {mapping}: batched {fast * 1e3:.1f} ms/sample on {jobs} cores{extra}; "
        f"ngspice time {row['ngspice_time_split']}; floor (numpy, every device once, 1 core) "
        f"{floor_s * 1e3:.2f} ms/sample ({row['floor_ns_per_device']} ns/device); torch {torch_s * 1e6:.0f} us/sample; "
        f"max error {err:.1e} of the output range",
        flush=True,
    )
    return row


def fashion_10k(jobs=2) -> dict:
    """The Fashion-MNIST test set (10,000 images) through the edge mapping of the [784,256,10]
    TD-KAN that benchmarks/montecarlo.py trains, with the CLI a user runs. The report and its
    .npz (64 MB) stay in the runs folder; the figures go to results/speed_fashion_10k.json."""
    ckpt = fashion_checkpoint()
    js = ckpt.with_name("speed_fashion_10k.json")
    cmd = [str(Path(sys.executable).with_name("anasim")), "simulate", str(ckpt), "--samples", "10000",
           "--mapping", "edge", "--jobs", str(jobs), "--json", str(js)]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return summarize(js, time.perf_counter() - t0, "anasim simulate fashion.pt " + " ".join(cmd[3:-2]))


def fashion_checkpoint() -> Path:
    """The [784,256,10] TD-KAN that benchmarks/montecarlo.py trains."""
    ckpt = Path(__file__).resolve().parent / "results" / "montecarlo" / "runs" / "fashion.pt"
    if not ckpt.is_file():
        raise SystemExit(f"{ckpt} is missing: run 'python benchmarks/montecarlo.py figures' first (it trains it)")
    return ckpt


def against(rev: str, n: int = 1000, reps: int = 1, jobs: int = 2) -> dict:
    """Seconds of the Fashion-MNIST edge run on ``n`` images with this code and with commit
    ``rev`` (checked out in a temporary git worktree, imported first through PYTHONPATH), in
    turns; both must reach the same accuracy, equal to the reference's. ``rev``'s results/speed_fashion_10k.json is a
    10,000-image time; when ``rev`` itself recorded it, scaled by the measured ratio it projects
    this code's time on that machine at that speed (results/speed_against_<rev>.json)."""
    repo = Path(__file__).resolve().parent.parent
    ckpt = fashion_checkpoint()
    show = ["git", "-C", str(repo), "show", f"{rev}:benchmarks/results/speed_fashion_10k.json"]
    base = json.loads(subprocess.run(show, check=True, capture_output=True, text=True).stdout)
    # the commit that recorded that 10,000-image time: the projection holds for its code's speed
    log = ["git", "-C", str(repo), "log", "-1", "--format=%h", rev, "--", "benchmarks/results/speed_fashion_10k.json"]
    recorded = subprocess.run(log, check=True, capture_output=True, text=True).stdout.strip()
    anasim = str(Path(sys.executable).with_name("anasim"))
    times, reports = {"this": [], rev: []}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        (tree / "anasim_cli").symlink_to("cli")  # the console script imports anasim_cli (packaging)
        try:
            for r in range(reps):
                for key in times:
                    env = dict(os.environ, PYTHONPATH=str(tree)) if key == rev else dict(os.environ)
                    js = Path(tmp) / f"{r}_{key}.json"
                    cmd = [anasim, "simulate", str(ckpt), "--samples", str(n), "--mapping", "edge", "--jobs", str(jobs),
                           "--json", str(js)]  # fmt: skip
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL)
                    times[key].append(time.perf_counter() - t0)
                    reports[key] = json.loads(js.read_text())
                    print(f"turn {r}, {key}: {times[key][-1]:.0f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=True)
    accuracies = {reports[k]["circuit_accuracy"] for k in times} | {reports["this"]["reference_accuracy"]}
    if len(accuracies) != 1:
        raise SystemExit(f"the two codes' circuits disagree: {reports}")
    ratio = float(np.median(np.array(times[rev]) / np.array(times["this"])))
    keys = ("circuit_accuracy", "reference_accuracy", "argmax_agreement", "max_abs_error", "output_scale")
    row = {
        "command": f"anasim simulate fashion.pt --samples {n} --mapping edge --jobs {jobs}",
        "against": rev,
        "turns": reps,
        "this_s": [round(t, 1) for t in times["this"]],
        "against_s": [round(t, 1) for t in times[rev]],
        "speedup": round(ratio, 2),
        "against_10k_s": base["wall_s"],
        "against_10k_recorded_by": recorded,
        "projected_10k_s": round(base["wall_s"] / ratio, 1),
        **{f"this_{k}": reports["this"][k] for k in keys},
        **{f"against_{k}": reports[rev][k] for k in keys},
    }
    (OUT / f"speed_against_{rev}.json").write_text(json.dumps(row, indent=1) + "\n")
    print(f"Fashion-MNIST edge, {n} images: this code {ratio:.2f}x faster than {rev}; the 10,000-image time "
          f"in {rev}'s results, {base['wall_s'] / 60:.1f} min, was recorded by {recorded}"
          + (f", so this code projects to {row['projected_10k_s'] / 60:.1f} min there" if recorded == rev[: len(recorded)]
             else f" (another code than {rev}: no projection)")
          + f"; circuit accuracy {row['this_circuit_accuracy']:.2%} / {row['against_circuit_accuracy']:.2%}",
          flush=True)  # fmt: skip
    return row


def summarize(js: Path, wall: float, command: str) -> dict:
    rep = json.loads(js.read_text())
    keys = ("samples", "reference_accuracy", "circuit_accuracy", "argmax_agreement", "max_abs_error", "output_scale")
    row = {"command": command, "wall_s": round(wall, 1), **{k: rep[k] for k in keys}}
    row["max_error_rel_range"] = rep["max_abs_error"] / rep["output_scale"]
    (OUT / "speed_fashion_10k.json").write_text(json.dumps(row, indent=1) + "\n")
    print(f"Fashion-MNIST {row['samples']} images, edge mapping: {wall / 60:.1f} min wall; circuit "
          f"{row['circuit_accuracy']:.2%} / reference {row['reference_accuracy']:.2%}", flush=True)  # fmt: skip
    return row


def paired(dims, bases, n, reps=3, jobs=2, unfolded=True) -> dict:
    """Seconds per sample of the fast path for the edge mapping, the shared mapping and the edge
    mapping without :func:`~anasim.sim.partition.fold_pairs`, run in turns ``reps`` times on
    the same ``n`` samples; medians and the median of the per-turn ratios."""
    m = network(dims, bases)
    z = torch.randn(n, dims[0], dtype=torch.float64)
    x = m.row_drive(z).detach().numpy()
    stages = {mp: lower_stages(m, TdkanOptions(mapping=mp)) for mp in ("edge", "shared")}
    times = {"edge": [], "shared": [], **({"edge_unfolded": []} if unfolded else {})}
    outs = {}
    fold = batch.fold_pairs
    for _ in range(reps):
        for key in times:
            batch.fold_pairs = (lambda c: c) if key == "edge_unfolded" else fold
            try:
                res, t = batched(stages[key.split("_")[0]], x, PART_ELEMENTS, jobs)
            finally:
                batch.fold_pairs = fold
            times[key].append(t)
            outs[key] = res.outputs
    with torch.no_grad():
        ref = m(z).numpy()
    ratio = lambda a, b: float(np.median(np.array(times[a]) / np.array(times[b])))  # noqa: E731
    row = {
        "dims": dims,
        "bases": bases,
        "samples": n,
        "turns": reps,
        "jobs": jobs,
        **{f"{k}_ms_per_sample": [round(t * 1e3, 2) for t in v] for k, v in times.items()},
        "edge_vs_shared": round(ratio("edge", "shared"), 2),
        "edge_max_error_rel_range": float(np.abs(outs["edge"] - ref).max() / np.ptp(ref)),
    }
    if not unfolded:
        print(f"{dims} {len(bases)} bases, {n} samples, {reps} turns: edge / shared {row['edge_vs_shared']}x; "
              f"ms/sample edge {row['edge_ms_per_sample']}, shared {row['shared_ms_per_sample']}; edge vs torch "
              f"{row['edge_max_error_rel_range']:.1e} of the range", flush=True)  # fmt: skip
        return row
    row["unfolded_vs_shared"] = round(ratio("edge_unfolded", "shared"), 2)
    row["fold_speedup"] = round(ratio("edge_unfolded", "edge"), 2)
    row["fold_max_diff_rel_range"] = float(np.abs(outs["edge"] - outs["edge_unfolded"]).max() / np.ptp(ref))
    print(f"{dims} {len(bases)} bases, {n} samples, {reps} turns: edge / shared {row['edge_vs_shared']}x "
          f"(without fold_pairs {row['unfolded_vs_shared']}x; the fold {row['fold_speedup']}x); ms/sample "
          f"edge {row['edge_ms_per_sample']}, shared {row['shared_ms_per_sample']}, unfolded "
          f"{row['edge_unfolded_ms_per_sample']}; edge vs torch {row['edge_max_error_rel_range']:.1e} of the range, "
          f"fold vs no fold {row['fold_max_diff_rel_range']:.1e}", flush=True)  # fmt: skip
    return row


def main():
    OUT.mkdir(exist_ok=True)
    if "--fashion-10k" in sys.argv:
        fashion_10k()
        return
    if "--against" in sys.argv:
        against(sys.argv[sys.argv.index("--against") + 1])
        return
    if "--paired" in sys.argv:
        rows = [] if "--fashion" in sys.argv else [paired([196, 64, 10], ["a21", "z21", "zaz21"], 1000)]
        if "--digits" not in sys.argv:
            rows.append(paired([784, 256, 10], ["a21", "z21"], 200, unfolded="--fashion" not in sys.argv))
        old = json.loads((OUT / "speed_paired.json").read_text()) if (OUT / "speed_paired.json").exists() else []
        rows += old  # newest first: earlier rows keep their "note"
        (OUT / "speed_paired.json").write_text(json.dumps(rows, indent=1) + "\n")
        return
    q = "--quick" in sys.argv
    bases = ["a21", "z21", "zaz21"]
    rows = [
        bench([196, 64, 10], bases, "edge", 200 if q else 2000, 40 if q else 200, 1 if q else 2),
        bench([196, 64, 10], bases, "shared", 200 if q else 2000, 200 if q else 2000, 2 if q else 5),
        bench([784, 256, 10], bases[:2], "edge", 100 if q else 1000, 4 if q else 20, 0),
        bench([784, 256, 10], bases[:2], "shared", 200 if q else 1000, 0, 1),
    ]
    for dims in ([196, 64, 10], [784, 256, 10]):
        edge, shared = (next(r for r in rows if r["dims"] == dims and r["mapping"] == mp) for mp in ("edge", "shared"))
        ratio = edge["batched_s_per_sample"] / shared["batched_s_per_sample"]
        edge["edge_vs_shared"] = round(ratio, 2)
        print(f"{dims}: edge mapping {ratio:.2f}x the shared mapping's time per sample", flush=True)
    (OUT / "speed.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
