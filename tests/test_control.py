"""Closed-loop control: plants written once for numpy, torch and ngspice; the circuit loop (plant
in the transient, and plant in lock-step through PySpice) against the torchdiffeq loop."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.integrate import solve_ivp

from anasim.circuit.expr import evaluate
from anasim.circuit.ir import Circuit, VSource
from anasim.circuit.stimulus import Tolerances
from anasim.control import circuit as loop
from anasim.control.circuit import controller_circuit, loop_circuit, simulate_loop
from anasim.control.controller import train_controller
from anasim.control.lockstep import simulate_lockstep
from anasim.control.plants import NUMPY, SPICE, CartPole, Pendulum, Spice, linearize, ops, plant_named
from anasim.control.rollout import rollout, time_grid
from anasim.errors import AnasimError, SimError
from anasim.sim.engine import get_engine
from anasim.train import TrainOptions
from anasim_cli.main import cli

PLANTS = [Pendulum(), plant_named("pendulum-swingup"), CartPole()]


@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: p.name)
def test_dynamics_agree_in_numpy_torch_and_spice_text(plant):
    """One definition, three backends: equal to 1e-12 relative (float64 everywhere)."""
    rng = np.random.default_rng(0)
    x = plant.sample(plant.train_box, 20, rng)  # [20, S]
    u = rng.uniform(-plant.action_limit, plant.action_limit, 20)
    f_np = np.stack(plant.deriv(list(x.T), u, NUMPY), 1)
    f_t = torch.stack(plant.deriv(list(torch.as_tensor(x).T), torch.as_tensor(u), ops("torch")), 1).numpy()
    np.testing.assert_allclose(f_t, f_np, rtol=1e-12, atol=1e-12)
    names = [f"x_{s}" for s in plant.states]
    trees = [Spice.of(f) for f in plant.deriv([Spice.node(n) for n in names], Spice.node("u"), SPICE)]
    for b in range(5):
        got = [evaluate(t, dict(zip(names, x[b])) | {"u": u[b]}) for t in trees]
        np.testing.assert_allclose(got, f_np[b], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: p.name)
def test_expert_gain_stabilizes_the_linearization(plant):
    a, b = linearize(plant, np.zeros(len(plant.states)))
    assert np.linalg.eigvals(a - b @ plant.balance_gain[None, :]).real.max() < 0


def test_plant_alone_in_ngspice_matches_scipy(tmp_path):
    """A free pendulum (u = 0.5 N m from a source) as 1 F capacitors and B-sources: the same
    trajectory as scipy's RK45, within 1e-4 of the state range over 2 s (ngspice reltol 1e-6)."""
    plant = Pendulum(horizon=2.0)
    x0 = np.array([0.3, -0.5])
    identity = (np.float64(0.0), np.float64(1.0))  # the MLP's input drive: volts = inputs
    c = loop_circuit(identity, plant, Circuit("u only", (VSource("y", "y_0", "0", 0.1),), outputs=("y_0",)))
    run = loop.loop_run(plant, x0, 0.01)
    run = replace(run, tolerances=Tolerances(reltol=1e-6))
    vec = get_engine().run(c, run, tmp_path)
    table = np.column_stack([vec.scale, vec.table(run.save)])
    ref = solve_ivp(
        lambda _, s: [s[1], 9.81 * math.sin(s[0]) - 0.1 * s[1] + 0.5], (0, 2), x0, t_eval=table[:, 0], rtol=1e-10
    )
    dev = np.abs(table[:, 1:3] - ref.y.T) / plant.span()
    assert dev.max() < 1e-4, dev.max()
    np.testing.assert_allclose(table[:, 3], 0.5, rtol=1e-12)  # u = limit * clip(0.1)


