"""Results on disk: what the comparator hands to the report step.

``write_report`` writes a comparison as JSON and its per-sample arrays as an .npz beside it;
the pipeline calls it before raising on failed samples, so partial results are on disk
whatever happens next.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import AnasimError

# Version of the simulate results file; the report refuses files of other versions by name.
# 1: the first with "format", "kind", "model", "devices" and "environment" (anasim 0.2.0).
FORMAT = "anasim-simulate/1"


def write_report(json_out, report: dict, **arrays: np.ndarray) -> None:
    """``report`` to ``json_out`` and ``arrays`` to the same name with suffix .npz."""
    json_out = Path(json_out)
    try:
        json_out.write_text(json.dumps(report, indent=1) + "\n")
        np.savez(json_out.with_suffix(".npz"), **arrays)
    except OSError as exc:
        raise AnasimError(f"{json_out}: cannot write results: {exc.strerror or exc}") from None
