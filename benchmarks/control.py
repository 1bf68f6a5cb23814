"""Closed-loop control benchmark (`make bench`): analog controllers in the loop with their plant.

    python control.py loops     # per plant (pendulum, pendulum-swingup, cartpole), a TD-KAN
                                # [obs, 8, 1] and a device MLP of about the same parameter count,
                                # each trained by `anasim control train` and run by
                                # `anasim control simulate --episodes 100`: success of the torch
                                # and circuit loops, RMS deviation, power, energy per step, times
    python control.py pendulum-swingup   # one plant's loops (swing-up: 3 DAgger rounds)
    python control.py engines   # the pendulum's TD-KAN through both circuit loops (the plant in the
                                # transient; the plant in lock-step through PySpice), 20 episodes:
                                # their largest difference, relative to the state range
    python control.py arm       # 2-link arm inverse kinematics, TD-KAN against MLP: hand error
                                # (m, RMS, torch) against hidden nodes 2, 4, 8, 16

Results: results/control.json (each entry written as it finishes), checkpoints and trajectories
in results/control/ (not committed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OUT = HERE / "results" / "control.json"
RUNS = HERE / "results" / "control"
ANASIM = str(Path(sys.executable).with_name("anasim"))
PLANTS = ("pendulum", "pendulum-swingup", "cartpole")
# MLP widths giving about the TD-KAN [obs, 8, 1] (2 bases, batch norm) parameter count
MLP_HIDDEN = {"pendulum": 17, "pendulum-swingup": 17, "cartpole": 17}
# DAgger rounds: swing-up's expert hands over to LQR in a region uniform states rarely sample
DAGGER = {"pendulum-swingup": 3}


def record(key: str, value) -> None:
    done = json.loads(OUT.read_text()) if OUT.is_file() else {}
    done[key] = value
    OUT.write_text(json.dumps(done, indent=1) + "\n")


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    print("$ anasim " + " ".join(args), flush=True)
    subprocess.run([ANASIM, *args], check=True)
    return time.perf_counter() - t0


def loops(plants=PLANTS) -> None:
    """Each plant: TD-KAN and MLP trained, then 100 episodes through the netlist loop."""
    RUNS.mkdir(parents=True, exist_ok=True)
    for plant in plants:
        for arch, hidden in (("tdkan", "8"), ("mlp", str(MLP_HIDDEN[plant]))):
            ckpt = RUNS / f"{plant}_{arch}.pt"
            train = ["control", "train", "--plant", plant, "--arch", arch, "--hidden", hidden, "-o", str(ckpt)]
            train_s = run([*train, "--dagger", str(DAGGER.get(plant, 0))])
            js = RUNS / f"{plant}_{arch}.json"
            sim = ["control", "simulate", str(ckpt), "--episodes", "100", "--json", str(js)]
            run([*sim, "--plot", str(RUNS / f"{plant}_{arch}.png")])
            r = json.loads(js.read_text())
            r |= {"train_s": round(train_s, 1), "hidden": int(hidden), "command": "anasim " + " ".join(sim)}
            record(f"{plant}/{arch}", r)


def engines() -> None:
    ckpt = RUNS / "pendulum_tdkan.pt"
    if not ckpt.is_file():
        loops(["pendulum"])
    out = {}
    for engine in ("netlist", "pyspice"):
        js = RUNS / f"engine_{engine}.json"
        run(["control", "simulate", str(ckpt), "--episodes", "20", "--engine", engine, "--json", str(js)])
        out[engine] = json.loads(js.read_text())
    a, b = (np.load(RUNS / f"engine_{e}.npz") for e in ("netlist", "pyspice"))
    span = np.array([2 * np.pi, 16.0])  # the pendulum's state range
    diff = np.abs(a["circuit_states"] - b["circuit_states"]) / span
    record(
        "pendulum/engines",
        {
            "episodes": 20,
            "max_difference_of_range": float(np.nanmax(diff)),
            "rms_difference_of_range": float(np.sqrt(np.nanmean(diff**2))),
            "netlist_s": out["netlist"]["circuit_loop_s"],
            "pyspice_s": out["pyspice"]["circuit_loop_s"],
            "torch_s": out["netlist"]["torch_loop_s"],
        },
    )


def arm(widths=(2, 4, 8, 16), seeds=(0, 1)) -> None:
    import torch

    from anasim.control.arm import TwoLinkArm, arm_dataset, hand_error
    from anasim.families import count_params
    from anasim.train import TrainOptions, train_model

    torch.set_num_threads(1)
    a = TwoLinkArm()
    data = arm_dataset(a, 20000, 0)
    rows = []
    for arch in ("tdkan", "mlp"):
        for h in widths:
            errs = []
            for seed in seeds:
                cfg = {"arch": arch, "dims": [2, h, 2]} | (
                    {"bases": ["a21", "z21"], "norm": "batch"} if arch == "tdkan" else {"activation": "a21"}
                )
                opts = TrainOptions(epochs=80, lr=3e-3, batch_size=256, patience=20, seed=seed, progress=False)
                model, _ = train_model(cfg, data, opts)
                errs.append(hand_error(model, a, data))
            rows.append({"arch": arch, "hidden": h, "params": count_params(model), "hand_error_m": errs})
            print(rows[-1], flush=True)
    record("arm", {"reach_m": a.scale(), "seeds": list(seeds), "rows": rows})


def main(argv: list[str]) -> None:
    for what in argv or ["loops", "engines", "arm"]:
        if what in PLANTS:  # one plant's loops only
            loops([what])
            continue
        {"loops": loops, "engines": engines, "arm": arm}[what]()


if __name__ == "__main__":
    main(sys.argv[1:])
