"""Fixtures: the raw device sweeps shipped with anasim and a small trained digits model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
# One thread: two OpenMP threads on a 2-core CI machine that is busy elsewhere can run 100x slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolate_user_devices(tmp_path, monkeypatch):
    # A user's own fitted devices must not leak into (or out of) the tests.
    monkeypatch.setenv("ANASIM_DEVICE_DIR", str(tmp_path / "user_devices"))


@pytest.fixture(scope="session", autouse=True)
def _isolate_cache(tmp_path_factory):
    # Compiled Verilog-A modules (anasim.devices.openvaf) go to a folder of the test session, not ~/.cache.
    mp = pytest.MonkeyPatch()
    mp.setenv("ANASIM_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def cmtd_dir() -> Path:
    """The DFT-NEGF sweeps as installed with the package (device_models/sweeps/ in a checkout)."""
    from anasim.devices import sweeps_dir

    path = sweeps_dir()
    assert sorted(p.name for p in path.glob("*.csv")) == ["a21.csv", "z15.csv", "z21.csv", "zaz21.csv"], path
    return path


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A [64,16,10] a21+z21 TD-KAN trained briefly on digits, as a checkpoint path."""
    from anasim.train import TrainOptions, train

    out = tmp_path_factory.mktemp("models") / "digits.pt"
    cfg = {"arch": "tdkan", "dims": [64, 16, 10], "bases": ["a21", "z21"], "norm": "batch", "in_gain": 0.25}
    train(cfg, "digits", TrainOptions(epochs=25, lr=1e-2, patience=25, progress=False), out)
    return out


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    """Result files of the committed netlists/examples checkpoints, for the report tests:
    simulate --json and --mc 3 of the digits TD-KAN, simulate --json of the KirchhoffNet."""
    from click.testing import CliRunner

    from anasim_cli.main import cli

    d = tmp_path_factory.mktemp("results")
    examples = REPO / "netlists" / "examples"
    tdkan, kn = examples / "digits_tdkan.pt", examples / "friedman_kirchhoffnet.pt"
    for args in (
        ("simulate", tdkan, "--samples", 60, "--json", d / "sim.json"),
        ("simulate", tdkan, "--samples", 30, "--mc", 3, "--vary", "area=0.05", "--json", d / "mc.json"),
        ("simulate", kn, "--samples", 4, "--json", d / "kn.json"),
    ):
        res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return d
