"""Lock-step co-simulation (anasim.sim.ngspice.lockstep): what the callback round-trip costs per accepted
time point, and resident memory over 50 runs with and without the per-run clean-up.

Cost is CPU time (best of 5; the machine is shared, wall time is not comparable) of a 10k-point
transient of a one-source linear loop: ngspice in this process with a constant source (no source
callback, the data callback only), the plant-free lock-step, and a scalar plant. Memory is RSS
after 10, 25 and 50 runs of 10k points, each count in a fresh process, relative to after run 1.
Writes results/lockstep.json (figures quoted in the docstrings of anasim/sim/ngspice/lockstep.py and libngspice.py).

    python lockstep.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

LOOP = "loop\nVobs obs 0 external\nEu u 0 obs 0 -2\nRl u 0 1k\n.end\n"
CONST = LOOP.replace("external", "dc 1")
DT, T_STOP = 1e-4, 1.0  # 10,008 accepted points


def plant(x, u):
    return -x + u


def cost() -> dict[str, float]:
    from anasim.sim.ngspice import libngspice, lockstep

    lockstep.run_lockstep(LOOP, plant, [1.0], ["Vobs"], ["u"], 1e-2, 1.0)  # the library's start-up
    engine = libngspice.shared()

    def constant():
        engine.load_circuit(CONST)
        engine.exec_command("save u")
        engine.exec_command(f"tran {DT} {T_STOP} 0 {DT}")
        libngspice.clean(engine)

    runs = {
        "ngspice_constant_source": constant,
        "lockstep_plant_free": lambda: lockstep.run_lockstep(
            LOOP, None, [], ["Vobs"], ["u"], DT, T_STOP, observe=lambda t, x: [1.0]
        ),
        "lockstep_scalar_plant": lambda: lockstep.run_lockstep(LOOP, plant, [1.0], ["Vobs"], ["u"], DT, T_STOP),
    }
    points = len(lockstep.run_lockstep(LOOP, plant, [1.0], ["Vobs"], ["u"], DT, T_STOP).t)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(5):
        for name, run in runs.items():
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    return {f"{name}_us_per_point": round(cpu / points * 1e6, 1) for name, cpu in best.items()}


def memory(clean: bool) -> list[float]:
    """RSS growth (MiB) after 10, 25 and 50 runs; ``clean`` False skips the per-run clean-up."""
    from anasim.sim.ngspice import libngspice, lockstep

    if not clean:
        libngspice.clean = lambda engine: None

    def rss() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

    lockstep.run_lockstep(LOOP, plant, [1.0], ["Vobs"], ["u"], DT, T_STOP)
    base, grown = rss(), []
    for k in range(1, 51):
        lockstep.run_lockstep(LOOP, plant, [1.0], ["Vobs"], ["u"], DT, T_STOP)
        if k in (10, 25, 50):
            grown.append(round(rss() - base, 2))
    return grown


def main() -> None:
    result = {"cost_cpu": cost()}
    for clean in (False, True):  # a fresh process each: the library keeps what it kept
        code = f"import lockstep, json; print(json.dumps(lockstep.memory({clean})))"
        out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True)
        result[f"rss_mib_after_10_25_50_runs_{'clean' if clean else 'not_clean'}"] = json.loads(out.stdout)
    print(json.dumps(result, indent=1))
    (Path(__file__).parent / "results" / "lockstep.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
