"""Lock-step co-simulation through libngspice (anasim.sim.ngspice.lockstep): a Python plant and an ngspice
circuit in one transient. Real ngspice (the Debian libngspice), never skipped."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from anasim.circuit.ir import Capacitor, Circuit, Resistor, VSource
from anasim.errors import AnasimError, SimError
from anasim.sim.engine import netlist
from anasim.sim.ngspice import libngspice as shared
from anasim.sim.ngspice.libngspice import check_deck
from anasim.sim.ngspice.lockstep import run_lockstep

# The controller of the closed loop: u = -K V(obs), an ideal VCVS (algebraic circuit).
A, K, X0 = 1.0, 2.0, 1.0
LOOP = "loop\nVobs obs 0 external\nEu u 0 obs 0 -2\nRl u 0 1k\n.end\n"


def plant(x, u):
    return -A * x + u


def test_rc_lowpass_driven_by_a_function_of_time():
    """Plant-free: the external source is sin(w t); the RC output against the analytic answer
    y = (w tau e^(-t/tau) + sin w t - w tau cos w t) / (1 + (w tau)^2). Tolerance 1e-4 V for a
    1 V source: ngspice's trapezoidal rule at 200 points per period errs by about
    (w dt)^2 / 12 = 8e-5 of the amplitude (measured 3.3e-5)."""
    tau, w = 1e-3, 2 * np.pi * 500
    rc = Circuit(
        "rc",
        (VSource("obs", "in", "0", external=True), Resistor("r", "in", "out", 1e3), Capacitor("c", "out", "0", 1e-6)),
    )
    assert "Vobs in 0 external" in netlist(rc).splitlines()  # the only form libngspice 39 survives
    r = run_lockstep(rc, None, [], ["obs"], ["out"], 1e-5, 5e-3, observe=lambda t, x: [np.sin(w * t)])
    exact = (w * tau * np.exp(-r.t / tau) + np.sin(w * r.t) - w * tau * np.cos(w * r.t)) / (1 + (w * tau) ** 2)
    assert r.t[0] == 0 and r.t[-1] == pytest.approx(5e-3, rel=1e-12) and np.all(np.diff(r.t) > 0)
    assert np.diff(r.t).max() <= 1e-5 * (1 + 1e-9)
    assert np.abs(r.y[:, 0] - exact).max() < 1e-4
    assert np.array_equal(r.v[:, 0], np.sin(w * r.t))  # what the circuit got at each accepted point
    assert r.x.shape == (len(r.t), 0)
    t = np.array([1e-3, 2.5e-3, 4.321e-3])  # linear between points 10 us apart: 2e-4 V
    x, y = r.resample(t)
    assert (
        x.shape == (3, 0)
        and np.abs(
            y[:, 0] - (w * tau * np.exp(-t / tau) + np.sin(w * t) - w * tau * np.cos(w * t)) / (1 + (w * tau) ** 2)
        ).max()
        < 2e-4
    )


def _loop_error(dt: float) -> float:
    r = run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], dt, 2.0)
    assert np.allclose(r.y[:, 0], -K * r.v[:, 0], rtol=0, atol=1e-12)  # the controller saw obs
    return np.abs(r.x[:, 0] - X0 * np.exp(-(A + K) * r.t)).max()


def test_closed_loop_matches_the_exponential_to_second_order():
    """dx/dt = -a x + u in Python, u = -k V(obs) in ngspice, V(obs) = x: x = x0 e^-(a+k)t to
    1e-3 of x0 (measured 9e-5 at dt = 10 ms). Halving dt divides the error by 4 (measured 3.95):
    the predictor-corrector is second order; u held over each step would give 2."""
    coarse, fine = _loop_error(1e-2), _loop_error(5e-3)
    assert coarse < 1e-3 * X0 and fine < 1e-3 * X0
    assert 3.5 < coarse / fine < 4.5


def _rk4(f, x, h, u0, u1):  # the scheme the module promises, written out independently
    um = (u0 + u1) / 2
    k1 = f(x, u0)
    k2 = f(x + h / 2 * k1, um)
    k3 = f(x + h / 2 * k2, um)
    k4 = f(x + h * k3, u1)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_plant_moves_only_at_accepted_points():
    """A square wave into an RC with a diode makes ngspice reject trial points. Replaying the
    protocol on the accepted grid alone must give the run's states and source values to 1e-12:
    each source value is observe(t_n, x_(n-1) + h f(x_(n-1), u_(n-1))) and each state one RK4 step
    over the accepted interval, whatever trial points came between."""
    deck = "sq\nVsq sq 0 external\nR1 sq f 10\nC1 f 0 1u\nD1 f 0 dd\n.model dd d\nVobs obs 0 external\nEu u 0 f obs -1\n.end\n"

    def observe(t, x):
        return [5.0 if np.sin(2 * np.pi * 1e3 * t) >= 0 else -5.0, x[0]]

    r = run_lockstep(deck, plant, [X0], ["Vsq", "Vobs"], ["u"], 1e-4, 5e-3, observe=observe)
    assert r.rejected > 0 and r.source_calls > 2 * len(r.t)
    x, v = [r.x[0]], [r.v[0]]
    for n in range(1, len(r.t)):
        h = r.t[n] - r.t[n - 1]
        v.append(np.array(observe(r.t[n], r.x[n - 1] + h * plant(r.x[n - 1], r.y[n - 1]))))
        x.append(_rk4(plant, r.x[n - 1], h, r.y[n - 1], r.y[n]))
    assert np.allclose(r.x, x, rtol=1e-12, atol=0) and np.allclose(r.v, v, rtol=1e-12, atol=0)
    assert r.x[0, 0] == X0


def test_runs_in_one_process_are_identical_and_leave_nothing_behind():
    first = run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], 1e-2, 1.0)
    run_lockstep("other\nVa a 0 external\nRa a 0 1\n.end\n", None, [], ["Va"], ["a"], 1e-3, 1e-2, lambda t, x: [t])
    second = run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], 1e-2, 1.0)
    for name in ("t", "x", "y", "v"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert shared.shared().plot_names == ["const"]  # each run's plot and circuit removed (the leak)


def test_a_transient_that_fails_raises_simerror_with_ngspice_output():
    """sqrt(V(obs)) with obs = 1 - t: ngspice fails just before t = 1 s."""
    deck = "fail\nVobs obs 0 external\nBx u 0 V=sqrt(V(obs))\nR1 u 0 1k\n.end\n"
    with pytest.raises(SimError, match=r"stopped at t = 0\.9") as info:
        run_lockstep(deck, lambda x, u: np.array([-1.0]), [1.0], ["Vobs"], ["u"], 1e-2, 2.0)
    assert "out of range for sqrt" in info.value.output
    with pytest.raises(SimError, match="no time point"):  # a voltage loop: no operating point
        run_lockstep(
            "bad\nVobs a 0 external\nV2 a 0 dc 1\n.end\n", None, [], ["Vobs"], ["a"], 1e-3, 1e-2, lambda t, x: [0]
        )


def test_an_error_in_the_plant_stops_ngspice_and_is_raised():
    def broken(x, u):
        if u[0] < -1:
            raise ValueError("plant broke")
        return plant(x, u)

    shared.shared()  # created beforehand: the time below is the run's
    start = time.perf_counter()
    with pytest.raises(ValueError, match="plant broke"):
        run_lockstep(LOOP, broken, [X0], ["Vobs"], ["u"], 1e-6, 0.2)  # 2e5 points (5 s or more) if it went on
    assert time.perf_counter() - start < 2
    assert _loop_error(1e-2) < 1e-3  # the library is usable again


def test_ctrl_c_stops_the_run_at_once():
    """Without the run's own SIGINT handler cffi swallows the KeyboardInterrupt and the run goes on."""
    shared.shared()  # created beforehand: the signal must land in the run
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], 1e-6, 0.2)  # 2e5 points (5 s or more) if it went on
    assert time.perf_counter() - start < 2
    assert _loop_error(1e-2) < 1e-3


