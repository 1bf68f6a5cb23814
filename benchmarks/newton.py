"""Where a wired tile's time goes on VACASK (issue 31, item 5): Newton iterations a DC point and
the mesh's factorization per iteration, per tile size, and what changes the iterations.

Where it sits: beside physical.py (its Fashion-MNIST [784,64,10] TD-KAN, edge mapping, 1 ohm
wires) and scale.py (both engines, whole runs). Here one deck at a time, read from VACASK's own
counters (its log), in one process on an otherwise idle core:

* ``tiles``: the first deck of layer 0 at 64, 128 and 256 rows on N test images: iterations a
  point, milliseconds a refactorization (KLU with the first factorization's pivots), the first
  full factorization, device evaluation and solve a iteration, and what one image costs at the
  measured iterations and at VACASK's floor of two (it checks convergence from the second
  iteration on: its lib/nrsolver.cpp), times the full decks of the layer.
* ``variants``: the 128-row deck again with one change each: looser tolerances, VACASK options,
  the deck's instance lines in other orders (so other node numbers, so other fill-reducing
  orders), the images in nearest-neighbour order; iterations, CPU seconds and the largest change
  of the outputs against the deck as anasim writes it.

    python newton.py            # about 5 CPU-minutes; writes results/newton.json
"""

from __future__ import annotations

import json
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from scale import deck_stats  # noqa: E402  (VACASK's counters of a deck's log)

from anasim.families import SimSettings  # noqa: E402
from anasim.jobs import Job, load, prepare  # noqa: E402
from anasim.sim import batch  # noqa: E402
from anasim.sim.engine import engine_scope  # noqa: E402
from anasim.sim.vacask import process  # noqa: E402

CKPT = HERE / "results" / "physical" / "runs" / "fashion64.pt"  # physical.py fashion trains it
OUT = HERE / "results" / "newton.json"
TILES = {64: 40, 128: 40, 256: 12}  # rows: images
ORDER_IMAGES = 200
TIGHT = "options reltol=1e-06 vntol=1e-09 abstol=1e-13"  # what anasim's sweeps write (anasim.sim.tuning)
OPTIONS = {
    "reltol 1e-4, vntol 1e-7": "options reltol=1e-4 vntol=1e-7 abstol=1e-13",
    "SPICE defaults (reltol 1e-3, vntol 1e-6, abstol 1e-12)": "options reltol=1e-3 vntol=1e-6 abstol=1e-12",
    "nr_residualcheck=0": TIGHT + " nr_residualcheck=0",
    "nr_contbypass=0": TIGHT + " nr_contbypass=0",
}


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def first_deck(net, rows: int, images: int):
    """The first part of layer 0's fast path and its stimulus [images, rows] (anasim's own runner)."""
    job = Job(samples=images, options={"mapping": "edge", "tile": (rows, rows), "wire_r": 1.0},
              settings=SimSettings(engine="vacask"))  # fmt: skip
    settings, opts, data = prepare(net, job)
    z = data.split("test")[0][:images].double()
    plan = net.family.plan(net.model, z, opts, settings)
    parts = batch.fast_parts(plan.stages[0].circuit)
    full = sum(len(p.circuit.inputs) == len(parts[0].circuit.inputs) for p in parts)
    return parts[0], parts[0].stimulus(plan.x), full


def outputs(work: Path) -> np.ndarray:
    raw = process.read_raw(work / "out.raw")
    return np.array([raw[k] for k in sorted(raw) if k.startswith("y_")]).T  # [points, outputs]


