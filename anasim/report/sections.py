"""Report step, content: the sections of the accuracy-vs-circuit report, from loaded results.

Model and devices, the comparison table (the one CI prints), per-result scatter, error
histogram and worst samples, Monte Carlo, physical figures, KirchhoffNet trajectories and the
environment each run recorded. A section whose data the results do not hold says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics import engine_text
from . import figures
from .load import Results, SimRun
from .render import Doc, md_table

PER_RESULT_FIGURES = 4  # scatter + histogram for at most this many simulate results
WORST = 5  # samples listed per result


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def g(v, fmt=".3g") -> str:
    return "-" if v is None else format(v, fmt)


def model_section(doc: Doc, res: Results) -> None:
    doc.h("Model")
    if not res.sims:
        s = res.mcs[0].record
        doc.p(
            f"Checkpoint {Path(s.checkpoint or '?').name} (sha256 {res.checkpoint}); dataset "
            f"{s.settings.dataset}. The model summary comes from simulate results; none were given."
        )
        return
    m = res.sims[0].record.model
    c = m.circuit
    rows = [
        ["family", m.title],
        ["architecture", " x ".join(map(str, m.dims))],
        ["checkpoint", f"{Path(m.checkpoint).name} (sha256 {m.checkpoint_sha256})"],
        ["parameters", f"{m.params:,}"],
        ["dataset", m.dataset],
    ]
    if m.bases:
        rows.append(["bases", ", ".join(m.bases)])
    if m.activation:
        rows.append(["activation", m.activation])
    if m.test_accuracy is not None:
        rows.append(["trained test accuracy (torch)", pct(m.test_accuracy)])
    if m.test_loss is not None:
        rows.append(["trained test loss (torch)", g(m.test_loss, ".4g")])
    for L in m.layers:
        if L.crossbar_rows is not None:
            rows.append(
                [
                    f"layer {L.layer} crossbar",
                    f"{L.crossbar_rows} rows x {L.crossbar_columns} columns"
                    + (
                        ", 1 tile, "
                        if L.tiles == 1 or L.tile_grid is None
                        else f" per tile (at most), {L.tiles} tiles ({L.tile_grid[0]} row x "
                        f"{L.tile_grid[1]} column tiles), "
                    )
                    + f"{L.devices:,} devices",
                ]
            )
        elif L.nodes is not None:
            rows.append([f"layer {L.layer}", f"{L.nodes} nodes, {L.devices} branches"])
    if c["devices_by_basis"]:
        rows.append(["devices by basis", ", ".join(f"{k} {v:,}" for k, v in c["devices_by_basis"].items())])
    if c["area_range"]:
        rows.append(["device area range", f"{c['area_range'][0]:.4g} .. {c['area_range'][1]:.4g} unit areas"])
    rows.append(["op-amps", f"{c['opamps']:,}"])
    if c["resistors"]:
        rows.append(["resistors", f"{c['resistors']:,}"])
    if c["branches"]:
        rows.append(["branches / capacitors (first layer)", f"{c['branches']} / {c['capacitors']}"])
    doc.table(["", "value"], rows)


def device_section(doc: Doc, res: Results) -> None:
    devices = res.sims[0].record.devices if res.sims else {}
    if not devices:
        return
    doc.h("Devices")
    rows = [
        [
            n,
            d["kind"],
            d["fit_method"],
            g(d["fit_rms"]),
            f"{d['v_range'][0]:g}..{d['v_range'][1]:g} V",
            f"1 {d['unit']} = {d['amps_per_unit']:g} A per unit area",
            d["fit_hash"],
        ]
        for n, d in devices.items()
    ]
    doc.table(["device", "kind", "fit", "fit RMS", "range", "scale", "fit hash"], rows)
    doc.fig("devices", "Device I-V curves used by the circuit: fit and sweep points", figures.device_curves(devices))


def comparison_rows(sims: list[SimRun]) -> tuple[list[str], list[list]]:
    """The table CI prints: one row per simulate result."""
    cls = any(r.classification for r in sims)
    head = ["results", "samples", "engine", "analysis"]
    head += ["reference acc.", "circuit acc.", "agreement"] if cls else ["reference loss", "circuit loss"]
    head += ["max error (V)", "max error / range", "mean error (V)", "failed", "wall (s)"]
    rows = []
    for r in sims:
        d = r.record
        row = [r.path.name, d.samples, engine_text(d.engine.to_json()), d.analysis or "-"]
        if cls:
            row += [pct(d.reference_accuracy), pct(d.circuit_accuracy), pct(d.argmax_agreement)]
        else:
            row += [g(d.reference_loss, ".4g"), g(d.circuit_loss, ".4g")]
        row += [
            g(d.max_abs_error),
            g(d.max_error_rel_range),
            g(d.mean_abs_error),
            len(d.failed_samples),
            g(d.wall_s),
        ]
        rows.append(row)
    return head, rows


def engines_table(doc: Doc, sims: list[SimRun]) -> None:
    """Simulations run on several engines: each engine's run, then their agreement."""
    multi = [r for r in sims if r.record.engines]
    if not multi:
        return
    doc.p("The same circuits on several engines: each engine's run, and the largest difference between them.")
    rows = []
    for r in multi:
        for name, e in r.record.engines.items():
            rows.append([r.path.name, name, e.simulator or "-", e.samples_done, len(e.failed_samples),
                         g(e.max_error_rel_range), g(e.engine_cpu_s), g(e.wall_s)])  # fmt: skip
        for a in r.record.engine_agreements or []:
            rows.append([r.path.name, " vs ".join(a.engines), "agreement", a.samples_compared, "-",
                         g(a.max_diff_rel_range), "-", "-"])  # fmt: skip
    head = ["results", "engine", "simulator", "samples", "failed", "max error / range", "engine CPU (s)", "wall (s)"]
    doc.table(head, rows)


