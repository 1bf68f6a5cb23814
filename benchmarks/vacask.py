"""VACASK against ngspice on anasim's decks, and what a VACASK sample stimulus costs (issue 31, items 1-3).

Two measurements, written to results/vacask.json:

* ``stimulus``: the sample stimulus of a DC sweep in VACASK alone, K input sources into 1k
  resistors, N samples, CPU seconds of the ``vacask`` process (user + sys, its rusage):
  ``list``, what the writer uses (one subcircuit of the sources takes a sample's input vector,
  the control block sweeps it over the list of samples); ``index`` (one flat vector of all
  samples, the sources indexing it by a swept sample number: every source copies the vector at
  every point); ``alter`` (a control script that alters each source and runs one operating point
  per sample: one raw file per sample). Defaults: K 64 and 784, N 1,000 (``alter``: N 100).
* ``engines``: ``anasim simulate --engine ngspice,vacask --jobs 1`` (and vacask,ngspice: both
  orders) on the plain digits demo model (360 images), a wired 64-row tile (digits [64,32,10],
  ``--tile 64,64 --wire-r 1``, 10 images), the KirchhoffNet example (20 samples) and a TD-KAN
  transient (5 images): each engine's CPU seconds (its processes' user + sys: ``engine_cpu_s``
  of the results), wall seconds, and the largest difference between the engines over the range.

    python vacask.py                 # both (about 3 minutes on 2 cores)
    python vacask.py stimulus        # one of them
    python vacask.py engines --only wired64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from engines import ANASIM, ROOT, checkpoint, git_commit, rel

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "vacask.json"
DECKS = {  # name: (model of engines.py, simulate arguments, samples)
    "plain": ("demo", [], 360),
    "wired64": ("digits32", ["--mapping", "edge", "--wire-r", "1", "--tile", "64,64"], 10),
    "kirchhoffnet": ("kirchhoffnet", [], 20),
    "tran": ("demo", ["--analysis", "tran"], 5),
}


def stimulus_deck(kind: str, k: int, n: int, x: np.ndarray) -> str:
    """A deck of K input sources into 1k resistors over N samples, the stimulus of ``kind``."""
    vec = lambda v: "[" + ", ".join(map(repr, np.asarray(v, float).tolist())) + "]"  # noqa: E731
    lines = ["stimulus", "ground 0", 'load "resistor.osdi"', "model resistor resistor", "model vsource vsource"]
    lines += [f"R{i} (in_{i} 0) resistor r=1000.0" for i in range(k)]
    ports = " ".join(f"i{i}" for i in range(k))
    nodes = " ".join(f"in_{i}" for i in range(k))
    if kind == "alter":
        lines += [f"Vin{i} (in_{i} 0) vsource dc=0.0" for i in range(k)]
        ctl = [f'alter instance("Vin{i}") dc={v!r}' for s in range(n) for i, v in enumerate(x[s].tolist())]
        ctl = [c for s in range(n) for c in ctl[s * k : (s + 1) * k] + [f"analysis s{s} op"]]
    elif kind == "list":
        lines += [f"subckt s({ports})", f"  parameters x={vec(np.zeros(k))}"]
        lines += [f"  Vin{i} (i{i} 0) vsource dc=x[{i}]" for i in range(k)] + ["ends", f"X ({nodes}) s x={vec(x[0])}"]
        ctl = ['sweep idx instance="X" parameter="x" values={' + ", ".join(vec(r) for r in x) + "}", "analysis out op"]
    else:  # index
        lines += [f"subckt s({ports})", f"  parameters k=0 x={vec(np.zeros(k))}"]
        lines += [f"  Vin{i} (i{i} 0) vsource dc=x[k*{k}+{i}]" for i in range(k)]
        lines += ["ends", f"X ({nodes}) s k=0 x={vec(x.reshape(-1))}"]
        ctl = [f'sweep idx instance="X" parameter="k" values=range({n})', "analysis out op"]
    return "\n".join([*lines, "control", "  abort always", "  save v(in_0)", *ctl, "  print stats", "endc"]) + "\n"


def stimulus(sizes=((64, 1000), (784, 1000)), kinds=("list", "index", "alter")) -> list[dict]:
    from anasim.sim.vacask.process import parse_stats, read_raw, run_deck

    rows = []
    for k, n in sizes:
        for kind in kinds:
            m = min(n, 100) if kind == "alter" else n  # a raw file per sample: 100 show the trend
            x = np.random.default_rng(0).uniform(0, 1.25, (m, k))
            text = stimulus_deck(kind, k, m, x)
            with tempfile.TemporaryDirectory(prefix="anasim-vacask-") as tmp:
                raw = "s0.raw" if kind == "alter" else "out.raw"
                log, counters = run_deck(text, Path(tmp), raw, timeout=1800)
                first = read_raw(Path(tmp) / raw)["in_0"]
                assert np.allclose(first[:1], x[0, 0]), (kind, first[:3], x[0, 0])
            stats = parse_stats(log)
            rows.append({
                "stimulus": kind, "inputs": k, "samples": m, "deck_mb": round(len(text) / 1e6, 2),
                "cpu_s": round(counters["cpu_s"], 3), "cpu_ms_per_sample": round(1e3 * counters["cpu_s"] / m, 3),
                "parse_s": round(stats.get("parse_s", 0.0), 3), "load1": round(os.getloadavg()[0], 2),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def engines_run(deck: str, order: str, tmp: Path) -> dict:
    model, extra, samples = DECKS[deck]
    ckpt = checkpoint(model)
    stem = tmp / f"{deck}_{order.replace(',', '_')}"
    args = ["--samples", str(samples), "--jobs", "1", *extra, "--engine", order, "--json", f"{stem}.json"]
    t0 = time.perf_counter()
    proc = subprocess.run([str(ANASIM), "simulate", str(ckpt), *args], cwd=ROOT, capture_output=True, text=True)
    row = {"deck": deck, "order": order, "samples": samples, "rc": proc.returncode,
           "command": shlex.join(["anasim", "simulate", rel(ckpt), *args]), "wall_s": round(time.perf_counter() - t0, 2),
           "load1": round(os.getloadavg()[0], 2)}  # fmt: skip
    if proc.returncode != 0:
        row["error"] = (proc.stdout + proc.stderr)[-2000:]
        return row
    data = json.loads(Path(f"{stem}.json").read_text())
    for name, e in data["engines"].items():
        row[f"{name}_cpu_s"] = e["engine_cpu_s"]
        row[f"{name}_wall_s"] = e["wall_s"]
        row[f"{name}_analysis_s"] = e["rusage"].get("analysis_s")
    agree = data["engine_agreement"]
    row |= {"max_diff_rel_range": agree["max_diff_rel_range"], "output_range_v": agree["output_range_v"]}
    row["accuracy"] = data.get("circuit_accuracy")
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="*", help="stimulus, engines (default: both)")
    p.add_argument("--only", action="append", choices=list(DECKS), help="engines: this deck only (repeatable)")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    what = a.what or ["stimulus", "engines"]
    if set(what) - {"stimulus", "engines"}:
        p.error(f"unknown measurement {sorted(set(what) - {'stimulus', 'engines'})}: give stimulus or engines")
    out = Path(a.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if "stimulus" in what:
        result["stimulus"] = stimulus()
    if "engines" in what:
        rows = [r for r in result.get("engines", []) if a.only and r["deck"] not in a.only]
        with tempfile.TemporaryDirectory(prefix="anasim-vacask-") as tmp:
            for deck in a.only or list(DECKS):
                for order in ("ngspice,vacask", "vacask,ngspice"):
                    rows.append(engines_run(deck, order, Path(tmp)))
                    print(json.dumps(rows[-1]), flush=True)
        result["engines"] = rows
    from anasim.sim.engine import get_engine

    result |= {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "engines_versions": {n: get_engine(n).version() for n in ("ngspice", "vacask")},
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "command": shlex.join(["python", "vacask.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
