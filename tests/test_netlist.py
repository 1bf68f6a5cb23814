"""The netlister alone (no ngspice): exact text of each element form, determinism, sanitizing."""

import math

import numpy as np
import pytest

from anasim.circuit.expr import Num, V, call
from anasim.circuit.ir import Branch, BSource, Capacitor, Circuit, Curve, Device, OpAmp, Resistor, VSource
from anasim.circuit.stimulus import Dc, InitialState, Run, Tolerances, Tran, sweep_run
from anasim.errors import AnasimError
from anasim.sim.engine import get_engine, netlist

ENGINE = get_engine("ngspice")


def sweep(x, outputs, **kw):
    """A DC sample sweep with ngspice's sweep settings (as batch and compile build it)."""
    return sweep_run(x, outputs, ENGINE.tuning.sweep, ENGINE.tuning.sweep_extra, **kw)


CIRCUIT = Circuit(
    "t",
    (
        Device("d1", "in_0", "c", "dio", area=2.0),
        Device("d2", "in_0", "c", "dio", area=2.0, scale=1.5, shift=0.25),
        OpAmp("u1", "0", "c", "y_0", 1e9),
        OpAmp("u2", "0", "c", "y_1", 1e3, offset=1e-3, rails=5.0),
        OpAmp("u3", "0", "c", "y_2", 1e6, gbw=1e8),
        Resistor("f", "c", "y_0", 1e4),
    ),
    (Curve("dio", "pwl(x,0.0,0.0,1.0,2.0)", 1e-6),),
    inputs=("in_0",),
    outputs=("y_0",),
)


@pytest.mark.parametrize("solver", ["klu", "sparse"])
def test_every_element_form_exactly(solver):
    """Device current = area * A per unit * scale * I(V - shift); op-amps as their macro-models;
    the engine and solver under the title, .options klu for KLU."""
    with ENGINE.solver_scope(solver, "ngspice-46", check=False):  # the deck whatever ngspice is here
        text = netlist(CIRCUIT, run=sweep(np.array([[0.5], [0.75]]), CIRCUIT.outputs))
    engine = {
        "klu": "* engine ngspice-46, solver KLU (.options klu; an ngspice without KLU ignores it and uses Sparse)",
        "sparse": "* engine ngspice-46, solver Sparse (ngspice's default)",
    }[solver]
    assert text.splitlines() == [
        "* t",
        engine,
        ".func iv_dio(x) {pwl(x,0.0,0.0,1.0,2.0)}",
        "Bd1 in_0 c I=2e-06*iv_dio(V(in_0,c))",
        "Bd2 in_0 c I=3e-06*iv_dio(V(in_0,c)-0.25)",
        "Eu1 y_0 0 0 c 1000000000.0",
        "Vu2_os u2_os 0 dc 0.001",  # V(inp') = V(inp) + offset
        "Bu2 y_1 0 V=5.0*tanh(200.0*V(u2_os,c))",  # rails: 5 tanh(gain v / 5)
        "Gu3_gm 0 u3_p 0 c 0.001",  # gm integrator: pole at gbw / gain
        "Ru3_o u3_p 0 1000000000.0",
        f"Cu3_c u3_p 0 {1e-3 / (2 * math.pi * 1e8)!r}",  # C = gm / (2 pi gbw)
        "Eu3_buf y_2 0 u3_p 0 1.0",
        "Rf c y_0 10000.0",
        *([".options klu"] if solver == "klu" else []),
        "* inputs: sample s is applied while V(idx) = s",
        "Vidx idx 0 dc 0",
        "Bin0 in_0 0 V=pwl(V(idx),0,0.5,1,0.75)",
        ".nodeset v(in_0)=0.5",  # op-amps with rails: Newton starts at the first sample's inputs
        ".control",
        "set wr_singlescale",
        "set wr_vecnames",
        "set no_mem_check",
        "option numdgt=12",
        "option reltol=1e-06 vntol=1e-09 abstol=1e-15 gminsteps=100.0",
        "dc Vidx 0.0 1.0 1.0",
        "wrdata out.txt y_0",
        "rusage everything",
        "quit",
        ".endc",
        ".end",
    ]


def test_branches_and_initial_state():
    c = Circuit(
        "kn",
        (Capacitor("n1", "n1", "0", 1e-9), Branch("e0", "n1", "0", "max({a}*({vs}-{vd})+{b},0)", (0.5, -0.25))),
        outputs=("n1",),
    )
    run = Run(InitialState({"n1": 0.75}), Tran(1e-11, 1e-9, 1e-11, uic=True), ("n1",), Tolerances(reltol=1e-6))
    lines = netlist(c, run=run).splitlines()
    assert lines[2:4] == ["Cn1 n1 0 1e-09 ic=0.75", "Be0 n1 0 I=max(0.5*(V(n1)-0)+-0.25,0)"]  # line 1: engine
    assert "tran 1e-11 1e-09 0 1e-11 uic" in lines
    assert "option reltol=1e-06" in lines and "wrdata out.txt n1" in lines  # an unnamed run: the engine's file


TOLERANCES = Tolerances(reltol=1e-6, abstol=1e-15, vntol=1e-9, chgtol=1e-14, trtol=1.0)