def comparison_section(doc: Doc, res: Results) -> str:
    doc.h("Circuit against reference")
    if not res.sims:
        doc.p("No simulate results given.")
        return ""
    head, rows = comparison_rows(res.sims)
    doc.table(head, rows)
    engines_table(doc, res.sims)
    for n, r in enumerate(res.sims[:PER_RESULT_FIGURES]):
        ref, out = r.arrays["reference"], r.arrays["circuit"]
        err = np.abs(out - ref).max(axis=1)
        name = r.path.stem
        doc.fig(
            f"scatter_{n}",
            f"{r.path.name}: circuit against reference outputs",
            figures.scatter(ref, out, f"{name}: {r.record.engine_name} vs torch, {r.record.samples} samples"),
        )
        doc.fig(
            f"errors_{n}",
            f"{r.path.name}: per-sample error histogram",
            figures.error_histogram(err, f"{name}: per-sample output error"),
        )
        order = np.argsort(np.where(np.isfinite(err), err, np.inf))[::-1][:WORST]
        target = r.arrays["target"]
        if r.classification:
            rows = [
                [
                    int(i),
                    int(target[i]),
                    int(np.argmax(ref[i])),
                    "-" if not np.isfinite(out[i]).all() else int(np.argmax(out[i])),
                    g(err[i]),
                ]
                for i in order
            ]
            head = ["sample", "label", "reference class", "circuit class", "max error (V)"]
        else:
            rows = [
                [
                    int(i),
                    g(float(np.ravel(target[i])[0]), ".4g"),
                    g(float(ref[i][0]), ".4g"),
                    g(float(out[i][0]), ".4g"),
                    g(err[i]),
                ]
                for i in order
            ]
            head = ["sample", "target", "reference", "circuit", "max error (V)"]
        doc.p(f"{r.path.name}: the {len(order)} samples with the largest output error")
        doc.table(head, rows)
    return md_table(*comparison_rows(res.sims))


def _sigma_label(name: str) -> str:
    from ..montecarlo.variations import describe  # numpy only: the registry's units, no torch

    unit = next((u for n, u, _, _ in describe() if n == name), "")
    return f"sigma of {name}" + (f" ({unit})" if unit else "")


