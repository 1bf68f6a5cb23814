"""Behaviour unchanged: circuit outputs of four fixed checkpoints equal those recorded before the
redesign (benchmarks/results/equivalence/before.npz) to 1e-12 of the output range."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "equivalence.py"
spec = importlib.util.spec_from_file_location("equivalence", SCRIPT)
equivalence = importlib.util.module_from_spec(spec)
spec.loader.exec_module(equivalence)


@pytest.fixture(scope="module")
def errors():
    return equivalence.check()


@pytest.mark.parametrize("case", list(equivalence.CASES))
def test_outputs_unchanged(errors, case):
    # 1e-12 of the range: the same printed numbers (a transient under another engine than the
    # recording's: 1e-6, see equivalence.tolerance)
    assert errors[case] <= equivalence.tolerance(case)
