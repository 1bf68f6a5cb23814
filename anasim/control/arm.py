"""A 2-link planar arm's inverse kinematics: the smooth regression target of the node-count study.

Joint angles (theta1 from the x axis, theta2 of the forearm relative to the upper arm, elbow
one way: 0.2 < theta2 < 2.9 rad) -> hand position by forward kinematics; a network maps the
hand target (x, y) back to the angles. The paper behind issue 12 claims nonlinear connections
need fewer nodes than an MLP on smooth targets; ``arm_dataset`` gives TD-KAN and MLP the same
data, and ``hand_error`` scores both in metres, through the forward kinematics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Dataset


@dataclass(frozen=True)
class TwoLinkArm:
    upper: float = 1.0  # m
    fore: float = 0.8  # m
    theta1: tuple[float, float] = (-np.pi / 2, np.pi / 2)
    theta2: tuple[float, float] = (0.2, 2.9)

    def forward(self, q: np.ndarray) -> np.ndarray:
        """Hand positions [N, 2] of joint angles q [N, 2]."""
        a, b = q[:, 0], q[:, 0] + q[:, 1]
        return np.stack(
            [self.upper * np.cos(a) + self.fore * np.cos(b), self.upper * np.sin(a) + self.fore * np.sin(b)], 1
        )

    def inverse(self, p: np.ndarray) -> np.ndarray:
        """The joint angles [N, 2] reaching hand positions p [N, 2] (this elbow branch)."""
        r2 = (p**2).sum(1)
        c2 = (r2 - self.upper**2 - self.fore**2) / (2 * self.upper * self.fore)
        q2 = np.arccos(np.clip(c2, -1, 1))
        q1 = np.arctan2(p[:, 1], p[:, 0]) - np.arctan2(self.fore * np.sin(q2), self.upper + self.fore * np.cos(q2))
        return np.stack([q1, q2], 1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = np.array([self.theta1, self.theta2]).T
        return lo + (hi - lo) * rng.random((n, 2))  # [n, 2] joint angles

    def scale(self) -> float:
        return self.upper + self.fore  # reach: inputs are positions / reach


def arm_dataset(arm: TwoLinkArm, n: int, seed: int) -> Dataset:
    """Inputs: hand position / reach; targets: joint angles / pi (both within -1..1)."""
    rng = np.random.default_rng(seed)

    def split(m: int):
        q = arm.sample(m, rng)
        x = torch.as_tensor(arm.forward(q) / arm.scale(), dtype=torch.float32)
        return x, torch.as_tensor(q / np.pi, dtype=torch.float32)

    (a, b), (c, d), (e, f) = split(n), split(n // 4), split(n // 4)
    info = {"plant": "arm", "inputs": "hand (x, y) / reach", "targets": "joint angles / pi"}
    return Dataset("control-arm", a, b, c, d, e, f, info, task="regression")


@torch.no_grad()
def hand_error(model: torch.nn.Module, arm: TwoLinkArm, data: Dataset) -> float:
    """RMS distance (m) between the target and the hand the predicted angles reach, test split."""
    model.eval()
    q = model(data.x_test.to(next(model.parameters()).dtype)).double().numpy() * np.pi
    return float(np.sqrt(((arm.forward(q) - data.x_test.double().numpy() * arm.scale()) ** 2).sum(1).mean()))