@pytest.mark.parametrize(
    "line",
    ["Vobs obs 0 dc 0 external", "Vobs obs 0 0 external", "vobs obs 0 DC=1 EXTERNAL", "Vobs obs 0 dc 0\n+ external"],
)
def test_a_value_before_external_is_refused_before_it_crashes_ngspice(line):
    with pytest.raises(AnasimError, match="Vname p n external"):
        run_lockstep(f"t\n{line}\nR1 obs 0 1\n.end\n", None, [], ["Vobs"], ["obs"], 1e-3, 1e-2, lambda t, x: [0])


def test_bad_arguments_are_refused_with_the_name():
    assert check_deck("t\nVa a 0 external\n* Vb b 0 dc 0 external\nVc c 0 dc 1\n.end") == ["va"]
    with pytest.raises(AnasimError, match="no external source 'vb'"):
        run_lockstep("t\nVb b 0 dc 1\nR b 0 1\n.end\n", None, [], ["Vb"], ["b"], 1e-3, 1e-2, lambda t, x: [0])
    with pytest.raises(AnasimError, match="no .control block"):
        run_lockstep(
            "t\nVa a 0 external\n.control\nquit\n.endc\n.end\n", None, [], ["Va"], ["a"], 1e-3, 1e-2, lambda t, x: [0]
        )
    with pytest.raises(AnasimError, match="not an external VSource"):
        run_lockstep(Circuit("c", (VSource("a", "a", "0", 1.0),)), None, [], ["a"], ["a"], 1e-3, 1e-2, lambda t, x: [0])
    with pytest.raises(AnasimError, match="give observe"):
        run_lockstep(LOOP, plant, [1.0, 2.0], ["Vobs"], ["u"], 1e-2, 1.0)
    with pytest.raises(AnasimError, match="plant_step.*shape"):
        run_lockstep(LOOP, lambda x, u: [1.0, 2.0], [X0], ["Vobs"], ["u"], 1e-2, 1.0)
    with pytest.raises(AnasimError, match="dt = 0"):
        run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], 0, 1.0)
    with pytest.raises(SimError):  # an output node the circuit lacks: ngspice saves nothing
        run_lockstep(LOOP, plant, [X0], ["Vobs"], ["nope"], 1e-2, 1.0)


def test_no_outputs_and_no_nesting():
    r = run_lockstep("t\nVa a 0 external\nRa a 0 1\n.end\n", None, [], ["Va"], [], 1e-3, 1e-2, lambda t, x: [t])
    assert r.y.shape == (len(r.t), 0) and r.v[-1, 0] == r.t[-1]

    def nested(x, u):
        return run_lockstep(LOOP, plant, [X0], ["Vobs"], ["u"], 1e-2, 1.0).x[-1]

    with pytest.raises(AnasimError, match="from a plant_step or observe"):
        run_lockstep(LOOP, nested, [X0], ["Vobs"], ["u"], 1e-2, 1.0)
