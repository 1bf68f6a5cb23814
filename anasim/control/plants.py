"""Plants of the closed-loop flow: small ODEs dx/dt = f(x, u), each written once.

A plant's dynamics, observation and expert are one Python function over an ``ops`` namespace,
so the same lines run in numpy (episodes, experts), in torch (differentiable: training and the
torchdiffeq reference loop) and as ngspice expression text (the plant inside the controller's
transient: each state a 1 F capacitor voltage charged by a behavioural current f_k). The three
cannot drift apart, like :data:`anasim.devices.expr.FUNCTIONS` for device models.

Angles are radians, lengths metres, time seconds; ``x`` and ``u`` are sequences of per-state
scalars or arrays [B].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace

import numpy as np

from ..circuit.expr import Bin, Neg, Num, Paren, V, call
from ..errors import AnasimError


class Spice:
    """An expression tree (:mod:`anasim.circuit.expr`) for a behavioural source, built by
    arithmetic on node voltages: each operation parenthesized, as the plant's formula is written."""

    def __init__(self, tree):
        self.tree = tree

    @staticmethod
    def of(value):
        return value.tree if isinstance(value, Spice) else Num(float(value))

    @staticmethod
    def node(name: str) -> Spice:
        return Spice(V(name))

    def _op(self, other, sym: str, flip: bool = False) -> Spice:
        a, b = Spice.of(self), Spice.of(other)
        return Spice(Paren(Bin(sym, b, a) if flip else Bin(sym, a, b)))

    def __add__(self, o):
        return self._op(o, "+")

    def __radd__(self, o):
        return self._op(o, "+", True)

    def __sub__(self, o):
        return self._op(o, "-")

    def __rsub__(self, o):
        return self._op(o, "-", True)

    def __mul__(self, o):
        return self._op(o, "*")

    def __rmul__(self, o):
        return self._op(o, "*", True)

    def __truediv__(self, o):
        return self._op(o, "/")

    def __rtruediv__(self, o):
        return self._op(o, "/", True)

    def __neg__(self):
        return Spice(Paren(Neg(self.tree)))


def _torch_ops():
    import torch

    return SimpleNamespace(sin=torch.sin, cos=torch.cos, clip=lambda a, lo, hi: torch.clamp(a, lo, hi))


NUMPY = SimpleNamespace(sin=np.sin, cos=np.cos, clip=np.clip)
SPICE = SimpleNamespace(
    sin=lambda a: Spice(call("sin", Spice.of(a))),
    cos=lambda a: Spice(call("cos", Spice.of(a))),
    clip=lambda a, lo, hi: Spice(call("min", call("max", Spice.of(a), Num(float(lo))), Num(float(hi)))),
)


def ops(backend: str) -> SimpleNamespace:
    """The math of one backend: "numpy", "torch" or "spice"."""
    return {"numpy": lambda: NUMPY, "torch": _torch_ops, "spice": lambda: SPICE}[backend]()


