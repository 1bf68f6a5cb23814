"""Circuit speed benchmark: batched ngspice vs one run per sample vs the PyTorch reference.

The paper's MNIST-size TD-KAN [196,64,10] with 3 bases and the Fashion-MNIST [784,256,10] one
with 2 bases (seeded initial weights, BatchNorm
statistics from random inputs: simulation speed does not depend on training), in both mappings.
In one run it times: one ngspice run of the whole network per sample (what a naive user writes),
the batched layer-by-layer DC sweeps on both cores, and the float64 PyTorch forward pass.
Prints ratios and writes results/speed.json.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anasim.circuit.ir import VSource
from anasim.circuit.netlist import netlist
from anasim.families.tdkan.lower import lower, lower_stages
from anasim.families.tdkan.model import TDKAN
from anasim.families.tdkan.options import TdkanOptions
from anasim.pipeline import simulate

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


def bench(dims, bases, mapping, n_batched, n_single, jobs=2):
    m = network(dims, bases)
    z = torch.randn(n_batched, dims[0], dtype=torch.float64)
    x = m.row_drive(z).numpy()
    hw = TdkanOptions(mapping=mapping)
    whole = lower(m, hw)[0]
    t0 = time.perf_counter()
    for s in range(n_single):
        simulate(whole, x[s : s + 1], jobs=1)
    per_sample = (time.perf_counter() - t0) / n_single
    pyspice = pyspice_per_sample(whole, x, n_single)
    t0 = time.perf_counter()
    res = simulate(lower_stages(m, hw), x, jobs=jobs)
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
        "per_sample_run_s": round(per_sample, 4),
        "pyspice_per_sample_s": round(pyspice, 4),
        "batched_speedup_vs_pyspice_per_sample": round(pyspice / batched, 1),
        "batched_s_per_sample": round(batched, 5),
        "torch_s_per_sample": torch_s,
        "batched_speedup_vs_per_sample": round(per_sample / batched, 1),
        "circuit_slowdown_vs_torch": round(batched / torch_s),
        "circuit_samples_per_s": round(1 / batched, 2),
        "max_abs_error_rel_range": float(np.abs(res.outputs - ref).max() / np.ptp(ref)),
    }
    print(
        f"{dims} {len(bases)} bases, {mapping}: one run per sample {per_sample:.2f} s (ngspice -b), "
        f"{pyspice:.2f} s (PySpice shared library); batched "
        f"{batched * 1e3:.1f} ms/sample on {jobs} cores = {row['batched_speedup_vs_per_sample']:.0f}x / "
        f"{row['batched_speedup_vs_pyspice_per_sample']:.0f}x faster; "
        f"torch {torch_s * 1e6:.0f} us/sample (circuit {row['circuit_slowdown_vs_torch']}x slower); "
        f"max error {row['max_abs_error_rel_range']:.1e} of the output range",
        flush=True,
    )
    return row


def main():
    OUT.mkdir(exist_ok=True)
    quick = "--quick" in sys.argv
    bases = ["a21", "z21", "zaz21"]
    rows = [
        bench([196, 64, 10], bases, "edge", 40 if quick else 400, 1 if quick else 3),
        bench([196, 64, 10], bases, "shared", 200 if quick else 2000, 2 if quick else 5),
        bench([784, 256, 10], bases[:2], "shared", 200 if quick else 1000, 1),
    ]
    (OUT / "speed.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