def mc_section(doc: Doc, res: Results) -> None:
    doc.h("Monte Carlo")
    if not res.mcs:
        doc.p("No Monte Carlo results given (anasim simulate --mc N --json ...).")
        return
    curve, key = [], res.mcs[0].key
    fmt = pct if key == "accuracy" else (lambda v: g(v, ".4g"))
    for n, m in enumerate(res.mcs):
        s, st = m.record, m.record.settings
        walls = [r.wall_s for r in m.rows if r.wall_s is not None]
        doc.p(
            f"{m.path.name}: {st.samples} samples of {st.dataset} ({st.split}), seed {st.seed}, "
            f"noise {st.noise_dist}"
            + (f", median {np.median(walls):.2f} s per realization" if walls else "")
            + (" (partial: interrupted)" if s.partial else "")
        )
        rows = [
            [f"reference {key} (torch)", fmt(s.reference)],
            [f"nominal circuit {key}", fmt(s.nominal)],
        ]
        hists = []
        for i, p in enumerate(s.points):
            label = ", ".join(f"{k}={v:g}" for k, v in p.sigmas.items()) or "no variation"
            if not p.realizations:
                rows.append([label, f"no realization finished, {len(p.failed)} failed"])
                continue
            rows.append(
                [
                    label,
                    f"{p.realizations} realizations: mean {fmt(p.stat('mean'))}, worst {fmt(p.stat('worst'))}, "
                    f"best {fmt(p.stat('best'))}, std {fmt(p.stat('std'))}"
                    + (f", {len(p.failed)} failed" if p.failed else ""),
                ]
            )
            if p.torch_eq6 is not None:  # the software Monte Carlo at the same sigma, as many draws
                t = p.torch_eq6
                rows.append([f"{label}, torch eq. 6 (sigma {t['sigma']:g})",
                             f"mean {fmt(t[f'mean_{key}'])}, worst {fmt(t[f'worst_{key}'])}, best {fmt(t[f'best_{key}'])}"])  # fmt: skip
            vals = np.array(p.values, dtype=float)
            title = f"Monte Carlo {label}: {key} per realization"
            hist = figures.mc_histogram(vals, key, s.reference, s.nominal, title)
            hists.append((f"mc_hist_{n}_{i}", f"{m.path.name}, {label}: {key} of each realization", hist))
            if len(p.sigmas) == 1:
                ((name, sigma),) = p.sigmas.items()
                stats = {k: v for k, v in p.stats.items() if k.startswith(("mean_", "worst_", "best_"))}
                torch_eq6 = {"torch": p.torch_eq6} if p.torch_eq6 is not None else {}  # TD-KAN: eq. 6 in software
                curve.append({"name": name, "sigma": sigma, **stats, **torch_eq6})
        doc.table(["", key], rows)
        for fig in hists:
            doc.fig(*fig)
    names = {c["name"] for c in curve}
    if len(names) != 1:
        return  # no single variation to put on an axis
    (name,) = names
    first = res.mcs[0].record
    nominal = first.nominal
    if nominal is not None:  # the nominal circuit is the sigma = 0 point, where torch is the reference
        zero = {"name": name, "sigma": 0.0, **{f"{w}_{key}": nominal for w in ("mean", "worst", "best")}}
        if any("torch" in c for c in curve) and first.reference is not None:
            zero["torch"] = {f"{w}_{key}": first.reference for w in ("mean", "worst", "best")}
        curve.append(zero)
    title = f"Monte Carlo: {key} against sigma ({name})"
    png = figures.mc_sigma(curve, key, first.reference, title, _sigma_label(name))
    doc.fig("mc_sigma", f"{key} against sigma of {name}: mean with the worst-best band", png)


def physical_section(doc: Doc, res: Results) -> None:
    doc.h("Physical figures")
    tran = [r for r in res.sims if r.record.settling_time_s is not None]
    if tran:
        rows = []
        for r in tran:
            d, st, pw = r.record, r.record.settling_time_s, r.record.static_power_w
            period = d.period_s
            energy = f"{d.energy_j * 1e9:.3g}" if d.energy_j is not None else "-"
            rows.append(
                [
                    r.path.name,
                    f"{st['median'] * 1e9:.0f} / {st['max'] * 1e9:.0f}",
                    f"{pw['mean'] * 1e3:.3g} / {pw['max'] * 1e3:.3g}",
                    g(period and period * 1e6),
                    energy,
                ]
            )
        doc.table(
            [
                "results",
                "latency: settling median / max (ns)",
                "static power mean / max (mW)",
                "period (us)",
                "energy per inference (nJ)",
            ],
            rows,
        )
        doc.p(
            "Energy per inference = mean static power x latency (the median settling time), as 'anasim "
            "simulate' prints it; op-amp quiescent power is not modelled."
        )
    else:
        doc.p("No transient results given: 'anasim simulate --analysis tran --json' gives power, latency and energy.")
    option_sweep(doc, res.sims)


