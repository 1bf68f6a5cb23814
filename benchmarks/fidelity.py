"""Fidelity benchmark: circuit vs PyTorch on trained models, and the effect of op-amp gain.

Needs the checkpoints of accuracy.py (results/digits.pt, results/fashion.pt). Runs:
* digits, per-edge mapping, all 1,797 images (test, validation, training), op-amp gain 1e3 .. 1e9;
* Fashion-MNIST [784,256,10], shared mapping, op-amp gain 1e3 .. 1e6 on 500 test images;
* Fashion-MNIST, the whole 10,000-image test set at gain 1e9 on both cores (wall time).
Writes results/fidelity.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from anasim.families import SimSettings
from anasim.pipeline import compare, load

OUT = Path(__file__).parent / "results"
KEYS = (
    "samples",
    "reference_accuracy",
    "circuit_accuracy",
    "argmax_agreement",
    "max_abs_error",
    "output_scale",
    "wall_s",
)


def run(name, ckpt, samples, mapping, gain, split="test"):
    hw = {"mapping": mapping, "opamp_gain": gain}
    r = compare(load(OUT / ckpt), samples=samples, split=split, options=hw, settings=SimSettings(jobs=2)).to_dict()
    row = {"model": name, "split": split, "mapping": mapping, "opamp_gain": gain, **{k: r[k] for k in KEYS}}
    row["max_error_rel_range"] = r["max_abs_error"] / r["output_scale"]
    print(
        f"{name:8s} {mapping:6s} gain {gain:8.0e}: {r['samples']:5d} {split} samples, agreement {100 * r['argmax_agreement']:6.2f}%, "
        f"circuit {100 * r['circuit_accuracy']:.2f}% vs reference {100 * r['reference_accuracy']:.2f}%, "
        f"max error {row['max_error_rel_range']:.1e} of range, {r['wall_s']:.0f} s",
        flush=True,
    )
    return row


def main(parts):
    rows = []
    if "digits" in parts:
        rows += [run("digits", "digits.pt", 1797, "edge", g, "all") for g in (1e3, 1e4, 1e5, 1e6, 1e9)]
    if "fashion-gain" in parts:
        rows += [run("fashion", "fashion.pt", 500, "shared", g) for g in (1e3, 1e4, 1e5, 1e6)]
    if "fashion-full" in parts:
        rows.append(run("fashion", "fashion.pt", 10000, "shared", 1e9))
    old = json.loads((OUT / "fidelity.json").read_text()) if (OUT / "fidelity.json").exists() else []

    def key(r):
        return r["model"], r.get("split", "test"), r["mapping"], r["opamp_gain"], r["samples"]

    keep = [o for o in old if o["model"] != "digits" or "split" in o]  # older digits rows: 360 test images
    keep = [o for o in keep if key(o) not in {key(r) for r in rows}]
    (OUT / "fidelity.json").write_text(json.dumps(keep + rows, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits", "fashion-gain", "fashion-full"])
