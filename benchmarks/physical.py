"""Physical crossbars benchmark (`make bench`): accuracy against wire resistance for several tile sizes.

Every run is an `anasim simulate` command with `--wire-r R --tile T,T`, edge mapping, printed and
recorded in results/physical.json with its figures: circuit accuracy, argmax agreement with the
torch reference, the largest output error, and the run's wall time per sample (the cost growth
against tile size and network size; ratios from one run, nothing else on the 2 cores).

    python physical.py digits     # netlists/examples/digits_tdkan.pt [64,4,10], 360 test images,
                                  # tiles of 16, 32 and 64 rows, 0 / 0.1 / 1 / 10 / 100 ohm
    python physical.py fashion    # the Fashion-MNIST [784,64,10] TD-KAN (trained here if missing: 88.7%),
                                  # tiles of 64, 128 and 256 rows; 1,000 test images unless --samples
    python physical.py fashion --samples 100 --tiles 64 --ohms 1   # one cell of that table
    python physical.py fashion --samples 1000 --tiles 64 --ohms 1 --engine vacask --jobs 2
                                  # on another engine (or several: ngspice,vacask), 2 engine runs at once;
                                  # its report (JSON and .npz) kept beside the checkpoint
    python physical.py cost       # what one wired deck costs ngspice (KLU): the first deck of that
                                  # model's layer 0 with 1 ohm wires, tiles of 64, 128 and 256 rows
    python physical.py fill       # the LU fill of one wired tile's mesh (scipy, natural order against
                                  # minimum degree): what any order leaves a sparse LU to factor

Why [784,64,10] and not the paper's [784,256,10]: a wired cell's cost is the tiles' LU factor,
and [784,256,10] has four times the tiles of [784,64,10] at every tile size (`cost` measures
one deck; the table's runs give the CPU seconds per image). Every row records the CPU seconds
(anasim and its ngspice processes) beside the wall time, since the machine is shared.

Each cell is written to results/physical.json as it finishes; a cell measured again replaces
the one with the same command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu import children_cpu

HERE = Path(__file__).parent
OUT = HERE / "results" / "physical.json"
ANASIM = str(Path(sys.executable).with_name("anasim"))
OHMS = (0.0, 0.1, 1.0, 10.0, 100.0)
SETS = {
    "digits": (HERE.parent / "netlists" / "examples" / "digits_tdkan.pt", 360, (16, 32, 64)),
    "fashion": (HERE / "results" / "physical" / "runs" / "fashion64.pt", 1000, (64, 128, 256)),
}
TRAIN = {  # how a missing checkpoint of SETS is made (the digits one ships in netlists/examples)
    "fashion": ["--dataset", "fashion-mnist", "--dims", "784,64,10", "--bases", "a21,z21", "--lr", "3e-3",
                "--batch-size", "256", "--epochs", "8", "--seed", "0", "--threads", "1"],
}  # fmt: skip


def checkpoint(name: str) -> Path:
    ckpt = SETS[name][0]
    if not ckpt.is_file():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        print("$ anasim train", " ".join(TRAIN[name]), "-o", ckpt.name, flush=True)
        subprocess.run([ANASIM, "train", *TRAIN[name], "-o", str(ckpt)], check=True)
    return ckpt


def cell(ckpt: Path, samples: int, tile: int, ohms: float, engine: str = "ngspice", jobs: int | None = None,
         keep: Path | None = None) -> dict:  # fmt: skip
    """One run: accuracy, agreement, largest error (of the output range) and seconds per sample.
    ``engine``: one engine or several (ngspice,vacask: each engine's CPU seconds and their largest
    difference); ``keep``: the report's JSON and .npz stay at this path (else a temporary one)."""
    with tempfile.TemporaryDirectory() as tmp:
        js = keep or Path(tmp) / "run.json"
        args = ["simulate", str(ckpt), "--samples", str(samples), "--mapping", "edge", "--tile", f"{tile},{tile}",
                "--wire-r", f"{ohms:g}"]  # fmt: skip
        args += [] if engine == "ngspice" else ["--engine", engine]  # (the ngspice rows keep their commands)
        args += [] if jobs is None else ["--jobs", str(jobs)]
        print("$ anasim", " ".join(args[:1] + [ckpt.name] + args[2:]), flush=True)
        t0, c0, load = time.perf_counter(), children_cpu(), os.getloadavg()[0]
        subprocess.run([ANASIM, *args, "--json", str(js)], check=True, stdout=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t0, children_cpu() - c0
        rep = json.loads(js.read_text())
    return {
        "command": "anasim " + " ".join(args[:1] + [ckpt.name] + args[2:]),
        "tile": tile,
        "wire_r": ohms,
        "samples": rep["samples"],
        "reference_accuracy": rep["reference_accuracy"],
        "circuit_accuracy": rep["circuit_accuracy"],
        "argmax_agreement": rep["argmax_agreement"],
        "max_error_rel_range": rep["max_abs_error"] / rep["output_scale"],
        "failed_samples": rep.get("failed_samples", 0),
        "s_per_sample": round(wall / rep["samples"], 4),
        "cpu_s_per_sample": round(cpu / rep["samples"], 4),
        "load1_before": round(load, 2),
        "simulator": rep.get("engine", {}).get("simulator"),
        "date": time.strftime("%Y-%m-%d"),
    } | engine_figures(rep, rep["samples"])


def engine_figures(rep: dict, n: int) -> dict:
    """The engines' own CPU seconds per sample (their processes, without anasim's Python), and
    with several engines each one's and the largest difference between them (of the range)."""
    if "engines" not in rep:
        return {"engine_cpu_s_per_sample": round(rep["rusage"]["cpu_s"] / n, 4)}
    out = {f"{name}_cpu_s_per_sample": round(e["engine_cpu_s"] / n, 4) for name, e in rep["engines"].items()}
    out |= {f"{name}_wall_s": round(e["wall_s"], 2) for name, e in rep["engines"].items()}
    for name, e in rep["engines"].items():  # each engine's own accuracy figures
        for key in ("circuit_accuracy", "argmax_agreement", "max_error_rel_range"):
            if key in e:
                out[f"{name}_{key}"] = e[key]
    return out | {"engines_max_diff_rel_range": rep["engine_agreement"]["max_diff_rel_range"]}


def table(name: str, samples: int | None, tiles, ohms, engine: str = "ngspice", jobs: int | None = None) -> list[dict]:
    ckpt, n, default_tiles = checkpoint(name), SETS[name][1], SETS[name][2]
    done = json.loads(OUT.read_text()) if OUT.is_file() else {}
    rows = {r["command"]: r for r in done.get(name, [])}
    for tile in tiles or default_tiles:
        for r in ohms or OHMS:
            keep = ckpt.parent / f"{name}_{engine.replace(',', '_')}_t{tile}_r{r:g}_{samples or n}.json"
            row = cell(ckpt, samples or n, tile, r, engine, jobs, keep)
            rows[row["command"]] = row
            print(f"  tile {tile}, {r:g} ohm: circuit {row['circuit_accuracy']:.2%} (reference "
                  f"{row['reference_accuracy']:.2%}), agreement {row['argmax_agreement']:.2%}, largest error "
                  f"{row['max_error_rel_range']:.2g} of range, {row['cpu_s_per_sample']:.3g} CPU s/sample", flush=True)  # fmt: skip
            done[name] = sorted(rows.values(), key=lambda x: (x["samples"], x["tile"], x["wire_r"], x["command"]))
            OUT.write_text(json.dumps(done, indent=1) + "\n")  # each cell as it finishes
    return done[name]


def cost(tiles=(64, 128, 256), n: int = 2) -> list[dict]:
    """ngspice's time on the first deck (part) of the Fashion-MNIST layer 0 with 1 ohm wires, per
    tile size, under KLU: equations, LU fill-in, iterations, and the share of the analysis spent
    factoring. Wires make every tile a mesh of row and column ladders; its LU fill (KLU orders it
    with AMD, and ngspice offers no other order) grows faster than the tile's devices."""
    import re

    import torch

    from anasim.families.tdkan.lower import lower_stages
    from anasim.families.tdkan.options import TdkanOptions
    from anasim.pipeline import load
    from anasim.sim.batch import run_chunk
    from anasim.sim.engine import get_engine
    from anasim.sim.partition import fold_clippers, merge_parallel, split

    net = load(checkpoint("fashion"))
    torch.manual_seed(0)
    x = net.model.row_drive(torch.rand(n, 784, dtype=torch.float64)).detach().numpy()
    rows = []
    for t in tiles:
        stage = lower_stages(net.model, TdkanOptions(tile=(t, t), wire_r=1.0))[0]
        tuning = get_engine().tuning
        parts = [fold_clippers(p) for p in split(merge_parallel(stage), tuning.part_elements, tuning.part_linear)]
        part = parts[0]
        with get_engine().solver_scope("klu"), tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), children_cpu()
            run_chunk(part.circuit, part.stimulus(x), Path(tmp), {})
            wall, cpu = time.perf_counter() - t0, children_cpu() - c0
            log = (Path(tmp) / "ngspice.log").read_text()

        def get(key: str, text: str = log) -> float:
            return float(re.search(key + r".*= *([0-9.]+)", text).group(1))

        devices = sum(type(e).__name__ in ("Table", "Device") for e in part.circuit.elements)
        it, analysis = get("Total iterations"), get("Total analysis time")
        row = {"tile": t, "decks_in_layer0": len(parts), "devices_in_deck": devices, "samples": n,
               "equations": int(get("Circuit Equations")), "lu_fill_in": int(get("Circuit fill-in non-zeroes")),
               "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "iterations": it, "analysis_s": analysis,
               "factor_s": get("Matrix factor time"), "load_s": get("Matrix load time"),
               "reorder_s": get("Matrix reorder time"), "factor_share": round(get("Matrix factor time") / analysis, 3),
               "factor_s_per_iteration": round(get("Matrix factor time") / it, 4),
               "layer0_core_s_per_sample": round(analysis / n * len(parts), 2),
               "solver": "klu", "date": time.strftime("%Y-%m-%d")}  # fmt: skip
        # (analysis time: the parse, paid once per deck, is left out of the per-image figure)
        rows.append(row)
        print(f"tile {t}: {len(parts)} decks in layer 0, {devices} devices and {row['equations']} equations in the "
              f"first, LU fill-in {row['lu_fill_in']:,}; {n} images in {it:.0f} iterations, factor "
              f"{row['factor_s_per_iteration']} s per iteration ({row['factor_share']:.0%} of the analysis); layer 0 "
              f"about {row['layer0_core_s_per_sample']} core-seconds per image", flush=True)  # fmt: skip
    done = json.loads(OUT.read_text()) if OUT.is_file() else {}
    done["wired_tile_cost"] = rows
    OUT.write_text(json.dumps(done, indent=1) + "\n")
    return rows


