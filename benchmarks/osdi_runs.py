"""OSDI against pwl B-sources on the decks of anasim's own runs (issue 31, item 2).

benchmarks/osdi.py measures the decks ``anasim compile`` writes (one ``.func`` per curve, a
B-source per device calling it). anasim's batched runs write other decks: devices into virtual
grounds factored into one voltage B-source per (row, curve) and a VCCS per device
(:func:`anasim.sim.tuning.factor_devices`), and the remaining devices inlined, each its own
``I=pwl(V(p,n), x0, gain*y0, ...)`` (a fast sweep's ``Run.compact``). This script takes the decks
an ``anasim simulate --run-dir DIR`` left and runs each as it is (``bsource``) and with every
inlined device B-source replaced by an OSDI instance (``osdi_1t``, ``set num_threads=1`` first
in the .control block; ``osdi``, ngspice's default OpenMP threads):

* the devices of one curve (the same knots and the same currents up to a factor) share a module
  ``I(a, k) = gain * pwl(V(a, k))`` (``V(a)`` for a device into a virtual ground), the pwl written
  with ngspice's formula (:func:`anasim.sim.vacask.modules.pwl_statements`), ``gain`` the device's
  largest current over the curve's, its only instance parameter (as an adopted writer would
  write ``area * amps_per_unit * scale``);
* a device whose table is its own (parallel devices merged into one table, the fast path's
  rewrite: a21 + z21 of one edge) is an instance of one module per set of knots, its currents
  ``y0..yN`` instance parameters (as the VACASK writer's tables, :class:`anasim.sim.vacask.modules.Library`);
* the modules are compiled once by openvaf-r (cached) and loaded by ``pre_osdi``.

Per deck: CPU seconds of ngspice (user + sys), and max |osdi - bsource| of its outputs over the
range of its bsource outputs; summed over the decks. ``--jobs 2`` runs two decks at once (anasim's parallel jobs on 2 cores).

    anasim simulate fashion64.pt --samples 10 --mapping edge --tile 64,64 --wire-r 1 --run-dir /tmp/rd
    python benchmarks/osdi_runs.py /tmp/rd --label fashion_wired64 --command "anasim simulate ..." \\
        --simulate-cpu 93.3 [--jobs 2] [--ways bsource,osdi_1t,osdi]

Rows go to results/osdi.json under ``anasim_runs`` (one per label, jobs and way; benchmarks/osdi.py keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEVICE = re.compile(r"^B(d\S*) (\S+) (\S+) I=pwl\(V\(([^),]+)(?:,([^)]+))?\),([^)]*)\)$")


def convert(deck: Path, out: Path, threads: int | None) -> dict:
    """``deck`` with its inlined device B-sources as OSDI instances, written to ``out``."""
    from anasim.devices import openvaf, veriloga
    from anasim.sim.vacask.modules import pwl_statements

    lines = deck.read_text().splitlines()
    parsed, new = [], []
    for ln in lines:
        m = DEVICE.match(ln)
        if not m:
            parsed.append(ln)
            continue
        name, p, q, cp, cq, pts = m.groups()
        if cp != p or (cq is not None and cq != q):
            raise SystemExit(f"{deck}: unexpected device line {ln[:100]}")
        v = [float(t) for t in pts.split(",")]
        xs, ys = tuple(v[0::2]), np.array(v[1::2])
        gain = float(ys[int(np.argmax(np.abs(ys)))]) or 1.0
        parsed.append((name, p, q, xs, cq is None, ys, gain))
    # one curve's devices: the same shape up to a few ulp (gain * y rounded, then divided by gain)
    families: dict[tuple, list] = {}  # (knots, grounded) -> [[shape, members]]
    buckets: dict[tuple, list] = {}  # the same with the shape to 6 digits: few comparisons each
    for item in parsed:
        if isinstance(item, tuple):
            name, p, q, xs, grounded, ys, gain = item
            family = families.setdefault((xs, grounded), [])
            bucket = buckets.setdefault((xs, grounded, tuple(np.round(ys / gain, 6))), [])
            hit = next((f for f in bucket if np.allclose(f[0], ys / gain, rtol=1e-12, atol=1e-15)), None)
            if hit is None:
                bucket.append([ys / gain, [name]])
                family.append(bucket[-1])
            else:
                hit[1].append(name)
    modules: list[str] = []
    curve_of: dict[str, tuple[str, bool]] = {}  # device -> (module, a curve module with gain, else a table)
    for (xs, grounded), family in families.items():
        control = "x = V(a);" if grounded else "x = V(a, k);"
        tables = [f for f in family if len(f[1]) == 1]
        for shape, members in family:
            if len(members) > 1:
                mod = f"dev{len(modules)}"
                body = [control, *pwl_statements(xs, [veriloga.number(y) for y in shape], "x", "y")]
                modules.append(_module(mod, ["gain"], body, "gain * y"))
                curve_of |= {m: (mod, True) for m in members}
        if tables:  # one module for every device of these knots with a table of its own (merged devices)
            mod = f"dev{len(modules)}"
            body = [control, *pwl_statements(xs, [f"y{j}" for j in range(len(xs))], "x", "y")]
            modules.append(_module(mod, [f"y{j}" for j in range(len(xs))], body, "y"))
            curve_of |= {f[1][0]: (mod, False) for f in tables}
    n = 0
    for item in parsed:
        if not isinstance(item, tuple):
            new.append(item)
            continue
        name, p, q, xs, grounded, ys, gain = item
        mod, curve = curve_of[name]
        params = f"gain={gain!r}" if curve else " ".join(f"y{j}={y!r}" for j, y in enumerate(ys.tolist()))
        new.append(f"N{name} {p} {q} m_{mod} {params}")
        n += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    if not modules:  # no inlined device (all factored, as in the digits example): the deck as it is
        out.write_text(deck.read_text())
        return {"devices": 0, "modules": 0}
    osdi = openvaf.compile_va(veriloga.source(modules))
    shutil.copy(osdi, out.parent / "devices.osdi")
    final = []
    for ln in new:
        if ln == ".control":
            final += [f".model m_dev{k} dev{k}" for k in range(len(modules))]
            final += [ln, *([f"set num_threads={threads}"] if threads else []), "pre_osdi devices.osdi"]
        else:
            final.append(ln)
    out.write_text("\n".join(final) + "\n")
    return {"devices": n, "modules": len(modules)}


def _module(name: str, params: list[str], body: list[str], current: str) -> str:
    head = [f"module {name}(a, k);", "  inout a, k;", "  electrical a, k;"]
    head += [f'  (* type="instance" *) parameter real {p} = 0.0;' for p in params]
    tail = [f"    I(a, k) <+ {current};", "  end", "endmodule", ""]
    return "\n".join([*head, "  real x, y;", "  analog begin", *(f"    {s}" for s in body), *tail])


def run(deck: Path) -> dict:
    from anasim.sim.ngspice.process import batch_command, parse_rusage

    t0 = time.perf_counter()
    proc = subprocess.Popen(batch_command(deck.name), cwd=deck.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    stdout, stderr = proc.communicate()
    status = proc.returncode
    wall = time.perf_counter() - t0
    if status:
        raise SystemExit(f"ngspice {deck} failed ({status}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    data = re.search(r"^wrdata (\S+)", deck.read_text(), re.MULTILINE).group(1)
    outputs = np.loadtxt(deck.parent / data, skiprows=1, ndmin=2)[:, 1:]
    c = parse_rusage(stdout + stderr)
    return {"wall_s": wall, "load_s": c.get("load_s", 0.0), "analysis_s": c.get("analysis_s", 0.0), "_out": outputs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--label", required=True)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--ways", default="bsource,osdi_1t")
    p.add_argument("--work", type=Path, default=Path("/tmp/anasim-osdi-runs"))
    p.add_argument("--out", type=Path, default=HERE / "results" / "osdi.json")
    p.add_argument("--command", required=True, help="the anasim simulate command that left run_dir (recorded)")
    p.add_argument("--simulate-cpu", type=float, required=True, help="CPU s of that command's process tree (recorded)")
    a = p.parse_args(argv)
    ways = a.ways.split(",")
    decks = sorted(a.run_dir.rglob("deck.cir"))
    work = a.work / a.label
    shutil.rmtree(work, ignore_errors=True)
    copies: dict[str, list[Path]] = {w: [] for w in ways}
    devices: dict[Path, int] = {}
    for d in decks:
        rel = d.parent.relative_to(a.run_dir)
        for w in ways:
            target = work / w / rel / "deck.cir"
            if w == "bsource":
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(d, target)
            else:
                devices[rel] = convert(d, target, 1 if w == "osdi_1t" else None)["devices"]
            copies[w].append(target)
    base = {
        "label": a.label,
        "command": a.command,
        "simulate_cpu_s": a.simulate_cpu,
        "decks": len(decks),
        "devices": sum(devices.values()),
    }
    base["jobs"] = a.jobs
    rows, outs = [], {}
    for w in ways:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.jobs) as pool:
            rs = list(pool.map(run, copies[w]))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        outs[w] = [r["_out"] for r in rs]
        row = {**base, "way": w, "ngspice_cpu_s": round(cpu, 3), "wall_s": round(time.perf_counter() - t0, 3)}
        row["ngspice_load_s"] = round(sum(r["load_s"] for r in rs), 3)
        if w != "bsource" and "bsource" in ways:
            b = rows[0]["ngspice_cpu_s"]
            row["cpu_ratio_bsource_over_this"] = round(b / cpu, 3)
            row["max_diff_rel_range"] = max(
                float(np.abs(o - r).max() / ((r.max() - r.min()) or 1.0)) for o, r in zip(outs[w], outs["bsource"])
            )
        row["load1"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(f"{a.label} {w:<8} jobs {a.jobs}: ngspice cpu {cpu:.2f} s, wall {row['wall_s']:.2f} s, "
              f"load {row['ngspice_load_s']:.2f} s, {row.get('cpu_ratio_bsource_over_this', '')}, "
              f"diff {row.get('max_diff_rel_range', '')}, load avg {row['load1']}", flush=True)  # fmt: skip
    data = json.loads(a.out.read_text())
    kept = [r for r in data.get("anasim_runs", []) if (r["label"], r["jobs"]) != (a.label, a.jobs)]
    data["anasim_runs"] = kept + rows
    a.out.write_text(json.dumps(data, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
