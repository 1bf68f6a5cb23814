"""Report step, CI gates: thresholds on the simulate results (the ideal-case comparisons).

``--gate agreement=0.995`` fails when any simulate result's argmax agreement is below 0.995;
the others fail when the worst result is above their threshold (``--gate engines=1e-6``: the
engines of a ``simulate --engine ngspice,vacask`` differ by more than 1e-6 of the output range). A gate no given result can
answer (agreement on a regression model) fails too: a gate that checks nothing must not pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AnasimError
from ..results import SimRecord


def _drop(d: SimRecord):
    if d.reference_accuracy is None or d.circuit_accuracy is None:
        return None
    return 100 * (d.reference_accuracy - d.circuit_accuracy)


def _ratio(d: SimRecord):
    if d.reference_loss is None or d.circuit_loss is None:
        return None
    return d.circuit_loss / d.reference_loss if d.reference_loss else float("inf")


# name -> (what it measures, "min": fail below the threshold / "max": fail above it, metric of a result)
GATES = {
    "agreement": ("argmax agreement (fraction)", "min", lambda d: d.argmax_agreement),
    "accuracy-drop": ("reference minus circuit accuracy (points)", "max", _drop),
    "loss-ratio": ("circuit loss / reference loss", "max", _ratio),
    "max-error": ("max output error / output range", "max", lambda d: d.max_error_rel_range),
    # simulate --engine ngspice,vacask: the largest difference between the engines' outputs
    "engines": (
        "largest difference between engines / output range",
        "max",
        lambda d: d.engine_agreement.max_diff_rel_range if d.engine_agreement else None,
    ),
}


@dataclass(frozen=True)
class GateResult:
    name: str
    threshold: float
    value: float | None  # the worst result's value; None: no result carries the metric
    file: str | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if GATES[self.name][1] == "min" else self.value <= self.threshold

    def text(self) -> str:
        what, sense, _ = GATES[self.name]
        if self.value is None:
            return f"{self.name}: FAILED, no simulate result gives the {what}"
        op = ">=" if sense == "min" else "<="
        verdict = "passed" if self.passed else "FAILED"
        return f"{self.name}: {verdict}, {what} {self.value:.6g} (want {op} {self.threshold:g}; {self.file})"


def parse_gate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if name not in GATES or not sep:
        raise AnasimError(f"--gate {text!r}: use NAME=VALUE with NAME one of {', '.join(GATES)}")
    try:
        threshold = float(value)
    except ValueError:
        raise AnasimError(f"--gate {text!r}: {value!r} is not a number") from None
    if name == "agreement" and not 0 <= threshold <= 1:
        raise AnasimError(f"--gate {text!r}: agreement is a fraction between 0 and 1 (99.5% is 0.995)")
    if threshold != threshold:  # NaN: every comparison is false
        raise AnasimError(f"--gate {text!r}: give a number")
    return name, threshold


def evaluate(gates, sims) -> list[GateResult]:
    """Each gate against the worst of the simulate results that give its metric."""
    out = []
    for name, threshold in gates:
        _, sense, metric = GATES[name]
        values = [(metric(r.record), str(r.path)) for r in sims if metric(r.record) is not None]
        if not values:
            out.append(GateResult(name, threshold, None, None))
            continue
        worst = min(values) if sense == "min" else max(values)
        out.append(GateResult(name, threshold, float(worst[0]), worst[1]))
    return out
