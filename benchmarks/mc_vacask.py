"""Monte Carlo on VACASK without re-parsing (issue 31, item 4): its overhead and speed beside ngspice's.

On VACASK a batch of realizations shares one process per deck: the circuit parsed once. Linear
variations (the digits run's area) take the lane (anasim/montecarlo/lane.py): up to 64
realizations as arrays of element values, set by one ``var`` line each before its analysis;
others (the [196,64,10] run's op-amp gain and offset) run in threads whose decks are grouped, each
realization's instance parameters altered (anasim/montecarlo/batch.py, anasim/sim/vacask/alter.py).
Every run is an `anasim simulate --mc` command, both engines in turns in this one run, printed and
recorded in results/mc_vacask.json.

* digits TD-KAN [64,16,10] (edge mapping, 360 test samples, area 0.05), 1 worker, runs of 8 and
  72 realizations (64 apart: three lane batches against one), three times, the medians (a shared
  machine moves one measurement by a few points): the overhead of
  a realization (everything but its analysis) over its analysis, the median over the rows of
  (wall - analysis) / analysis as benchmarks/montecarlo.py computes it for ngspice, and from CPU
  seconds: the realization's CPU (the difference of a short and a long run, start-up cancels) less
  its analysis's (VACASK's analysis seconds times its process's CPU over its wall: the shared
  machine slows both alike). Goal: under 20%.
* the Fashion-MNIST 14x14 TD-KAN [196,64,10], 3 bases, shared mapping, 1,000 samples, area 0.05 +
  op-amp gain 0.3 (log) + offset 1 mV, 2 workers: 500 realizations projected from the CPU
  seconds of 20 realizations (a run of 22 less a run of 2), on 2 otherwise idle cores. Goal:
  under 30 minutes. Projected, not timed whole.
* ``--timed``: those 500 realizations timed whole on VACASK (wall and CPU seconds of the run, the
  load beside them), added to the figures already in results/mc_vacask.json; nothing else runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from cpu import children_cpu

HERE = Path(__file__).parent
OUT = HERE / "results" / "mc_vacask.json"
RUNS = HERE / "results" / "montecarlo" / "runs"  # montecarlo.py's checkpoints (it trains them)
ANASIM = str(Path(sys.executable).with_name("anasim"))
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
ENGINES = ("vacask", "ngspice")
COMMANDS: list[str] = []


def anasim(args: list) -> tuple[float, float]:
    """Run one anasim command: (wall s, CPU s of it and its workers and simulators)."""
    line = "anasim " + " ".join(map(str, args))
    print("$", line, flush=True)
    COMMANDS.append(line.replace(str(RUNS) + "/", ""))
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run([ANASIM, *map(str, args)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, children_cpu() - c0


def model(name: str) -> Path:
    ckpt = RUNS / f"{name}.pt"
    if not ckpt.exists():  # montecarlo.py trains them (its MODELS)
        import montecarlo

        return montecarlo.model(name)
    return ckpt


def mc(name: str, tag: str, engine: str, args: list) -> tuple[list[dict], float, float]:
    out = RUNS / f"vk_{tag}_{engine}.json"
    shutil.rmtree(out.with_suffix(".mc"), ignore_errors=True)
    wall, cpu = anasim(["simulate", model(name), "--json", out, "--engine", engine, *args])
    rows = [json.loads(line) for line in (out.with_suffix(".mc") / "rows.jsonl").read_text().splitlines()]
    return rows, wall, cpu


def per_realization(name: str, tag: str, engine: str, args: list, short: int, long: int) -> tuple[list[dict], dict]:
    """Runs of ``short`` and ``long`` realizations: the longer one's rows, and per realization (the
    difference of the two, so set-up and the reference cancel) its CPU and wall seconds, with its
    analysis CPU and the overhead beside it where the engine counts its CPU (:func:`analysis_cpu`)."""
    _, w_short, c_short = mc(name, f"{tag}_{short}", engine, ["--mc", short, *args])
    rows, w_long, c_long = mc(name, f"{tag}_{long}", engine, ["--mc", long, *args])
    one = {"cpu_s_per_realization": (c_long - c_short) / (long - short),
           "wall_per_realization_s": (w_long - w_short) / (long - short),
           "paths": sorted({r.get("path", "parse") for r in rows})}  # fmt: skip
    an = [a for r in rows if (a := analysis_cpu(r)) is not None]
    if an:
        one["analysis_cpu_s_mean"] = float(np.mean(an))
        one["overhead_cpu"] = (one["cpu_s_per_realization"] - one["analysis_cpu_s_mean"]) / one["analysis_cpu_s_mean"]
    return rows, one


def analysis_cpu(row: dict) -> float | None:
    """A row's analysis in CPU seconds: its analysis (wall) times its engine processes' CPU over wall."""
    if not row.get("engine_cpu_s") or not row.get("ngspice_elapsed_s"):
        return None
    return row["ngspice_s"] * row["engine_cpu_s"] / row["ngspice_elapsed_s"]


def digits(short: int, long: int, repeats: int = 3) -> dict:
    """The digits overhead, measured ``repeats`` times (engines in turn in each): the medians, and
    every repeat's figures beside them (a shared machine moves one measurement by a few points)."""
    runs: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
    for _ in range(repeats):
        for engine in ENGINES:
            args = ["--vary", "area=0.05", "--samples", 360, "--workers", 1]
            rows, one = per_realization("digits", "digits", engine, args, short, long)
            one["overhead_wall_median"] = float(
                np.median([(r["wall_s"] - r["ngspice_s"]) / r["ngspice_s"] for r in rows])
            )
            one["analysis_s_median"] = float(np.median([r["ngspice_s"] for r in rows]))
            runs[engine].append(one)
    res = {}
    for engine, ones in runs.items():
        res[engine] = {k: float(np.median([o[k] for o in ones])) for k in ones[0] if isinstance(ones[0][k], float)}
        res[engine] |= {"paths": ones[0]["paths"], "repeats": ones}
    v, n = res["vacask"], res["ngspice"]
    res["ratio_cpu_per_realization_vacask_over_ngspice"] = v["cpu_s_per_realization"] / n["cpu_s_per_realization"]
    res["ratio_overhead_wall_vacask_over_ngspice"] = v["overhead_wall_median"] / n["overhead_wall_median"]
    spread = {k: [round(100 * o[k]) for o in runs["vacask"]] for k in ("overhead_wall_median", "overhead_cpu")}
    print(f"digits [64,16,10], 360 samples, 1 worker, median of {repeats}: overhead (wall - analysis) / analysis, "
          f"median: VACASK {100 * v['overhead_wall_median']:.0f}% (runs {spread['overhead_wall_median']}), ngspice "
          f"{100 * n['overhead_wall_median']:.0f}% (ratio {res['ratio_overhead_wall_vacask_over_ngspice']:.2f}); from "
          f"CPU seconds: VACASK {100 * v.get('overhead_cpu', float('nan')):.0f}% (runs {spread['overhead_cpu']}); CPU "
          f"per realization {v['cpu_s_per_realization']:.3f} s against ngspice's {n['cpu_s_per_realization']:.3f} s "
          f"(ratio {res['ratio_cpu_per_realization_vacask_over_ngspice']:.2f})")  # fmt: skip
    return res


