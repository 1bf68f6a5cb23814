"""The Monte Carlo records: the summary (``--mc N --json mc.json``), its settings, its points and the
rows of ``rows.jsonl`` (one per realization).

Built by :mod:`anasim.montecarlo.summary` from the rows :mod:`anasim.montecarlo.realizations` writes, read by :mod:`anasim.report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .record import MC_FORMAT, Record, RecordError, check_format, decode, encode


@dataclass
class McSettings(Record):
    """``settings`` of a Monte Carlo summary: what a resume must match (``realizations`` may grow)."""

    KEEP_NULL = frozenset({"analysis", "period", "sweep", "engine", "solver"})
    checkpoint_sha256: str
    dataset: str
    split: str
    samples: int
    hardware: dict = field(default_factory=dict)
    analysis: str | None = None
    period: float | None = None
    vary: dict[str, float] = field(default_factory=dict)
    sweep: dict[str, list[float]] | None = None
    seed: int = 0
    noise_dist: str = "binary"
    chunk: int | None = None
    engine: str | None = None
    solver: str | None = None
    realizations: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class McRow(Record):
    """One realization's row (``rows.jsonl``). A field this anasim does not know (added by a later
    Monte Carlo) is kept in ``extra``, not refused."""

    KEEP_NULL = frozenset({"max_abs_error", "mean_abs_error", "max_error_rel_range", "accuracy", "agreement", "loss"})
    point: int
    index: int
    seed: list[int] = field(default_factory=list)
    sigmas: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    max_error_rel_range: float | None = None
    loss: float | None = None
    accuracy: float | None = None
    agreement: float | None = None
    failed_samples: int | None = None
    torch_eq6_accuracy: float | None = None
    torch_eq6_loss: float | None = None
    solver_fallback: list[int] | None = None
    first_failure: str | None = None
    wall_s: float | None = None
    ngspice_s: float | None = None
    ngspice_elapsed_s: float | None = None
    extra: dict = field(default_factory=dict)

    TIMES: ClassVar[tuple[str, ...]] = ("ngspice_s", "ngspice_elapsed_s")  # written with wall_s, null or not

    def to_json(self) -> dict:
        out = super().to_json()
        if self.wall_s is not None:  # a realization that returned has its times, null when unmeasured
            timed = {}
            for k, v in out.items():
                timed[k] = v
                if k == "wall_s":
                    timed |= {t: getattr(self, t) for t in self.TIMES}
            out = timed
        if self.error is not None:  # a failed realization has no figures, not null ones
            return {k: v for k, v in out.items() if v is not None or k not in self.KEEP_NULL}
        # a regression row has no accuracy or agreement, a classification row no loss
        drop = ("loss",) if self.loss is None else ("accuracy", "agreement")
        return {k: v for k, v in out.items() if v is not None or k not in drop}


@dataclass
class McPoint(Record):
    """One point (one set of sigmas) of a Monte Carlo: its realizations' figures. ``key`` is
    "accuracy" or "loss": the figures are named after it in the file (``mean_accuracy``, ``losses``)."""

    NESTED = {"failed": ("list", McRow)}
    sigmas: dict[str, float]
    realizations: int
    key: str = "accuracy"
    failed: list[McRow] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)  # mean_, worst_, best_, std_, p05_/p95_<key>, mean_agreement
    values: list[float] = field(default_factory=list)  # the figure of each realization
    torch_eq6: dict | None = None  # TD-KAN: eq. 6 in torch at the point's coefficient sigma

    PLURAL: ClassVar[dict[str, str]] = {"accuracy": "accuracies", "loss": "losses"}

    def to_json(self) -> dict:
        out = {"sigmas": self.sigmas, "realizations": self.realizations, "failed": encode(self.failed)}
        out |= self.stats | {self.PLURAL[self.key]: self.values}
        return out | ({} if self.torch_eq6 is None else {"torch_eq6": self.torch_eq6})

    @classmethod
    def from_json(cls, data, where: str = "results"):
        if not isinstance(data, dict) or "sigmas" not in data or "realizations" not in data:
            raise RecordError(f"{where}: a Monte Carlo point needs 'sigmas' and 'realizations'")
        key = "loss" if "losses" in data or any(k.endswith("_loss") for k in data) else "accuracy"
        stats = {k: v for k, v in data.items() if k.startswith(("mean_", "worst_", "best_", "std_", "p0", "p9"))}
        failed = decode(cls.NESTED["failed"], data.get("failed", []), f"{where}: field 'failed'")
        return cls(data["sigmas"], data["realizations"], key, failed, stats, list(data.get(cls.PLURAL[key], [])),
                   data.get("torch_eq6"))  # fmt: skip

    def stat(self, which: str) -> float | None:
        """``mean``, ``worst``, ``best``, ``std`` (or ``p05``/``p95``) of the point's figure."""
        return self.stats.get(f"{which}_{self.key}")


