"""The top-level ``netlists/`` folder: the device models as an ngspice and a Verilog-A library, and golden examples.

``export_devices`` writes one ``.subckt`` per bundled device model (``anasim devices export``),
from the same curve text the compiler puts in every deck, and beside it the same device as a
Verilog-A module (``<subckt>.va``, :mod:`anasim.devices.veriloga`) for any simulator that loads OSDI;
the command adds the user's own fitted devices. ``build_examples`` compiles the small
committed checkpoints of ``EXAMPLES`` with their stimulus, runs each deck with bare ``ngspice -n -b``
and keeps its output beside it as the expected result (``make netlists``); the tests re-run the
decks against those files and recompile the checkpoints byte for byte. The example decks ask for
KLU (``.options klu``) and name :data:`EXAMPLES_ENGINE` whatever ngspice compiles them, so they
recompile to the same bytes under an ngspice without KLU too (which runs them with Sparse, within
the tests' tolerance); their expected outputs are made by that engine only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .circuit.ir import Curve
from .devices import DeviceModel, bundled_models, registry
from .devices.veriloga import device_module, module_name, source
from .errors import AnasimError
from .outputs import WriteError, reason, write_text
from .sidecar import path_of
from .sim.engine import get_engine

# the library and the examples are ngspice decks: written and run by that engine
ENGINE = "ngspice"

# the engine and solver the expected outputs come from (the default one since issue 30)
EXAMPLES_ENGINE = "ngspice-46"
EXAMPLES_SOLVER = "klu"


def subckt_name(d: DeviceModel) -> str:
    """cmtd_<name> for the cold-metal tunnel diodes (the device class in the name, as designers
    look for it in a library), the model's own name for the others (rtd, emosfet, ...)."""
    return f"cmtd_{d.name}" if d.description.startswith("cold-metal tunnel diode") else d.name


def device_library(d: DeviceModel) -> str:
    err = d.provenance.get("fit_error", {})
    comments = [
        f"{subckt_name(d)}: {d.description}",
        f"anasim device model {d.name} (fit {d.fit_hash}, {d.provenance.get('fit_method')}, "
        f"RMS {err.get('rms', 0):.3g} {d.unit}), written by anasim devices export",
        f"operating range {d.v_range[0]:g}..{d.v_range[1]:g} V; pwl tables are flat beyond their end points",
        f"I(anode -> cathode) = area * {d.amps_per_unit:g} A * I_{d.unit}(V(a, k)); area in unit-area devices",
        f"usage: .include {subckt_name(d)}.lib  then  Xd anode cathode {subckt_name(d)} area=2.5",
    ]
    return get_engine(ENGINE).subckt(subckt_name(d), Curve(d.name, d.spice_current("x"), d.amps_per_unit), comments)


def device_va(d: DeviceModel) -> str:
    """The device as a Verilog-A module named like its subckt, with the library's comments."""
    name = module_name(subckt_name(d))
    err = d.provenance.get("fit_error", {})
    comments = [
        f"{name}: {d.description}",
        f"anasim device model {d.name} (fit {d.fit_hash}, {d.provenance.get('fit_method')}, "
        f"RMS {err.get('rms', 0):.3g} {d.unit}), written by anasim devices export",
        f"operating range {d.v_range[0]:g}..{d.v_range[1]:g} V; pwl tables are flat beyond their end points",
        f"I(a -> k) = area * {d.amps_per_unit:g} A * I_{d.unit}(V(a, k)); area (instance parameter) in unit-area devices",
        f"compile: openvaf-r {name}.va -o {name}.osdi",
        f"ngspice (OSDI): pre_osdi {name}.osdi (in .control), .model m_{name} {name}, N1 anode cathode m_{name} area=2.5",
        f'VACASK: load "{name}.osdi", model m_{name} {name}, n1 (anode cathode) m_{name} area=2.5',
    ]
    return source([device_module(d, name)], comments)


def export_devices(folder, user: bool = False) -> list[Path]:
    """``<subckt>.lib`` and ``<subckt>.va`` for every bundled device model in ``folder`` (and
    the user's own devices too when ``user``)."""
    folder = Path(folder)
    devices = list(bundled_models().values())
    if user:
        devices += [d for name, d in registry().items() if name not in bundled_models()]
    owner: dict[str, str] = {}
    for d in devices:
        if owner.setdefault(subckt_name(d), d.name) != d.name:
            raise AnasimError(
                f"devices {owner[subckt_name(d)]} and {d.name} would both be written as {subckt_name(d)}.lib: "
                f"rename your own device {d.name}"
            )
    paths = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for d in devices:
            for suffix, text in ((".lib", device_library(d)), (".va", device_va(d))):
                path = folder / f"{subckt_name(d)}{suffix}"
                write_text(path, text)
                paths.append(path)
    except (OSError, WriteError) as exc:
        raise AnasimError(f"{folder}: cannot write the device library: {reason(exc)}") from None
    return paths


