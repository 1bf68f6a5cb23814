"""Monte Carlo benchmark (`make bench`): the speed of `anasim simulate --mc`, and accuracy against sigma.

Every run is an `anasim` command, printed and recorded in results/montecarlo.json beside its
figures; the realizations' rows and outputs go to results/montecarlo/runs/ (not committed).

Speed, ratios from one run of this script:
* digits TD-KAN [64,16,10] (edge mapping, 360 test samples, area 0.05) on 1 and 2 worker
  processes: realizations per minute from the difference of a short and a long run (start-up
  cancels; medians of three turns), the 2-worker speed-up, and the overhead of a realization: its wall time minus
  ngspice's analysis time (deck build, parse, start-up), over the analysis time;
* the Fashion-MNIST 14x14 TD-KAN [196,64,10], 3 bases, shared mapping, 1,000 samples, area 0.05 +
  op-amp gain 0.3 (log) + offset 1 mV, on 2 workers: the projected time of 500 realizations, and
  with `speed --full` the 500 realizations themselves (24 minutes). `plots` redraws the PNGs from
  results/montecarlo.json.
Figures (results/montecarlo/*.png), worst / mean / best accuracy over the realizations:
* digits, edge mapping: area and iv-scale against sigma beside the torch eq. 6 curve, and the
  same-draw torch twin of every realization (its accuracy must equal the circuit's);
* the same area sweep for a model trained with --train-noise 0.1;
* Fashion-MNIST [784,256,10], shared mapping: area (exact with ideal virtual grounds: each cell
  stands for its edge's device); KirchhoffNet on Friedman: test loss against capacitor mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from cpu import children_cpu  # noqa: E402

from anasim.families.tdkan.lower import coefficient_index, lower_stages  # noqa: E402
from anasim.families.tdkan.model import scale_coefficients  # noqa: E402
from anasim.families.tdkan.options import TdkanOptions  # noqa: E402
from anasim.montecarlo.variations import VARIATIONS, Perturbation, coefficient_factors  # noqa: E402
from anasim.pipeline import load  # noqa: E402

OUT = Path(__file__).parent / "results" / "montecarlo"
RUNS = OUT / "runs"
ANASIM = str(Path(sys.executable).with_name("anasim"))
SIGMAS = (0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.46)  # the paper's range of relative error
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MODELS = {
    "digits": ["--dataset", "digits", "--dims", "64,16,10", "--bases", "a21,z21", "--epochs", "60"],
    "digits-noise": ["--dataset", "digits", "--dims", "64,16,10", "--bases", "a21,z21", "--epochs", "60",
                     "--train-noise", "0.1"],
    "f14": ["--dataset", "mnist", "--data-dir", FASHION_DIR, "--dims", "196,64,10", "--bases", "a21,z21,zaz21",
            "--epochs", "3"],
    "fashion": ["--dataset", "fashion-mnist", "--dims", "784,256,10", "--bases", "a21,z21", "--lr", "3e-3",
                "--batch-size", "256", "--epochs", "8"],
    "kn": ["--arch", "kirchhoffnet", "--dataset", "friedman", "--nodes", "7", "--repeat", "2", "--epochs", "100",
           "--lr", "1e-2", "--patience", "100"],
}  # fmt: skip
COMMANDS: list[str] = []
CPU: dict[str, float] = {}  # command -> CPU seconds (user + sys) of anasim and its workers and ngspice processes


def anasim(args: list[str]) -> float:
    """Run one anasim command; its wall time in seconds (its CPU seconds go to ``CPU``)."""
    line = "anasim " + " ".join(map(str, args))
    print("$", line, flush=True)
    COMMANDS.append(line.replace(str(RUNS) + "/", ""))
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run([ANASIM, *map(str, args)], check=True, stdout=subprocess.DEVNULL)
    CPU[line] = children_cpu() - c0
    return time.perf_counter() - t0


def model(name: str) -> Path:
    ckpt = RUNS / f"{name}.pt"
    if not ckpt.exists():
        anasim(["train", *MODELS[name], "--seed", "0", "--threads", "1", "-o", ckpt])
    return ckpt


def mc(name: str, tag: str, args: list[str], reuse: bool = False) -> tuple[dict, list[dict], float | None]:
    """A fresh Monte Carlo of checkpoint ``name``: (summary, rows, wall seconds). With ``reuse``, a
    finished run of the same command is read back instead (wall None): figures, not timings."""
    out = RUNS / f"{tag}.json"
    cmd = ["simulate", model(name), "--json", out, *args]
    done = out.with_name(out.name + ".cmd")
    if reuse and out.exists() and done.exists() and done.read_text().strip() == " ".join(map(str, cmd)):
        print("$ (reused) anasim", done.read_text().strip(), flush=True)
        COMMANDS.append(("anasim " + done.read_text().strip()).replace(str(RUNS) + "/", ""))
        wall = None
    else:
        shutil.rmtree(out.with_suffix(".mc"), ignore_errors=True)
        wall = anasim(cmd)
        done.write_text(" ".join(map(str, cmd)))
    rows = [json.loads(line) for line in (out.with_suffix(".mc") / "rows.jsonl").read_text().splitlines()]
    return json.loads(out.read_text()), rows, wall


def speed(quick: bool, full: bool = False) -> dict:
    res = {}
    # a digits realization takes about 0.3 s: 100 more realizations, and 1 and 2 workers in turns
    # three times (medians), keep the shared machine's drift out of the ratio
    short, long = (3, 9) if quick else (20, 120)
    rates = {1: [], 2: []}
    one: list[dict] = []
    for _turn in range(1 if quick else 3):
        for w in (1, 2):
            walls = {}
            for n in (short, long):
                args = ["--mc", n, "--vary", "area=0.05", "--samples", 360, "--workers", w]
                s, rows, walls[n] = mc("digits", f"speed_digits_w{w}_{n}", args)
            rates[w].append(60 * (long - short) / (walls[long] - walls[short]))
            if w == 1:
                one = rows  # the 1-worker long run's rows: the overhead below
    rate = {w: float(np.median(r)) for w, r in rates.items()}
    med = {k: float(np.median([r[k] for r in one])) for k in ("wall_s", "ngspice_elapsed_s", "ngspice_s")}
    res |= {f"digits_realization_{k}_median": v for k, v in med.items()}
    # overhead over ngspice's analysis: all of it, anasim's part (deck build, process start,
    # reading outputs) and ngspice's own parse and set-up
    res["digits_overhead_median"] = float(np.median([(r["wall_s"] - r["ngspice_s"]) / r["ngspice_s"] for r in one]))
    res["digits_overhead_anasim_median"] = float(
        np.median([(r["wall_s"] - r["ngspice_elapsed_s"]) / r["ngspice_s"] for r in one])
    )
    res["digits_overhead_ngspice_setup_median"] = res["digits_overhead_median"] - res["digits_overhead_anasim_median"]
    res |= {
        "digits_per_min_turns": rates,
        "digits_per_min_1_worker": rate[1],
        "digits_per_min_2_workers": rate[2],
        "speedup_2_workers": rate[2] / rate[1],
    }
    print(f"digits edge, 360 samples: {rate[1]:.1f} / {rate[2]:.1f} realizations per minute on 1 / 2 workers "
          f"({rate[2] / rate[1]:.2f}x); overhead {100 * res['digits_overhead_median']:.0f}% of ngspice's analysis time "
          f"(anasim {100 * res['digits_overhead_anasim_median']:.0f}%, ngspice parse and set-up "
          f"{100 * res['digits_overhead_ngspice_setup_median']:.0f}%)")  # fmt: skip
    short, long = (1, 3) if quick else (2, 22)  # the projection rests on 20 realizations (issue 30)
    walls, cpus = {}, {}
    vary = ["--vary", "area=0.05", "--vary", "opamp-gain=0.3", "--vary", "opamp-offset=1e-3"]
    for n in (short, long):
        args = ["--mc", n, *vary, "--mapping", "shared", "--samples", 1000, "--workers", 2, "--data-dir", FASHION_DIR]
        s, rows, walls[n] = mc("f14", f"speed_f14_{n}", args)
        cpus[n] = CPU[list(CPU)[-1]]
    per_min = 60 * (long - short) / (walls[long] - walls[short])
    # on a shared machine the wall clock shows the neighbours: the CPU seconds of a realization give
    # the projection on 2 otherwise idle cores (both workers busy all along, as they are here)
    cpu_each = (cpus[long] - cpus[short]) / (long - short)
    res |= {"f14_cpu_s_per_realization": cpu_each, "f14_500_projected_min_from_cpu": (500 * cpu_each / 2) / 60,
            "f14_load1_after": round(os.getloadavg()[0], 2)}  # fmt: skip
    start = walls[short] - 60 * short / per_min
    res |= {"f14_per_min_2_workers": per_min, "f14_start_s": start, "f14_500_projected_min": (start + 500 * 60 / per_min) / 60,
            "f14_nominal_accuracy": s["nominal_accuracy"], "f14_mean_accuracy": s["mean_accuracy"],
            "f14_projection_realizations": long - short}  # fmt: skip
    print(f"[196,64,10] shared, 1,000 samples, 2 workers: {per_min:.1f} realizations per minute; 500 realizations "
          f"projected {res['f14_500_projected_min']:.1f} min (start-up {start:.0f} s); {cpu_each:.1f} CPU s per "
          f"realization: {res['f14_500_projected_min_from_cpu']:.1f} min on 2 idle cores")  # fmt: skip
    if full:  # the goal itself, timed whole: 500 realizations x 1,000 samples
        args = ["--mc", 500, *vary, "--mapping", "shared", "--samples", 1000, "--workers", 2, "--data-dir", FASHION_DIR]
        s, rows, wall = mc("f14", "speed_f14_500", args)
        res |= {"f14_500_wall_min": wall / 60, "f14_500_mean_accuracy": s["mean_accuracy"],
                "f14_500_worst_accuracy": s["worst_accuracy"], "f14_500_failed": len(s["failed"])}  # fmt: skip
        print(f"500 realizations x 1,000 samples: {wall / 60:.1f} min on 2 workers")
    return res


def torch_eq6(ckpt: Path, x, target, sigmas, n: int) -> list[list[float]]:
    """The paper's eq. 6 in software: every coefficient times 1 + N(0, sigma^2), ``n`` draws each."""
    net = load(ckpt).model
    out = []
    for sigma in sigmas:
        net.set_eval_noise(sigma)
        accs = []
        for r in range(n):
            torch.manual_seed(1000 + r)
            with torch.no_grad():
                accs.append(float((net(x).argmax(1).numpy() == target).mean()))
        out.append(accs)
    return out


