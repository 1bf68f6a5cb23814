"""Runs that finish with wrong outputs are flagged (issue 13, item 4): ``simulate --max-error``
(default 1e-3 of the output range) names the samples in a warning, counts them in the JSON's
plausibility block and, with ``--strict``, exits 3. A bad run is made by corrupting chosen
samples of a real KirchhoffNet simulation (ngspice ran; its outputs are changed after)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import anasim.comparator
from anasim.metrics import Bounds, Comparison
from anasim_cli.main import cli

KN = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence" / "kn.pt"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def comparison(bad: dict[int, float], bounds: Bounds, n=12) -> Comparison:
    """Reference outputs spanning 1 V; the circuit equals it except samples ``bad`` (sample -> offset)."""
    ref = np.linspace(0.0, 1.0, n)[:, None]
    out = ref.copy()
    for b, offset in bad.items():
        out[b] += offset
    return Comparison("regression", ref, out, ref[:, 0], bounds=bounds)


@pytest.mark.parametrize(
    "bad, bounds, flagged, named",
    [
        ({}, Bounds(), [], None),
        ({4: 9e-4}, Bounds(), [], None),  # inside the default 1e-3 of the 1 V range
        ({4: 2e-3}, Bounds(), [4], "sample 4"),
        ({4: 9e-4}, Bounds(max_error_rel_range=5e-4), [4], "sample 4"),
        (
            {b: 0.05 for b in (1, 2, 3, 5, 8, 9, 11)},
            Bounds(),
            [1, 2, 3, 5, 8, 9, 11],
            "samples 1, 2, 3, 5, 8 and 2 more",
        ),
        ({6: np.nan, 7: 1e96}, Bounds(), [7], "sample 7"),  # a failed (NaN) sample is not counted; 1e96 V is
    ],
)
def test_error_flag_names_and_counts_samples(bad, bounds, flagged, named):
    p = comparison(bad, bounds).plausibility()
    assert p["error_flagged"] == len(flagged) and p["error_flagged_samples"] == flagged
    errors = [f for f in p["flags"] if "differ from the reference" in f]
    assert (named is None) == (not errors)
    if named:
        assert errors[0].startswith(f"{len(flagged)} of 12 samples") and errors[0].endswith(named)


@pytest.fixture
def corrupted(monkeypatch):
    """Samples 1 and 3 of every simulation end near 1e96 V, as a KirchhoffNet with large thetas did."""
    real = anasim.comparator.finish

    def finish(res, rd):
        res.outputs[[1, 3]] = 1e96
        return real(res, rd)

    monkeypatch.setattr(anasim.comparator, "finish", finish)


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 3)])
def test_simulate_warns_counts_and_strict_exits_nonzero(tmp_path, corrupted, strict, code):
    out = tmp_path / "s.json"
    res = run("simulate", KN, "--samples", 4, "--json", out, *(["--strict"] if strict else []))
    assert res.exit_code == code, res.output
    assert "warning: 2 of 4 samples differ from the reference by more than 0.001 of the output range: samples 1, 3" in (
        res.stderr
    )
    assert ("--strict" in res.stderr) == strict
    p = json.loads(out.read_text())["plausibility"]  # written before the exit
    assert p["error_flagged"] == 2 and p["error_flagged_samples"] == [1, 3] and not p["plausible"]
    assert p["bounds"]["max_error_rel_range"] == 1e-3


def test_clean_run_passes_strict(tmp_path):
    """kn.pt measures about 1e-5 of the range at a = 1 ns: nothing is flagged, --strict exits 0."""
    res = run("simulate", KN, "--samples", 4, "--json", tmp_path / "s.json", "--strict")
    assert res.exit_code == 0 and "warning" not in res.stderr, res.output
    assert json.loads((tmp_path / "s.json").read_text())["plausibility"]["error_flagged"] == 0


def test_strict_refuses_monte_carlo():
    res = run("simulate", KN, "--mc", 2, "--strict")
    assert res.exit_code == 2 and "--strict applies to a single simulation" in res.output
