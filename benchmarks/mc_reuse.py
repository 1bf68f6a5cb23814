"""Could one parsed deck serve every Monte Carlo realization? (`make bench`; results/mc_reuse.json)

A realization of the digits TD-KAN [64,16,10] (edge mapping, 360 samples, area mismatch 0.05)
pays ngspice's parse of its decks beside a short analysis. ngspice 39 cannot change a behavioural
source's expression after the parse, but it can ``alter`` an element's value. After the runner's
rewrites (:mod:`anasim.sim.partition`) a realization's layer-0 deck differs from the nominal
one only in its devices' linear gains (``factor_devices`` made each device a VCCS), so this
measures, on ``G`` realizations of layer 0:

* fresh: the runner's path, one deck per realization (rewrites, deck text, parse, analysis);
* reused: the nominal deck parsed once, then per realization ``alter G<name> gain=<g>`` for
  every device, a DC sweep and its outputs, all in the same ngspice run;
* grouped: every realization's deck side by side in one deck, the rows, their curve sources and
  the stimulus shared, one sweep for all;
* in-process: the reused deck in libngspice, in this process (PySpice's shared library, as the
  lock-step runner uses it): parsed once, then per realization every gain ``alter``-ed by
  ``ngSpice_Command``, the sweep, and its output vectors read from memory. No process start, no
  files: what is left is the floor of any per-realization path in ngspice 39, which cannot take
  a new value but by a command or a parse (libngspice 39 exports its 14 API functions and HICUM internals, none that sets a parameter);

whether the reused outputs equal the fresh ones, and whether a realization's altered outputs
depend on what ran before it (each ``dc`` sets the circuit up afresh in ngspice 39: a
realization run first should equal the same run after another), which rows that must not depend
on workers or resumes need.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from montecarlo import RUNS, model

from anasim.circuit.ir import VCCS, BSource
from anasim.families.tdkan.lower import lower_stages
from anasim.families.tdkan.options import TdkanOptions
from anasim.montecarlo.variations import Perturbation
from anasim.pipeline import load
from anasim.sim.batch import deck_text, fast_parts
from anasim.sim.ngspice.process import ngspice_path, read_wrdata

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


def decks(circuit, x):
    """The runner's decks of ``circuit``: (part, deck text) as :func:`anasim.sim.batch.chained` runs them."""
    return [(p, deck_text(p.circuit, p.stimulus(x))) for p in fast_parts(circuit)]


def reused(text: str, runs: list[dict[str, float]]) -> str:
    """The deck with its one analysis replaced by: per realization, alter every gain, sweep, save."""
    head, control = text.split(".control\n")
    lines = control.splitlines()
    keep = [line for line in lines if line.startswith(("set ", "option "))]
    dc = next(line for line in lines if line.startswith("dc "))
    save = next(line for line in lines if line.startswith("wrdata "))
    body = []
    for r, m in enumerate(runs):
        body += [f"alter G{name} gain={g!r}" for name, g in m.items()]
        body += [dc, save.replace("out.txt", f"out{r}.txt"), "destroy all"]
    return head + ".control\n" + "\n".join([*keep, *body, "rusage everything", "quit", ".endc", ".end"]) + "\n"


def in_process(text: str, runs: list[dict[str, float]], nominal: dict[str, float], outputs: list[str]):
    """The nominal deck loaded once into libngspice, then per realization: alter every gain, sweep,
    read the outputs [samples, outputs]. Returns seconds per realization of each step (medians),
    the order and exactness checks below, and each realization's outputs."""
    from anasim.sim.ngspice.libngspice import clean, shared

    eng = shared()
    send = eng._ngspice_shared.ngSpice_Command
    head, control = text.split(".control\n")
    lines = control.splitlines()
    dc = next(line for line in lines if line.startswith("dc ")).lower().encode()  # names as ngspice keeps them

    def load() -> None:
        eng.load_circuit(head + ".end\n")
        for line in lines:
            if line.startswith(("set ", "option ")):
                send(line.encode())

    def alter(gains: dict[str, float]) -> None:
        for name, g in gains.items():
            send(f"alter g{name.lower()} gain={g!r}".encode())

    def read() -> np.ndarray:
        out = np.stack([vector(eng, o) for o in outputs], axis=1)
        send(b"destroy all")
        return out

    t0 = time.perf_counter()
    load()
    steps = {"load_s": [time.perf_counter() - t0]}
    outs = []
    for m in runs:
        t0 = time.perf_counter()
        alter(m)
        t1 = time.perf_counter()
        send(dc)
        t2 = time.perf_counter()
        outs.append(read())
        t3 = time.perf_counter()
        for key, dt in (("alter_s", t1 - t0), ("sweep_s", t2 - t1), ("read_s", t3 - t2)):
            steps.setdefault(key, []).append(dt)
    # the first realization again, after the others: the same bits? And the nominal deck loaded
    # afresh against the same deck altered to its own gains: does an altered value differ?
    alter(runs[0])
    send(dc)
    again = read()
    send(b"remcirc")
    load()
    send(dc)
    loaded = read()
    alter(nominal)
    send(dc)
    realtered = read()
    clean(eng)
    checks = {
        "first_again_equal": bool(np.array_equal(again, outs[0])),
        "nominal_realtered_equal": bool(np.array_equal(loaded, realtered)),
        "nominal_realtered_max_rel_range": float(np.abs(loaded - realtered).max() / np.ptp(loaded)),
    }
    return {k: float(np.median(v)) for k, v in steps.items()}, checks, outs