def twin_accuracies(ckpt: Path, rows: list[dict], x, target, opts: TdkanOptions) -> list[float]:
    """Each realization's torch twin: the coefficients get the draws read back from its circuit."""
    net = load(ckpt).model
    nominal = lower_stages(net, opts)
    accs = []
    for row in rows:
        sig = tuple((k, row["sigmas"][k]) for k in VARIATIONS if k in row["sigmas"])
        p = Perturbation(sig, row["seed"][0], row["index"])
        factors = coefficient_factors(nominal, [p(c, f"stage{i}") for i, c in enumerate(nominal)])
        twin = scale_coefficients(net, {coefficient_index(k): f for k, f in factors.items()})
        with torch.no_grad():
            accs.append(float((twin(x).argmax(1).numpy() == target).mean()))
    return accs


def sweep_of(variation: str, sigmas) -> str:
    """The --sweep values: sigma 0 is the nominal circuit, simulated once in every Monte Carlo."""
    return f"{variation}=" + ",".join(str(v) for v in sigmas if v > 0)


def band(s: dict, key: str) -> dict:
    """Mean / worst / best per sigma, the nominal circuit first (at sigma 0)."""
    out = {k: [s[f"nominal_{key}"]] + [p[f"{k}_{key}"] for p in s["points"]] for k in ("mean", "worst", "best")}
    return out | {"realizations": [1] + [p["realizations"] for p in s["points"]]}