@pytest.mark.parametrize(
    "analysis, line",
    [
        (
            Dc("idx", 0.0, 1.0, 1.0),
            "option reltol=1e-06 vntol=1e-09 abstol=1e-15 chgtol=1e-14 trtol=1.0 gminsteps=100.0",
        ),
        # a transient's trtol scaled to ngspice's truncation-error estimate (writer.TRTOL_SCALE)
        (Tran(1e-11, 1e-9), "option reltol=1e-06 abstol=1e-15 vntol=1e-09 trtol=0.1 chgtol=1e-14 gminsteps=100.0"),
    ],
)
def test_typed_tolerances_then_the_engines_own_options(analysis, line):
    """A Run's tolerances are written in the order its decks always had (DC sweeps and transients
    differ: the golden decks stay byte for byte), a transient's trtol times 0.1, then what
    Run.extra holds for ngspice."""
    c = Circuit("t", (Resistor("r", "n1", "0", 1.0),), outputs=("n1",))
    run = Run(None, analysis, ("n1",), TOLERANCES, {"ngspice": {"gminsteps": 100}, "xyce": {"ignored": 1}})
    assert line in netlist(c, run=run).splitlines()
    with pytest.raises(AnasimError, match="option name 'gmin steps' is not a plain word"):
        netlist(c, run=Run(None, analysis, ("n1",), extra={"ngspice": {"gmin steps": 1}}))


def test_saving_everything_writes_an_ascii_raw_file_and_a_name_names_the_data_file():
    c = Circuit("t", (Resistor("r", "n1", "0", 1.0),), outputs=("n1",))
    lines = netlist(c, run=Run(None, Tran(1e-11, 1e-9), None)).splitlines()
    assert lines[lines.index("set filetype=ascii") + 1] == "write out.raw all"
    assert "wrdata my_outputs.txt n1" in netlist(c, run=Run(None, Tran(1e-11, 1e-9), ("n1",), name="my_outputs"))


def test_scheduled_branches_breakpoints_and_printed_finals():
    """A multi-layer KirchhoffNet deck's constructs: branches gated by unit steps of time, a 0 V
    pwl source whose corners are the breakpoints, the end values printed by name."""
    law = "tanh({a}*({vs}-{vd})+{b})"
    c = Circuit(
        "kn",
        (
            Capacitor("n1", "n1", "0", 1e-9),
            Branch("e0", "n1", "0", law, (0.5, -0.25), off=1e-9),
            Branch("l1_e0", "n1", "0", law, (2.0, 0.0), on=1e-9, off=2e-9),
            Branch("l2_e0", "n1", "0", law, (1.0, 0.0), on=2e-9),
        ),
        outputs=("n1",),
    )
    tran = Tran(1e-11, 3e-9, 1e-11, uic=True, breakpoints=(1e-9, 2e-9))
    run = Run(InitialState({"n1": 0.75}), tran, ("n1",), name="v", finals=(("s0_y0", "n1"),))
    lines = netlist(c, run=run).splitlines()
    assert lines[3:6] == [
        "Be0 n1 0 I=u(1e-09-time)*(tanh(0.5*(V(n1)-0)+-0.25))",
        "Bl1_e0 n1 0 I=u(time-1e-09)*u(2e-09-time)*(tanh(2.0*(V(n1)-0)+0.0))",
        "Bl2_e0 n1 0 I=u(time-2e-09)*(tanh(1.0*(V(n1)-0)+0.0))",
    ]
    assert "Vbreaks anasim_breaks 0 pwl(0.0 0 1e-09 0 2e-09 0 3e-09 0)" in lines
    i = lines.index("wrdata v.txt n1")
    assert lines[i + 1 : i + 3] == ["let s0_y0 = v(n1)[length(v(n1))-1]", "print s0_y0"]
    with pytest.raises(AnasimError, match="must rise strictly"):
        netlist(c, run=Run(None, Tran(1e-11, 3e-9, breakpoints=(2e-9, 1e-9)), ("n1",)))
    with pytest.raises(AnasimError, match="not before it is switched off"):
        netlist(Circuit("t", (Branch("e0", "n1", "0", law, (1.0, 0.0), on=2e-9, off=1e-9),)))
    with pytest.raises(AnasimError, match="safe netlist identifier"):
        netlist(c, run=Run(None, tran, ("n1",), finals=(("y; shell", "n1"),)))


def test_same_inputs_same_bytes():
    x = np.random.default_rng(0).normal(size=(5, 1))
    texts = {netlist(CIRCUIT, run=sweep(x, CIRCUIT.outputs)) for _ in range(3)}
    assert len(texts) == 1


def test_netlist_names_are_sanitized():
    bad = Circuit(title="x\n.control\nshell rm -rf /\n.endc", elements=(Resistor("r1", "a", "0", 1.0),))
    text = netlist(bad)
    assert ".control" not in text.split("\n", 1)[1] and text.startswith("* x?.control?shell")
    for element in (
        Resistor("r; .control", "a", "0", 1.0),
        VSource("v1", "a b", "0", 1.0),
        BSource("b1", "a", "0", "V", Num("1\n.control")),
        BSource("b2", "a", "0", "V", V("a\n.control")),
        BSource("b3", "a", "0", "V", call("system", Num(1.0))),
        BSource("b4", "a", "0", "V", "1\n.control"),
        Resistor("r1", "a", "0", float("nan")),
        Device("d1", "a", "0", "missing_curve"),
        OpAmp("u1", "0", "a", "b", -1.0),
        Branch("e1", "a", "0", "{a}\n.control", (1.0,)),
    ):
        with pytest.raises(AnasimError):
            netlist(Circuit(title="t", elements=(element,)))
    with pytest.raises(AnasimError, match="file path"):
        netlist(Circuit("t", includes=("x.cir\n.control",)))
