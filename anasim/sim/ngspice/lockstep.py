"""Lock-step co-simulation: a Python plant ODE and an ngspice circuit in one transient, through
libngspice (PySpice's ``NgSpiceShared``), for plants that cannot be written as SPICE expressions.

Where it sits: beside the subprocess runner (:mod:`.process`) in the ngspice engine, for closed
loops (issue 12, item 3b), reached as ``get_engine("ngspice").lockstep``; the library instance
is :mod:`.libngspice`. A circuit (deck text, or an IR :class:`~anasim.circuit.ir.Circuit` whose
plant-driven sources are ``VSource(..., external=True)``) and a plant ``dx/dt = f(x, u)`` go into
:func:`run_lockstep`; a :class:`LockstepResult` (time grid, plant states, circuit outputs) comes
out. Plants and controllers live in ``anasim.control``: this module knows neither. No torch.

How the two sides stay in step. ngspice asks for every external source's value at each Newton
iteration of each *trial* time point, and a trial point may be rejected (no convergence, or a
truncation error too large) and retried at an earlier time; only accepted points reach the
``send_data`` callback, in increasing time (measured below). So:

* a source value is a pure function of the time asked and the last committed plant state
  (x_c at t_c, derivative d_c): ``observe(t, x_c + (t - t_c) d_c)``; nothing changes on a trial;
* at an accepted point t_n with circuit outputs u_n, the plant advances from t_c to t_n by one
  RK4 step with u linear between u_c and u_n, and that is the only place its state changes.

The Euler prediction is O(h^2) per step and the corrector weights u_n by h, so the loop is second
order in the step (measured: error / 4.0 when dt / 2, tests/test_shared.py); a plant held at u_c
over the step would be first order.

Facts measured on Debian ngspice 39.3 (libngspice0-dev), PySpice 1.5 (in .venv), this 2-core
machine (the cost and memory figures by ``benchmarks/lockstep.py``, the others by probe scripts):

* Callbacks work in ngspice 39. The source callback runs at every Newton iteration of every trial
  point (2 per accepted point on a linear circuit); on an RC with a diode driven by a +-5 V square
  wave, ngspice rejected 17 of 538 points: it asked for the source at each rejected time, then at
  an earlier one, and gave ``send_data`` only the 521 accepted points, in increasing time, after
  every source call at that time; it never asked for a time before the last accepted point.
* A NaN source value ends the transient within milliseconds ("Timestep too small"): that is how
  a Python error stops ngspice; it is raised again afterwards. Ctrl-C: a KeyboardInterrupt
  raised inside a cffi callback is printed and swallowed, the source value is left unset and the
  run goes on (a 1e6-point run went on to a 60 s timeout), so during a run a SIGINT handler only
  sets a flag (main thread), the next value is NaN, and KeyboardInterrupt comes 0.02 s later.
  Outside a run, Ctrl-C is Python's as before (ngSpice_Init leaves it).
* Cost, CPU time per accepted point (``benchmarks/lockstep.py``: best of 5, 10k points, a linear
  one-source loop): ngspice in this process with a constant source 4.9 us; plant-free lock-step
  24 us (two source callbacks and one accepted point in Python); scalar plant 42 us (five numpy
  plant evaluations for RK4). ``ngspice -b`` analysis time on the same deck: about 9 us a point.

Limits: one run at a time per process (a lock); outputs are node voltages (lower-cased names);
the plant sees the circuit only at accepted points, at most ``dt`` apart, so ``dt`` must resolve
the plant; ``observe`` runs once per distinct trial time and should be cheap.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...circuit.ir import Circuit, VSource, ident, num
from ...errors import AnasimError, SimError
from . import libngspice
from .libngspice import check_deck
from .process import NAME
from .writer import card_name, netlist


@dataclass
class LockstepResult:
    """One lock-step transient on ngspice's accepted time points (not uniform: ``resample``)."""

    t: np.ndarray  # [N] seconds, from 0 (the operating point) to t_stop
    x: np.ndarray  # [N, n_x] plant state
    y: np.ndarray  # [N, n_out] circuit outputs (node voltages, in the order of ``outputs``)
    v: np.ndarray  # [N, n_in] external source values the circuit used at each point
    rejected: int  # trial points ngspice rejected ("Rejected timepoints")
    source_calls: int  # external-source callbacks: every Newton iteration of every trial point
    wall_s: float  # the whole run: load, transient, clean-up

    def resample(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) at times ``t``, linear between accepted points."""
        t = np.asarray(t, dtype=float)
        return tuple(
            np.stack([np.interp(t, self.t, c) for c in a.T], axis=-1) if a.shape[1] else np.empty((len(t), 0))
            for a in (self.x, self.y)
        )


class _Loop:
    """The Python side of one run: committed plant state, and what ngspice asks and accepts."""

    def __init__(self, f, observe, x0: np.ndarray, sources: dict[bytes, int], outputs: list[str], n_in: int):
        self.f, self.observe, self.sources, self.outputs, self.n_in = f, observe, sources, outputs, n_in
        self.t_c, self.x_c, self.u_c, self.d_c = 0.0, x0, None, np.zeros_like(x0)
        self.cache_t, self.cache_v = None, None
        self.columns: list[str] | None = None  # names of the vectors send_data delivers
        self.pick: list[int] = []  # their indices: time, then the outputs
        self.ts, self.xs, self.ys, self.vs = [], [], [], []
        self.calls = 0
        self.error: BaseException | None = None

    def interrupt(self, signum=None, frame=None) -> None:
        """SIGINT handler during a run: only a flag, so no exception can land inside ngspice."""
        self.error = self.error or KeyboardInterrupt()

    def source(self, t: float, name: bytes) -> float:
        """A trial value: never changes the plant. An error gives NaN, which stops ngspice."""
        self.calls += 1
        if self.error is not None:
            return np.nan
        try:
            if t != self.cache_t:
                v = np.asarray(self.observe(t, self.x_c + (t - self.t_c) * self.d_c), dtype=float)
                if v.shape != (self.n_in,):
                    raise AnasimError(f"observe(t, x) returned shape {v.shape}; expected ({self.n_in},), one per input")
                self.cache_t, self.cache_v = t, v
            return float(self.cache_v[self.sources[name]])
        except KeyError:
            self.error = AnasimError(
                f"external source {name.decode()!r} is not among the inputs {sorted(self.sources)}"
            )
        except Exception as exc:  # noqa: BLE001 - cffi would print and swallow it
            self.error = exc
        return np.nan

    def accept(self, values: list[float]) -> None:
        """An accepted point: advance the plant to it (RK4, u linear over the step) and record."""
        if self.error is not None:
            return
        try:
            if not self.pick:
                missing = [o for o in self.outputs if o not in self.columns]
                if missing:
                    raise AnasimError(f"output node {missing[0]!r} is not in the circuit")
                self.pick = [self.columns.index(c) for c in ("time", *self.outputs)]
            t = values[self.pick[0]]
            u = np.array([values[i] for i in self.pick[1:]])
            x = self.x_c if self.u_c is None else _rk4(self.f, self.x_c, t - self.t_c, self.u_c, u)
            d = self.f(x, u)
            if not np.isfinite(
                x @ x + d @ d
            ):  # one reduction, not two isfinite().all() (overflow past 1e154 also caught)
                raise AnasimError(f"plant state or derivative is not finite at t = {t!r}: x = {x}, dx/dt = {d}")
            v = self.cache_v if self.cache_t == t else np.full(self.n_in, np.nan)
            self.t_c, self.x_c, self.u_c, self.d_c = t, x, u, d
            self.ts.append(t), self.xs.append(x), self.ys.append(u), self.vs.append(v)
        except Exception as exc:  # noqa: BLE001
            self.error = exc


def _rk4(f, x: np.ndarray, h: float, u0: np.ndarray, u1: np.ndarray) -> np.ndarray:
    if not len(x):  # no plant
        return x
    um = 0.5 * (u0 + u1)
    k1 = f(x, u0)
    k2 = f(x + 0.5 * h * k1, um)
    k3 = f(x + 0.5 * h * k2, um)
    k4 = f(x + h * k3, u1)
    return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def run_lockstep(
    circuit: str | Circuit,
    plant_step: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    x0: Sequence[float],
    inputs: Sequence[str],
    outputs: Sequence[str],
    dt: float,
    t_stop: float,
    observe: Callable[[float, np.ndarray], np.ndarray] | None = None,
    options: dict[str, float] | None = None,
) -> LockstepResult:
    """Run ``circuit`` from its operating point to ``t_stop`` (ngspice steps of at most ``dt``)
    with the plant ``dx/dt = plant_step(x, u)`` from ``x0`` in lock-step.

    ``inputs``: the external voltage sources the plant drives: card names (``"Vobs"``) for deck
    text, element names (``"obs"``) for a Circuit. Their values are ``observe(t, x)`` (default: x
    itself, one source per state). ``outputs``: node names whose voltages are u, in order.
    ``plant_step`` None and ``x0`` empty: no plant, ``observe(t, x)`` a function of time alone.
    ``options``: ngspice options (reltol, ...). A run that does not reach ``t_stop`` raises
    SimError with ngspice's output; an error in ``plant_step`` or ``observe`` (or Ctrl-C) stops
    ngspice and is raised again."""
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    inputs, outputs = list(inputs), [ident(o).lower() for o in outputs]
    if isinstance(circuit, Circuit):
        byname = {e.name: e for e in circuit.elements}
        for name in inputs:
            e = byname.get(name)
            if not (isinstance(e, VSource) and e.external):
                raise AnasimError(f"input {name!r}: not an external VSource of circuit {circuit.title!r}")
        cards = [card_name(byname[name]).lower() for name in inputs]
        deck, external = netlist(circuit), cards  # checked on the IR above, not read back from the text
    else:  # a deck of text from elsewhere: read for its external sources and what would crash
        cards, deck = [ident(name).lower() for name in inputs], circuit
        external = check_deck(deck)
    for name, card in zip(inputs, cards):
        if card not in external:
            raise AnasimError(f"input {name!r}: the deck has no external source {card!r} ('Vname p n external')")
    for value, what in ((dt, "dt"), (t_stop, "t_stop")):
        if not (np.isfinite(value) and value > 0):
            raise AnasimError(f"run_lockstep: {what} = {value!r} must be a positive number of seconds")
    if dt > t_stop:
        raise AnasimError(f"run_lockstep: dt = {dt!r} is longer than t_stop = {t_stop!r}")
    if plant_step is None:
        if len(x0):
            raise AnasimError("run_lockstep: a plant state x0 needs a plant_step")

        def plant_step(x, u):
            return x

    if observe is None:
        if len(x0) != len(inputs):
            raise AnasimError(f"run_lockstep: {len(inputs)} inputs, {len(x0)} states: give observe(t, x)")

        def observe(t, x):
            return x

    def f(x, u):
        d = np.asarray(plant_step(x, u), dtype=float)
        if d.shape != x0.shape:
            raise AnasimError(f"plant_step(x, u) returned shape {d.shape}; expected {x0.shape}, as x0")
        return d

    opts = options or {}
    for key in opts:
        if not key.isalpha():
            raise AnasimError(f"run_lockstep: option name {key!r} is not a plain word")

    loop = _Loop(f, observe, x0, {c.encode(): i for i, c in enumerate(cards)}, outputs, len(inputs))
    start = time.perf_counter()
    with libngspice.LOCK:
        engine = libngspice.shared()
        if engine.loop is not None:
            raise AnasimError("run_lockstep called from a plant_step or observe of a running lock-step")
        main, handler = threading.current_thread() is threading.main_thread(), None
        try:
            engine.transcript = []
            engine.loop = loop
            if main:  # Ctrl-C sets a flag only: an exception raised in a cffi callback is lost
                handler = signal.signal(signal.SIGINT, loop.interrupt)
            rejected = _transient(engine, deck, outputs, dt, t_stop, opts)
        finally:
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
            engine.loop = None
            libngspice.clean(engine)
    if loop.error is not None:
        raise loop.error
    complete = loop.ts and abs(loop.ts[-1] - t_stop) <= 1e-9 * t_stop
    if not complete:
        reached = f"stopped at t = {loop.ts[-1]!r} s" if loop.ts else "no time point"
        raise SimError(
            f"lock-step transient to {t_stop!r} s failed: {reached}", output="\n".join(engine.transcript), engine=NAME
        )
    n = len(loop.ts)
    return LockstepResult(
        t=np.array(loop.ts),
        x=np.array(loop.xs).reshape(n, len(x0)),
        y=np.array(loop.ys).reshape(n, len(outputs)),
        v=np.array(loop.vs).reshape(n, len(inputs)),
        rejected=rejected,
        source_calls=loop.calls,
        wall_s=time.perf_counter() - start,
    )


def _transient(engine, deck: str, outputs: list[str], dt: float, t_stop: float, opts: dict) -> int:
    """Load, save only the outputs (send_data then builds a small dict per point), run; the
    number of rejected points. ngspice's errors are judged by the caller from what arrived."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

    try:
        engine.load_circuit(deck)
        if outputs:  # ('save time' alone saves nothing: ngspice then refuses to run)
            engine.exec_command("save " + " ".join(outputs))
        for key, value in opts.items():
            engine.exec_command(f"option {key}={num(value)}")
        engine.exec_command(f"tran {num(dt)} {num(t_stop)} 0 {num(dt)}")
        usage = engine.exec_command("rusage rejected")
    except (NgSpiceCircuitError, NgSpiceCommandError):  # ngspice printed an error
        return 0
    except NameError as exc:  # PySpice's word for a nonzero return: ngspice's controlled exit
        if "returned" not in str(exc):
            raise
        raise SimError(f"ngspice stopped: {exc}", output="\n".join(engine.transcript), engine=NAME) from None
    m = re.search(r"Rejected timepoints\s*=\s*(\d+)", usage)
    return int(m.group(1)) if m else 0