@dataclass
class McRecord(Record):
    """A Monte Carlo summary (``--mc N --json mc.json``). A single point's figures are also written at
    the top level (as the console and older readers take them); they are read from ``points``."""

    NESTED = {"settings": ("one", McSettings), "points": ("list", McPoint)}
    checkpoint_sha256: str
    settings: McSettings
    points: list[McPoint]
    key: str = "accuracy"  # "accuracy" or "loss"
    kind: str = "monte-carlo"
    format: str | None = MC_FORMAT  # None: a summary written before the format field
    checkpoint: str | None = None
    anasim: str | None = None
    results: str | None = None  # the folder of rows and outputs
    environment: dict | None = None
    reference: float | None = None  # the torch reference's figure
    nominal: float | None = None  # the unperturbed circuit's (once it has run)
    partial: bool = False
    samples: int | None = None
    samples_note: str | None = None
    note: str | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind, "format": self.format, "checkpoint": self.checkpoint,
               "checkpoint_sha256": self.checkpoint_sha256, "anasim": self.anasim, "results": self.results}  # fmt: skip
        out = {k: v for k, v in out.items() if v is not None or k in ("checkpoint_sha256",)}
        if self.environment is not None:
            out["environment"] = self.environment
        out[f"reference_{self.key}"] = self.reference
        if self.nominal is not None:
            out[f"nominal_{self.key}"] = self.nominal
        out |= {"partial": self.partial, "samples": self.samples}
        out |= {k: v for k, v in (("samples_note", self.samples_note), ("note", self.note)) if v is not None}
        out |= {"settings": self.settings.to_json(), "points": [p.to_json() for p in self.points]}
        if len(self.points) == 1:
            out |= {k: v for k, v in self.points[0].to_json().items() if k != "sigmas"}
        return out

    @classmethod
    def from_json(cls, data, where: str = "results"):
        check_format(data, MC_FORMAT, where, older_ok=True)
        for name in ("points", "settings", "checkpoint_sha256"):
            if name not in data:
                raise RecordError(
                    f"{where}: Monte Carlo summary without {name!r}; not written by 'anasim simulate --mc'"
                )
        key = "accuracy" if "reference_accuracy" in data else "loss"
        plain = {k: data[k] for k in ("kind", "checkpoint", "anasim", "results", "environment", "partial",
                                      "samples", "samples_note", "note") if k in data}  # fmt: skip
        return cls(
            data["checkpoint_sha256"], McSettings.from_json(data["settings"], f"{where}: field 'settings'"),
            decode(cls.NESTED["points"], data["points"], f"{where}: field 'points'"), key,
            reference=data.get(f"reference_{key}"), nominal=data.get(f"nominal_{key}"),
            format=data.get("format"), **plain,  # None: written before the format field
        )  # fmt: skip


def read_rows(path: Path) -> list[McRow]:
    """The rows of a Monte Carlo's ``rows.jsonl``; a last line cut short by a crash ends them."""
    rows = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines()):
        try:
            rows.append(McRow.from_json(json.loads(line), f"{path}:{n + 1}"))
        except (json.JSONDecodeError, RecordError):
            break
    return rows