def fill(n: int = 64) -> dict:
    """The fill a good order leaves in the LU of one wired n x n tile: every crossing's row node
    and column node (ladders of 1 ohm), a device of 1e-5 S at one column of each pair, rows
    driven at the left, columns into virtual grounds. scipy's SuperLU in natural order against
    minimum degree and COLAMD: what ngspice 39's Sparse 1.3 is up against, whatever its order."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    rng = np.random.default_rng(0)
    w, k = np.arange(n * n).reshape(n, n), n * n + np.arange(n * n).reshape(n, n)  # node of crossing (i, c)
    a, b, g = [], [], []  # conductances between node pairs (b = -1: to a fixed voltage)
    a += [*w[:, :-1].ravel(), *k[:-1, :].ravel(), *w[:, 0], *k[-1, :]]
    b += [*w[:, 1:].ravel(), *k[1:, :].ravel(), *[-1] * n, *[-1] * n]
    g += [1.0] * (len(a) - len(g))
    cols = 2 * np.arange(n // 2)[None, :] + rng.integers(0, 2, (n, n // 2))  # each output's + or - column
    rows = np.repeat(np.arange(n)[:, None], n // 2, axis=1)
    a += w[rows, cols].ravel().tolist()
    b += k[rows, cols].ravel().tolist()
    g += [1e-5] * cols.size
    a, b, g = np.array(a), np.array(b), np.array(g)
    both = b >= 0
    i = np.concatenate([a, b[both], a[both], b[both]])
    j = np.concatenate([a, b[both], b[both], a[both]])
    v = np.concatenate([g, g[both], -g[both], -g[both]])
    mat = sp.csc_matrix((v, (i, j)), shape=(2 * n * n,) * 2)
    row = {"tile": n, "nodes": 2 * n * n, "nonzeros": int(mat.nnz)}
    for order in ("NATURAL", "MMD_AT_PLUS_A", "COLAMD"):
        lu = splu(mat, permc_spec=order, diag_pivot_thresh=0.0)
        row[f"lu_nonzeros_{order.lower()}"] = int(lu.L.nnz + lu.U.nnz)
    perm = np.array(dissection(w, k))  # the mesh's own nested dissection, then factored in that order
    lu = splu(mat[perm][:, perm].tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0)
    row["lu_nonzeros_nested_dissection"] = int(lu.L.nnz + lu.U.nnz)
    print(row, flush=True)
    return row


def dissection(w, k, leaf: int = 8) -> list[int]:
    """A geometric nested-dissection order of the wired mesh (row nodes ``w``, column nodes ``k``,
    both indexed by crossing): split the box of crossings across its longer side, the halves
    first, the separator last. A vertical cut at column c only meets the row ladders there, so
    the row nodes of column c separate (that column's column nodes hang on them alone); a
    horizontal cut at row r is separated by that row's column nodes."""
    rows, cols = w.shape
    if rows * cols <= leaf:
        return [*w.ravel(), *k.ravel()]
    if cols >= rows:
        c = cols // 2
        return [*dissection(w[:, :c], k[:, :c], leaf), *dissection(w[:, c + 1 :], k[:, c + 1 :], leaf),
                *k[:, c], *w[:, c]]  # fmt: skip
    r = rows // 2
    return [*dissection(w[:r], k[:r], leaf), *dissection(w[r + 1 :], k[r + 1 :], leaf), *w[r], *k[r]]


def main(args: list[str] | None = None):
    args = sys.argv[1:] if args is None else args
    if args and args[0] == "cost":
        cost()
        return
    if args and args[0] == "fill":
        done = json.loads(OUT.read_text()) if OUT.is_file() else {}
        done["wired_tile_fill"] = [fill(n) for n in (8, 16, 32, 64, 128)]
        OUT.write_text(json.dumps(done, indent=1) + "\n")
        return
    if not args or args[0] not in SETS:
        raise SystemExit(__doc__)

    def opt(flag, cast):
        if flag not in args:
            return None
        return [cast(v) for v in args[args.index(flag) + 1].split(",")]

    samples, jobs, engine = opt("--samples", int), opt("--jobs", int), opt("--engine", str)
    engine = ",".join(engine) if engine else "ngspice"
    table(args[0], samples[0] if samples else None, opt("--tiles", int), opt("--ohms", float), engine,
          jobs[0] if jobs else None)  # fmt: skip


if __name__ == "__main__":
    main()
