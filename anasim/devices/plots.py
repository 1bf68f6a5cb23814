"""Figures for papers and reports (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import AnasimError  # noqa: E402
from ..outputs import write_bytes  # noqa: E402

if TYPE_CHECKING:  # annotations only: the report draws with plain_text and loads no torch
    from .ivdata import IVSweep
    from .models import DeviceModel


def plain_text(fig) -> None:
    """Titles, axis labels and legends carry user text (descriptions, file names, units): a '$'
    there is a dollar sign, not the start of math text, whose parser fails on e.g. '$v_1_2$'.
    The report's figures use it too."""
    for ax in fig.axes:
        legend = ax.get_legend()
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label, *(legend.get_texts() if legend else ())):
            text.set_parse_math(False)


def save(fig, out: str | Path) -> Path:
    """Write ``fig`` to ``out`` and close it; a path that cannot be written is a clear error."""
    plain_text(fig)
    fig.tight_layout()
    out = Path(out)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=out.suffix[1:].lower() or "png")  # the format of the name, as savefig(out)
        write_bytes(out, buf.getvalue(), what="figure")
    except ValueError as exc:  # a suffix matplotlib cannot write
        raise AnasimError(f"{out}: cannot write figure: {exc}; give a .png (or .pdf, .svg) name") from None
    finally:
        plt.close(fig)
    return out


def plot_device(model: DeviceModel, out: str | Path, sweep: IVSweep | None = None) -> Path:
    """I-V of ``model`` over its range (plus a margin showing the clamp), with the data if given."""
    lo, hi = model.v_range
    margin = 0.1 * (hi - lo)
    v = np.linspace(lo - margin, hi + margin, 600)
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=150)
    ax.plot(v, model.current(v), lw=1.6, label=f"{model.name} ({model.kind}, clamped)")
    if sweep is not None:
        ax.plot(sweep.v, sweep.i, "o", ms=3.5, color="k", label="data")
    ax.axvspan(lo, hi, color="0.93", zorder=0, label="operating range")
    err = model.provenance.get("fit_error", {})
    if err.get("rms") is not None and sweep is not None:
        ax.set_title(f"{model.name}: RMS {err['rms']:.3g}, max {err['max_abs']:.3g} {model.unit}", fontsize=9)
    else:
        ax.set_title(model.description or model.name, fontsize=9)
    ax.set_xlabel("bias (V)")
    ax.set_ylabel(f"current ({model.unit} per unit area)")
    ax.legend(fontsize=7)
    return save(fig, out)


def plot_trajectories(
    t: np.ndarray, torch_states, circuit_states, names, out: str | Path, title: str = "", episodes: int = 4
) -> Path:
    """States over time of a few episodes [E, T, S]: torch loop (lines), circuit loop (dashed)."""
    n_s = len(names)
    fig, axes = plt.subplots(n_s, 1, figsize=(6, 1.9 * n_s + 0.6), dpi=150, sharex=True, squeeze=False)
    for e in range(min(episodes, len(torch_states))):
        for k, ax in enumerate(axes[:, 0]):
            ax.plot(t, torch_states[e, :, k], lw=1.4, label="torch" if e == 0 else None)
            ax.plot(t, circuit_states[e, :, k], "--", lw=1.0, color="k", label="circuit" if e == 0 else None)
            ax.set_ylabel(names[k], fontsize=8)
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    return save(fig, out)