def option_sweep(doc: Doc, sims: list[SimRun]) -> None:
    """A metric against the one hardware option (wire resistance, op-amp gain, ...) that differs
    between simulate results of the same analysis."""
    dc = [r for r in sims if r.record.analysis == sims[0].record.analysis] if sims else []
    keys = {k for r in dc for k, v in r.record.hardware.items() if v != dc[0].record.hardware.get(k)}
    if len(dc) < 2 or len(keys) != 1:
        doc.p(
            "Accuracy against wire resistance (or another hardware option): needs simulate results that differ "
            "in that one option; not present in these results."
        )
        return
    (key,) = keys
    pairs = [(r.record.hardware[key], r) for r in dc if isinstance(r.record.hardware.get(key), int | float)]
    xs = [x for x, _ in pairs]
    metric, label = (
        ("argmax_agreement", "argmax agreement (%)")
        if pairs[0][1].classification
        else ("circuit_loss", "circuit loss (MSE)")
    )
    ys = [(100 if metric == "argmax_agreement" else 1) * getattr(r.record, metric) for _, r in pairs]
    unit = "ohm" if "wire" in key or key.startswith("r_") else ""
    xlabel = f"{key.replace('_', ' ')}" + (f" ({unit})" if unit else "")
    log = min(xs) > 0 and max(xs) / min(xs) > 50
    doc.fig(
        "option_sweep",
        f"{label} against {key}",
        figures.versus_option(xs, ys, xlabel, label, f"{label} against {key}", log),
    )


def kirchhoff_section(doc: Doc, res: Results) -> None:
    runs = [r for r in res.sims if "traj_v_spice" in r.arrays]
    if not runs:
        return
    doc.h("KirchhoffNet: node voltages over time")
    r = runs[0]
    a = r.record.scale_a
    doc.p(
        f"Loss: reference {g(r.record.reference_loss, '.4g')}, circuit {g(r.record.circuit_loss, '.4g')} "
        f"(MSE on targets scaled to [0, 1]); forward time {g(r.record.end_time_s)} s at a = {a:g}."
    )
    doc.fig(
        "trajectories",
        "Node voltages of the first layer: ngspice transient (lines) against torchdiffeq (crosses)",
        figures.trajectories(r.arrays, a, "KirchhoffNet: ngspice against torchdiffeq"),
    )


def environment_section(doc: Doc, res: Results) -> None:
    doc.h("Environment")
    rows = []
    for r in res.sims:
        e = r.record.environment
        seeds = ", ".join(f"{k} {v}" for k, v in e.get("seeds", {}).items()) or "-"
        rows.append(
            [
                r.path.name,
                e.get("anasim", "-"),
                e.get("simulator") or e.get("ngspice") or "-",
                e.get("git_commit") or "-",
                e.get("date", "-"),
                seeds,
            ]
        )
    for m in res.mcs:
        s, e = m.record, m.record.environment or {}  # summaries before anasim-montecarlo/1 have none
        seeds = f"monte carlo {s.settings.seed}"
        rows.append([m.path.name, s.anasim or "-", e.get("simulator") or e.get("ngspice") or "-", e.get("git_commit") or "-",
                     e.get("date", "-"), seeds])  # fmt: skip
    doc.table(["results", "anasim", "simulator", "git commit", "date (UTC)", "seeds"], rows)
    commands = [f"{r.path.name}: {r.record.environment['command']}" for r in res.sims if r.record.environment]
    commands += [f"{m.path.name}: {m.record.environment['command']}" for m in res.mcs if m.record.environment]
    if commands:
        doc.p("Command lines:")
        doc.pre("\n".join(commands))
