"""Monte Carlo's figures: a realization's row, the summary record of the rows, the console table.

Where it sits: :mod:`anasim.montecarlo.realizations` runs the realizations and appends one row per
realization (:func:`row_metrics`); from the rows it writes the summary (:func:`summarize`, an
:class:`~anasim.results.McRecord`, with the reference and nominal figures of :func:`reference_head`)
at the end, on Ctrl-C and when the scheduler is lost; the CLI prints :func:`summary_rows`. Numbers
only: no simulator, no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics import Comparison
from ..outputs import read_npy, save_npz
from ..results import McPoint, McRecord, McRow, McSettings

PLURAL = {"accuracy": "accuracies", "loss": "losses"}
COEFFICIENT_LIKE = ("area", "iv-scale", "coeff")


def coefficient_sigma(sigmas) -> float | None:
    """The sigma of the one variation that scales coefficients (area, iv-scale or coeff), if
    exactly one is nonzero: the point's torch eq. 6 curve uses it."""
    found = [v for k, v in sigmas if k in COEFFICIENT_LIKE and v > 0]
    return found[0] if len(found) == 1 else None


def row_metrics(task_kind: str, ref, out, target, failed: dict) -> dict:
    m = Comparison(task_kind, ref, out, target, failed).metrics()
    row = {k: m.get(k) for k in ("max_abs_error", "mean_abs_error", "max_error_rel_range")}
    if task_kind == "regression":
        row["loss"] = m.get("circuit_loss")
    else:
        row["accuracy"], row["agreement"] = m.get("circuit_accuracy"), m.get("argmax_agreement")
    # no sample simulated: no figures (null in JSON, never NaN)
    row = {k: (v if v is not None and np.isfinite(v) else None) for k, v in row.items()}
    return row | {"failed_samples": len(failed)}


def summarize(rows: list[dict], record: dict, head: dict, task_kind: str, points) -> McRecord:
    """The summary record: per point (a single point's figures are also written at the top level)."""
    key, worst, best, pct = ("loss", max, min, 95) if task_kind == "regression" else ("accuracy", min, max, 5)

    def band(v: np.ndarray) -> dict:  # of the circuit's realizations and of their torch companions
        return {f"mean_{key}": float(v.mean()), f"worst_{key}": float(worst(v)), f"best_{key}": float(best(v))}

    per = []
    for p, sigmas in enumerate(points):
        mine = sorted((r for r in rows if r["point"] == p), key=lambda r: r["index"])
        vals = np.array([r[key] for r in mine if r.get(key) is not None], dtype=float)
        stats = {}
        if len(vals):
            stats = band(vals) | {
                f"std_{key}": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                f"p{pct:02d}_{key}": float(np.percentile(vals, pct)),
            }
            if task_kind != "regression":
                stats["mean_agreement"] = float(
                    np.mean([r["agreement"] for r in mine if r.get("agreement") is not None])
                )
        eq6 = np.array([r[f"torch_eq6_{key}"] for r in mine if r.get(f"torch_eq6_{key}") is not None], dtype=float)
        # torch with eq. 6 noise at the point's coefficient sigma, as many draws
        twin = {"sigma": coefficient_sigma(sigmas), **band(eq6), PLURAL[key]: eq6.tolist()} if len(eq6) else None
        failed = [McRow.from_json(r, "a Monte Carlo row") for r in mine if r.get("error")]
        per.append(McPoint(dict(sigmas), len(vals), key, failed, stats, vals.tolist(), twin))
    head = dict(head)
    return McRecord(
        head.pop("checkpoint_sha256"), McSettings.from_json(record, "the Monte Carlo settings"), per, key,
        reference=head.pop(f"reference_{key}", None), nominal=head.pop(f"nominal_{key}", None), **head,
    )  # fmt: skip


def reference_head(task_kind: str, ref, target, folder: Path, nominal_file: Path) -> dict:
    """Reference and nominal-circuit figures for the summary (the nominal one once it has run)."""
    kind = "loss" if task_kind == "regression" else "accuracy"
    out = {}
    nominal = read_npy(nominal_file, ref.shape)
    m = Comparison(task_kind, ref, ref if nominal is None else nominal, target).metrics()
    out[f"reference_{kind}"] = m.get(f"reference_{kind}")
    if nominal is not None:
        out[f"nominal_{kind}"] = m.get(f"circuit_{kind}")
        save_npz(folder / "reference.npz", **dict(np.load(folder / "reference.npz")), nominal=nominal)
    return out


def summary_rows(summary: dict) -> list[tuple[str, str]]:
    """The console table of a summary: reference, nominal circuit, then one row per point."""
    acc = "reference_accuracy" in summary

    def fmt(v):
        return "-" if v is None else f"{100 * v:.2f}%" if acc else f"{v:.4g}"

    key, worst, pct = ("accuracy", "worst", "p05") if acc else ("loss", "worst", "p95")
    rows = [
        ("samples", str(summary.get("samples_note", summary.get("samples", "-")))),
        (f"reference {key}", fmt(summary.get(f"reference_{key}"))),
        (f"nominal circuit {key}", fmt(summary.get(f"nominal_{key}"))),
    ]
    for p in summary["points"]:
        label = ", ".join(f"{k}={v:g}" for k, v in p["sigmas"].items()) or "no variation"
        if p["realizations"]:
            text = (
                f"{p['realizations']} realizations: mean {fmt(p[f'mean_{key}'])} (std {fmt(p[f'std_{key}'])}), "
                f"{worst} {fmt(p[f'{worst}_{key}'])}, best {fmt(p[f'best_{key}'])}, {pct} {fmt(p[f'{pct}_{key}'])}"
            )
        else:
            text = "no realization finished"
        if p["failed"]:
            text += f"; {len(p['failed'])} failed (see failed in the JSON)"
        rows.append((label, text))
    rows.append(("results", summary["results"] + (" (partial)" if summary.get("partial") else "")))
    return rows