@dataclass(frozen=True)
class Plant:
    """An ODE plant. Subclasses give the dynamics, the controller's observation and an expert."""

    name = "plant"
    states: tuple[str, ...] = ()
    # Nominal state range, one (lo, hi) per state: what RMS deviations are relative to.
    state_range: tuple[tuple[float, float], ...] = ()
    # Box of initial conditions of an episode, and the (larger) box experts are imitated on.
    init_box: tuple[tuple[float, float], ...] = ()
    train_box: tuple[tuple[float, float], ...] = ()
    action_limit: float = 1.0  # |u| <= action_limit (N m or N)
    horizon: float = 10.0  # episode length (s)

    def check(self) -> Plant:
        if not (math.isfinite(self.action_limit) and self.action_limit > 0):
            raise AnasimError(f"{self.name}: torque/force limit {self.action_limit!r} must be a positive number")
        if not (math.isfinite(self.horizon) and self.horizon > 0):
            raise AnasimError(f"{self.name}: episode length {self.horizon!r} s must be positive")
        return self

    def deriv(self, x, u, m) -> list:
        raise NotImplementedError

    def observe(self, x, m) -> list:
        """Controller inputs, each about -1..1 over the training box."""
        raise NotImplementedError

    def act(self, y, m):
        """The action of the controller's output y (volts): ``limit * clip(y, -1, 1)``, the same
        law in torch (the reference loop), numpy (lock-step) and the circuit's torque source."""
        return self.action_limit * m.clip(y, -1.0, 1.0)

    def expert(self, x: np.ndarray) -> np.ndarray:
        """The action [B] an expert takes in states x [B, S] (numpy), within the limit."""
        raise NotImplementedError

    def success(self, traj: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per episode, from states [E, T, S] at times t [T]: did the task succeed?"""
        raise NotImplementedError

    @property
    def n_obs(self) -> int:
        return len(self.observe([np.zeros(1)] * len(self.states), NUMPY))

    def sample(self, box, n: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = np.array(box, dtype=float).T
        return lo + (hi - lo) * rng.random((n, len(self.states)))  # [n, S]

    def span(self) -> np.ndarray:
        return np.array([hi - lo for lo, hi in self.state_range])  # [S]


def wrap(angle):
    """Angle in (-pi, pi]."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def lqr(a: np.ndarray, b: np.ndarray, q, r: float) -> np.ndarray:
    """Continuous-time LQR gain K (u = -K x) of the linearization dx/dt = a x + b u."""
    from scipy.linalg import solve_continuous_are

    p = solve_continuous_are(a, b, np.diag(q), np.array([[r]]))
    return (b.T @ p / r).ravel()


def linearize(plant: Plant, x0: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of the numpy dynamics at (x0, u = 0): the same function the circuit runs."""
    n = len(x0)

    def f(x, u):
        return np.array(plant.deriv([np.array([v]) for v in x], np.array([u]), NUMPY))[:, 0]

    a = np.stack([(f(x0 + eps * e, 0.0) - f(x0 - eps * e, 0.0)) / (2 * eps) for e in np.eye(n)], axis=1)
    b = ((f(x0, eps) - f(x0, -eps)) / (2 * eps))[:, None]
    return a, b


@dataclass(frozen=True)
class Pendulum(Plant):
    """A torque-driven pendulum, theta = 0 upright (counter-clockwise positive):
    m l^2 theta'' = m g l sin(theta) - b theta' + u. ``task`` "balance" starts near upright with
    5 N m; "swingup" starts near hanging with 2 N m, below m g l, so the expert must pump energy."""

    name = "pendulum"
    task: str = "balance"
    mass: float = 1.0  # kg
    length: float = 1.0  # m
    gravity: float = 9.81  # m/s^2
    damping: float = 0.1  # N m s
    states: tuple[str, ...] = ("theta", "omega")
    state_range: tuple = ((-math.pi, math.pi), (-8.0, 8.0))
    init_box: tuple = ((-0.4, 0.4), (-1.0, 1.0))
    train_box: tuple = ((-0.8, 0.8), (-3.0, 3.0))
    action_limit: float = 5.0
    omega_scale: float = 4.0  # rad/s per unit of the third observation

    def deriv(self, x, u, m):
        theta, omega = x
        inertia = self.mass * self.length**2
        mgl = self.mass * self.gravity * self.length
        return [omega, (mgl * m.sin(theta) - self.damping * omega + u) / inertia]

    def observe(self, x, m):
        theta, omega = x
        return [m.sin(theta), m.cos(theta), omega / self.omega_scale]

    def energy(self, x):
        theta, omega = x
        return 0.5 * self.mass * self.length**2 * omega**2 + self.mass * self.gravity * self.length * (
            np.cos(theta) - 1
        )

    @cached_property
    def balance_gain(self) -> np.ndarray:
        a, b = linearize(self, np.zeros(2))
        return lqr(a, b, (10.0, 1.0), 0.1)

    def expert(self, x):
        theta, omega = x[:, 0], x[:, 1]
        k = self.balance_gain
        u_lqr = -(k[0] * np.sin(theta) + k[1] * omega)  # sin: the same gain near 0, smooth around the circle
        if self.task == "balance":
            return np.clip(u_lqr, -self.action_limit, self.action_limit)
        # Energy pumping (Astrom & Furuta): dE/dt = omega u - b omega^2, so u = -k E omega drives
        # E to 0, the upright's energy; LQR takes over near upright, blended smoothly.
        u_energy = -2.0 * self.energy((theta, omega)) * omega
        w = 1 / (1 + np.exp(-(np.cos(theta) - np.cos(0.5)) / 0.03))
        return np.clip(w * u_lqr + (1 - w) * u_energy, -self.action_limit, self.action_limit)

    def success(self, traj, t):
        end = t >= t[-1] - 2.0  # the last 2 s of the episode
        theta, omega = wrap(traj[:, end, 0]), traj[:, end, 1]
        tol = (0.05, 0.1) if self.task == "balance" else (0.1, 0.3)
        return (np.abs(theta).max(1) < tol[0]) & (np.abs(omega).max(1) < tol[1])


@dataclass(frozen=True)
class PendulumSwingup(Pendulum):
    """The pendulum from near hanging, with a torque limit below m g l."""

    name = "pendulum-swingup"
    task: str = "swingup"
    init_box: tuple = ((math.pi - 0.5, math.pi + 0.5), (-0.5, 0.5))
    train_box: tuple = ((-math.pi, math.pi), (-6.0, 6.0))
    action_limit: float = 2.0


@dataclass(frozen=True)
class CartPole(Plant):
    """The cart-pole of Barto, Sutton & Anderson (gymnasium's CartPole constants, continuous
    force): states x, x', theta (0 upright), theta'; the pole's half length ``length``."""

    name = "cartpole"
    cart_mass: float = 1.0  # kg
    pole_mass: float = 0.1  # kg
    length: float = 0.5  # m, half the pole
    gravity: float = 9.8  # m/s^2
    states: tuple[str, ...] = ("x", "v", "theta", "omega")
    state_range: tuple = ((-2.4, 2.4), (-3.0, 3.0), (-0.21, 0.21), (-3.0, 3.0))
    init_box: tuple = ((-0.5, 0.5), (-0.5, 0.5), (-0.1, 0.1), (-0.3, 0.3))
    train_box: tuple = ((-1.5, 1.5), (-2.0, 2.0), (-0.3, 0.3), (-2.0, 2.0))
    action_limit: float = 10.0

    def deriv(self, x, u, m):
        _, v, theta, omega = x
        total = self.cart_mass + self.pole_mass
        s, c = m.sin(theta), m.cos(theta)
        temp = (u + self.pole_mass * self.length * omega * omega * s) / total
        alpha = (self.gravity * s - c * temp) / (self.length * (4.0 / 3.0 - self.pole_mass * c * c / total))
        return [v, temp - self.pole_mass * self.length * alpha * c / total, omega, alpha]

    def observe(self, x, m):
        pos, v, theta, omega = x
        return [pos / 1.5, v / 2.0, m.sin(theta) / 0.3, omega / 2.0]

    @cached_property
    def balance_gain(self) -> np.ndarray:
        a, b = linearize(self, np.zeros(4))
        return lqr(a, b, (1.0, 1.0, 10.0, 1.0), 0.1)

    def expert(self, x):
        k = self.balance_gain
        z = np.stack([x[:, 0], x[:, 1], np.sin(x[:, 2]), x[:, 3]], axis=1)
        return np.clip(-z @ k, -self.action_limit, self.action_limit)

    def success(self, traj, t):
        return (np.abs(traj[:, :, 0]).max(1) <= 2.4) & (np.abs(traj[:, :, 2]).max(1) <= 0.21)


PLANTS = {"pendulum": Pendulum, "pendulum-swingup": PendulumSwingup, "cartpole": CartPole}


def plant_named(name: str, **kw) -> Plant:
    if name not in PLANTS:
        raise AnasimError(f"unknown plant {name!r}; valid: {', '.join(PLANTS)}")
    return PLANTS[name](**kw).check()