def vector(eng, name: str) -> np.ndarray:
    """A real vector of the current plot, copied out of libngspice."""
    from PySpice.Spice.NgSpice.Shared import ffi

    info = eng._ngspice_shared.ngGet_Vec_Info(name.lower().encode())
    if info == ffi.NULL or info.v_realdata == ffi.NULL:
        raise SystemExit(f"libngspice has no real vector {name!r}: {eng.transcript[-5:]}")
    return np.frombuffer(ffi.buffer(info.v_realdata, info.v_length * 8), dtype=float).copy()


def gains(parts) -> list[dict[str, float]]:
    """Each part's VCCS gains by name: what a realization's decks change."""
    return [{e.name: float(e.gain) for e in p.circuit.elements if isinstance(e, VCCS)} for p, _ in parts]


def grouped(parts: list, x: np.ndarray) -> str:
    """One deck holding every realization's part side by side: the rows, their curve sources and
    the stimulus once, each realization's other elements and nodes suffixed ``_r<k>``."""
    first = parts[0].circuit
    shared = set(first.inputs) | {"0"} | {e.p for e in first.elements if isinstance(e, BSource)}
    elements = [e for e in first.elements if isinstance(e, BSource)]  # the row curves, the same in all
    outputs = []
    for k, part in enumerate(parts):
        node = lambda n, k=k: n if n in shared else f"{n}_r{k}"  # noqa: E731
        for e in part.circuit.elements:
            if isinstance(e, BSource):
                continue
            ports = {f: node(getattr(e, f)) for f in ("p", "n", "cp", "cn", "inp", "inn", "out") if hasattr(e, f)}
            elements.append(replace(e, name=f"{e.name}_r{k}", **ports))
        outputs += [node(o) for o in part.circuit.outputs]
    c = replace(first, elements=tuple(elements), outputs=tuple(outputs), groups=(),
                virtual_grounds=tuple(f"{v}_r{k}" for k in range(len(parts)) for v in first.virtual_grounds))  # fmt: skip
    return deck_text(c, parts[0].stimulus(x))


