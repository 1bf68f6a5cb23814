"""KirchhoffNet on digits (8x8) classification, checked in ngspice on every test image.

The paper's image layer (Proj): a 3x3 neighbour-emphasizing layer over the 8x8 pixel grid plus
10 projected nodes, connected both ways to every pixel node and read as the logits at t = T;
shifted-ReLU branches theta1 * ReLU(v_s - v_d - theta0) as in the paper's MNIST model. Trained
with AdamW (lr 5e-3, cosine, early stopping on validation accuracy), solver tolerance 1e-3 while
training (the paper's), then the whole 360-image test split is simulated in ngspice (one deck
per image: 3,872 branches) against the torchdiffeq solution at rtol 1e-9.
Writes results/kirchhoff_digits.json.

    python kirchhoff_digits.py [--epochs 30] [--samples 360] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from anasim.data import load_dataset
from anasim.pipeline import compare, load
from anasim.train import TrainOptions, train_model

OUT = Path(__file__).parent / "results"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--samples", type=int, default=360)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    config = {"arch": "kirchhoffnet", "dims": [64, 10], "topology": "proj", "kernel": 3, "proj_nodes": [10]}
    config |= {"repeat": 1, "branch": "shifted", "period": 1.0, "train_tol": 1e-3}
    opts = TrainOptions(epochs=args.epochs, lr=5e-3, batch_size=64, patience=15, seed=args.seed, threads=1)
    opts.progress = False
    ckpt = OUT / f"kn_digits_seed{args.seed}.pt"
    _, m = train_model(config, load_dataset("digits"), opts, ckpt)
    print(f"trained: test accuracy {100 * m['test_accuracy']:.2f}%, {m['params']:,} params, {m['train_time_s']:.0f} s")
    sim = compare(load(ckpt), samples=args.samples).to_dict()
    row = {
        "params": m["params"],
        "test_accuracy": m["test_accuracy"],
        "train_time_s": m["train_time_s"],
        "epochs": m["epochs"],
        **{k: sim[k] for k in ("samples", "reference_accuracy", "circuit_accuracy", "argmax_agreement", "wall_s")},
        "max_error_rel_range": sim["max_abs_error"] / sim["output_scale"],
        "output_scale_v": sim["output_scale"],
        "ngspice": sim["engine"]["mode"],
        "command": (
            "anasim train --arch kirchhoffnet --dataset digits --topology proj --kernel 3 --proj-nodes 10 "
            f"--repeat 1 --branch shifted --train-tol 1e-3 --epochs {args.epochs} --lr 5e-3 --seed {args.seed} "
            "--threads 1"
        ),
    }
    (OUT / "kirchhoff_digits.json").write_text(json.dumps(row, indent=1) + "\n")
    print(
        f"ngspice on {row['samples']} test images: circuit {100 * row['circuit_accuracy']:.2f}% vs reference "
        f"{100 * row['reference_accuracy']:.2f}%, agreement {100 * row['argmax_agreement']:.2f}%, "
        f"error {row['max_error_rel_range']:.1e} of range, {row['wall_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
