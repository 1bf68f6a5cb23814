"""The torch loop: plant and controller integrated together by torchdiffeq (the reference).

The circuit loop (:mod:`anasim.control.circuit`) must reproduce these trajectories. dopri5 at a
tight tolerance integrates the continuous-time loop (the analog controller acts continuously, so
there is no sample-and-hold here or there); episodes run as one batch [E, S].
"""

from __future__ import annotations

import numpy as np
import torch
from torchdiffeq import odeint

from .controller import policy
from .plants import Plant, ops

RTOL, ATOL = 1e-8, 1e-9  # far below the 1e-3 of the state range the two loops are compared at


def time_grid(plant: Plant, dt: float = 0.01) -> np.ndarray:
    return np.linspace(0.0, plant.horizon, int(round(plant.horizon / dt)) + 1)


@torch.no_grad()
def rollout(model: torch.nn.Module, plant: Plant, x0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States [E, T, S] and actions [E, T] of episodes from x0 [E, S] at times t [T]."""
    model = model.double().eval()
    m = ops("torch")
    threads = torch.get_num_threads()
    # One thread: the batch is small and torch's default (every core) ran 10x slower on a loaded
    # 2-core machine (dopri5 over 10 pendulum episodes: 335 s against 35 s).
    torch.set_num_threads(1)

    def f(_, x):  # x [E, S]
        u = policy(model, plant, x)
        return torch.stack(plant.deriv(list(x.T), u, m), dim=1)

    try:
        xs = odeint(f, torch.as_tensor(x0, dtype=torch.float64), torch.as_tensor(t), rtol=RTOL, atol=ATOL)  # [T, E, S]
    finally:
        torch.set_num_threads(threads)
    xs = xs.permute(1, 0, 2)  # [E, T, S]
    u = policy(model, plant, xs.reshape(-1, xs.shape[2])).reshape(xs.shape[:2])  # [E, T]
    return xs.numpy(), u.numpy()


def expert_rollout(plant: Plant, x0: np.ndarray, t: np.ndarray) -> np.ndarray:
    """States [E, T, S] under the expert itself (numpy, scipy's RK45): what imitation aims at."""
    from scipy.integrate import solve_ivp

    m = ops("numpy")
    out = []
    for x in x0:

        def f(_, s):
            u = plant.expert(s[None, :])
            return np.array([d[0] for d in plant.deriv([np.array([v]) for v in s], u, m)])

        out.append(solve_ivp(f, (t[0], t[-1]), x, t_eval=t, rtol=1e-8, atol=1e-9).y.T)
    return np.stack(out)
