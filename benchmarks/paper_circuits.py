"""The TD-KAN paper's Fashion-MNIST configurations through their circuits (issue 13, item 2).

Each trained model (benchmarks/accuracy.py trains the TD-KANs, benchmarks/mlp_search.py chooses
the MLPs) runs through ``anasim simulate`` as a user would: the whole 10,000-image test set
through the shared mapping (the MLPs have one mapping), and the first 1,000 test images through
the TD-KANs' physical edge mapping. Every run's own JSON stays in results/paper_circuits/ and a
run whose JSON is there is not repeated; a run stopped midway continues from the chunks kept in
results/paper_circuits/runs/ (not committed). The figures go to results/paper_circuits.json.

    python paper_circuits.py                 # every run (hours on 2 cores)
    python paper_circuits.py z21-z15-zaz21   # the runs of one model
    python paper_circuits.py --summary       # only results/paper_circuits.json from the runs recorded
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "results"
RUNS_DIR = OUT / "paper_circuits"
# name: checkpoint, target test accuracy (the issue's: paper, else the paper's code)
MODELS = {
    "z15-zaz21": ("fashion-z15-zaz21.pt", 0.8908),
    "z21-z15-zaz21": ("fashion-z21-z15-zaz21.pt", 0.8844),
    "mlp-rtd": ("fashion-mlp-rtd-best.pt", 0.8826),
    "mlp-cmtd": ("fashion-mlp-a21-best.pt", 0.8668),
}
KEYS = ("samples", "reference_accuracy", "circuit_accuracy", "argmax_agreement", "max_error_rel_range", "wall_s")


def runs(name: str) -> list[tuple[str, list[str]]]:
    """(run id, extra simulate arguments) of one model: 10k, and for TD-KANs edge 1k then shared 10k."""
    if name.startswith("mlp"):
        return [(f"{name}_10k", ["--samples", "10000"])]
    return [
        (f"{name}_edge_1k", ["--samples", "1000", "--mapping", "edge"]),
        (f"{name}_shared_10k", ["--samples", "10000", "--mapping", "shared"]),
    ]


def run(name: str, execute: bool = True) -> list[dict]:
    """The rows of one model's runs; runs without a JSON are made first (or left out)."""
    ckpt, target = MODELS[name]
    rows = []
    for run_id, args in runs(name):
        js = RUNS_DIR / f"{run_id}.json"
        if not js.is_file():
            if not execute:
                continue
            # --run-dir keeps finished chunks: a run stopped midway continues where it was
            cmd = [str(Path(sys.executable).with_name("anasim")), "simulate", str(OUT / ckpt), *args, "--jobs", "2",
                   "--json", str(js), "--run-dir", str(RUNS_DIR / "runs" / run_id)]  # fmt: skip
            print(" ".join(["anasim", "simulate", ckpt, *args, "--jobs", "2"]), flush=True)
            subprocess.run(cmd, check=True)
        rep = json.loads(js.read_text())
        row = {"model": name, "run": run_id, "checkpoint": ckpt, "target": target, **{k: rep[k] for k in KEYS}}
        row["mapping"] = rep["hardware"].get("mapping", "-") if rep.get("hardware") else "-"
        row["params"] = rep["model"]["params"]
        row["command"] = rep["environment"]["command"]
        row["failed"] = len(rep["failed_samples"])
        row["flags"] = rep["plausibility"]["flags"]
        rows.append(row)
        print(f"{run_id}: circuit {row['circuit_accuracy']:.2%} / reference {row['reference_accuracy']:.2%}, "
              f"agreement {row['argmax_agreement']:.2%}, {row['max_error_rel_range']:.1e} of range, "
              f"{row['wall_s']:.0f} s", flush=True)  # fmt: skip
    return rows


def main(args):
    """Runs the named models' missing runs (all models without names; none with --summary),
    then writes results/paper_circuits.json from every run recorded."""
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    names = [a for a in args if not a.startswith("--")] or ([] if "--summary" in args else list(MODELS))
    rows = [r for n in MODELS for r in run(n, execute=n in names)]
    (OUT / "paper_circuits.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