def main(argv: list[str]) -> dict:
    g = int(argv[0]) if argv else 10
    net = load(model("digits"))
    stage = lower_stages(net.model, TdkanOptions())[0]
    x = np.random.default_rng(0).uniform(0.2, 1.1, (360, len(stage.inputs)))  # row voltages, 360 samples
    varied = [Perturbation((("area", 0.05),), 0, r)(stage, "stage0") for r in range(g)]
    nominal = decks(stage, x)
    res = {"realizations": g, "samples": 360, "parts": len(nominal)}
    inproc: list[np.ndarray] = []
    for trial in range(2):  # in turns, twice: the machine is shared
        t0, an, per = time.perf_counter(), 0.0, []
        for r, c in enumerate(varied):
            mine = decks(c, x)
            per.append(gains(mine))
            for k, (_, text) in enumerate(mine):
                an += run(text, WORK / f"fresh{trial}" / f"r{r}p{k}")[1]
        res.setdefault("fresh_s", []).append((time.perf_counter() - t0) / g)
        res.setdefault("fresh_analysis_s", []).append(an / g)
        t0, an = time.perf_counter(), 0.0
        for k, (_, text) in enumerate(nominal):
            # the realization's decks must be the nominal ones but for their gains
            assert all(set(p[k]) == set(gains(nominal)[k]) for p in per), "a realization changed the deck's structure"
            an += run(reused(text, [p[k] for p in per]), WORK / f"reused{trial}" / f"p{k}")[1]
        res.setdefault("reused_s", []).append((time.perf_counter() - t0) / g)
        res.setdefault("reused_analysis_s", []).append(an / g)
        if len(nominal) == 1:  # in this process: the realizations' Python (draws, rewrites, gains) timed apart
            t0 = time.perf_counter()  # what an in-process realization needs: no deck text
            drawn = (Perturbation((("area", 0.05),), 0, r)(stage, "stage0") for r in range(g))
            mine = [gains([(p, None) for p in fast_parts(c)])[0] for c in drawn]
            python_s = (time.perf_counter() - t0) / g
            steps, checks, inproc = in_process(
                nominal[0][1], mine, gains(nominal)[0], list(nominal[0][0].circuit.outputs)
            )
            for key, v in (steps | {"python_s": python_s}).items():
                res.setdefault(f"in_process_{key}", []).append(v)
            res |= {f"in_process_{key}": v for key, v in checks.items()}
    # several realizations in one deck: the parse and the row curves shared (one part: digits layer 0)
    if len(nominal) == 1:
        for trial in range(2):
            t0 = time.perf_counter()  # each realization's rewrites included, as in fresh_s
            an = run(grouped([decks(c, x)[0][0] for c in varied], x), WORK / f"grouped{trial}")[1]
            res.setdefault("grouped_s", []).append((time.perf_counter() - t0) / g)
            res.setdefault("grouped_analysis_s", []).append(an / g)
        both = read_wrdata(WORK / "grouped0" / "out.txt", 10**6)[:, 1:]  # [samples, g * outputs]
        n_out = len(stage.outputs)
        res["grouped_vs_fresh_max_rel_range"] = max(
            float(np.abs(both[:, r * n_out : (r + 1) * n_out] - read_wrdata(WORK / "fresh0" / f"r{r}p0" / "out.txt", 10**6)[:, 1:]).max()
                  / np.ptp(both))
            for r in range(g)
        )  # fmt: skip
    # outputs: reused against fresh, and a realization run alone against the same after another
    out = lambda d, f="out.txt": read_wrdata(d / f, 10**6)  # noqa: E731
    res["reused_vs_fresh_max_rel_range"] = max(
        float(np.abs(out(WORK / "reused0" / "p0", f"out{r}.txt") - out(WORK / "fresh0" / f"r{r}p0")).max()
              / np.ptp(out(WORK / "fresh0" / f"r{r}p0")[:, 1:]))
        for r in range(g)
    )  # fmt: skip
    run(reused(nominal[0][1], [per[1][0]]), WORK / "alone")
    res["alone_equals_after_another"] = bool(
        np.array_equal(out(WORK / "alone", "out0.txt"), out(WORK / "reused0" / "p0", "out1.txt"))
    )
    if inproc:
        fresh = [out(WORK / "fresh0" / f"r{r}p0")[:, 1:] for r in range(g)]
        res["in_process_vs_fresh_max_rel_range"] = max(
            float(np.abs(a - b).max() / np.ptp(b)) for a, b in zip(inproc, fresh)
        )
    med = {k: float(np.median(v)) for k, v in res.items() if isinstance(v, list)}
    res |= {f"{k}_median": v for k, v in med.items()} | {
        "reused_over_fresh": med["reused_s"] / med["fresh_s"],
        "reused_analysis_over_fresh": med["reused_analysis_s"] / med["fresh_analysis_s"],
        "reused_overhead": med["reused_s"] / med["reused_analysis_s"] - 1,
        "fresh_overhead": med["fresh_s"] / med["fresh_analysis_s"] - 1,
    }
    if inproc:
        # per realization: its gains in (alter), and the outputs out; the sweep is the simulation.
        # With the Python that computes the gains (draws, rewrites) the whole overhead
        alter, sweep, read = (med[f"in_process_{k}_s"] for k in ("alter", "sweep", "read"))
        res["in_process_overhead_ngspice"] = (alter + read) / sweep
        res["in_process_overhead"] = (alter + read + med["in_process_python_s"]) / sweep
        print(f"in-process libngspice: alter {alter * 1e3:.1f} ms ({alter / len(per[0][0]) * 1e6:.1f} us a gain, "
              f"{len(per[0][0])} gains), sweep {sweep * 1e3:.1f} ms, read {read * 1e3:.1f} ms, the realization's "
              f"Python {med['in_process_python_s'] * 1e3:.1f} ms: overhead {100 * res['in_process_overhead_ngspice']:.0f}% "
              f"in ngspice, {100 * res['in_process_overhead']:.0f}% in all; against fresh "
              f"{res['in_process_vs_fresh_max_rel_range']:.1e} of the range; the first realization again after "
              f"the others equal: {res['in_process_first_again_equal']}; the nominal deck altered to its own gains "
              f"equal to it loaded: {res['in_process_nominal_realtered_equal']} "
              f"({res['in_process_nominal_realtered_max_rel_range']:.1e} of the range)")  # fmt: skip
    print(f"digits layer 0, {g} realizations: fresh {med['fresh_s']:.3f} s per realization (analysis "
          f"{med['fresh_analysis_s']:.3f} s, overhead {100 * res['fresh_overhead']:.0f}%), reused deck "
          f"{med['reused_s']:.3f} s (analysis {med['reused_analysis_s']:.3f} s, overhead "
          f"{100 * res['reused_overhead']:.0f}%): {res['reused_over_fresh']:.2f}x the time; reused against fresh "
          f"{res['reused_vs_fresh_max_rel_range']:.1e} of the range; a realization alone equals it after another: "
          f"{res['alone_equals_after_another']}"
          + (f"; {g} realizations in one deck {med['grouped_s']:.3f} s each ({med['grouped_s'] / med['fresh_s']:.2f}x), "
             f"against fresh {res['grouped_vs_fresh_max_rel_range']:.1e} of the range" if "grouped_s" in med else ""))  # fmt: skip
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
