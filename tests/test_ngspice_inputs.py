"""Issue 29, item 6: what ngspice reads besides anasim's deck. No user's ``.spiceinit`` (in the
home folder or the run folder) changes a run or runs its commands, for ``ngspice -b`` and for
libngspice; a ``--netlist`` deck and what it includes hold circuit statements only. Item 10: the
"run it alone" hint of ``anasim compile`` pastes into a shell when the path has spaces."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.circuit.expr import Num, V, mul
from anasim.circuit.ir import BSource, Circuit, Resistor
from anasim.errors import AnasimError
from anasim.sidecar import path_of
from anasim.sim.batch import sweep
from anasim.sim.ngspice.deckcheck import check_deck, shipped_library
from anasim.sim.ngspice.process import run_deck
from anasim_cli.main import cli

REPO = Path(__file__).resolve().parents[1]
TDKAN = REPO / "benchmarks" / "results" / "equivalence" / "tdkan.pt"

# 1 Mohm dividers: ngspice's rshunt of 1 kohm at every node would pull V(out) from x/2 to ~0
DIVIDER = Circuit(
    "divider",
    elements=(BSource("d", "mid", "0", "V", mul(V("in_0"), Num(1.0))), Resistor("a", "mid", "out", 1e6), Resistor("b", "out", "0", 1e6)),
    inputs=("in_0",),
    outputs=("out",),
)  # fmt: skip
X = np.array([[0.5], [1.0], [2.0]])


def spiceinit(folder: Path, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".spiceinit").write_text(f"option rshunt=1e3 gmin=1e-4\nshell touch {marker}\n")


@pytest.mark.parametrize("where", ["home", "run folder"])
def test_no_spiceinit_reaches_ngspice_b(where, tmp_path, monkeypatch):
    """A .spiceinit in $HOME, or in the folder ngspice runs in, neither changes the outputs
    (equal to 1e-12 V to a run without it) nor runs its shell command."""
    clean = sweep(DIVIDER, X, tmp_path / "clean", jobs=1)
    np.testing.assert_allclose(clean.outputs[:, 0], X[:, 0] / 2, rtol=0, atol=1e-9)
    marker = tmp_path / "marker"
    if where == "home":
        spiceinit(tmp_path / "home", marker)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
    else:
        spiceinit(tmp_path / "run" / "chunk_000000", marker)  # where the chunk's ngspice runs
    res = sweep(DIVIDER, X, tmp_path / "run", jobs=1)
    assert not res.failed
    np.testing.assert_allclose(res.outputs, clean.outputs, rtol=0, atol=1e-12)
    assert not marker.exists()


def test_no_spiceinit_reaches_libngspice(tmp_path):
    """libngspice (the lock-step runner) sources ./.spiceinit at start-up: anasim starts it in a
    folder of its own. A fresh process, since the library starts once per process."""
    marker = tmp_path / "marker"
    spiceinit(tmp_path, marker)
    code = "from anasim.sim.ngspice import libngspice; libngspice.shared(); print('started')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "started" in proc.stdout, proc.stderr[-2000:]
    assert not marker.exists()


def test_spinit_is_still_read(tmp_path):
    """-n skips the user's init files only: the system spinit still loads the XSPICE code models
    (an A-element gain of 3 on 2 V gives 6 V, to ngspice's print precision)."""
    deck = "xspice\nV1 1 0 dc 2\na1 1 2 g3\n.model g3 gain(gain=3)\nR2 2 0 1k\n.control\nop\nprint v(2)\n"
    deck += "wrdata out.txt v(2)\n.endc\n.end\n"
    run_deck(deck, tmp_path, "out.txt")
    assert np.loadtxt(tmp_path / "out.txt", ndmin=2)[0, 1] == pytest.approx(6.0, abs=1e-9)


# --- --netlist decks: circuit only ---------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


BODY = "* a deck\nR1 a 0 1k\n"


@pytest.mark.parametrize(
    "files, bad, line, needle",
    [
        ({"deck.cir": BODY + ".control\nshell touch x\n.endc\n"}, "deck.cir", 3, "no .control block"),
        ({"deck.cir": BODY + "shell touch x\n"}, "deck.cir", 3, "shell command"),
        ({"deck.cir": BODY + "*# shell touch x\n"}, "deck.cir", 3, "is an ngspice command"),
        ({"deck.cir": BODY + " .CONTROL\n"}, "deck.cir", 3, "no .control block"),
        ({"deck.cir": BODY + ".include a.lib\n", "a.lib": "* a\n.include sub/b.lib\n",
          "sub/b.lib": "* b\nR2 b 0 1\n.control\nshell touch x\n.endc\n"}, "sub/b.lib", 3, "no .control block"),
        ({"deck.cir": BODY + ".include /etc/passwd\n"}, "deck.cir", 3, "outside the deck's folder"),
        ({"deck.cir": BODY + ".lib ../x.lib tt\n"}, "deck.cir", 3, "may point outside"),
        ({"deck.cir": BODY + ".inc '~/x.lib'\n"}, "deck.cir", 3, "may point outside"),
        ({"deck.cir": BODY + ".include missing.lib\n"}, "deck.cir", 3, "is not a file"),
        ({"deck.cir": BODY + ".include deck.cir\n"}, "deck.cir", 3, "run folder first"),
        ({"deck.cir": BODY + ".tran 1n 1u\n"}, "deck.cir", 3, ".tran is not a circuit statement"),
        ({"deck.cir": BODY + "+ 2k\n.meas dc x max v(a)\n"}, "deck.cir", 4, ".meas is not"),
        ({"deck.cir": BODY + "A1 a b filesrc\n"}, "deck.cir", 3, "XSPICE code model"),
        ({"deck.cir": BODY + "#x\n"}, "deck.cir", 3, "not a circuit statement"),
        # read as ngspice reads them: a tab splits a .lib's file from its section, ';' ends a line,
        # only \n ends a line (Python's splitlines also breaks at \v and \f), anasim's run files
        ({"deck.cir": BODY + ".lib /etc/passwd\ttt\n"}, "deck.cir", 3, "outside the deck's folder"),
        ({"deck.cir": BODY + ".include a.cir;x\n", "a.cir;x": "R3 a 0 1\n"}, "deck.cir", 3, "may not hold ';'"),
        ({"deck.cir": BODY + "R4 a 0 1\v.control\n"}, "deck.cir", 3, "control character"),
        ({"deck.cir": BODY + ".include tran.txt\n", "tran.txt": "R5 a 0 1\n"}, "deck.cir", 3, "run folder first"),
        ({"deck.cir": BODY + ".include chunk_000000/deck.cir\n", "chunk_000000/deck.cir": "R6 a 0 1\n"},
         "deck.cir", 3, "run folder first"),
    ],
)  # fmt: skip
def test_netlist_deck_that_is_not_circuit_only_is_refused(files, bad, line, needle, tmp_path):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(AnasimError) as err:
        check_deck(tmp_path / "deck.cir")
    msg = str(err.value)
    assert f"{tmp_path / bad}:{line}: " in msg and needle in msg, msg
    assert "\n" not in msg  # one line


def test_include_through_a_symbolic_link_is_refused(tmp_path):
    write(tmp_path / "elsewhere" / "x.lib", "R9 a 0 1\n")
    (tmp_path / "deck").mkdir()
    (tmp_path / "deck" / "x.lib").symlink_to(tmp_path / "elsewhere" / "x.lib")
    write(tmp_path / "deck" / "deck.cir", BODY + ".include x.lib\n")
    with pytest.raises(AnasimError, match=r"deck\.cir:3: .*symbolic link"):
        check_deck(tmp_path / "deck" / "deck.cir")


def test_circuit_decks_and_libraries_are_accepted(tmp_path):
    """Relative includes at or below the deck's folder, library sections, the shipped device
    library by its absolute path, continuation lines and the circuit statements anasim allows."""
    lib = shipped_library()
    assert lib is not None and (lib / "rtd.lib").is_file()
    write(tmp_path / "sub" / "parts.lib", ".lib tt\n.model dm d is=1e-14\n.endl tt\n")
    deck = write(
        tmp_path / "deck.cir",
        "* title\n.include 'sub/parts.lib'\n.lib \"sub/parts.lib\" tt\n"
        f".include {lib / 'rtd.lib'}\n.param r=1k\n.options reltol=1e-6\nR1 a 0 {{r}}\n+ tc1=0\n"
        "Xd a 0 rtd area=2\n.nodeset v(a)=0\n.ic v(a)=0\n.end\n",
    )
    assert check_deck(deck) == [deck, tmp_path / "sub" / "parts.lib", lib / "rtd.lib"]


@pytest.mark.parametrize("example", sorted((REPO / "netlists" / "examples").glob("*.cir")), ids=lambda p: p.stem)
def test_compiled_examples_without_their_control_block_are_accepted(example, tmp_path):
    """The committed examples are what 'anasim compile' writes, with --stimulus; without the
    .control block (what compile writes without --stimulus) they pass the check, with it they don't."""
    text = example.read_text()
    deck = write(tmp_path / example.name, text)
    with pytest.raises(AnasimError, match="no .control block"):
        check_deck(deck)
    write(deck, re.sub(r"(?ms)^\.control$.*?^\.endc$\n", "", text))
    assert check_deck(deck) == [deck]


def test_a_changed_nested_include_is_run_again(tmp_path):
    """A run folder's outputs are reused only for the same deck and the same files it includes,
    nested ones too: 2 kohm in place of 1 kohm in sub/r.lib halves V(out) (tolerance 1e-9 V)."""
    write(tmp_path / "sub" / "r.lib", "R2 out 0 1k\n")
    deck = write(tmp_path / "deck.cir", "* deck\nR1 in_0 out 1k\n.include sub/r.lib\n")
    circuit = Circuit("included", inputs=("in_0",), outputs=("out",), includes=(str(deck),))
    first = sweep(circuit, X, tmp_path / "run", jobs=1, part_elements=None)
    write(tmp_path / "sub" / "r.lib", "R2 out 0 2k\n")
    again = sweep(circuit, X, tmp_path / "run", jobs=1, part_elements=None)
    np.testing.assert_allclose(first.outputs[:, 0], X[:, 0] / 2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(again.outputs[:, 0], X[:, 0] * 2 / 3, rtol=0, atol=1e-9)
    assert "reused_runs" not in again.rusage


def resign(deck: Path) -> None:
    """Record ``deck``'s present text in its sidecar, as simulate --netlist checks it."""
    card = json.loads(path_of(deck).read_text())
    card["netlist_sha256"] = hashlib.sha256(deck.read_bytes()).hexdigest()
    path_of(deck).write_text(json.dumps(card))


def test_simulate_refuses_a_netlist_including_a_control_block(tmp_path):
    """Through the CLI: exit 1, one line naming the included file and line, nothing run."""
    marker = tmp_path / "marker"
    deck = tmp_path / "deck.cir"
    assert CliRunner().invoke(cli, ["compile", str(TDKAN), "-o", str(deck)]).exit_code == 0
    write(tmp_path / "extra.lib", f"* extra\n.control\nshell touch {marker}\n.endc\n")
    deck.write_text(deck.read_text().replace("\n.end\n", "\n.include extra.lib\n.end\n"))
    resign(deck)  # a deck edited on purpose and its sidecar made to match: the deck check still reads it
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--netlist", str(deck), "--samples", "2",
                                   "--run-dir", str(run_dir)])  # fmt: skip
    assert res.exit_code == 1 and f"{tmp_path / 'extra.lib'}:2: '.control'" in res.output, res.output
    assert not marker.exists() and not list(run_dir.glob("**/deck.cir"))


# --- item 10: the hint pastes into a shell ---------------------------------------------------


def test_compile_hint_quotes_a_path_with_spaces(tmp_path):
    out = tmp_path / "my run" / "x y.cir"
    out.parent.mkdir()
    res = CliRunner().invoke(cli, ["compile", str(TDKAN), "-o", str(out), "--stimulus", "1"])
    assert res.exit_code == 0, res.output
    hint = re.search(r"run it alone with: (.+)$", res.output, re.MULTILINE).group(1)
    assert shlex.split(hint) == ["ngspice", "-b", str(out)]
    proc = subprocess.run(shlex.split(hint), cwd=out.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and (out.parent / "x_y_outputs.txt").is_file(), proc.stderr[-2000:]
