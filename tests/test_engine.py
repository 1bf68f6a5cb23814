"""The engine seam (issue 30, item 1): the ENGINES registry, what an engine returns from a run,
how it fails, and that nothing outside an engine's package imports it but anasim/sim/engine.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from anasim.circuit.ir import Circuit, Resistor, VSource
from anasim.circuit.stimulus import Dc, Run, sweep_run
from anasim.errors import AnasimError, SimError
from anasim.sim.engine import ENGINES, Engine, get_engine
from anasim.sim.run import Tuning, Vectors

ANASIM = Path(__file__).resolve().parents[1] / "anasim"
# the one module that may import an engine's package: it builds the registry
ALLOWED = {"anasim/sim/engine.py": "the ENGINES registry creates each engine"}
ENGINE_PACKAGES = ("anasim.sim.ngspice", "anasim.sim.vacask")


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_registered_engine_satisfies_the_protocol(name):
    engine = ENGINES[name]
    assert isinstance(engine, Engine) and engine.name == name and get_engine(name) is engine
    assert re.fullmatch(r"\S+", engine.version()), engine.version()  # one word: "ngspice-46"
    assert {"dc-sweep", "op", "tran"} <= engine.capabilities and isinstance(engine.capabilities, frozenset)
    assert isinstance(engine.tuning, Tuning) and engine.tuning.part_elements > 0 and engine.tuning.part_linear > 0
    assert engine.label().startswith(engine.version() + ", ")  # "ngspice-46, klu": results' simulator


def test_ngspice_says_klu_exactly_when_its_binary_has_it():
    from anasim.sim.ngspice.process import has_klu

    assert ("klu" in get_engine("ngspice").capabilities) == has_klu()


@pytest.mark.parametrize("name", ["xyce", "", "NGSPICE", None])
def test_an_unknown_engine_is_refused_naming_the_engines(name):
    with pytest.raises(AnasimError) as err:
        get_engine(name)
    assert str(err.value).startswith(f"engine {name!r} is not known; the engines are: ")
    for engine in ENGINES.values():  # each engine with what it runs
        assert f"{engine.name} ({', '.join(sorted(engine.capabilities, key=order))})" in str(err.value)


def order(capability: str):
    known = ("dc-sweep", "op", "tran", "static-power", "lockstep", "klu", "reruns")
    return (known.index(capability) if capability in known else 99, capability)


def divider(r1: float, r2: float) -> Circuit:
    return Circuit(
        "divider", (Resistor("a", "in_0", "out", r1), Resistor("b", "out", "0", r2)), (), ("in_0",), ("out",)
    )


@pytest.mark.parametrize("name", sorted(ENGINES))
@pytest.mark.parametrize("r1, r2", [(1e3, 1e3), (1e3, 3e3), (47.0, 1e6)])
def test_a_three_sample_sweep_of_a_divider_gives_the_exact_answer(name, r1, r2, tmp_path):
    """Named arrays against V(out) = x r2 / (r1 + r2): a linear circuit converges in one Newton
    step, so within 1e-12 V (the engine prints 12 digits of values below 2 V)."""
    engine, circuit = get_engine(name), divider(r1, r2)
    x = np.array([[0.5], [1.0], [2.0]])
    run = sweep_run(x, circuit.outputs, engine.tuning.sweep, engine.tuning.sweep_extra)
    assert engine.load(circuit, run, tmp_path) is None  # nothing ran here yet
    vec = engine.run(circuit, run, tmp_path)
    assert isinstance(vec, Vectors) and not vec.aborted and vec.gave_up_at is None
    np.testing.assert_array_equal(vec.scale, [0.0, 1.0, 2.0])  # the sample index
    np.testing.assert_allclose(vec.voltages["out"], x[:, 0] * r2 / (r1 + r2), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(vec.table(circuit.outputs)[:, 0], vec.voltages["out"])
    assert vec.counters["iterations"] >= 1 and "analysis_s" in vec.counters  # the engine's own counters
    again = engine.load(circuit, run, tmp_path)  # what a resumed run reads back: the same arrays, no counters
    np.testing.assert_array_equal(again.voltages["out"], vec.voltages["out"])
    assert again.counters == {}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_saving_everything_gives_node_voltages_and_source_currents(name, tmp_path):
    """An operating point saving everything (the static-power path): V(out) = 2 V * 3k / 4k, and
    the source's branch current, which enters at its + terminal: -2 V / 4k, within 1e-12 V and
    1e-15 A."""
    engine = get_engine(name)
    source = VSource("s", "top", "0", 2.0)
    circuit = Circuit("divider", (source, Resistor("a", "top", "out", 1e3), Resistor("b", "out", "0", 3e3)))
    run = Run(None, Dc("s", 2.0, 2.0, 1.0), None, engine.tuning.sweep)
    vec = engine.run(circuit, run, tmp_path)
    np.testing.assert_allclose(vec.voltages["out"], [1.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(vec.voltages["top"], [2.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(vec.currents[source], [-5e-4], rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_failing_run_raises_a_sim_error_with_its_folder_and_log(name, tmp_path):
    """A sweep of a source the circuit does not have: the engine writes no data. The SimError
    names the run folder and shows the last lines of the engine's own output, read by it."""
    engine, circuit = get_engine(name), divider(1e3, 1e3)
    run = Run(None, Dc("nosuch", 0.0, 1.0, 1.0), circuit.outputs)
    with pytest.raises(SimError) as err:
        engine.run(circuit, run, tmp_path / "run")
    text, log = str(err.value), err.value.output
    assert err.value.run_dir == tmp_path / "run" and f"(run directory: {tmp_path / 'run'})" in text
    assert f"--- {engine.name} output (last lines) ---" in text
    assert log.strip() and log.strip().splitlines()[-1] in text  # the log's last line is shown
    assert "nosuch" in log  # what went wrong is in it


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved (``from . import x`` counts ``.x``)."""
    module = ".".join(path.relative_to(ANASIM.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_only_the_registry_imports_an_engine_package():
    """The layering: outside anasim/sim/<engine>/, no module imports an engine's package (not
    even late, inside a function) except the ones in ALLOWED, and the public API's lazy names
    do not point into one."""
    offenders = {}
    for path in sorted(ANASIM.rglob("*.py")):
        rel = path.relative_to(ANASIM.parent).as_posix()
        if any(rel.startswith(p.replace(".", "/") + "/") for p in ENGINE_PACKAGES) or rel in ALLOWED:
            continue
        bad = sorted(m for m in imported_modules(path) if m.startswith(ENGINE_PACKAGES))
        if bad:
            offenders[rel] = bad
    assert offenders == {}, f"import the engine through anasim.sim.engine instead: {offenders}"
    import anasim

    assert not [v for v in anasim._API.values() if f"anasim.{v}".startswith(ENGINE_PACKAGES)]
    # the check itself sees an engine import where there is one
    for package in ENGINE_PACKAGES:
        assert package in imported_modules(ANASIM / "sim" / "engine.py")
    # and every engine package is in the list the check goes by
    assert {p.parent.name for p in (ANASIM / "sim").glob("*/__init__.py")} == {
        p.rsplit(".", 1)[1] for p in ENGINE_PACKAGES
    }


@pytest.mark.parametrize("package", ENGINE_PACKAGES)
def test_no_engine_package_imports_another(package):
    """What two engines share (sweep tolerances, the factored devices) lives in a neutral module
    (anasim/sim/tuning.py), never in one engine's package that another imports."""
    folder = ANASIM.parent / package.replace(".", "/")
    others = tuple(p for p in ENGINE_PACKAGES if p != package)
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith(others))
        for path in sorted(folder.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    # the check sees such an import where there is one: the registry imports both
    assert set(others) <= imported_modules(ANASIM / "sim" / "engine.py")