def f14(short: int, long: int) -> dict:
    res = {}
    vary = ["--vary", "area=0.05", "--vary", "opamp-gain=0.3", "--vary", "opamp-offset=1e-3"]
    for engine in ENGINES:
        args = [*vary, "--mapping", "shared", "--samples", 1000, "--workers", 2, "--data-dir", FASHION_DIR]
        rows, one = per_realization("f14", "f14", engine, args, short, long)
        one["projected_500_min_2_idle_cores"] = 500 * one["cpu_s_per_realization"] / 2 / 60
        one["projected_500_min_from_wall"] = 500 * one["wall_per_realization_s"] / 60
        one["mean_accuracy"] = float(np.mean([r["accuracy"] for r in rows]))
        res[engine] = one
    v, n = res["vacask"], res["ngspice"]
    res["projection_realizations"] = long - short
    res["ratio_cpu_per_realization_vacask_over_ngspice"] = v["cpu_s_per_realization"] / n["cpu_s_per_realization"]
    print(f"[196,64,10] shared, 1,000 samples, 2 workers, 500 realizations projected from {long - short}: VACASK "
          f"{v['projected_500_min_2_idle_cores']:.1f} min on 2 idle cores ({v['cpu_s_per_realization']:.2f} CPU s a "
          f"realization), ngspice {n['projected_500_min_2_idle_cores']:.1f} min ({n['cpu_s_per_realization']:.2f}); "
          f"ratio {res['ratio_cpu_per_realization_vacask_over_ngspice']:.2f}; from the wall clock of this shared "
          f"machine: {v['projected_500_min_from_wall']:.1f} and {n['projected_500_min_from_wall']:.1f} min")  # fmt: skip
    return res


