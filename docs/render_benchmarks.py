"""Render docs/benchmarks.md from benchmarks/results/*.json: no figure on that page is typed by hand.

Each results file gets a section: the benchmark that writes it, the commands it records, the date
and machine it records (or "not recorded"), then its tables. ``RENDERERS`` maps a file name to the
function that turns its JSON into markdown; a file with no entry is an error (``--check`` and
tests/test_docs.py name it): add one line, ``RENDERERS["new.json"] = Section("benchmarks/new.py",
generic)``, or a function of your own. Reads JSON only: no anasim import, no torch.

    python docs/render_benchmarks.py          # write docs/benchmarks.md (and README.md's tables)
    python docs/render_benchmarks.py --check  # exit 1 when docs/benchmarks.md is not current
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PAGE = REPO / "docs" / "benchmarks.md"
WIDE = 12  # a table of more columns than this and fewer rows than columns is turned (a row per field)
PERCENT = ("accuracy", "agreement", "success_rate", "target")  # keys whose values in [0, 1] are fractions


# ---------------------------------------------------------------- formatting


def fmt(value, key: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if any(p in key for p in PERCENT) and 0 <= value <= 1:
            return f"{100 * value:.2f}%"
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e6:
            return f"{value:.2e}"
        return f"{value:.4g}"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(fmt(v, key) for v in value) if value else "-"
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        return "; ".join(f"{k} {fmt(v, k)}" for k, v in value.items()) if value else "-"
    text = str(value) if not isinstance(value, dict | list) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    return f"`{text}`"


def table(rows: list[dict], columns: list[tuple[str, str]] | None = None) -> str:
    """Markdown table of ``rows``; ``columns`` as (header, key), by default every scalar key in order."""
    if not rows:
        return "(no rows)\n"
    if columns is None:
        keys: list[str] = []
        for r in rows:
            keys += [k for k, v in r.items() if k not in keys and k != "command" and not _nested(v)]
        columns = [(k, k) for k in keys]
    if len(columns) > WIDE and len(rows) < len(columns):  # a few runs of many fields read better turned
        names = [" / ".join(fmt(r.get(k), k) for _, k in columns[:3]) for r in rows]
        lines = ["| field | " + " | ".join(names) + " |", "|" + "---|" * (len(rows) + 1)]
        for h, k in columns[3:]:
            lines.append(f"| {h} | " + " | ".join(fmt(r.get(k), k) for r in rows) + " |")
        return "\n".join(lines) + "\n"
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(k), k) for _, k in columns) + " |")
    return "\n".join(lines) + "\n"


def _nested(v) -> bool:
    return (isinstance(v, dict) and any(isinstance(x, dict | list) for x in v.values())) or (
        isinstance(v, list) and any(isinstance(x, dict | list) for x in v)
    )


def commands_of(data) -> list[str]:
    """Every ``command``/``commands`` value anywhere in the JSON, in order, once each."""
    found: list[str] = []

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "command" and isinstance(v, str):
                    found.append(v)
                elif k == "commands" and isinstance(v, list):
                    found.extend(c for c in v if isinstance(c, str))
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(data)
    return list(dict.fromkeys(found))


def provenance(data) -> tuple[str, str]:
    """(dates, machine) as the JSON records them: top-level date/machine, a simulate JSON's
    environment, or per-row dates; "not recorded in the JSON" when it holds none."""
    dates, machines = [], []

    def walk(x, depth=0):
        if depth > 3:
            return
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "date" and isinstance(v, str):
                    dates.append(v[:10])
                elif k == "machine" and isinstance(v, dict):
                    machines.append(fmt({m: w for m, w in v.items() if not isinstance(w, list)}))
                elif k == "host" and isinstance(v, str):
                    machines.append(f"host {v}")
                elif k == "environment" and isinstance(v, dict):
                    walk(v, depth + 1)
                    engine = v.get("ngspice")
                    if engine:
                        machines.append(str(engine))
                elif isinstance(v, dict | list):
                    walk(v, depth + 1)
        elif isinstance(x, list):
            for v in x:
                walk(v, depth + 1)

    walk(data)
    none = "not recorded in the JSON"
    dates = sorted(set(dates))
    date = (dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}") if dates else none
    return date, "; ".join(dict.fromkeys(machines)) or none


# ---------------------------------------------------------------- renderers


def generic(data) -> str:
    """Any JSON: scalars as one table; a list of records as a table; a dict of records (keyed runs)
    as a table with the key first; anything deeper, section by section."""
    out = []
    if isinstance(data, list):
        flat = [r for r in data if isinstance(r, dict)]
        return table(flat) if flat else fmt(data) + "\n"
    # a field ending in _markdown is text another tool rendered from the same data: the data is shown instead
    data = {k: v for k, v in data.items() if not k.endswith("_markdown")}
    scalars = {k: v for k, v in data.items() if not _nested(v) and k not in ("command", "commands")}
    if scalars:
        out.append(table([{"field": k, "value": fmt(v, k)} for k, v in scalars.items()]))
    for k, v in data.items():
        if not _nested(v):
            continue
        if isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()):
            rows = [{"run": name, **{a: b for a, b in r.items() if not _nested(b)}} for name, r in v.items()]
            out.append(f"**{k}**\n\n" + table(rows))
        elif isinstance(v, list) and all(isinstance(x, dict) for x in v):
            out.append(f"**{k}**\n\n" + table(v))
        else:
            out.append(f"**{k}**\n\n" + generic(v))
    return "\n".join(out)


def keyed(data: dict, key: str = "run") -> str:
    return table([{key: name, **r} for name, r in data.items()])


def accuracy(data) -> str:
    cols = [("run", "run"), ("parameters", "params"), ("test accuracy", "test_accuracy"),
            ("validation accuracy", "val_accuracy"), ("epochs run", "epochs_run"),
            ("training s", "train_time_s"), ("threads", "threads")]  # fmt: skip
    return table([{"run": k, **r} for k, r in data.items()], cols)


def drive(data) -> str:
    cols = [("bases / seed", "run"), ("test accuracy", "test_accuracy"), ("validation accuracy", "val_accuracy"),
            ("epochs run", "epochs_run"), ("wall s", "wall_s")]  # fmt: skip
    return table([{"run": k, **r} for k, r in data.items()], cols)


def mlp_search(data) -> str:
    out = []
    for block in data:
        # the model is chosen on validation accuracy: only the chosen one's test accuracy is shown
        out.append(f"**{block['activation']}** (target {fmt(block['target'], 'target')}); chosen: "
                   f"{code(block['chosen']['command'])}, test accuracy {fmt(block['chosen']['test_accuracy'], 'accuracy')}\n")  # fmt: skip
        out.append(table(block["grid"], [("lr", "lr"), ("batch", "batch_size"), ("validation accuracy", "val_accuracy"),
                                         ("best epoch", "best_epoch"), ("epochs run", "epochs_run"),
                                         ("training s", "train_s")]))  # fmt: skip
    return "\n".join(out)


def circuit_rows(data) -> str:
    """Rows of circuit against reference (fidelity, paper_circuits)."""
    cols = [(h, k) for h, k in [("model", "model"), ("run", "run"), ("mapping", "mapping"), ("op-amp gain", "opamp_gain"),
            ("samples", "samples"), ("reference accuracy", "reference_accuracy"), ("circuit accuracy", "circuit_accuracy"),
            ("argmax agreement", "argmax_agreement"), ("largest error (of range)", "max_error_rel_range"),
            ("failed", "failed"), ("wall s", "wall_s")] if any(k in r for r in data)]  # fmt: skip
    return table(data, cols)


def physical(data) -> str:
    out = []
    sim = [("command", "cmd"), ("tile", "tile"), ("wire ohm", "wire_r"), ("samples", "samples"),
           ("reference accuracy", "reference_accuracy"), ("circuit accuracy", "circuit_accuracy"),
           ("argmax agreement", "argmax_agreement"), ("largest error (of range)", "max_error_rel_range"),
           ("s per sample", "s_per_sample"), ("CPU s per sample", "cpu_s_per_sample"), ("simulator", "simulator"),
           ("date", "date")]  # fmt: skip
    full = sorted((r for r in data.get("fashion", []) if r.get("samples", 0) >= 1000),
                  key=lambda r: (r["tile"], r["wire_r"]))  # fmt: skip
    if full:  # the table issue 30 asks for: every tile size and wire resistance run on 1,000 images
        cols = [("tile rows", "tile"), ("wire ohm", "wire_r"), ("images", "samples"),
                ("reference accuracy", "reference_accuracy"), ("circuit accuracy", "circuit_accuracy"),
                ("argmax agreement", "argmax_agreement"), ("largest error (of range)", "max_error_rel_range"),
                ("CPU s per image", "cpu_s_per_sample"), ("simulator", "simulator")]  # fmt: skip
        out.append("**Fashion-MNIST [784,64,10], wired tiles, 1,000 test images a cell**\n\n" + table(full, cols))
    for k, rows in data.items():
        if rows and "command" in rows[0]:
            present = [c for c in sim if c[1] == "cmd" or any(c[1] in r for r in rows)]
            out.append(f"**{k}**\n\n" + table([{"cmd": code(r["command"]), **r} for r in rows], present))
        else:
            out.append(f"**{k}**\n\n" + table(rows))
    return "\n".join(out)


def montecarlo(data) -> str:
    figs = data["figures"]
    out = [
        "**Accuracy against mismatch sigma** (mean, worst..best over the realizations; sigma 0 is the nominal circuit)\n"
    ]
    for name, f in figs.items():
        if name == "commands" or "sigmas" not in f:
            continue
        metric = "accuracy" if "mean" in f and (f["mean"] and max(f["mean"]) <= 1) else "loss"
        rows = [
            {"sigma": s, "mean": m, "worst": w, "best": b}
            for s, m, w, b in zip(f["sigmas"], f["mean"], f["worst"], f["best"])
        ]
        rows = [{"sigma": r["sigma"], f"mean {metric}": fmt(r["mean"], metric), f"worst {metric}": fmt(r["worst"], metric),
                 f"best {metric}": fmt(r["best"], metric)} for r in rows]  # fmt: skip
        out.append(f"*{name}*: {code(f['command'])}, {f.get('realizations', '?')} realizations per sigma\n")
        out.append(table(rows))
    speed = {k: v for k, v in data["speed"].items() if k != "commands"}
    out.append("**Speed**\n\n" + generic(speed))
    for png in sorted((RESULTS / "montecarlo").glob("*.png")):
        out.append(f"![{png.stem}](figures/montecarlo/{png.name})")
    return "\n".join(out)


def rows_and_runs(data) -> str:
    """Benchmarks that record rows (the summary) and runs (every command): engines, vacask, osdi."""
    out = []
    for k, v in data.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            out.append(f"**{k}**\n\n" + table(v))
    notes = data.get("notes")
    if notes:
        out.append(f"Notes recorded with the results: {fmt(notes)}\n")
    if data.get("decision"):  # what the measurement decided (osdi.json: OSDI devices in ngspice decks or not)
        out.append(f"Decision: {fmt(data['decision'])}\n")
    return "\n".join(out)


def simulate_json(data) -> str:
    """A results JSON of `anasim simulate --json` (format anasim-simulate/1)."""
    keys = ["samples", "analysis", "reference_accuracy", "circuit_accuracy", "argmax_agreement",
            "max_error_rel_range", "power_w", "latency_s", "energy_j", "wall_s"]  # fmt: skip
    rows = [{"field": k, "value": fmt(data.get(k), k)} for k in keys if data.get(k) is not None]
    rows += [{"field": f"power: {k}", "value": fmt(v, k) + " W"} for k, v in (data.get("power_split_w") or {}).items()]
    if data.get("settling_time_s"):
        st = sorted(data["settling_time_s"])
        rows.append({"field": "settling s (median / max)", "value": f"{fmt(st[len(st) // 2])} / {fmt(st[-1])}"})
    return table(rows)


def control(data) -> str:
    cols = [("plant / controller", "run"), ("episodes", "episodes"), ("torch success", "torch_success_rate"),
            ("circuit success", "circuit_success_rate"), ("RMS deviation (of range)", "rms_state_deviation"),
            ("power W", "controller_power_w"), ("latency s", "control_step_latency_s"),
            ("energy per step J", "energy_per_step_j")]  # fmt: skip
    loops = {k: v for k, v in data.items() if "torch_success_rate" in v}
    out = [table([{"run": k, **v} for k, v in loops.items()], cols)]
    for k, v in data.items():
        if k not in loops:
            out.append(f"**{k}**\n\n" + generic(v))
    for png in sorted(RESULTS.glob("control_*.png")):
        out.append(f"![{png.stem}](figures/{png.name})")
    return "\n".join(out)


@dataclass(frozen=True)
class Section:
    writer: str  # the benchmark that writes the file
    render: Callable[[object], str]
    title: str = ""
    group: str = "Other results"  # the page's second-level heading the section goes under


GROUPS = [
    "Training",
    "Circuit against model",
    "Speed",
    "Power, latency and energy",
    "Physical crossbars",
    "Monte Carlo",
    "KirchhoffNet",
    "Closed-loop control",
    "Engines and solvers",
    "Other results",
]  # the page's order

RENDERERS: dict[str, Section] = {
    "accuracy.json": Section("benchmarks/accuracy.py", accuracy, "Reference accuracy and training time", "Training"),
    "mlp_search.json": Section("benchmarks/mlp_search.py", mlp_search, "The paper's device MLPs: learning rate and batch searched", "Training"),
    "paper_circuits.json": Section("benchmarks/paper_circuits.py", circuit_rows, "The paper's Fashion-MNIST configurations through their circuits", "Circuit against model"),
    "drive.json": Section("benchmarks/drive.py", drive, "Any pair of bases with the default row drive", "Training"),
    "fidelity.json": Section("benchmarks/fidelity.py", circuit_rows, "Circuit against PyTorch, by op-amp gain", "Circuit against model"),
    "speed.json": Section("benchmarks/speed.py", generic, "Circuit speed", "Speed"),
    "speed_paired.json": Section("benchmarks/speed.py --paired", generic, "Edge against shared mapping, paired turns", "Speed"),
    "speed_against_c1c8bec.json": Section("benchmarks/speed.py --against c1c8bec", generic, "Speed against commit c1c8bec", "Speed"),
    "speed_against_a228ae4.json": Section("benchmarks/speed.py --against a228ae4", generic, "Speed against commit a228ae4", "Speed"),
    "speed_fashion_10k.json": Section("benchmarks/speed.py --fashion-10k", generic, "The whole Fashion-MNIST test set through the edge circuit", "Speed"),
    "fashion_edge_power.json": Section("anasim simulate (recorded below)", simulate_json, "Fashion-MNIST edge circuit: static power (DC)", "Power, latency and energy"),
    "fashion_edge_tran.json": Section("anasim simulate (recorded below)", simulate_json, "Fashion-MNIST edge circuit: transient latency and energy", "Power, latency and energy"),
    "physical.json": Section("benchmarks/physical.py", physical, "Physical crossbars: wires and tiles", "Physical crossbars"),
    "montecarlo.json": Section("benchmarks/montecarlo.py", montecarlo, "Monte Carlo: accuracy against mismatch, and speed", "Monte Carlo"),
    "mc_reuse.json": Section("benchmarks/mc_reuse.py", generic, "Could one parsed deck serve every Monte Carlo realization?", "Monte Carlo"),
    # Monte Carlo on VACASK (benchmarks/mc_vacask.py, in another branch): rendered once the file lands
    "mc_vacask.json": Section("benchmarks/mc_vacask.py", generic, "Monte Carlo on VACASK against ngspice", "Monte Carlo"),
    "kirchhoff_table1.json": Section("benchmarks/kirchhoff_table1.py", generic, "KirchhoffNet: the paper's Table I", "KirchhoffNet"),
    "kirchhoff_digits.json": Section("benchmarks/kirchhoff_digits.py", generic, "KirchhoffNet on digits (Proj layer)", "KirchhoffNet"),
    "kirchhoff.json": Section("benchmarks/kirchhoff.py", generic, "KirchhoffNet: circuit against torchdiffeq, and the adjoint", "KirchhoffNet"),
    "kirchhoff_scale.json": Section("benchmarks/kirchhoff_scale.py", generic, "KirchhoffNet at small time scales", "KirchhoffNet"),
    "control.json": Section("benchmarks/control.py", control, "Closed-loop control", "Closed-loop control"),
    "lockstep.json": Section("benchmarks/lockstep.py", generic, "Lock-step co-simulation cost", "Closed-loop control"),
    "engines.json": Section("benchmarks/engines.py", rows_and_runs, "ngspice: Sparse against KLU", "Engines and solvers"),
    "osdi.json": Section("benchmarks/osdi.py", rows_and_runs, "Device curves as OSDI modules against B-sources", "Engines and solvers"),
    "vacask.json": Section("benchmarks/vacask.py", rows_and_runs, "VACASK against ngspice", "Engines and solvers"),
    "scale.json": Section("benchmarks/scale.py", generic, "Wired Fashion-MNIST on ngspice and VACASK", "Engines and solvers"),
    "newton.json": Section("benchmarks/newton.py", generic, "A wired tile's Newton iterations and factorizations on VACASK", "Engines and solvers"),
}  # fmt: skip


def missing() -> list[str]:
    return sorted(p.name for p in RESULTS.glob("*.json") if p.name not in RENDERERS)


def render() -> str:
    lost = missing()
    if lost:
        raise SystemExit(
            f"docs/render_benchmarks.py: no renderer for benchmarks/results/{', '.join(lost)}: add a line to "
            'RENDERERS, e.g. RENDERERS["name.json"] = Section("benchmarks/x.py", generic, "title")'
        )
    parts = [
        "# Benchmarks\n",
        "<!-- Generated by docs/render_benchmarks.py from benchmarks/results/*.json: do not edit. -->\n",
        "Every table below is rendered from a results file in `benchmarks/results/` by "
        "`python docs/render_benchmarks.py`; `make bench` (or the benchmark named in each section) "
        "writes the files, and a test fails when this page is not current with them. Dates and machines "
        "are those the file records; older files record none. Accuracies and agreements are in %, "
        "errors as a fraction of the output range unless the column says otherwise.\n",
    ]
    group = None
    for name, sec in sorted(RENDERERS.items(), key=lambda item: GROUPS.index(item[1].group)):
        path = RESULTS / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        date, machine = provenance(data)
        cmds = commands_of(data)
        if sec.group != group:
            group = sec.group
            parts.append(f"## {group}\n")
        parts.append(f"### {sec.title or name}\n")
        parts.append(f"- file: `benchmarks/results/{name}`, written by `{sec.writer}`")
        parts.append(f"- date: {date}")
        parts.append(f"- machine: {machine}")
        if cmds:
            shown = cmds[:12]
            more = f" (and {len(cmds) - len(shown)} more in the file)" if len(cmds) > len(shown) else ""
            parts.append(f"- commands{more}:\n")
            parts.append("```\n" + "\n".join(shown) + "\n```")
        parts.append("")
        parts.append(sec.render(data))
    return "\n".join(parts).rstrip() + "\n"


# ---------------------------------------------------------------- README blocks

README = REPO / "README.md"


def engines_table() -> str:
    """The CPU seconds per engine and tile size (issue 31), from scale.json's one run."""
    data = json.loads((RESULTS / "scale.json").read_text())
    load = data.get("machine", {}).get("loadavg", [None])[0]
    where = (
        f"one run on {data.get('date', 'a date not recorded')}, {data.get('machine', {}).get('cpus', '?')} shared cores"
    )
    where += f" (load {load:.1f} at its start)" if isinstance(load, int | float) else ""
    return (
        f"{data['table_markdown'].rstrip()}\n\n*Wired Fashion-MNIST [784,64,10] tiles, the same images on both engines: "
        f"`benchmarks/scale.py`, {where}; more in [docs/benchmarks.md](docs/benchmarks.md).*"
    )


# <!-- bench:NAME --> ... <!-- /bench:NAME --> in README.md: what fills it
README_BLOCKS: dict[str, Callable[[], str]] = {"engines": engines_table}


def render_readme(text: str) -> str:
    for name, make in README_BLOCKS.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        if start not in text or end not in text:
            raise SystemExit(f"README.md has no {start} ... {end} block for README_BLOCKS[{name!r}]")
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{make()}\n{end}{rest.split(end, 1)[1]}"
    return text


def main(argv: list[str]) -> int:
    text, readme = render(), render_readme(README.read_text())
    if "--check" in argv:
        stale = [
            p.relative_to(REPO) for p, t in ((PAGE, text), (README, readme)) if not p.exists() or p.read_text() != t
        ]
        if stale:
            print(
                f"{', '.join(map(str, stale))} not current with benchmarks/results/*.json: run python docs/render_benchmarks.py"
            )
            return 1
        return 0
    PAGE.write_text(text)
    README.write_text(readme)
    print(f"wrote {PAGE.relative_to(REPO)} ({len(text.splitlines())} lines) and README.md's figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
