"""``compile`` writes ``layer.cir.json`` beside ``layer.cir`` and ``simulate --netlist`` reads it,
never the deck's text (issue 32, item 3): the happy path, what the sidecar records, and each
refusal (one line naming the file and what to do, exit 1, nothing run)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from anasim import __version__, sidecar
from anasim.errors import AnasimError
from anasim.families import FAMILIES, make_options
from anasim_cli.main import cli

EQUIV = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "equivalence"
TDKAN, MLP = EQUIV / "tdkan.pt", EQUIV / "mlp.pt"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def compiled(folder: Path, ckpt: Path = TDKAN, *extra) -> Path:
    deck = folder / "layer.cir"
    res = run("compile", ckpt, "-o", deck, *extra)
    assert res.exit_code == 0, res.output
    assert "beside it layer.cir.json, which simulate --netlist reads" in res.output
    return deck


def test_compile_writes_a_sidecar_of_the_deck_as_written(tmp_path):
    deck = compiled(tmp_path)
    card = json.loads(sidecar.path_of(deck).read_text())
    assert sidecar.path_of(deck) == tmp_path / "layer.cir.json"
    assert card["format"] == sidecar.FORMAT == "anasim-netlist/1"
    assert card["netlist"] == "layer.cir" and card["netlist_sha256"] == hashlib.sha256(deck.read_bytes()).hexdigest()
    assert card["model"] == "tdkan.pt" and card["model_sha256"] == hashlib.sha256(TDKAN.read_bytes()).hexdigest()
    assert card["family"] == "tdkan" and card["anasim"] == __version__
    assert card["options"] == json.loads(json.dumps(asdict(make_options(FAMILIES["tdkan"], {}, FAMILIES))))
    assert (
        card["engine"] == "ngspice"
        and card["engine_label"].startswith("ngspice-")
        and card["solver"] in ("klu", "sparse")
    )
    assert card["output_scale"] is None and card["stimulus"] == 0 and card["runs_alone"] is False


def test_a_swing_decks_output_scale_is_in_its_sidecar(tmp_path):
    """The scale simulate --netlist divides out: the one the lowering reports (exactly)."""
    from anasim.pipeline import compile_network, load

    deck = tmp_path / "swing.cir"
    _, info = compile_network(load(EQUIV / "tdkan.pt"), deck, {"swing": 4.0, "opamp_gain": 1e6})
    card = sidecar.read(deck, "recompile")
    assert card.output_scale == info["layers"][-1]["swing"]["output_scale"] and 0 < card.output_scale < 1
    assert card.options["swing"] == 4.0


def test_simulate_reads_the_sidecar_not_the_deck(tmp_path):
    """The happy path: the deck's outputs equal the model's (100% agreement on 5 samples), and the
    results name the netlist. A deck header that no longer says the model (a comment changed and
    the sidecar's hash set to match) still runs: the header is not read."""
    deck = compiled(tmp_path)
    text = deck.read_text()
    assert "* model tdkan.pt sha256 " in text
    deck.write_text(text.replace("* model tdkan.pt sha256 ", "* model (renamed) sha256 ", 1))
    resign(deck)
    js = tmp_path / "sim.json"
    res = run("simulate", TDKAN, "--netlist", deck, "--samples", 5, "--json", js)
    assert res.exit_code == 0, res.output
    assert "argmax agreement     100.00%" in res.output
    assert json.loads(js.read_text())["netlist"] == str(deck.resolve())


def resign(deck: Path) -> None:
    """Record ``deck``'s present text in its sidecar (what a user who edits a deck on purpose does)."""
    path = sidecar.path_of(deck)
    card = json.loads(path.read_text())
    card["netlist_sha256"] = hashlib.sha256(deck.read_bytes()).hexdigest()
    path.write_text(json.dumps(card))


def edit(deck: Path) -> None:
    deck.write_text(deck.read_text().replace("\n.end\n", "\nRextra y_0 0 1meg\n.end\n"))


def card_field(key, value):
    def change(deck: Path) -> None:
        path = sidecar.path_of(deck)
        card = json.loads(path.read_text())
        if value is None:
            del card[key]
        else:
            card[key] = value
        path.write_text(json.dumps(card))

    return change


def other_decks_sidecar(deck: Path) -> None:
    (deck.parent / "other").mkdir()
    other = compiled(deck.parent / "other", TDKAN, "--opamp-gain", "1e6")
    sidecar.path_of(deck).write_bytes(sidecar.path_of(other).read_bytes())


def restimulated(deck: Path) -> None:
    assert run("compile", TDKAN, "-o", deck, "--stimulus", 2).exit_code == 0


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: sidecar.path_of(d).unlink(), "no sidecar layer.cir.json beside it"),
        (edit, "the deck was changed after anasim compile wrote it"),
        (lambda d: d.write_text(d.read_text() + "* a comment\n"), "the deck was changed after anasim compile"),
        (other_decks_sidecar, "the deck was changed after anasim compile"),
        (lambda d: sidecar.path_of(d).write_text("{not json"), "is not an anasim netlist sidecar"),
        (lambda d: sidecar.path_of(d).write_bytes(bytes(range(256))), "is not an anasim netlist sidecar"),
        (card_field("format", "anasim-netlist/2"), "is format anasim-netlist/2, this anasim reads anasim-netlist/1"),
        (card_field("model_sha256", None), "lacks fields of anasim-netlist/1"),
        (card_field("output_scale", "0.5"), "lacks fields of anasim-netlist/1"),
        (card_field("model_sha256", hashlib.sha256(MLP.read_bytes()).hexdigest()), "was compiled from model tdkan.pt"),
        (restimulated, "was compiled with --stimulus 2: it holds its own analysis"),
    ],
    ids=["no sidecar", "edited", "comment added", "another deck's sidecar", "not json", "binary", "newer format",
         "field missing", "field of another type", "another model", "runs alone"],
)  # fmt: skip
def test_a_deck_without_its_sidecar_or_edited_is_refused(tmp_path, change, needle):
    deck = compiled(tmp_path)
    change(deck)
    run_dir = tmp_path / "run"
    res = run("simulate", TDKAN, "--netlist", deck, "--samples", 2, "--run-dir", run_dir)
    assert res.exit_code == 1 and needle in res.output, res.output
    line = res.output.strip()
    assert "\n" not in line and "Traceback" not in line  # one line
    assert f"--netlist {deck}" in line and f"anasim compile {TDKAN} -o layer.cir" in line  # the file, what to do
    assert not list(run_dir.glob("**/*.cir"))  # nothing ran


def test_a_deck_for_another_engine_is_refused_before_any_run(tmp_path):
    deck = compiled(tmp_path)
    res = run("simulate", TDKAN, "--netlist", deck, "--samples", 2, "--engine", "ngspice,vacask")
    assert res.exit_code == 1, res.output
    assert f"--netlist {deck} is a deck for ngspice (layer.cir.json), and this run's engine is vacask" in res.output
    assert "simulate it with --engine ngspice" in res.output


def test_read_refuses_an_unreadable_deck(tmp_path):
    with pytest.raises(AnasimError, match=r"--netlist .*missing\.cir: cannot read it"):
        sidecar.read(tmp_path / "missing.cir", "recompile")