def timed(realizations: int = 500) -> dict:
    """The [196,64,10] Monte Carlo of :func:`f14` run whole on VACASK: wall and CPU seconds."""
    vary = ["--vary", "area=0.05", "--vary", "opamp-gain=0.3", "--vary", "opamp-offset=1e-3"]
    args = ["--mc", realizations, *vary, "--mapping", "shared", "--samples", 1000, "--workers", 2,
            "--data-dir", FASHION_DIR]  # fmt: skip
    load, date = round(os.getloadavg()[0], 2), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows, wall, cpu = mc("f14", f"f14_timed_{realizations}", "vacask", args)
    res = {"realizations": realizations, "wall_min": wall / 60, "cpu_s": cpu, "cpu_min_on_2_cores": cpu / 2 / 60,
           "failed_rows": sum(bool(r.get("error")) for r in rows), "paths": sorted({r.get("path", "parse") for r in rows}),
           "mean_accuracy": float(np.mean([r["accuracy"] for r in rows if r.get("accuracy") is not None])),
           "load1_before": load, "load1_after": round(os.getloadavg()[0], 2), "date": date,
           "command": COMMANDS[-1]}  # fmt: skip
    print(f"[196,64,10] shared, 1,000 samples, 2 workers, {realizations} realizations on VACASK timed whole: "
          f"{res['wall_min']:.1f} min wall, {cpu:.0f} CPU s ({res['cpu_min_on_2_cores']:.1f} min of 2 cores), "
          f"load {load} -> {res['load1_after']}")  # fmt: skip
    return res


def main(argv: list[str]) -> dict:
    if "--timed" in argv:  # the whole run alone, beside the figures of the last full run
        res = json.loads(OUT.read_text()) if OUT.is_file() else {}
        res["f14_timed"] = timed()
        OUT.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {OUT}")
        return res
    quick = "--quick" in argv
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": {"cpus": os.cpu_count()},
           "load1_before": round(os.getloadavg()[0], 2)}  # fmt: skip
    res["digits"] = digits(*((2, 6, 1) if quick else (8, 72, 3)))
    if "--no-f14" not in argv:
        res["f14"] = f14(*((1, 3) if quick else (2, 22)))
    elif OUT.is_file() and "f14" in (old := json.loads(OUT.read_text())):  # kept from the run that measured it
        res["f14"] = old["f14"] | {"measured_in": "an earlier run (this one ran --no-f14)"}
        # the commands of the run that measured them, carried over by every run since
        res["commands_f14"] = old.get("commands_f14") or [
            c for c in old.get("commands", []) if " f14.pt " in c and "timed" not in c
        ]
    if OUT.is_file() and "f14_timed" in (old := json.loads(OUT.read_text())):  # --timed's run, kept and named
        res["f14_timed"] = old["f14_timed"] | {"measured_in": "an earlier run (mc_vacask.py --timed)"}
    res["load1_after"] = round(os.getloadavg()[0], 2)
    res["commands"] = COMMANDS
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {OUT}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