@pytest.fixture(scope="module")
def controller(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ctl") / "pendulum.pt"
    opts = TrainOptions(epochs=8, lr=3e-3, batch_size=256, patience=15, progress=False)
    train_controller("pendulum", out, hidden=[4], samples=3000, opts=opts)
    return out


def _episodes(controller, n=2, horizon=1.5):
    from anasim.pipeline import load

    net = load(controller)
    plant = Pendulum(horizon=horizon)
    x0 = plant.sample(plant.init_box, n, np.random.default_rng(3))
    return net, plant, x0, time_grid(plant)


def test_circuit_loop_matches_the_torch_loop(controller, tmp_path):
    """The netlist loop and the PySpice lock-step loop both within 1e-3 of the state range of the
    torchdiffeq loop (measured 1e-5), and within 1e-3 of each other (the issue's target)."""
    net, plant, x0, t = _episodes(controller)
    ref, _ = rollout(net.model, plant, x0, t)
    ctrl = controller_circuit(net.model)
    a = simulate_loop(loop_circuit(loop.drive_affine(net.model), plant, ctrl), plant, x0, t, tmp_path / "a")
    b = simulate_lockstep(ctrl, plant, loop.drive_affine(net.model), x0, t, tmp_path / "b")
    assert not a.failed and not b.failed
    for got in (a.states, b.states):
        assert (np.abs(got - ref) / plant.span()).max() < 1e-3
    assert (np.abs(a.states - b.states) / plant.span()).max() < 1e-3
    assert np.abs(ref[:, :, 0]).max() > 0.05  # the episodes move: a loop that ignores u would fail


def test_a_failed_episode_is_named_and_the_others_kept(controller, tmp_path, monkeypatch):
    net, plant, x0, t = _episodes(controller, n=3, horizon=0.5)
    engine = get_engine()
    real = engine.run

    def flaky(circuit, run, work, **kw):
        if work.name == "episode0001":
            raise SimError("timestep too small", work)
        return real(circuit, run, work, **kw)

    monkeypatch.setattr(engine, "run", flaky)
    res = simulate_loop(
        loop_circuit(loop.drive_affine(net.model), plant, controller_circuit(net.model)), plant, x0, t, tmp_path
    )
    assert list(res.failed) == [1] and "theta=" in res.failed[1] and "timestep too small" in res.failed[1]
    assert np.isfinite(res.states[[0, 2]]).all() and np.isnan(res.states[1]).all()


def test_cli_simulate_writes_the_summary(controller, tmp_path):
    out = tmp_path / "r.json"
    r = CliRunner().invoke(
        cli, ["control", "simulate", str(controller), "--episodes", "2", "--horizon", "1", "--json", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "ngspice (netlist): 2/2 episodes" in r.output  # progress, one line per finished episode
    import json

    s = json.loads(out.read_text())
    for key in ("episodes", "torch_success_rate", "circuit_success_rate", "rms_state_deviation"):
        assert key in s
    assert s["controller_power_w"] > 0 and s["energy_per_step_j"] > 0
    assert s["rms_state_deviation"] < 1e-3


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--plant", "crane", "-o", "x.pt"], "'crane' is not one of"),
        (["train", "--plant", "pendulum", "--torque-limit", "0", "-o", "x.pt"], "must be a positive number"),
        (["train", "--plant", "pendulum", "--hidden", "0", "-o", "x.pt"], "must be positive"),
    ],
)
def test_cli_refuses_bad_input(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["control", *args])
    assert r.exit_code != 0 and message in r.output, r.output


def test_a_negative_horizon_is_refused(controller):
    r = CliRunner().invoke(cli, ["control", "simulate", str(controller), "--horizon", "-1"])
    assert r.exit_code != 0 and "episode length -1.0 s must be positive" in r.output, r.output


def test_a_controller_of_another_size_is_refused(controller, tmp_path):
    ckpt = torch.load(controller, weights_only=True)
    ckpt["config"]["control"]["plant"] = "cartpole"
    torch.save(ckpt, tmp_path / "c.pt")
    with pytest.raises(AnasimError, match="3 inputs.*cartpole plant gives 4 observations"):
        from anasim.control.compare import control_simulate

        control_simulate(tmp_path / "c.pt", episodes=1)


def test_a_controller_given_to_simulate_points_to_control_simulate(controller):
    r = CliRunner().invoke(cli, ["simulate", str(controller), "--samples", "5"])
    assert r.exit_code != 0 and "a controller for the pendulum plant" in r.output, r.output
    assert f"'anasim control simulate {controller.name}'" in r.output


def test_a_classifier_is_not_a_controller():
    r = CliRunner().invoke(cli, ["control", "simulate", "netlists/examples/digits_tdkan.pt", "--episodes", "1"])
    assert r.exit_code != 0 and "is not a controller" in r.output


def test_dagger_adds_the_states_the_controller_visits(tmp_path, monkeypatch):
    """One DAgger round adds every state of the controller's own episodes (every 0.05 s of 10 s:
    201 per episode), labelled by the expert, and the checkpoint records it."""
    import anasim.control.controller as ctl
    import anasim.control.rollout as ro

    monkeypatch.setattr(ctl, "DAGGER_EPISODES", 2)
    monkeypatch.setattr(ro, "RTOL", 1e-4)  # which states are visited matters here, not their last digits
    opts = TrainOptions(epochs=2, lr=3e-3, batch_size=256, patience=15, progress=False)
    _, metrics = train_controller("pendulum", tmp_path / "d.pt", hidden=[2], samples=500, opts=opts, dagger=1)
    assert metrics["imitation_states"] == 500 + 2 * 201 and metrics["dagger_rounds"] == 1
    assert torch.load(tmp_path / "d.pt", weights_only=True)["metrics"]["dagger_rounds"] == 1