def run_text(text: str, work: Path, modules: Path) -> tuple[dict, float, np.ndarray]:
    """A deck's text run in ``work`` with the compiled modules of ``modules``' run."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for f in modules.glob("*.osdi"):
        (work / f.name).symlink_to(f.resolve())
    c0 = cpu()
    log, _ = process.run_deck(text, work, "out.raw")
    return deck_stats(log), cpu() - c0, outputs(work)


def run_part(part, x: np.ndarray, work: Path) -> tuple[dict, float, np.ndarray]:
    shutil.rmtree(work, ignore_errors=True)
    c0 = cpu()
    out = batch.run_chunk(part.circuit, x, work, {}, fast=True)
    return deck_stats((work / "vacask.log").read_text()), cpu() - c0, out


def tile_row(rows: int, images: int, stats: dict, cpu_s: float, full: int) -> dict:
    its = stats["iterations"] / images
    refactor = stats["refactor_s"] / max(1.0, stats["refactors"])
    per_it = refactor + (stats["load_s"] + stats["solve_s"]) / stats["iterations"]
    return {
        "tile": rows, "images": images, "unknowns": int(stats["unknowns"]), "full_decks_in_layer0": full,
        "iterations_per_point": round(its, 2),
        "refactor_ms": round(1e3 * refactor, 1),
        "first_factor_ms": round(1e3 * stats["factor_s"] / max(1.0, stats["factors"]), 1),
        "load_and_solve_ms_per_iteration": round(1e3 * (per_it - refactor), 1),
        "cpu_s": round(cpu_s, 2),
        "layer0_s_per_image_measured_iterations": round(full * its * per_it, 2),
        "layer0_s_per_image_at_two_iterations": round(full * 2 * per_it, 2),
    }  # fmt: skip


def reorder(text: str, how: str) -> str:
    """The deck with its instance lines (between the models and the stimulus) in another order."""
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if re.match(r"^[A-Z]\w* \(", line))
    last = next(i for i, line in enumerate(lines) if i > first and line.startswith("//"))
    body = lines[first:last]
    body = body[::-1] if how == "reversed" else random.Random(0).sample(body, len(body))
    return "\n".join(lines[:first] + body + lines[last:])


def nearest(x: np.ndarray) -> np.ndarray:
    """A greedy nearest-neighbour chain through the images from the first (Euclidean, input volts)."""
    left, order = list(range(1, len(x))), [0]
    while left:
        d = ((x[left] - x[order[-1]]) ** 2).sum(axis=1)
        order.append(left.pop(int(np.argmin(d))))
    return np.array(order)


def variant(name: str, images: int, stats: dict, cpu_s: float, base_cpu: float, y: np.ndarray, ref: np.ndarray) -> dict:
    return {"variant": name, "images": images, "iterations_per_point": round(stats["iterations"] / images, 2),
            "cpu_s": round(cpu_s, 2), "cpu_vs_default": round(cpu_s / base_cpu, 3),
            "max_output_change_v": float(np.abs(y - ref).max()), "output_range_v": float(np.ptp(ref))}  # fmt: skip


def main() -> dict:
    net = load(CKPT)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "checkpoint": CKPT.name,
              "tiles": [], "variants": []}  # fmt: skip
    with engine_scope("vacask"), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for rows, images in TILES.items():
            part, x, full = first_deck(net, rows, images)
            stats, cpu_s, _ = run_part(part, x, tmp / f"t{rows}")
            result["tiles"].append(tile_row(rows, images, stats, cpu_s, full))
            print(result["tiles"][-1], flush=True)
        part, x, _ = first_deck(net, 128, max(TILES[128], ORDER_IMAGES))
        n = TILES[128]
        base = tmp / "base"
        stats, base_cpu, _ = run_part(part, x[:n], base)
        ref = outputs(base)  # read as the variants' are: every saved node, by name
        text = (base / "deck.sim").read_text()
        assert text.count(TIGHT) == 1, "the deck's options line changed: update TIGHT"
        result["variants"].append(variant("as written", n, stats, base_cpu, base_cpu, ref, ref))
        runs = [(name, text.replace(TIGHT, line)) for name, line in OPTIONS.items()]
        runs += [(f"instance lines {how}", reorder(text, how)) for how in ("reversed", "shuffled")]
        for name, deck in runs:
            stats, cpu_s, y = run_text(deck, tmp / "variant", base)
            result["variants"].append(variant(name, n, stats, cpu_s, base_cpu, y, ref))
            print(result["variants"][-1], flush=True)
        m = len(x)
        stats, plain_cpu, plain = run_part(part, x, tmp / "natural")
        result["variants"].append(variant("images in test-set order", m, stats, plain_cpu, plain_cpu, plain, plain))
        order = nearest(x)
        stats, cpu_s, y = run_part(part, x[order], tmp / "nearest")
        back = np.empty_like(y)
        back[order] = y
        result["variants"].append(variant("images in nearest-neighbour order", m, stats, cpu_s, plain_cpu, back, plain))
        print(result["variants"][-2:], flush=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