def curve(name, variation, sigmas, n, samples, extra=(), opts=None, reuse=False) -> dict:
    tag = f"{name}_{variation}"
    args = ["--mc", n, "--sweep", sweep_of(variation, sigmas), "--samples", samples, *extra]
    s, rows, wall = mc(name, tag, args, reuse)
    ref = np.load(RUNS / f"{tag}.mc" / "reference.npz")
    x, target = torch.as_tensor(ref["x"]), ref["target"]
    out = {"command": COMMANDS[-1], "wall_s": wall, "reference_accuracy": s["reference_accuracy"],
           "nominal_accuracy": s["nominal_accuracy"], "sigmas": list(sigmas)}  # fmt: skip
    out |= band(s, "accuracy")
    eq6 = torch_eq6(model(name), x, target, sigmas, n)  # as many draws as realizations: worst and best depend on it
    out["torch_eq6"] = {k: [float(f(a)) for a in eq6] for k, f in (("mean", np.mean), ("worst", min), ("best", max))}
    if variation in ("area", "iv-scale") and "opamp" not in " ".join(map(str, extra)):
        twins = twin_accuracies(model(name), rows, x, target, opts or TdkanOptions())
        out["twin_equal"] = sum(t == r["accuracy"] for t, r in zip(twins, rows))
        out["twin_rows"] = len(rows)
    return out


def plot(ax, c: dict, label: str, color: str, key="accuracy"):
    sig = np.asarray(c["sigmas"])
    scale = 100 if key == "accuracy" else 1
    ax.plot(sig, scale * np.asarray(c["mean"]), "o-", color=color, label=f"{label}: mean")
    ax.fill_between(sig, scale * np.asarray(c["worst"]), scale * np.asarray(c["best"]), color=color, alpha=0.2,
                    label=f"{label}: worst..best")  # fmt: skip