@dataclass(frozen=True)
class Example:
    """A committed checkpoint (trained by ``train`` if missing), compiled with ``stimulus`` samples."""

    name: str
    train: tuple[str, ...]
    stimulus: int
    output: str  # the data file the deck writes, kept as <name>.expected.txt


EXAMPLES = (
    Example(
        "digits_tdkan",
        ("--dataset", "digits", "--dims", "64,4,10", "--bases", "a21,z21", "--epochs", "30", "--seed", "0"),
        4,
        "digits_tdkan_outputs.txt",
    ),
    Example(
        "digits_mlp",
        ("--arch", "mlp", "--activation", "rtd", "--dataset", "digits", "--dims", "64,8,10", "--epochs", "30"),
        4,
        "digits_mlp_outputs.txt",
    ),
    Example(
        "friedman_kirchhoffnet",
        ("--arch", "kirchhoffnet", "--dataset", "friedman", "--nodes", "7", "--repeat", "2", "--branch", "relu",
         "--epochs", "3", "--lr", "1e-2", "--train-tol", "1e-5"),
        3,
        "friedman_kirchhoffnet_voltages.txt",
    ),
    Example(  # three layers in one transient: layer 1 drops nodes 6 and 7, layer 2 adds them back at 0 V
        "friedman_kirchhoffnet_3layers",
        ("--arch", "kirchhoffnet", "--dataset", "friedman", "--nodes", "7,5,9", "--repeat", "1", "--branch", "relu",
         "--epochs", "3", "--lr", "1e-2", "--train-tol", "1e-5"),
        3,
        "friedman_kirchhoffnet_3layers_voltages.txt",
    ),
)  # fmt: skip


def compile_example(ex: Example, folder: Path, out: Path) -> Path:
    """Compile ``folder/<name>.pt`` into ``out/<name>.cir`` with its stimulus (default options),
    and its sidecar ``<name>.cir.json``."""
    from .pipeline import compile_network, load

    paths, _ = compile_network(
        load(folder / f"{ex.name}.pt"), out / f"{ex.name}.cir", {}, ex.stimulus,
        solver=EXAMPLES_SOLVER, engine=EXAMPLES_ENGINE, check_solver=False,
    )  # fmt: skip
    if len(paths) != 1:
        raise AnasimError(f"example {ex.name}: {len(paths)} decks; the examples are one deck each")
    return paths[0]


def run_example(deck: Path, ex: Example) -> Path:
    """Run ``deck`` as it is with the engine, in its folder, nothing of the user's read (for
    ngspice: bare ``ngspice -n -b``, no .spiceinit); the data file it wrote."""
    return get_engine(ENGINE).run_file(deck, ex.output)


def build_examples(folder) -> list[Path]:
    """Train missing checkpoints, compile every example and record its expected outputs."""
    engine = get_engine(ENGINE)
    version, klu = engine.version(), "klu" in engine.capabilities
    if version != EXAMPLES_ENGINE or not klu:
        raise AnasimError(
            f"the expected outputs of the examples come from {EXAMPLES_ENGINE} with KLU; found {version} "
            f"{'with' if klu else 'without'} KLU at {engine.path()}: run 'make install' (or put "
            f"{EXAMPLES_ENGINE} first on PATH), or change EXAMPLES_ENGINE in anasim/library.py"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ex in EXAMPLES:
        ckpt = folder / f"{ex.name}.pt"
        if not ckpt.exists():
            anasim = shutil.which("anasim", path=str(Path(sys.executable).parent)) or "anasim"
            cmd = [anasim, "train", *ex.train, "--threads", "1", "-o", str(ckpt)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        deck = compile_example(ex, folder, folder)
        data = run_example(deck, ex)
        expected = folder / f"{ex.name}.expected.txt"
        data.replace(expected)
        written += [ckpt, deck, path_of(deck), expected]
    return written


def main(argv: list[str]) -> None:
    """``python -m anasim.library DIR``: export the devices to DIR/devices, examples to DIR/examples."""
    root = Path(argv[0] if argv else "netlists")
    for path in export_devices(root / "devices") + build_examples(root / "examples"):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    print(f"anasim {__version__}")


if __name__ == "__main__":
    main(sys.argv[1:])
