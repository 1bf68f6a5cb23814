"""ngspice's two linear solvers, Sparse 1.3 against KLU, in the one ngspice binary on the same decks.

Issue 30, item 6. Every deck is an ``anasim simulate`` run made twice, ``--solver sparse`` and
``--solver klu``, engines interleaved (in a second round the other one goes first), on the same
samples, ``--jobs 1``. Per run: CPU seconds (user + sys of anasim and its ngspice processes:
``resource.getrusage(RUSAGE_CHILDREN)`` around the subprocess), wall seconds, and ngspice's own
counters from the results JSON (``rusage.elapsed_s``: ngspice's elapsed time summed over the
decks; ``rusage.analysis_s``). The outputs: the largest |Sparse - KLU| of the circuit outputs
(``circuit`` in the .npz beside ``--json``) over the range of the Sparse outputs. Decks:

* plain: the digits demo TD-KAN [64,16,10] (examples/demo.sh's model: out/demo/digits.pt, or
  trained into results/engines/), DC, 360 test images;
* wired64: a digits TD-KAN [64,32,10], ``--mapping edge --tile 64,64 --wire-r 1``, 10 images;
* wired128, wired256: a Fashion-MNIST TD-KAN [784,64,10] trained for one epoch,
  ``--tile 128,128`` / ``--tile 256,256 --wire-r 1``, 3 images and 1 (run last: KLU alone took
  over 160 CPU s on the first 256-row part of 2 images);
* kirchhoffnet: netlists/examples/friedman_kirchhoffnet.pt (a transient by nature), 20 samples;
* tran: the demo TD-KAN as a transient (``--analysis tran``), 5 images.

A run longer than ``--max-sparse-s`` (Sparse, 300 s) or ``--max-s`` (any, 600 s) is interrupted
(SIGINT, as Ctrl-C) and marked ``cut``: its CPU seconds are a lower bound, its ratio is written
">=" (or "<=" when KLU was cut) and its outputs are not compared.
Writes results/engines.json (rows, each run's command, date, ``ngspice -v``, load, git commit).

    python engines.py                    # every deck, one round (about 15 minutes on 2 cores)
    python engines.py --quick            # fewer samples, no 256-row tile
    python engines.py --only wired64     # one deck (repeat --only for more)
    python engines.py --rounds 2         # each deck twice per solver, the order swapped
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results"
WORK = OUT / "engines"  # checkpoints trained here; run folders go under a temporary folder
ANASIM = Path(sys.executable).with_name("anasim")
FASHION = "/usr/share/datasets/fashion-mnist"

DEMO = ["--dataset", "digits", "--dims", "64,16,10", "--bases", "a21,z21", "--epochs", "60", "--seed", "0"]
MODELS = {  # name: (checkpoint, training arguments when missing)
    "demo": ("results/engines/digits.pt", [*DEMO, "--threads", "1"]),
    "digits32": (
        "results/engines/digits32.pt",
        [
            "--dataset",
            "digits",
            "--dims",
            "64,32,10",
            "--bases",
            "a21,z21",
            "--epochs",
            "20",
            "--seed",
            "0",
            "--threads",
            "1",
        ],
    ),
    "fashion": (
        "results/engines/fashion.pt",
        ["--dataset", "fashion-mnist", "--data-dir", FASHION, "--dims", "784,64,10", "--bases", "a21,z21"]
        + ["--epochs", "1", "--seed", "0", "--threads", "1"],
    ),
}
WIRE = ["--mapping", "edge", "--wire-r", "1"]
# name: (model, simulate arguments, samples, samples with --quick (0: left out))
DECKS = {
    "plain": ("demo", [], 360, 100),
    "wired64": ("digits32", [*WIRE, "--tile", "64,64"], 10, 4),
    "wired128": ("fashion", [*WIRE, "--tile", "128,128", "--data-dir", FASHION], 3, 2),
    "kirchhoffnet": ("kirchhoffnet", [], 20, 10),
    "tran": ("demo", ["--analysis", "tran"], 5, 5),
    "wired256": ("fashion", [*WIRE, "--tile", "256,256", "--data-dir", FASHION], 1, 0),  # last: the longest
}


def checkpoint(name: str) -> Path:
    """The deck's model: the shipped KirchhoffNet, the demo's own model, or one trained here."""
    if name == "kirchhoffnet":
        return ROOT / "netlists/examples/friedman_kirchhoffnet.pt"
    if name == "demo" and (ROOT / "out/demo/digits.pt").exists():
        return ROOT / "out/demo/digits.pt"
    path, args = MODELS[name]
    ckpt = HERE / path
    if not ckpt.exists():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(ANASIM), "train", *args, "-o", str(ckpt)]
        print("training:", shlex.join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return ckpt


def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def run(cmd: list[str], limit: float) -> dict:
    """Run cmd from the checkout; CPU of it and its children (ngspice), wall; interrupted at limit s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    cut = False
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        cut = True
        os.killpg(proc.pid, signal.SIGINT)  # anasim stops its ngspice runs and exits 130
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rc": proc.returncode,
        "cut": cut,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "log": out.decode()[-2000:],
    }


