"""Scale (issue 31, item 5): the wired Fashion-MNIST table on ngspice 46 (KLU) and VACASK, from one run.

Where it sits: beside physical.py (its [784,64,10] TD-KAN, its 1,000-image runs); written to
results/scale.json. Three measurements:

* ``table``: ``anasim simulate --engine ngspice,vacask --jobs 2`` on the same first N test images
  per cell (tiles of 64 rows at 0.1, 1 and 10 ohm; 128 and 256 rows at 1 ohm): each engine's CPU
  seconds per image (its own processes), their ratio, the largest difference between the engines
  (of the output range), the 1,000-image CPU seconds projected from them and the wall time that
  implies on 2 idle cores; and from VACASK's counters of the same runs what a tile costs: parse,
  elaboration, device load, Newton iterations and the factorizations (``limits``).
* ``tuning``: VACASK's options and threads on 7 decks of a wired 64-row run (10 images): CPU
  seconds, iterations and the largest output change against the default, best of 3 runs each,
  interleaved (the machine is shared).
* ``summary``: the 1,000-image VACASK run of physical.py (``physical.py fashion --samples 1000
  --tiles 64 --ohms 1 --engine vacask --jobs 2``) with the table's agreement on its first images.

    python scale.py table                  # about 1,000 CPU s (measured), 60% of it ngspice's 128/256 rows
    python scale.py table --only 64:1      # one cell (TILE:OHMS)
    python scale.py table --engines vacask # VACASK alone on more images of 128 and 256 rows
    python scale.py tuning
    python scale.py summary                # after physical.py's 1,000-image run
    python scale.py table --only 256:1 --out results/scale_256.json   # runs at the same time, each to
    python scale.py merge results/scale_256.json                       # its own file, then merged

Projections: a cell's runs hold few images (1-10 a run), so each pays every deck's parse and
elaboration for few images (18-44% of VACASK's time here); the 1,000-image projection at 500 images
a run leaves that share out (measured at 500 a run: 0.8%).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cpu import children_cpu
from engines import ANASIM, git_commit
from physical import OUT as PHYSICAL
from physical import checkpoint

HERE = Path(__file__).resolve().parent
OUT = DEFAULT_OUT = HERE / "results" / "scale.json"
# (tile rows, wire ohms, images): a 128-row image costs ngspice about a CPU minute, a 256-row one
# several (physical.json's wired_tile_cost: 330 core-seconds for layer 0 alone)
CELLS = [(64, 0.1, 20), (64, 1.0, 20), (64, 10.0, 20), (128, 1.0, 2), (256, 1.0, 1)]
VACASK_CELLS = [(128, 1.0, 10), (256, 1.0, 3)]  # VACASK alone on more images: what limits 128 and 256 rows
JOBS = 2
# --sample-timeout 7200: a sample's wall budget (60 s plus 10 ms per element) is met on idle cores,
# but on this shared machine (load 10-17) it killed a 128-row ngspice chunk and reran its samples
# under Sparse: the CPU seconds measured would be those of the kills and of Sparse, not of KLU
ENGINES = ("ngspice", "vacask")
STATS = ("parse_s", "elaboration_s", "load_s", "analysis_s", "iterations", "refactor_s", "factor_s", "factors",
         "refactors", "unknowns", "nonzeros")  # fmt: skip
_VACASK_LINES = {
    "Real factorization time": "factor_s",
    "Real refactorization time": "refactor_s",
    "Real factorizations": "factors",
    "Real refactorizations": "refactors",
    "Real solve time": "solve_s",
    "Number of unknowns": "unknowns",
    "Initial number of nonzeros": "nonzeros",
}


def deck_stats(log: str) -> dict:
    """VACASK's counters of one deck's log (anasim's, and the factorization lines anasim does not read)."""
    sys.path.insert(0, str(HERE.parent))
    from anasim.sim.vacask.process import parse_stats

    found = parse_stats(log)
    for line in log.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _VACASK_LINES:
            found[_VACASK_LINES[key.strip()]] = float(value)
    return found


def limits(run_dir: Path, n: int) -> dict:
    """What VACASK's decks of a run spent, summed over decks, per image; the largest deck's size.
    VACASK's times are elapsed (wall) seconds, which a loaded machine stretches: the shares are
    the figures to read (parse and elaboration of the whole run, factorization of the analysis)."""
    logs = sorted(run_dir.rglob("vacask.log"))
    per = [deck_stats(p.read_text()) for p in logs]
    total = {k: sum(s.get(k, 0.0) for s in per) for k in ("parse_s", "elaboration_s", "load_s", "analysis_s",
                                                           "refactor_s", "factor_s", "iterations", "factors", "refactors")}  # fmt: skip
    big = max(per, key=lambda s: s.get("unknowns", 0)) if per else {}
    whole = total["parse_s"] + total["elaboration_s"] + total["analysis_s"]
    return {
        "decks": len(logs),
        "iterations_per_image": round(total["iterations"] / n, 2),
        "largest_deck_unknowns": int(big.get("unknowns", 0)),
        "largest_deck_nonzeros": int(big.get("nonzeros", 0)),
        "parse_elaboration_share": round((total["parse_s"] + total["elaboration_s"]) / whole, 3),
        "factor_share_of_analysis": round((total["refactor_s"] + total["factor_s"]) / total["analysis_s"], 3),
        "load_share_of_analysis": round(total["load_s"] / total["analysis_s"], 3),
        "elapsed_ms_per_factorization": round(
            1e3 * (total["refactor_s"] + total["factor_s"]) / max(1.0, total["factors"] + total["refactors"]), 3
        ),
        "elapsed_s_per_image": {k: round(total[k] / n, 4) for k in ("parse_s", "elaboration_s", "analysis_s")},
    }


def cell(tile: int, ohms: float, n: int, keep: Path, engines=ENGINES) -> dict:
    """Both engines on the same ``n`` images, one anasim command (or ``engines``: VACASK alone)."""
    ckpt = checkpoint("fashion")
    stem = keep / f"t{tile}_r{ohms:g}_{n}" if len(engines) > 1 else keep / f"{engines[0]}_t{tile}_r{ohms:g}_{n}"
    shutil.rmtree(stem, ignore_errors=True)
    args = ["simulate", str(ckpt), "--samples", str(n), "--mapping", "edge", "--tile", f"{tile},{tile}",
            "--wire-r", f"{ohms:g}", "--engine", ",".join(engines), "--jobs", str(JOBS),
            "--sample-timeout", "7200"]  # fmt: skip
    print("$ anasim", shlex.join(args[:1] + [ckpt.name] + args[2:]), flush=True)
    t0, c0, load = time.perf_counter(), children_cpu(), os.getloadavg()[0]
    subprocess.run([str(ANASIM), *args, "--run-dir", str(stem), "--json", f"{stem}.json"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    rep = json.loads(Path(f"{stem}.json").read_text())
    e = rep.get("engines") or {engines[0]: {"engine_cpu_s": rep["rusage"]["cpu_s"], "wall_s": rep["wall_s"],
                                             "max_error_rel_range": rep["max_error_rel_range"], "failed_samples": rep["failed_samples"]}}  # fmt: skip
    row = {"command": "anasim " + shlex.join(args[:1] + [ckpt.name] + args[2:]), "tile": tile, "wire_r": ohms,
           "images": rep["samples"], "reference_accuracy": rep["reference_accuracy"],
           "circuit_accuracy": rep["circuit_accuracy"], "argmax_agreement": rep["argmax_agreement"],
           "engines_max_diff_rel_range": rep.get("engine_agreement", {}).get("max_diff_rel_range"),
           "wall_s": round(wall, 1), "cpu_s_all": round(cpu, 1), "load1_before": round(load, 2)}  # fmt: skip
    for name in engines:
        per = e[name]["engine_cpu_s"] / rep["samples"]
        row |= {f"{name}_cpu_s_per_image": round(per, 3), f"{name}_max_error_rel_range": e[name]["max_error_rel_range"],
                f"{name}_failed": len(e[name]["failed_samples"]), f"{name}_wall_s": e[name]["wall_s"],
                f"{name}_1000_cpu_s_projected": round(1000 * per), f"{name}_1000_wall_min_2_idle_cores": round(1000 * per / 2 / 60, 1)}  # fmt: skip
    row |= {f"{n}_solver_fallback": e[n].get("solver_fallback", []) for n in engines}  # samples rerun under Sparse
    if len(engines) > 1:
        row["ngspice_over_vacask"] = round(row["ngspice_cpu_s_per_image"] / row["vacask_cpu_s_per_image"], 2)
    row["vacask_limits"] = limits(stem, rep["samples"])  # (only VACASK writes vacask.log)
    return project(row)


def project(row: dict) -> dict:
    """VACASK's 1,000 images in runs of 500 (2 workers): a cell's runs hold a few images each, so
    they pay the parse and elaboration of every deck for few images; at 500 a run that share is
    under 1% (the 1,000-image run of physical.py: 0.8%), so the projection leaves it out. It
    still counts each run's first point, whose Newton starts from zero with a full factorization
    (at 128 rows about 5 iterations and a factorization of 101 ms, against 3.8 iterations a point
    and 75 ms a refactorization later: newton.json): with one image a run (128 and 256 rows, 2
    jobs) that overstates the 1,000 images, 4,295 CPU s projected at 128 rows against 2,631
    measured (physical.json)."""
    per = row["vacask_cpu_s_per_image"] * (1 - row["vacask_limits"]["parse_elaboration_share"])
    row["vacask_1000_cpu_s_projected_500_per_run"] = round(1000 * per)
    row["vacask_1000_wall_min_2_idle_cores_500_per_run"] = round(1000 * per / 2 / 60, 1)
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| tile rows | wire ohm | images | ngspice CPU s/image | VACASK CPU s/image | ngspice/VACASK | "
            "engines differ (of range) | argmax agreement | VACASK 1,000 images, 500 a run: CPU s (wall min, 2 idle cores) |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["tile"], r["wire_r"])):
        lines.append(f"| {r['tile']} | {r['wire_r']:g} | {r['images']} | {r['ngspice_cpu_s_per_image']:.3g} | "
                     f"{r['vacask_cpu_s_per_image']:.3g} | {r['ngspice_over_vacask']:.2f} | "
                     f"{r['engines_max_diff_rel_range']:.2g} | {r['argmax_agreement']:.0%} | "
                     f"{r['vacask_1000_cpu_s_projected_500_per_run']:,} ({r['vacask_1000_wall_min_2_idle_cores_500_per_run']}) |")  # fmt: skip
    return "\n".join(lines)


def table(only: list[str] | None, keep: Path, engines=ENGINES) -> dict:
    """The cells of CELLS on both engines (``table``), or of VACASK_CELLS on VACASK alone (``vacask_alone``)."""
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    key = "table" if len(engines) > 1 else f"{engines[0]}_alone"
    rows = {(r["tile"], r["wire_r"]): r for r in result.get(key, [])}
    for tile, ohms, n in CELLS if len(engines) > 1 else VACASK_CELLS:
        if only and f"{tile}:{ohms:g}" not in only:
            continue
        row = cell(tile, ohms, n, keep, engines)
        rows[(tile, ohms)] = row
        lim = row["vacask_limits"]
        both = (f"ngspice {row['ngspice_cpu_s_per_image']:.3g}, " if len(engines) > 1 else "") + "VACASK "
        print(f"  tile {tile}, {ohms:g} ohm, {n} images: {both}{row['vacask_cpu_s_per_image']:.3g} CPU s/image"
              + (f" ({row['ngspice_over_vacask']:.2f}x); engines differ by {row['engines_max_diff_rel_range']:.2g} of the range"
                 if len(engines) > 1 else "")
              + f"; VACASK {lim['iterations_per_image']:.3g} iterations, factor {lim['factor_share_of_analysis']:.0%} "
              f"of its analysis, parse and elaboration {lim['parse_elaboration_share']:.0%}", flush=True)  # fmt: skip
        # other runs of this benchmark may have written the file meanwhile: their rows are kept
        result = json.loads(OUT.read_text()) if OUT.is_file() else {}
        rows = {(r["tile"], r["wire_r"]): r for r in result.get(key, [])} | {(tile, ohms): row}
        result[key] = sorted(rows.values(), key=lambda r: (r["tile"], r["wire_r"]))
        if len(engines) > 1:
            result["table_markdown"] = markdown(result["table"])
        save(result)
    print(result.get("table_markdown", ""))
    return result


def tuning(reps: int = 3) -> list[dict]:
    """VACASK options and threads on 7 of the 26 decks (tiles) of layer 0 of a wired 64-row, 1 ohm run of 10 images."""
    sys.path.insert(0, str(HERE.parent))
    from anasim.sim.vacask.process import read_raw, tools

    ckpt = checkpoint("fashion")
    variants = {  # name: (extra control line, vacask -n, OMP_NUM_THREADS)
        "default (-n 1, OMP 1)": ("", "1", "1"),
        "-n 2, OMP 2": ("", "2", "2"),
        "-n 1, OMP 2": ("", "1", "2"),
        "nr_residualcheck=0": ("options nr_residualcheck=0", "1", "1"),
        "nr_bypass=0": ("options nr_bypass=0", "1", "1"),
        "nr_contbypass=1": ("options nr_contbypass=1", "1", "1"),
        "nr_convtol=0.1": ("options nr_convtol=0.1", "1", "1"),
        "nr_conviter=2": ("options nr_conviter=2", "1", "1"),
    }
    with tempfile.TemporaryDirectory(prefix="anasim-scale-") as tmp:
        run = Path(tmp) / "run"
        subprocess.run([str(ANASIM), "simulate", str(ckpt), "--samples", "10", "--mapping", "edge", "--tile", "64,64",
                        "--wire-r", "1", "--engine", "vacask", "--jobs", "1", "--run-dir", str(run)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        decks = sorted(p.parent for p in (run / "layer0").rglob("deck.sim"))[::4]  # 7 of its 26 tiles
        best: dict[str, list[float]] = {v: [np.inf] * len(decks) for v in variants}
        iters, diff, base = dict.fromkeys(variants, 0.0), dict.fromkeys(variants, 0.0), {}
        for rep in range(reps):
            for v, (line, threads, omp) in variants.items():
                for i, d in enumerate(decks):
                    work = Path(tmp) / f"{i}_{rep}"
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(d, work, symlinks=True)
                    text = (d / "deck.sim").read_text()
                    if line:
                        text = text.replace("  options sweep_debug=1", f"  options sweep_debug=1\n  {line}")
                    (work / "deck.sim").write_text(text)
                    c0 = children_cpu()
                    log = subprocess.run([str(tools().vacask), "-n", threads, "-b", "1", "--tomlfile", "anasim.toml",
                                          "deck.sim"], cwd=work, env=dict(os.environ, OMP_NUM_THREADS=omp),
                                         capture_output=True, text=True, check=True).stdout  # fmt: skip
                    cpu = children_cpu() - c0
                    best[v][i] = min(best[v][i], cpu)
                    raw = read_raw(work / "out.raw")
                    out = np.array([raw[k] for k in sorted(raw) if k.startswith("y_")])
                    base.setdefault(i, out)
                    diff[v] = max(diff[v], float(np.abs(out - base[i]).max()))
                    if rep == 0:
                        iters[v] += deck_stats(log).get("iterations", 0.0)
    ref = sum(best["default (-n 1, OMP 1)"])
    rows = [{"variant": v, "cpu_s_10_images": round(sum(best[v]), 3), "cpu_vs_default": round(sum(best[v]) / ref, 3),
             "iterations": iters[v], "max_output_change_v": diff[v]} for v in variants]  # fmt: skip
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def summary() -> dict:
    """The 1,000-image VACASK run of physical.py, its counters, and ngspice on its first images: the
    table's 64-row 1 ohm cell (ngspice's outputs against the 1,000-image run's on the same images)."""
    runs = json.loads(PHYSICAL.read_text())["fashion"]
    run = next(r for r in runs if r["command"].endswith("--wire-r 1 --engine vacask --jobs 2") and r["samples"] == 1000)
    kept = checkpoint("fashion").parent
    rep = json.loads((kept / "fashion_vacask_t64_r1_1000.json").read_text())
    n, use = run["samples"], rep["rusage"]
    out = {"run": run, "engine_cpu_s": round(use["cpu_s"]), "all_cpu_s": round(run["cpu_s_per_sample"] * n),
           "wall_min": round(run["s_per_sample"] * n / 60, 1),
           "wall_min_implied_2_idle_cores": round(run["cpu_s_per_sample"] * n / 2 / 60, 1),
           "iterations_per_image": round(use["iterations"] / n, 1),
           "parse_elaboration_share": round((use["parse_s"] + use["elaboration_s"]) / use["elapsed_s"], 4)}  # fmt: skip
    table_rows = json.loads(DEFAULT_OUT.read_text()).get("table", []) if DEFAULT_OUT.is_file() else []
    sub = next((r for r in table_rows if (r["tile"], r["wire_r"]) == (64, 1.0)), None)
    if sub is not None:
        ng = np.load(Path(keep_dir()) / f"t64_r1_{sub['images']}.npz")["circuit"]  # ngspice: the first engine
        big = np.load(kept / "fashion_vacask_t64_r1_1000.npz")
        m = len(ng)
        assert np.array_equal(np.load(Path(keep_dir()) / f"t64_r1_{m}.npz")["x"], big["x"][:m])  # the same images
        span = float(np.ptp(big["circuit"]))
        out |= {"ngspice_subset_images": m, "ngspice_subset_max_diff_rel_range": float(np.abs(ng - big["circuit"][:m]).max()) / span,
                "table_cell_engines_max_diff_rel_range": sub["engines_max_diff_rel_range"]}  # fmt: skip
    print(json.dumps({k: v for k, v in out.items() if k != "run"}, indent=1))
    return out


def keep_dir() -> Path:
    return HERE / "results" / "physical" / "runs" / "scale"


def merge(files: list[Path]) -> dict:
    """Rows of runs written to other files (runs at the same time, each with its own --out) into OUT."""
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for f in files:
        for key, rows in json.loads(f.read_text()).items():
            if key in ("table", "vacask_alone"):
                have = {(r["tile"], r["wire_r"]): r for r in result.get(key, [])}
                have |= {(r["tile"], r["wire_r"]): r for r in rows}
                result[key] = sorted(have.values(), key=lambda r: (r["tile"], r["wire_r"]))
            elif key in ("tuning", "summary"):
                result[key] = rows
    for row in result.get("table", []) + result.get("vacask_alone", []):
        project(row)
    result["table_markdown"] = markdown(result.get("table", []))
    print(result["table_markdown"])
    save(result)
    return result


def save(result: dict) -> None:
    result |= {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "git_commit": git_commit(),
               "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()}}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> dict:
    global OUT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["table", "limits", "tuning", "summary", "merge"])
    p.add_argument("files", nargs="*", help="merge: results of runs written with --out, their rows added")
    p.add_argument("--only", action="append", help="table: this cell only, TILE:OHMS (repeatable)")
    p.add_argument("--engines", default=",".join(ENGINES), help="table: vacask for VACASK alone (VACASK_CELLS)")
    p.add_argument("--keep", default=str(keep_dir()),
                   help="table: the runs' folders and reports")  # fmt: skip
    p.add_argument("--out", default=str(OUT), help="the results file [results/scale.json]")
    a = p.parse_args(argv)
    OUT = Path(a.out)
    if a.what == "merge":
        return merge([Path(f) for f in a.files])
    if a.what == "table":
        Path(a.keep).mkdir(parents=True, exist_ok=True)
        return table(a.only, Path(a.keep), tuple(a.engines.split(",")))
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if a.what == "limits":  # VACASK's counters and ngspice's Sparse fallbacks again, from the table's kept runs
        for key, prefix in (("table", ""), ("vacask_alone", "vacask_")):
            for row in result.get(key, []):
                stem = Path(a.keep) / f"{prefix}t{row['tile']}_r{row['wire_r']:g}_{row['images']}"
                row["vacask_limits"] = limits(stem, row["images"])
                rep = json.loads(Path(f"{stem}.json").read_text())
                row |= {f"{n}_solver_fallback": e["solver_fallback"] for n, e in rep.get("engines", {}).items()}
                project(row)
                print(row["tile"], row["wire_r"], json.dumps(row["vacask_limits"]))
        save(result)
        return result
    result[a.what] = tuning() if a.what == "tuning" else summary()
    save(result)
    return result


if __name__ == "__main__":
    main()
