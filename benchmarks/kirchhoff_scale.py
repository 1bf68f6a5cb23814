"""KirchhoffNet accuracy across hardware scales a (issue 13, item 3): circuit vs torchdiffeq.

The same trained KirchhoffNet (``results/equivalence/kn.pt``, Friedman, 7 nodes) is simulated
as ``anasim simulate --scale-a A`` does it, at a = 1e-9, 1e-12, 1e-15 and 1e-18: capacitors of
a farads, a layer of T a seconds. Each a runs twice, with ngspice's default charge tolerance
(chgtol 1e-14 C, as before the fix) and with chgtol scaled by a / 1e-9 (what anasim writes),
and the table gives the circuit-vs-reference max error as a fraction of the output range and
its ratio to the a = 1e-9 error. Scaled, every ratio must lie within 2x. Writes
results/kirchhoff_scale.json.

    python benchmarks/kirchhoff_scale.py [--samples 50]
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import replace
from pathlib import Path
from unittest import mock

from anasim.pipeline import compare, load

# the module (the package's name ``lower`` is its lowering function)
kn_lower = importlib.import_module("anasim.families.kirchhoff.lower")
SCALED = kn_lower.tran_options  # what anasim writes: chgtol scaled with a

HERE = Path(__file__).parent
CKPT = HERE / "results" / "equivalence" / "kn.pt"
OUT = HERE / "results" / "kirchhoff_scale.json"
SCALES = (1e-9, 1e-12, 1e-15, 1e-18)


def default_chgtol(a, reltol=kn_lower.RELTOL):
    """The options anasim wrote before the fix: ngspice's own chgtol at every a."""
    return replace(SCALED(a, reltol), chgtol=None)


def max_error(net, a: float, samples: int, scaled: bool) -> dict:
    patch = mock.patch.object(kn_lower, "tran_options", SCALED if scaled else default_chgtol)
    with patch:
        m = compare(net, samples=samples, options={"scale_a": a}).metrics()
    return {"max_abs_error_v": m["max_abs_error"], "max_error_rel_range": m["max_error_rel_range"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args(argv)
    net = load(CKPT)
    rows = []
    print(f"{CKPT.name}, {args.samples} test samples: circuit vs torchdiffeq max error / output range")
    print(
        f"{'a':>7}  {'chgtol (anasim)':>15}  {'default chgtol':>14}  {'ratio':>6}  {'scaled chgtol':>13}  {'ratio':>6}"
    )
    for a in SCALES:
        row = {
            "scale_a": a,
            "chgtol": SCALED(a).get("chgtol", kn_lower.CHGTOL),
            "default_chgtol": max_error(net, a, args.samples, scaled=False),
            "scaled_chgtol": max_error(net, a, args.samples, scaled=True),
        }
        rows.append(row)
        for key in ("default_chgtol", "scaled_chgtol"):
            row[key]["ratio_to_1e-9"] = row[key]["max_error_rel_range"] / rows[0][key]["max_error_rel_range"]
        d, s = row["default_chgtol"], row["scaled_chgtol"]
        print(
            f"{a:7.0e}  {row['chgtol']:15.0e}  {d['max_error_rel_range']:14.3g}  {d['ratio_to_1e-9']:6.2f}  "
            f"{s['max_error_rel_range']:13.3g}  {s['ratio_to_1e-9']:6.2f}"
        )
    worst = max(max(r["scaled_chgtol"]["ratio_to_1e-9"], 1 / r["scaled_chgtol"]["ratio_to_1e-9"]) for r in rows)
    result = {"checkpoint": str(CKPT.relative_to(HERE)), "samples": args.samples, "rows": rows, "worst_ratio": worst}
    print(f"scaled chgtol: every a within {worst:.2f}x of a = 1e-9 (target: 2x)")
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