def simulate(deck: str, solver: str, samples: int, tmp: Path, rnd: int, limit: float) -> dict:
    model, extra, _, _ = DECKS[deck]
    stem = tmp / f"{deck}_{solver}_{rnd}"
    ckpt = checkpoint(model)
    args = ["--samples", str(samples), "--jobs", "1", *extra, "--solver", solver, "--json"]
    cmd = [str(ANASIM), "simulate", str(ckpt), *args, f"{stem}.json"]
    load = os.getloadavg()[0]
    r = run(cmd, limit)
    row = {
        "deck": deck,
        "solver": solver,
        "round": rnd,
        "samples": samples,
        "command": shlex.join(["anasim", "simulate", rel(ckpt), *args, f"{stem.name}.json"]),
        "load1_before": round(load, 2),
        **{k: r[k] for k in ("rc", "cut", "cpu_s", "wall_s")},
    }
    js = Path(f"{stem}.json")
    if js.exists() and not r["cut"]:
        j = json.loads(js.read_text())
        ru = j.get("rusage", {})
        row.update(
            ngspice_s=ru.get("elapsed_s"),
            analysis_s=ru.get("analysis_s"),
            iterations=ru.get("iterations"),
            simulator=j["engine"]["simulator"],
            solver_used=j["engine"].get("solver"),
            solver_fallback=j["engine"].get("solver_fallback") or [],
            anasim_wall_s=j.get("wall_s"),
            max_error_rel_range=j.get("max_error_rel_range"),
            samples_done=j.get("samples_done"),
        )
        row["_circuit"] = np.load(f"{stem}.npz")["circuit"]
    elif not r["cut"]:
        row["error"] = r["log"]
    return row


def ngspice_version() -> str:
    out = subprocess.run(["ngspice", "-v"], capture_output=True, text=True).stdout
    return " / ".join(line.strip("* ").strip() for line in out.splitlines() if "ngspice-" in line or "Compiled" in line)


