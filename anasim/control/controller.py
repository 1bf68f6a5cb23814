"""Controllers of the closed-loop flow: a TD-KAN or device MLP from observation to action.

``policy`` is the torch side of the loop: the plant's observation is the model input as it is
(each about -1..1 over the training box; the TD-KAN's row drive turns it into volts), and the
action is ``limit * clip(y, -1, 1)`` of the model's one output, the same clip the circuit's
torque source applies. ``train_controller`` imitates the plant's expert on states drawn from
its training box (anasim's own training loop, regression), and stores the plant in the
checkpoint's config so that ``control simulate`` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import Dataset
from ..errors import AnasimError
from ..families import FAMILIES
from ..train import TrainOptions, train_model
from .plants import Plant, ops, plant_named

DAGGER_EPISODES = 40  # initial conditions per DAgger round (states every 0.05 s: 8,000 a round)


def policy(model: torch.nn.Module, plant: Plant, x: torch.Tensor) -> torch.Tensor:
    """Actions [B] for states x [B, S]."""
    t = ops("torch")
    z = torch.stack(plant.observe(list(x.T), t), dim=1)  # [B, n_obs]
    return plant.act(model(z)[:, 0], t)


def imitation_data(plant: Plant, n: int, seed: int) -> Dataset:
    """States from the plant's training box, their observations and the expert's actions / limit."""
    rng = np.random.default_rng(seed)

    def split(m: int):
        return _labelled(plant, plant.sample(plant.train_box, m, rng))  # [m, n_obs], [m, 1]

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = split(n), split(n // 4), split(n // 4)
    info = {"plant": plant.name, "samples": n, "seed": seed, "target": "expert action / limit"}
    return Dataset(f"control-{plant.name}", x_tr, y_tr, x_va, y_va, x_te, y_te, info, task="regression")


def controllers() -> list[str]:
    """The families a controller can be: static crossbars (a DC analysis) from observation to action."""
    return [name for name, family in FAMILIES.items() if "dc" in family.analyses]


def controller_config(plant: Plant, arch: str, hidden: list[int], bases: list[str], activation: str) -> dict:
    family = FAMILIES.get(arch)
    if family is None or "dc" not in family.analyses:
        raise AnasimError(f"controller architecture {arch!r}; valid: {', '.join(controllers())}")
    if not hidden or any(h < 1 for h in hidden):
        raise AnasimError(f"hidden sizes {hidden}: give one or more positive widths, e.g. --hidden 8")
    dims = [plant.n_obs, *hidden, 1]
    control = {"plant": plant.name, "action_limit": plant.action_limit}
    # each family takes its own: a TD-KAN its bases (batch norm), a device MLP its activation
    given = {"bases": list(bases), "norm": "batch", "activation": activation}
    return family.config(dims, given) | {"control": control}


def train_controller(
    plant_name: str,
    out: Path | None,
    arch: str = "tdkan",
    hidden=(8,),
    bases=("a21", "z21"),
    activation: str = "a21",
    samples: int = 20000,
    opts: TrainOptions | None = None,
    action_limit: float | None = None,
    dagger: int = 0,
):
    """Train a controller of ``plant_name`` by imitating its expert; returns (model, metrics).

    ``dagger`` rounds (DAgger, Ross et al. 2011): after each training, the controller's own torch
    loop runs from ``DAGGER_EPISODES`` initial conditions, the states it visits are labelled by
    the expert and added to the training set, and training starts again. States drawn uniformly
    from the box miss the narrow region where the swing-up expert hands over to LQR; the
    controller's own trajectories pass through it (swing-up success 0% -> 50-80% over 3 rounds)."""
    from ..results import check_writable
    from .rollout import rollout, time_grid

    if out is not None:  # train_model checks it too, but only after the DAgger rounds have trained
        check_writable(out, "-o", "checkpoint")
    kw = {} if action_limit is None else {"action_limit": action_limit}
    plant = plant_named(plant_name, **kw)
    opts = opts or TrainOptions(epochs=60, lr=3e-3, batch_size=256, patience=15)
    config = controller_config(plant, arch, list(hidden), list(bases), activation)
    data = imitation_data(plant, samples, opts.seed)
    rng = np.random.default_rng([opts.seed, 1])
    for _ in range(dagger):
        model, _ = train_model(config, data, opts, None)
        visited, _ = rollout(model, plant, plant.sample(plant.init_box, DAGGER_EPISODES, rng), time_grid(plant, 0.05))
        x = visited.reshape(-1, len(plant.states))  # [episodes * T, S]
        z, y = _labelled(plant, x)
        data.x_train, data.y_train = torch.cat([data.x_train, z]), torch.cat([data.y_train, y])
    return train_model(config, data, opts, out, {"dagger_rounds": dagger, "imitation_states": len(data.x_train)})


def _labelled(plant: Plant, x: np.ndarray):
    """Observations [N, n_obs] and expert actions / limit [N, 1] of states x [N, S]."""
    z = torch.stack(plant.observe(list(torch.as_tensor(x).T), ops("torch")), dim=1).float()
    y = torch.as_tensor(plant.expert(x) / plant.action_limit, dtype=torch.float32)[:, None]
    return z, y


def plant_of(config: dict, path="the checkpoint", horizon: float | None = None) -> Plant:
    """The plant a controller checkpoint was trained for, with its torque/force limit (and an
    episode length other than the plant's own, if given)."""
    control = config.get("control")
    if not isinstance(control, dict) or "plant" not in control:
        raise AnasimError(f"{path} is not a controller (no 'control' entry); train one with anasim control train")
    kw = {} if horizon is None else {"horizon": float(horizon)}
    return plant_named(control["plant"], action_limit=float(control["action_limit"]), **kw)
