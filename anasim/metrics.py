"""Comparator: circuit outputs against the reference, sample by sample (pure numpy, no torch).

One :class:`Comparison` for every family and task: classification reports accuracies and argmax
agreement, regression reports losses (MSE against the targets); both report the output error
in volts and as a fraction of the reference's output range. ``rows()`` is the console table;
``to_dict()`` the JSON the report step reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import AnasimError


@dataclass(frozen=True)
class Bounds:
    """Plausible results. Operating points, until supply rails (issue 7) make others impossible:
    outputs of op-amps on +-15 V rails span at most 30 V, and a 5 W static power per inference is
    far above any network anasim builds when it works (the digits demo draws 75 mW). Accuracy: a
    run can finish with wrong outputs (issue 13: KirchhoffNets with large thetas ended 3e-2 to
    9e-2 of the range off and exited 0), so a sample whose circuit output is further than
    ``max_error_rel_range`` of the reference's output range from the reference is flagged;
    working KirchhoffNet decks measure 1e-5 to 1e-4 of the range, well inside 1e-3."""

    max_output_range_v: float = 30.0
    max_power_w: float = 5.0
    max_error_rel_range: float = 1e-3

    def __post_init__(self):
        # a NaN bound compares False with everything: it would turn its check off without a word
        for flag, value in (("--max-range", self.max_output_range_v), ("--max-power", self.max_power_w),
                            ("--max-error", self.max_error_rel_range)):  # fmt: skip
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise AnasimError(f"{flag} {value!r}: give a finite number > 0")

    def error_samples(self, circuit: np.ndarray, reference: np.ndarray) -> list[int]:
        """Samples (rows of [N, out]) whose max output error exceeds the tolerance; rows where
        either side failed (NaN) are the failed samples' business, not this flag's."""
        ok = np.isfinite(circuit).all(axis=1) & np.isfinite(reference).all(axis=1)
        if not ok.any():
            return []
        span = float(np.ptp(reference[ok])) or 1.0
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(circuit - reference).max(axis=1) / span
        return np.flatnonzero(ok & (err > self.max_error_rel_range)).tolist()

    def flags(self, circuit: np.ndarray, info: dict, reference: np.ndarray | None = None) -> list[str]:
        """What is implausible in the circuit outputs [N, out] (against ``reference``, if given)
        and the run's ``info``."""
        found = []
        ok = np.isfinite(circuit).all(axis=1)
        span = float(np.ptp(circuit[ok])) if ok.any() else 0.0
        if span > self.max_output_range_v:
            found.append(f"output range {span:.4g} V > {self.max_output_range_v:g} V")
        power = info.get("static_power_w", {}).get("max")
        if power is not None and power > self.max_power_w:
            found.append(f"static power {power:.4g} W per inference > {self.max_power_w:g} W")
        bad = [] if reference is None else self.error_samples(circuit, reference)
        if bad:
            more = f" and {len(bad) - ERROR_SAMPLES_NAMED} more" if len(bad) > ERROR_SAMPLES_NAMED else ""
            named = ", ".join(map(str, bad[:ERROR_SAMPLES_NAMED]))
            found.append(
                f"{len(bad)} of {len(circuit)} samples differ from the reference by more than "
                f"{self.max_error_rel_range:g} of the output range: sample{'s' if len(bad) > 1 else ''} {named}{more}"
            )
        return found


# samples a max-error flag names in its one line (the JSON lists them all)
ERROR_SAMPLES_NAMED = 5


