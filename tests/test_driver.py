"""The one simulate driver (issue 32, item 1): every family's plan run by anasim.sim.driver, which
alone applies a Monte Carlo perturbation. Over every entry of FAMILIES (tiny models built from a
config): sigma 0 reproduces the nominal outputs, and each variation of the family changes them;
and a Monte Carlo worker runs a realization of a shipped plan with torch made unimportable."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anasim.families import FAMILIES, SimSettings, make_options
from anasim.montecarlo.variations import VARIATIONS, Perturbation
from anasim.montecarlo.worker import Context, Task, realize
from anasim.sim.driver import simulate

# A tiny model per family: two stages (layers) each, so that a perturbation must reach more than
# the first circuit. A family added to FAMILIES without one here fails test_every_family_has_one.
TINY = {
    "tdkan": {"arch": "tdkan", "dims": [4, 3, 2], "bases": ["a21", "z21"]},
    "mlp": {"arch": "mlp", "dims": [4, 3, 2], "activation": "a21"},
    "kirchhoffnet": {"arch": "kirchhoffnet", "dims": [4, 2], "nodes": [5, 6], "repeat": 1, "branch": "tanh"},
}
# sigmas large enough to move every output: relative 10%, 10 mV, log sigma 0.3 (finite op-amp gain)
SIGMA = {"iv-shift": 0.01, "opamp-offset": 0.01, "opamp-gain": 0.3}
SAMPLES = 6
EXACT = 1e-12  # of the output range: the same circuits give the same numbers
MOVED = 1e-9  # of the output range: a variation must move the outputs by more (the nominal rerun moves them by 0)


def tiny(name: str):
    torch.manual_seed(0)
    model = FAMILIES[name].build(TINY[name]).double().eval()
    z = torch.randn(SAMPLES, TINY[name]["dims"][0], dtype=torch.float64)
    return model, z, make_options(FAMILIES[name], {}, FAMILIES)


@pytest.fixture(scope="module")
def nominal(tmp_path_factory):
    """Per family: its plan and the nominal outputs (made once, shared by the tests below)."""
    made = {}

    def get(name: str):
        if name not in made:
            model, z, opts = tiny(name)
            settings = SimSettings(jobs=1)
            plan = FAMILIES[name].plan(model, z, opts, settings)
            res = simulate(plan, settings, tmp_path_factory.mktemp(f"nominal_{name}"))
            assert not res.failed and np.isfinite(res.outputs).all()
            made[name] = (plan, res.outputs)
        return made[name]

    return get


def test_every_family_has_a_tiny_model():
    assert set(TINY) == set(FAMILIES)


def span(out: np.ndarray) -> float:
    return float(np.ptp(out)) or 1.0


@pytest.mark.parametrize("name", list(FAMILIES))
def test_sigma_zero_reproduces_the_nominal_outputs(name, nominal, tmp_path):
    plan, out = nominal(name)
    zero = Perturbation(tuple((v, 0.0) for v in VARIATIONS if name in VARIATIONS[v].families), 0, 0)
    res = simulate(plan, SimSettings(jobs=1, perturb=zero), tmp_path)
    assert np.abs(res.outputs - out).max() <= EXACT * span(out)


@pytest.mark.parametrize(
    "name, variation", [(f, v) for f in FAMILIES for v, var in VARIATIONS.items() if f in var.families]
)
def test_each_variation_changes_the_outputs(name, variation, nominal, tmp_path):
    """Every variation a family lists reaches its circuits through the driver (a family cannot
    forget to apply it: it never sees the perturbation)."""
    plan, out = nominal(name)
    keys = []

    def perturb(circuit, key):
        keys.append(key)
        return Perturbation(((variation, SIGMA.get(variation, 0.1)),), 1, 0)(circuit, key)

    res = simulate(plan, SimSettings(jobs=1, perturb=perturb), tmp_path)
    assert sorted(keys) == sorted(stage.key for stage in plan.circuits()) and len(plan.stages) == 2
    assert np.abs(res.outputs - out).max() > MOVED * span(out), variation


@pytest.mark.parametrize("name", [f for f in FAMILIES if "tran" in FAMILIES[f].analyses and f != "kirchhoffnet"])
def test_a_transient_is_perturbed_too(name, tmp_path):
    """tran runs the stages and takes the static power of the whole circuit: both varied."""
    model, z, opts = tiny(name)
    s = SimSettings(jobs=1, analysis="tran", settle_v=1e-3)
    plan = FAMILIES[name].plan(model, z, opts, s)
    out = simulate(plan, s, tmp_path / "nominal")
    varied = simulate(plan, SimSettings(jobs=1, analysis="tran", settle_v=1e-3,
                                        perturb=Perturbation((("area", 0.1),), 1, 0)), tmp_path / "varied")  # fmt: skip
    assert [st.key for st in plan.circuits()] == ["stage0", "stage1", "whole"]
    assert np.abs(varied.outputs - out.outputs).max() > MOVED * span(out.outputs)
    assert varied.extra["power_w"] != out.extra["power_w"]  # the whole circuit was varied as well


WORKER = """
import pickle, sys
sys.modules["torch"] = None  # any import of torch raises ImportError
import numpy as np
from anasim.montecarlo.worker import realize
ctx, task = pickle.loads(open(sys.argv[1], "rb").read())
out = realize(ctx, task)
assert "error" not in out, out
torch_free = sys.modules["torch"] is None and not any(m.startswith("anasim.families") for m in sys.modules)
np.save(sys.argv[2], out["outputs"])
print("torch-free" if torch_free else "imported: torch or a family")
"""


@pytest.mark.parametrize("name, engine", [*((f, "ngspice") for f in FAMILIES), ("tdkan", "vacask")])
def test_a_worker_runs_a_realization_without_torch(name, engine, nominal, tmp_path):
    """What Monte Carlo ships (the plan, no model) runs in a fresh process where torch cannot be
    imported, and gives the numbers this process gives (VACASK too: its device modules are
    written from the circuit's curves, not from torch's)."""
    plan, _ = nominal(name)
    variation = next(v for v, var in VARIATIONS.items() if name in var.families)
    ctx = Context(plan, SimSettings(jobs=1, engine=engine), None)
    task = Task(0, 3, ((variation, SIGMA.get(variation, 0.1)),), 5, "binary")
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((ctx, task)))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "job.pkl"), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch-free"
    here = realize(ctx, task)["outputs"]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), here)  # bit for bit