def figures(quick: bool, reuse: bool = False) -> dict:
    n = 4 if quick else 40
    res = {}
    res["digits_area"] = curve("digits", "area", SIGMAS, n, 360, reuse=reuse)
    res["digits_iv_scale"] = curve("digits", "iv-scale", SIGMAS, n, 360, reuse=reuse)
    res["digits_noise_area"] = curve("digits-noise", "area", SIGMAS, n, 360, reuse=reuse)
    fs = (0, 0.05, 0.1, 0.2, 0.46)
    extra = ["--mapping", "shared"]
    res["fashion_area"] = curve(
        "fashion", "area", fs, 2 if quick else 6, 300, extra, TdkanOptions(mapping="shared"), reuse
    )
    ks = (0, 0.02, 0.05, 0.1, 0.2)
    s, rows, wall = mc(
        "kn", "kn_cap", ["--mc", 2 if quick else 10, "--sweep", sweep_of("cap", ks), "--samples", 100], reuse
    )
    res["kn_cap"] = {"command": COMMANDS[-1], "wall_s": wall, "reference_loss": s["reference_loss"],
                     "nominal_loss": s["nominal_loss"], "sigmas": list(ks), **band(s, "loss")}  # fmt: skip
    draw(res)
    return res


def draw(res: dict) -> None:
    """The PNGs from the figures' numbers (``montecarlo.py plots`` redraws them from the JSON)."""
    for tag, title, curves in (
        ("digits", "digits TD-KAN [64,16,10], edge mapping, 360 images",
         [("digits_area", "circuit, area", "C0"), ("digits_iv_scale", "circuit, iv-scale", "C1")]),
        ("noise_aware", "digits, area mismatch: trained with --train-noise 0.1 or without",
         [("digits_area", "trained without noise", "C0"), ("digits_noise_area", "trained with noise 0.1", "C2")]),
        ("fashion", "Fashion-MNIST [784,256,10], shared mapping, 300 images",
         [("fashion_area", "circuit, area", "C0")]),
    ):  # fmt: skip
        fig, ax = plt.subplots(figsize=(6, 4), dpi=130)
        for key, label, color in curves:
            plot(ax, res[key], label, color)
        first = res[curves[0][0]]
        if "torch_eq6" in first and tag != "noise_aware":
            t = first["torch_eq6"] | {"sigmas": first["sigmas"]}
            plot(ax, t, "torch eq. 6 (gauss)", "0.4")
        twins = [res[k] for k, _, _ in curves if "twin_rows" in res[k]]
        if twins:  # the same-draw cross-check, realization by realization
            eq, rows = sum(c["twin_equal"] for c in twins), sum(c["twin_rows"] for c in twins)
            ax.text(0.98, 0.97, f"torch twin with the same draws: {eq} of {rows}\nrealizations give the same accuracy",
                    transform=ax.transAxes, ha="right", va="top", fontsize=7)  # fmt: skip
        ax.set(xlabel="relative sigma", ylabel="test accuracy (%)", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / f"{tag}.png")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=130)
    plot(ax, res["kn_cap"], "circuit, cap", "C3", key="loss")
    ax.axhline(res["kn_cap"]["reference_loss"], color="0.4", ls="--", label="torchdiffeq reference")
    ax.set_yscale("log")  # the loss spans three decades over the sweep
    ax.set(xlabel="capacitor mismatch, relative sigma", ylabel="test MSE (targets in [0, 1])",
           title="KirchhoffNet-s on Friedman #1, 100 test samples")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "kirchhoffnet_cap.png")
    plt.close(fig)


def stamp() -> dict:
    """When, on what engine and how loaded a machine the figures of a part were measured."""
    head = subprocess.run(["ngspice", "-v"], capture_output=True, text=True).stdout.split("\n")
    engine = " / ".join([x.strip("* ") for x in head if x.strip("* ")][:2])
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "engine": engine, "cpus": os.cpu_count(),
            "loadavg_after": [round(v, 2) for v in os.getloadavg()]}  # fmt: skip


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    parts = [p for p in ("speed", "figures") if p in argv] or ["speed", "figures"]
    RUNS.mkdir(parents=True, exist_ok=True)
    path = OUT.parent / "montecarlo.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    if "plots" in argv:
        return draw(res["figures"])
    for part in parts:
        COMMANDS.clear()
        done = speed(quick, "--full" in argv) if part == "speed" else figures(quick, "--reuse" in argv)
        # figures measured now replace the same keys; others (say, those of an earlier --full) stay
        old = res.get(part, {})
        commands = list(dict.fromkeys([*old.get("commands", []), *COMMANDS]))
        res[part] = old | done | {"commands": commands} | {f"{part}_measured": stamp()}
        path.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