def git_commit() -> str:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "anasim"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def summarize(deck: str, runs: list[dict]) -> dict:
    """One row per deck: the fastest of each solver's runs, Sparse/KLU, the outputs compared."""
    by = {s: [r for r in runs if r["solver"] == s] for s in ("sparse", "klu")}
    row: dict = {"deck": deck, "samples": runs[0]["samples"], "model": DECKS[deck][0]}
    for s, rs in by.items():
        done = [r for r in rs if not r["cut"] and "_circuit" in r]
        pick = min(done, key=lambda r: r["cpu_s"]) if done else max(rs, key=lambda r: r["cpu_s"])
        row[f"{s}_cpu_s"] = pick["cpu_s"]
        row[f"{s}_wall_s"] = pick["wall_s"]
        row[f"{s}_ngspice_s"] = pick.get("ngspice_s")
        row[f"{s}_cut"] = not done
        row[f"{s}_fallback"] = pick.get("solver_fallback", [])
    row["cpu_ratio"] = round(row["sparse_cpu_s"] / row["klu_cpu_s"], 2) if row["klu_cpu_s"] else None
    row["cpu_ratio_bound"] = {
        (False, False): "exact",
        (True, False): ">=",
        (False, True): "<=",
        (True, True): "both cut",
    }[(row["sparse_cut"], row["klu_cut"])]
    if row["sparse_ngspice_s"] and row["klu_ngspice_s"]:
        row["ngspice_ratio"] = round(row["sparse_ngspice_s"] / row["klu_ngspice_s"], 2)
    outs = [r["_circuit"] for s in ("sparse", "klu") for r in by[s] if "_circuit" in r]
    sp = [r["_circuit"] for r in by["sparse"] if "_circuit" in r]
    kl = [r["_circuit"] for r in by["klu"] if "_circuit" in r]
    if sp and kl:
        span = float(sp[0].max() - sp[0].min()) or 1.0
        row["output_range"] = span
        row["max_diff_rel_range"] = max(float(np.abs(a - b).max()) for a in sp for b in kl) / span
        row["max_diff_within_solver_rel_range"] = max(float(np.abs(a - outs[0]).max()) for a in sp) / span
    else:
        row["max_diff_rel_range"] = None
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer samples, no 256-row tile")
    p.add_argument("--only", action="append", choices=list(DECKS), help="this deck only (repeatable)")
    p.add_argument("--rounds", type=int, default=1, help="runs per solver and deck, the order swapped each round")
    p.add_argument("--samples", type=int, help="every deck this many samples")
    p.add_argument("--max-sparse-s", type=float, default=300.0, help="interrupt a Sparse run after this many s (cut)")
    p.add_argument("--max-s", type=float, default=600.0, help="interrupt any run after this many s (cut)")
    p.add_argument("--out", default=str(OUT / "engines.json"))
    p.add_argument("--keep", help="keep the results JSON/.npz of every run in this folder")
    a = p.parse_args(argv)

    names = a.only or [d for d in DECKS if not a.quick or DECKS[d][3]]
    tmpdir = tempfile.TemporaryDirectory(prefix="anasim-engines-")
    tmp = Path(a.keep) if a.keep else Path(tmpdir.name)
    tmp.mkdir(parents=True, exist_ok=True)
    version = ngspice_version()
    load0 = os.getloadavg()[0]
    print(f"engines: {version}; load {load0:.2f}", flush=True)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    runs, rows = [], []
    kept = {"rows": [], "runs": []}  # with --only: the other decks' rows of an earlier run stay in the file
    if a.only and Path(a.out).is_file():
        old = json.loads(Path(a.out).read_text())
        kept = {k: [r | {"date": r.get("date", old["date"])} for r in old[k] if r["deck"] not in names] for k in kept}

    def save() -> dict:  # after every deck: an interrupted benchmark keeps the decks it finished
        result = {
            "date": started,
            "ngspice": version,
            "git_commit": git_commit(),
            "machine": {"cpus": os.cpu_count(), "load1_at_start": load0, "loadavg_now": os.getloadavg()},
            "options": {"quick": a.quick, "rounds": a.rounds, "max_sparse_s": a.max_sparse_s, "max_s": a.max_s},
            "command": shlex.join(["python", "engines.py", *(argv if argv is not None else sys.argv[1:])]),
            "notes": "cpu_s: anasim + its ngspice processes, user + sys (getrusage of children); ngspice_s: "
            "ngspice's own elapsed time summed over the decks (results JSON rusage.elapsed_s); max_diff_rel_range: "
            "max |Sparse - KLU| of the circuit outputs over the range of the Sparse outputs; cut: interrupted at "
            "the budget, CPU a lower bound, outputs not compared",
            "rows": kept["rows"] + [r | {"date": started} for r in rows],
            "runs": kept["runs"] + [{k: v for k, v in r.items() if k != "_circuit"} | {"date": started} for r in runs],
        }
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
        return result

    for deck in names:
        checkpoint(DECKS[deck][0])  # train outside the timed runs
        n = a.samples or (DECKS[deck][3] if a.quick else DECKS[deck][2])
        mine = []
        for rnd in range(a.rounds):
            order = ("sparse", "klu") if rnd % 2 == 0 else ("klu", "sparse")
            for s in order:
                limit = min(a.max_s, a.max_sparse_s) if s == "sparse" else a.max_s
                r = simulate(deck, s, n, tmp, rnd, limit)
                mine.append(r)
                state = f"CUT at {limit:.0f} s" if r["cut"] else f"rc {r['rc']}"
                print(
                    f"  {deck:<13} {s:<6} round {rnd}: cpu {r['cpu_s']:8.2f} s, wall {r['wall_s']:8.2f} s, {state}",
                    flush=True,
                )
        rows.append(summarize(deck, mine))
        runs += mine
        result = save()

    head = f"{'deck':<13} {'samples':>7} {'Sparse cpu s':>13} {'KLU cpu s':>10} {'Sparse/KLU':>11}"
    print(f"\n{head} {'ngspice s S/K':>17} {'max|S-K|/range':>15}")
    for r in rows:
        bound = {"exact": "", ">=": ">=", "<=": "<=", "both cut": "?"}[r["cpu_ratio_bound"]]
        ratio = f"{bound}{r['cpu_ratio']:.2f}" if r["cpu_ratio"] else "-"
        ng = (
            f"{r['sparse_ngspice_s']:.2f}/{r['klu_ngspice_s']:.2f}"
            if r["sparse_ngspice_s"] is not None and r["klu_ngspice_s"] is not None
            else "-"
        )
        diff = f"{r['max_diff_rel_range']:.1e}" if r["max_diff_rel_range"] is not None else "-"
        sp = f"{r['sparse_cpu_s']:.2f}{' cut' if r['sparse_cut'] else ''}"
        kl = f"{r['klu_cpu_s']:.2f}{' cut' if r['klu_cut'] else ''}"
        print(f"{r['deck']:<13} {r['samples']:>7} {sp:>13} {kl:>10} {ratio:>11} {ng:>17} {diff:>15}")
        for s in ("sparse", "klu"):
            if r[f"{s}_fallback"]:
                print(f"  {r['deck']}: {s} fell back to Sparse on samples {r[f'{s}_fallback']}")
    cut = [r["deck"] for r in rows if r["sparse_cut"] or r["klu_cut"]]
    if cut:
        print(f"cut (interrupted at the budget; its CPU s a lower bound, outputs not compared): {', '.join(cut)}")
    print("CPU s: anasim + ngspice (user + sys); ngspice s: ngspice's own elapsed time, summed over the decks")
    print(f"-> {rel(Path(a.out))}")
    tmpdir.cleanup()
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
