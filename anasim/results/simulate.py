"""The simulate record (``simulate --json``) and its parts: the engine that ran, each engine's run
and their agreement (``--engine ngspice,vacask``), the model and its layers as the lowering reports them.

Built by :mod:`anasim.pipeline` and :mod:`anasim.summary`, read by :mod:`anasim.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .record import FORMAT, Record, check_format


@dataclass
class EngineRun(Record):
    """``engine`` of a simulate record: the engine the circuit outputs come from."""

    KEEP_NULL = frozenset({"name", "simulator", "mode", "jobs", "solver", "solver_fallback"})
    name: str | None = None
    simulator: str | None = None  # version and solver, e.g. "ngspice-46, klu"
    mode: str | None = None
    jobs: int | None = None
    solver: str | None = None
    solver_fallback: list[int] | None = None  # samples KLU did not converge on, run again under Sparse


@dataclass
class EngineBlock(Record):
    """One engine's run in ``engines`` of a simulation on several engines (``--engine ngspice,vacask``)."""

    KEEP_NULL = frozenset({"simulator", "mode", "solver", "solver_fallback", "max_error_rel_range", "rusage"})
    simulator: str | None = None
    mode: str | None = None
    solver: str | None = None
    solver_fallback: list[int] | None = None
    samples_done: int = 0
    failed_samples: dict[str, str] = field(default_factory=dict)
    max_error_rel_range: float | None = None  # against the torch reference
    rusage: dict | None = None
    wall_s: float | None = None
    engine_cpu_s: float | None = None  # CPU seconds of its processes (the engines run one after the other)


@dataclass
class Agreement(Record):
    """One row of ``engine_agreements``: the first engine's outputs against another's."""

    KEEP_NULL = frozenset({"max_abs_diff_v", "output_range_v", "max_diff_rel_range", "worst_sample"})
    engines: list[str]
    samples_compared: int
    max_abs_diff_v: float | None = None
    output_range_v: float | None = None
    max_diff_rel_range: float | None = None
    worst_sample: int | None = None


@dataclass
class LayerRecord(Record):
    """One layer of the lowered circuit: its size, crossbar and tiles as the lowering reports them."""

    layer: int
    inputs: int | None = None
    outputs: int | None = None
    devices: int | None = None
    nodes: int | None = None
    crossbar_rows: int | None = None  # at most, per tile
    crossbar_columns: int | None = None
    tiles: int | None = None
    tile_grid: list[int] | None = None  # row tiles, column tiles
    area_range: list[float] | None = None
    rf_ohm: list[float] | None = None


@dataclass
class ModelRecord(Record):
    """``model`` of a simulate record: family, architecture, parameters and the lowered circuit."""

    KEEP_NULL = frozenset({"bases", "activation", "params", "dataset", "test_accuracy", "test_loss", "train_seed"})
    NESTED = {"layers": ("list", LayerRecord)}
    family: str
    title: str
    checkpoint: str
    checkpoint_sha256: str  # 16 hex digits
    arch: str | None = None
    dims: list[int] = field(default_factory=list)
    bases: list[str] | None = None
    activation: str | None = None
    params: int | None = None
    dataset: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_seed: int | None = None
    layers: list[LayerRecord] = field(default_factory=list)
    circuit: dict = field(default_factory=dict)  # element counts (summary.circuit_counts)


@dataclass
class SimRecord(Record):
    """A ``simulate --json`` file: metrics, provenance, the engine(s), the model, its devices and the
    environment. What a family adds (transient settling and power, TD-KAN's swing, KirchhoffNet's
    time scale) is kept in ``extra`` and read through the properties below."""

    KEEP_NULL = frozenset(
        {"max_abs_error", "mean_abs_error", "output_scale", "max_error_rel_range", "netlist", "run_dir", "analysis",
         "rusage", "wall_s", "checkpoint", "checkpoint_sha256"}
    )  # fmt: skip
    NESTED = {
        "engine": ("one", EngineRun),
        "engines": ("dict", EngineBlock),
        "engine_agreement": ("one", Agreement),
        "engine_agreements": ("list", Agreement),
        "model": ("one", ModelRecord),
    }
    samples: int
    task: str  # "classification" or "regression"
    model: ModelRecord
    format: str = FORMAT
    kind: str = "simulate"
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    output_scale: float | None = None
    max_error_rel_range: float | None = None
    reference_loss: float | None = None
    circuit_loss: float | None = None
    reference_accuracy: float | None = None
    circuit_accuracy: float | None = None
    argmax_agreement: float | None = None
    failed_samples: dict[str, str] = field(default_factory=dict)
    plausibility: dict | None = None
    family: str | None = None
    dataset: str | None = None
    split: str | None = None
    requested_samples: int | None = None
    note: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    netlist: str | None = None
    partial: bool = False
    samples_done: int | None = None
    engine: EngineRun = field(default_factory=EngineRun)
    analysis: str | None = None
    hardware: dict = field(default_factory=dict)  # the family's options and the analysis
    rusage: dict | None = None
    extra: dict = field(default_factory=dict)  # what the family's simulation added
    wall_s: float | None = None
    run_dir: str | None = None
    engines: dict[str, EngineBlock] | None = None  # several engines: each one's run
    engine_agreement: Agreement | None = None  # the worst of engine_agreements
    engine_agreements: list[Agreement] | None = None
    devices: dict = field(default_factory=dict)  # name -> I-V curve (summary.device_curves)
    environment: dict = field(default_factory=dict)  # versions, commit, date, command (summary.environment)
    period_s: float | None = None  # transient: the time one inference holds the circuit

    # the file's field order: "format" and "kind" first, "model" after the run's fields
    ORDER: ClassVar[tuple[str, ...]] = ("format", "kind", "samples", "task")

    def to_json(self) -> dict:
        out = super().to_json()
        head = {k: out.pop(k) for k in self.ORDER}
        tail = {k: out.pop(k) for k in ("model", "devices", "environment", "period_s") if k in out}
        return head | out | tail

    @classmethod
    def from_json(cls, data, where: str = "results"):
        check_format(data, FORMAT, where)
        return super().from_json(data, where)

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def engine_name(self) -> str:
        """The engine the circuit outputs come from (ngspice for results before it was recorded)."""
        return self.engine.name or "ngspice"

    @property
    def settling_time_s(self) -> dict | None:  # transient: {"median", "max"} seconds
        return self.extra.get("settling_time_s")

    @property
    def static_power_w(self) -> dict | None:  # {"mean", "max"} watts per inference
        return self.extra.get("static_power_w")

    @property
    def energy_j(self) -> float | None:
        return self.extra.get("energy_j")

    @property
    def end_time_s(self) -> float | None:  # KirchhoffNet: the forward time
        return self.extra.get("end_time_s")

    @property
    def scale_a(self) -> float:  # KirchhoffNet: farads per unit capacitance, seconds per unit time
        return self.extra.get("scale_a", 1.0)
