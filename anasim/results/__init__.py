"""Results: what the pipeline and Monte Carlo write and the report reads, as versioned, typed records.

The records (:class:`SimRecord` of ``simulate --json``, :class:`McRecord` of a Monte Carlo summary
and their parts: engine runs, engine agreement, model and layer rows, Monte Carlo points and rows)
are built by the pipeline and Monte Carlo and read back by the report with ``from_json``, which
checks the format version: a file of another version is refused with both versions named
(:mod:`.record`). :mod:`.files` writes them, strict JSON beside its arrays, whole or not at all.
"""

from .files import check_writable, jsonable, keep_elsewhere, mc_json, write_pair, write_record, write_report
from .montecarlo import McPoint, McRecord, McRow, McSettings, read_rows
from .record import FORMAT, MC_FORMAT, Record, RecordError, check_format
from .simulate import Agreement, EngineBlock, EngineRun, LayerRecord, ModelRecord, SimRecord

__all__ = [
    "FORMAT", "MC_FORMAT", "Agreement", "EngineBlock", "EngineRun", "LayerRecord", "McPoint", "McRecord", "McRow",
    "McSettings", "ModelRecord", "Record", "RecordError", "SimRecord", "check_format", "check_writable", "jsonable",
    "keep_elsewhere", "mc_json", "read_rows", "write_pair", "write_record", "write_report",
]  # fmt: skip
