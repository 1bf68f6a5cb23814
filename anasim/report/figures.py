"""Report step, figures: matplotlib (Agg) plots of the loaded results, each returned as PNG bytes.

Every figure has a title, axis labels and units; the renderer writes the bytes to files for the
markdown and embeds them base64 in the HTML. Only numpy and matplotlib: no torch, no ngspice.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np

DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    from ..devices.plots import plain_text  # with the figure code of the device side (loads pyplot: late)

    plain_text(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    _plt().close(fig)
    return buf.getvalue()


def device_curves(devices: dict) -> bytes:
    """I-V of every device used: the fit over its range, and the sweep points of pwl fits."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(devices), figsize=(4.2 * len(devices), 3.2), squeeze=False)
    for ax, (name, d) in zip(axes[0], devices.items()):
        ax.plot(d["fit_v"], d["fit_i"], lw=1.6, label=f"fit ({d['fit_method']})")
        if d["data_v"]:
            ax.plot(d["data_v"], d["data_i"], "o", ms=3, color="k", label="data (sweep points)")
        ax.set_title(textwrap.fill(f"{name}: {d['description']}", 48), fontsize=8)
        ax.set_xlabel("bias (V)")
        ax.set_ylabel(f"current ({d['unit']} per unit area)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def scatter(ref: np.ndarray, out: np.ndarray, title: str) -> bytes:
    """Circuit against reference, every output of every sample, with the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ok = np.isfinite(out).all(axis=1) & np.isfinite(ref).all(axis=1)
    r, c = ref[ok].ravel(), out[ok].ravel()
    lo, hi = float(min(r.min(), c.min())), float(max(r.max(), c.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, label="circuit = reference")
    ax.plot(r, c, ".", ms=2, alpha=0.5, label=f"{ok.sum()} samples x {ref.shape[1]} outputs")
    ax.set_xlabel("reference output, torch (V)")
    ax.set_ylabel("circuit output (V)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def error_histogram(err: np.ndarray, title: str) -> bytes:
    """Per-sample max |circuit - reference| on log bins (errors span decades)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    e = err[np.isfinite(err)]
    e = np.maximum(e, 1e-15)  # an exact zero would fall off a log axis
    bins = np.logspace(np.log10(e.min()) - 0.1, np.log10(e.max()) + 0.1, 40)
    ax.hist(e, bins=bins, color="C1")
    ax.set_xscale("log")
    ax.set_xlabel("max |circuit - reference| over the outputs of a sample (V)")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def mc_histogram(values: np.ndarray, key: str, reference, nominal, title: str) -> bytes:
    """Accuracies (in %) or losses of the realizations, with the reference and nominal circuit."""
    plt = _plt()
    scale, unit = (100.0, "%") if key == "accuracy" else (1.0, "MSE")
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.hist(values * scale, bins=min(20, max(5, len(values) // 2)), color="C2", label=f"{len(values)} realizations")
    if reference is not None:
        ax.axvline(reference * scale, color="k", ls="--", label="torch reference")
    if nominal is not None:
        ax.axvline(nominal * scale, color="C0", ls=":", label="nominal circuit")
    ax.set_xlabel(f"circuit {key} ({unit})")
    ax.set_ylabel("realizations")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def mc_sigma(points: list[dict], key: str, reference, title: str, xlabel: str) -> bytes:
    """Mean against sigma with the worst-best band; the torch reference as a line, and where the
    summary holds it (TD-KAN) torch with the paper's eq. 6 noise at each sigma, its band in grey."""
    plt = _plt()
    scale, unit = (100.0, "%") if key == "accuracy" else (1.0, "MSE")
    pts = sorted(points, key=lambda p: p["sigma"])
    s = np.array([p["sigma"] for p in pts])
    mean = np.array([p[f"mean_{key}"] for p in pts]) * scale
    worst = np.array([p[f"worst_{key}"] for p in pts]) * scale
    best = np.array([p[f"best_{key}"] for p in pts]) * scale
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.fill_between(s, worst, best, color="C0", alpha=0.2, label="worst .. best realization")
    ax.plot(s, mean, "o-", color="C0", label="circuit, mean")
    eq6 = [p for p in pts if "torch" in p]
    if eq6:
        ts = [p["sigma"] for p in eq6]
        band = [np.array([p["torch"][f"{w}_{key}"] for p in eq6]) * scale for w in ("worst", "best", "mean")]
        ax.fill_between(ts, band[0], band[1], color="0.5", alpha=0.15, label="torch eq. 6: worst .. best")
        ax.plot(ts, band[2], "s--", color="0.35", ms=4, label="torch eq. 6 (same sigma), mean")
    if reference is not None:
        ax.axhline(reference * scale, color="k", ls="--", label="torch reference (no variation)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{key} ({unit})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def versus_option(xs, ys, xlabel: str, ylabel: str, title: str, log: bool) -> bytes:
    """A metric against a hardware option that differs between simulate results (e.g. wire R)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    order = np.argsort(xs)
    ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], "o-")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def trajectories(arrays: dict, scale_a: float, title: str, nodes: int = 4) -> bytes:
    """Node voltages over the first layer: the engine's lines, torchdiffeq markers, a few nodes."""
    plt = _plt()
    ts, vs = arrays["traj_t_spice"] * scale_a * 1e9, arrays["traj_v_spice"]
    tr, vr = arrays["traj_t_ref"] * scale_a * 1e9, arrays["traj_v_ref"]
    samples = arrays["trajectory_samples"]
    fig, axes = plt.subplots(1, len(samples), figsize=(4.2 * len(samples), 3.3), squeeze=False, sharey=True)
    for b, ax in enumerate(axes[0]):
        for j in range(min(nodes, vs.shape[2])):
            ax.plot(ts, vs[:, b, j], color=f"C{j}", lw=1.4, label=f"n{j + 1} circuit")
            ax.plot(tr, vr[:, b, j], "x", color=f"C{j}", ms=4, label=f"n{j + 1} torchdiffeq")
        ax.set_title(f"sample {int(samples[b])}", fontsize=9)
        ax.set_xlabel("time (ns)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("node voltage (V)")
    axes[0][-1].legend(fontsize=6, ncol=2)
    fig.suptitle(title, fontsize=10, parse_math=False)
    return _png(fig)