@dataclass
class Comparison:
    task: str  # "classification" or "regression"
    reference: np.ndarray  # [N, out] torch reference (NaN rows where it failed)
    circuit: np.ndarray  # [N, out] ngspice (NaN rows where it failed)
    target: np.ndarray  # [N] labels or [N, out] regression targets
    failed: dict[int, str] = field(default_factory=dict)  # sample -> why
    info: dict = field(default_factory=dict)  # provenance: dataset, engine, options, wall time, ...
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.circuit).all(axis=1) & np.isfinite(self.reference).all(axis=1)

    def metrics(self) -> dict:
        ok, ref, out, target = self.ok, self.reference, self.circuit, self.target
        err = np.abs(out[ok] - ref[ok])
        m = {
            "max_abs_error": float(err.max()) if err.size else float("nan"),
            "mean_abs_error": float(err.mean()) if err.size else float("nan"),
            "output_scale": float(np.ptp(ref[ok])) if ok.any() else 1.0,
        }
        m["max_error_rel_range"] = m["max_abs_error"] / (m["output_scale"] or 1.0)
        if not ok.any():
            return m
        if self.task == "regression":
            m["reference_loss"] = float(((ref[ok] - target[ok]) ** 2).mean())
            m["circuit_loss"] = float(((out[ok] - target[ok]) ** 2).mean())
        else:
            m["reference_accuracy"] = float((ref[ok].argmax(1) == target[ok]).mean())
            m["circuit_accuracy"] = float((out[ok].argmax(1) == target[ok]).mean())
            m["argmax_agreement"] = float((out[ok].argmax(1) == ref[ok].argmax(1)).mean())
        return m

    def to_dict(self) -> dict:
        failed = {str(k): self.failed[k] for k in sorted(self.failed)}
        return {
            "samples": int(len(self.circuit)),
            "task": self.task,
            **self.metrics(),
            "failed_samples": failed,
            "plausibility": self.plausibility(),
            **self.info,
        }

    def plausibility(self) -> dict:
        flags = self.bounds.flags(self.circuit, self.info, self.reference)
        bad = self.bounds.error_samples(self.circuit, self.reference)
        return {
            "plausible": not flags,
            "flags": flags,
            "bounds": asdict(self.bounds),
            "error_flagged": len(bad),  # samples beyond max_error_rel_range
            "error_flagged_samples": bad,
        }

    def rows(self) -> list[tuple[str, str]]:
        """The console table: label, value."""
        m, info = self.metrics(), self.info
        samples = str(len(self.circuit))
        if info.get("requested_samples", len(self.circuit)) != len(self.circuit):
            samples += f" (of {info['requested_samples']} asked: {info['note']})"
        rows = [("samples", samples), ("engine", engine_text(info.get("engine", {})))]
        if "end_time_s" in info:
            rows.append(("forward time", f"{info['end_time_s']:.3g} s (a = {info['scale_a']:g})"))
        if "circuit_loss" in m:
            rows += [("reference loss", f"{m['reference_loss']:.4g}"), ("circuit loss", f"{m['circuit_loss']:.4g}")]
        elif "circuit_accuracy" in m:
            rows += [
                ("reference accuracy", f"{100 * m['reference_accuracy']:.2f}%"),
                ("circuit accuracy", f"{100 * m['circuit_accuracy']:.2f}%"),
                ("argmax agreement", f"{100 * m['argmax_agreement']:.2f}%"),
            ]
        rows += [
            ("max abs error", f"{m['max_abs_error']:.3g} V ({m['max_error_rel_range']:.2e} of range)"),
            ("mean abs error", f"{m['mean_abs_error']:.3g} V"),
            ("output range", f"{m['output_scale']:.4g} V"),
            ("wall time", f"{info.get('wall_s', float('nan')):.2f} s"),
        ]
        if "settling_time_s" in info:
            st = info["settling_time_s"]
            rows.append(("settling time", f"median {st['median'] * 1e9:.0f} ns, max {st['max'] * 1e9:.0f} ns"))
        if "static_power_w" in info:
            where = f" (first {info['power_samples']} samples)" if "power_samples" in info else ""
            rows.append(("static power", f"mean {info['static_power_w']['mean'] * 1e3:.2f} mW per inference{where}"))
            if "power_split_w" in info:
                split = ", ".join(f"{k} {v * 1e3:.3g}" for k, v in info["power_split_w"].items())
                rows.append(("power split (mW)", split))
            if info.get("energy_j") is not None:
                rows.append(("energy per inference", f"{info['energy_j'] * 1e9:.3g} nJ (power x median latency)"))
        if "swing" in info:
            rows.append(("swing", swing_row(info["swing"])))
        for row in info.get("engine_agreements", []):  # a simulation on several engines
            rows.append(("engine agreement", agreement_text(row)))
        flags = self.plausibility()["flags"]
        rows.append(("plausibility", "IMPLAUSIBLE: " + "; ".join(flags) if flags else "ok (within the bounds)"))
        if info.get("partial"):
            rows.append(
                ("partial", f"{info.get('samples_done')} of {len(self.circuit)} samples finished (interrupted)")
            )
        if self.failed:
            rows.append(("failed samples", f"{len(self.failed)} (see failed_samples in the JSON)"))
        return rows


def engine_text(engine: dict) -> str:
    """``ngspice-46, klu``, and the samples KLU did not converge on (run again under Sparse)."""
    text = engine.get("simulator") or "-"
    fell = engine.get("solver_fallback") or []
    if fell:
        shown = ", ".join(map(str, fell[:10])) + (", ..." if len(fell) > 10 else "")
        text += f" (Sparse for {len(fell)} sample(s) KLU did not converge on: {shown})"
    return text


def agreement_text(row: dict) -> str:
    """``ngspice vs vacask: max |difference| 1.5e-12 V (1.2e-13 of range), 360 samples``."""
    a, b = row["engines"]
    if row.get("max_diff_rel_range") is None:
        return f"{a} vs {b}: no sample finished on both"
    return (
        f"{a} vs {b}: max |difference| {row['max_abs_diff_v']:.3g} V ({row['max_diff_rel_range']:.2e} of range), "
        f"{row['samples_compared']} samples"
    )


def swing_row(sw: dict) -> str:
    """``--swing``: the output scale divided out, and the held-out samples beyond the swing."""
    text = f"outputs x {sw['output_scale']:.4g}" + (f" (fitted to {sw['volts']:g} V)" if "volts" in sw else "")
    if "samples_outside" in sw:
        text += f"; {sw['samples_outside']} of {sw['samples_checked']} samples beyond it (largest op-amp output"
        text += f" {sw['max_abs_v']:.4g} V)" if sw["max_abs_v"] is not None else " -)"
    return text + (f"; {sw['held_out']}" if "held_out" in sw else "")
