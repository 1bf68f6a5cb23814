"""Report step: the accuracy-vs-circuit report, read from result files only (never re-simulates).

``make_report(paths, folder, gates)`` reads the JSON (and .npz, Monte Carlo folders) of
``anasim simulate --json`` and ``--mc`` runs of one model (:mod:`.load`), composes the sections
(:mod:`.sections`, figures in :mod:`.figures`), writes ``report.md`` with ``figures/`` and one
self-contained ``report.html`` (:mod:`.render`), and checks the CI gates (:mod:`.gates`).
No torch and no ngspice are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..outputs import check_outputs
from .gates import GateResult, evaluate, parse_gate
from .load import load_results
from .render import Doc
from .sections import (
    comparison_section,
    device_section,
    environment_section,
    kirchhoff_section,
    mc_section,
    model_section,
    physical_section,
)

__all__ = ["Report", "make_report", "parse_gate"]


@dataclass(frozen=True)
class Report:
    markdown: Path
    html: Path
    table: str  # the comparison table as markdown, for the CI log
    gates: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        return [gr for gr in self.gates if not gr.passed]


def make_report(paths, folder, gates=()) -> Report:
    """Read ``paths``, write the report into ``folder`` and evaluate ``gates`` [(name, threshold)]."""
    folder = Path(folder)
    inputs = [(f"the results file {p}", p) for p in paths]
    inputs += [(f"the arrays of {p} ({Path(p).with_suffix('.npz')})", Path(p).with_suffix(".npz")) for p in paths]
    outputs = [(f"-o {folder}", folder, "-o")]
    outputs += [(f"the report {folder / name}", folder / name, "-o") for name in ("report.md", "report.html")]
    check_outputs(inputs, outputs)  # before reading: a report must not replace what it reads
    res = load_results(paths)
    doc = Doc(f"anasim report: {res.name}")
    results = [r.path.name for r in res.sims] + [m.path.name for m in res.mcs]
    doc.p(f"Results of checkpoint {res.name} (sha256 {res.checkpoint}): {', '.join(results)}.")
    checked = evaluate(gates, res.sims)
    if checked:
        doc.h("Gates")
        for gr in checked:
            doc.p(gr.text(), "pass" if gr.passed else "fail")
    model_section(doc, res)
    device_section(doc, res)
    table = comparison_section(doc, res)
    mc_section(doc, res)
    physical_section(doc, res)
    kirchhoff_section(doc, res)
    environment_section(doc, res)
    md, page = doc.write(Path(folder))
    return Report(md, page, table, checked)
