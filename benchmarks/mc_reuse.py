"""Could one parsed deck serve every Monte Carlo realization? (`make bench`; results/mc_reuse.json)

A realization of the digits TD-KAN [64,16,10] (edge mapping, 360 samples, area mismatch 0.05)
pays ngspice's parse of its layer-0 deck, 1,088 merged device tables, as large a part of its time
as the analysis. ngspice 39 cannot change a behavioural source's expression after the parse, but
``alter B<name> m=<f>`` scales its current. Area mismatch then needs one source per device, not
one per merged table (each device of an edge draws its own factor), so this measures, on
``G`` realizations of layer 0:

* fresh: the runner's path, one deck per realization (rewrites, merged tables, parse, analysis);
* reused: one deck of unmerged devices parsed once, then per realization ``alter`` of every
  device's multiplier, a DC sweep and its outputs, all in the same ngspice run;

and checks that a realization's altered outputs do not depend on what ran before it (each ``dc``
sets the circuit up afresh in ngspice 39: a realization run first equals the same run after
another), which rows that must not depend on workers or resumes need.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from montecarlo import RUNS, model

from anasim.circuit.ir import Device
from anasim.circuit.netlist import netlist
from anasim.circuit.partition import fold_clippers, fold_pairs, ground_devices, merge_parallel, split
from anasim.circuit.stimulus import FAST_SWEEP_OPTIONS, sweep_run
from anasim.families.tdkan.lower import lower_stages
from anasim.families.tdkan.options import TdkanOptions
from anasim.pipeline import load
from anasim.sim.ngspice import ngspice_path, read_wrdata
from anasim.variations import Perturbation

OUT = Path(__file__).parent / "results" / "mc_reuse.json"
WORK = RUNS / "reuse"


def run(text: str, folder: Path) -> tuple[float, float]:
    """ngspice on ``text`` in ``folder``: (wall seconds, analysis seconds summed over its runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deck.cir").write_text(text)
    t0 = time.perf_counter()
    log = subprocess.run([ngspice_path(), "-b", "deck.cir"], cwd=folder, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    if "rror" in log:
        raise SystemExit(f"ngspice failed in {folder}:\n{log[-2000:]}")
    return wall, sum(float(line.split("=")[1]) for line in log.splitlines() if line.startswith("Total analysis time"))


def decks(circuit, x, merge: bool):
    c = fold_pairs(circuit)
    parts = [fold_clippers(p) for p in split(ground_devices(merge_parallel(c) if merge else c))]
    opts = FAST_SWEEP_OPTIONS
    return [
        (p, netlist(p.circuit, run=sweep_run(p.stimulus(x), p.circuit.outputs, "out.txt", opts, True))) for p in parts
    ]


def reused(text: str, runs: list[dict[str, float]]) -> str:
    """The deck with its one analysis replaced by: per realization, alter every multiplier, sweep, save."""
    head, control = text.split(".control\n")
    lines = control.splitlines()
    keep = [line for line in lines if line.startswith(("set ", "option "))]
    dc = next(line for line in lines if line.startswith("dc "))
    save = next(line for line in lines if line.startswith("wrdata "))
    body = []
    for r, m in enumerate(runs):
        body += [f"alter B{name} m={f!r}" for name, f in m.items()]
        body += [dc, save.replace("out.txt", f"out{r}.txt"), "destroy all"]
    return head + ".control\n" + "\n".join([*keep, *body, "rusage everything", "quit", ".endc", ".end"]) + "\n"


def main(argv: list[str]) -> dict:
    g = int(argv[0]) if argv else 10
    net = load(model("digits"))
    stage = lower_stages(net.model, TdkanOptions())[0]
    x = np.random.default_rng(0).uniform(0.2, 1.1, (360, len(stage.inputs)))  # row voltages, 360 samples
    varied = [Perturbation((("area", 0.05),), 0, r)(stage, "stage0") for r in range(g)]
    res = {"realizations": g, "samples": 360}
    for trial in range(2):  # in turns, twice: the machine is shared
        t0, wall, an = time.perf_counter(), 0.0, 0.0
        for r, c in enumerate(varied):
            for k, (_, text) in enumerate(decks(c, x, merge=True)):
                w, a = run(text, WORK / f"fresh{trial}" / f"r{r}p{k}")
                wall, an = wall + w, an + a
        res.setdefault("fresh_s", []).append((time.perf_counter() - t0) / g)
        res.setdefault("fresh_analysis_s", []).append(an / g)
        t0, wall, an = time.perf_counter(), 0.0, 0.0
        nominal = {e.name: e for e in stage.elements if isinstance(e, Device)}
        for k, (part, text) in enumerate(decks(stage, x, merge=False)):
            names = [e.name for e in part.circuit.elements if isinstance(e, Device)]
            runs = [
                {n: by[n].area / nominal[n].area for n in names}
                for by in ({e.name: e for e in c.elements} for c in varied)
            ]
            w, a = run(reused(text, runs), WORK / f"reused{trial}" / f"p{k}")
            wall, an = wall + w, an + a
            if trial == 0 and k == 0:  # realization 1 run first, in a deck of its own: the same outputs?
                run(reused(text, runs[1:2]), WORK / "alone")
                alone, after = (
                    read_wrdata(d / f, 10**6)
                    for d, f in ((WORK / "alone", "out0.txt"), (WORK / "reused0" / "p0", "out1.txt"))
                )
                res["alone_equals_after_another"] = bool(np.array_equal(alone, after))
        res.setdefault("reused_s", []).append((time.perf_counter() - t0) / g)
        res.setdefault("reused_analysis_s", []).append(an / g)
    med = {k: float(np.median(v)) for k, v in res.items() if isinstance(v, list)}
    res |= {f"{k}_median": v for k, v in med.items()} | {
        "reused_over_fresh": med["reused_s"] / med["fresh_s"],
        "reused_analysis_over_fresh": med["reused_analysis_s"] / med["fresh_analysis_s"],
        "reused_overhead": med["reused_s"] / med["reused_analysis_s"] - 1,
        "fresh_overhead": med["fresh_s"] / med["fresh_analysis_s"] - 1,
    }
    print(f"digits layer 0, {g} realizations: fresh {med['fresh_s']:.3f} s per realization (analysis "
          f"{med['fresh_analysis_s']:.3f} s, overhead {100 * res['fresh_overhead']:.0f}%), reused deck "
          f"{med['reused_s']:.3f} s (analysis {med['reused_analysis_s']:.3f} s, overhead "
          f"{100 * res['reused_overhead']:.0f}%): {res['reused_over_fresh']:.2f}x the time; a realization alone "
          f"equals it after another: {res['alone_equals_after_another']}")  # fmt: skip
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
