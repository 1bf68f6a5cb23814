"""Circuit speed benchmark: batched ngspice vs one run per sample vs the PyTorch reference.

Builds the paper's MNIST-size TD-KAN [196,64,10] with 3 bases (weights at their seeded
initialization, BatchNorm statistics from random inputs: speed does not depend on training) and
times, in one run: one ngspice run per sample (as a naive user would write it), a batched DC
sweep of N samples, and the float64 PyTorch forward pass. Prints ratios; writes results/speed.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from anasim.lower import HwOptions, lower_tdkan
from anasim.models import TDKAN
from anasim.runner import simulate_dc

OUT = Path(__file__).parent / "results"


def network(dims, bases):
    torch.manual_seed(0)
    m = TDKAN(dims, bases).double()
    m.train()
    m(torch.randn(256, dims[0], dtype=torch.float64))
    return m.eval()


def bench(dims, bases, mapping, n_batched, n_single, jobs):
    m = network(dims, bases)
    z = torch.randn(n_batched, dims[0], dtype=torch.float64)
    x = (m.in_offset + m.in_gain * z).numpy()
    circuit, _ = lower_tdkan(m, HwOptions(mapping=mapping))
    t0 = time.perf_counter()
    for s in range(n_single):
        simulate_dc(circuit, x[s : s + 1], jobs=1)
    per_sample = (time.perf_counter() - t0) / n_single
    t0 = time.perf_counter()
    res = simulate_dc(circuit, x, jobs=jobs)
    batched = (time.perf_counter() - t0) / n_batched
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = m(z).numpy()
    torch_s = (time.perf_counter() - t0) / n_batched
    row = {
        "dims": dims,
        "bases": bases,
        "mapping": mapping,
        "jobs": jobs,
        "samples_batched": n_batched,
        "per_sample_run_s": per_sample,
        "batched_s_per_sample": batched,
        "torch_s_per_sample": torch_s,
        "batched_speedup_vs_per_sample": per_sample / batched,
        "circuit_vs_torch_slowdown": batched / torch_s,
        "circuit_samples_per_s": 1 / batched,
        "max_abs_error_rel_range": float(np.abs(res.outputs - ref).max() / np.ptp(ref)),
    }
    print(
        f"{dims} {len(bases)} bases, {mapping}: per-sample run {per_sample:.2f} s, batched {batched * 1e3:.1f} ms/sample "
        f"({row['batched_speedup_vs_per_sample']:.1f}x faster), torch {torch_s * 1e6:.1f} us/sample "
        f"(circuit {row['circuit_vs_torch_slowdown']:.0f}x slower), error {row['max_abs_error_rel_range']:.1e} of range",
        flush=True,
    )
    return row


def main():
    OUT.mkdir(exist_ok=True)
    quick = "--quick" in sys.argv
    rows = [
        bench([196, 64, 10], ["a21", "z21", "zaz21"], "edge", 40 if quick else 200, 2, 2),
        bench([196, 64, 10], ["a21", "z21", "zaz21"], "shared", 200 if quick else 1000, 2, 2),
    ]
    (OUT / "speed.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
