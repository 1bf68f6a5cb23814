"""Output files (issue 29, items 4 and 5): no output overwrites an input or another output, --json
is locked while a run writes it, every results file is written whole or not at all, and a full
disk names the file, keeps what was computed and lets --resume finish from what it can trust.

A full disk is injected: every fsync of a temporary file under the "full" folder fails with
ENOSPC, as a write does there when the disk fills (real ngspice runs, real files elsewhere)."""

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anasim import outputs
from anasim.errors import AnasimError
from anasim.outputs import OutputLock, WriteError, save_npy, write_json, write_text
from anasim.results import write_report
from anasim_cli.main import cli

TDKAN = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence" / "tdkan.pt"
MC = ["--mc", "3", "--vary", "area=0.1", "--seed", "3", "--samples", "20", "--workers", "1"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def full_disk(monkeypatch, tmp_path):
    """Writes under the returned folder fail with ENOSPC; the system temp folder is tmp_path/spare."""
    full = tmp_path / "full"
    full.mkdir()
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(full)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(outputs.os, "fsync", fsync)
    (tmp_path / "spare").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spare"))
    return full


# --- outputs against inputs and each other --------------------------------------------------


def _no_work(*a, **k):
    raise AssertionError("work started before the outputs were checked")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["compile", "m.pt", "-o", "m.pt"], "-o m.pt would overwrite the checkpoint m.pt; choose another -o"),
        (["simulate", "m.pt", "--json", "m.pt"], "--json m.pt would overwrite the checkpoint m.pt"),
        (["simulate", "m.pt", "--json", "sub/../m.pt"], "--json sub/../m.pt would overwrite the checkpoint m.pt"),
        (["simulate", "link.pt", "--json", "m.pt"], "--json m.pt would overwrite the checkpoint link.pt"),
        (["simulate", "m.pt", "--json", "m.npz"], "--json m.npz and the arrays of --json m.npz (m.npz) are the same"),
        (["simulate", "m.pt", "--json", "s.json", "--run-dir", "s.npz"], "--run-dir s.npz and the arrays of --json"),
        (["simulate", "m.pt", *MC, "--json", "r.mc"], "--json r.mc and the Monte Carlo folder of --json r.mc (r.mc)"),
        (["simulate", "m.pt", *MC, "--json", "m.json", "--run-dir", "m.mc"], "--run-dir m.mc and the Monte Carlo"),
        (["control", "simulate", "m.pt", "--json", "m.pt"], "--json m.pt would overwrite the checkpoint m.pt"),
        (["control", "simulate", "m.pt", "--json", "c.json", "--plot", "c.npz"], "the trajectories of --json c.json"),
        (["report", "report.md", "-o", "."], "the report report.md would overwrite the results file report.md"),
        (["devices", "plot", "a21", "--data", "m.pt", "-o", "m.pt"], "-o m.pt would overwrite --data m.pt"),
    ],
)
def test_an_output_that_would_overwrite_an_input_or_another_output_is_refused_before_any_work(
    tmp_path, monkeypatch, args, needle
):
    monkeypatch.chdir(tmp_path)
    shutil.copy(TDKAN, "m.pt")
    os.link("m.pt", "link.pt")  # the same file by another name
    before = sha(Path("m.pt"))
    # simulate; Monte Carlo; compile
    for name in ("anasim.comparator.prepare", "anasim.pipeline.prepare", "anasim.pipeline.fit_options"):
        monkeypatch.setattr(name, _no_work)
    monkeypatch.setattr("anasim.control.compare._control_simulate", _no_work)
    monkeypatch.setattr("anasim.report.load_results", _no_work)
    monkeypatch.setattr("anasim.devices.plots.plot_device", _no_work)
    res = invoke(*args)
    assert res.exit_code == 1 and needle in res.output, res.output
    assert sha(Path("m.pt")) == before and sorted(os.listdir()) == ["link.pt", "m.pt"]  # nothing written


def test_distinct_outputs_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(TDKAN, "m.pt")
    res = invoke("simulate", "m.pt", "--samples", "5", "--json", "m.json", "--run-dir", "run")
    assert res.exit_code == 0, res.output
    assert json.loads(Path("m.json").read_text())["samples_done"] == 5 and Path("m.npz").is_file()
    assert not list(tmp_path.glob(".*"))  # no lock or temporary file left behind


# --- --json locked like --run-dir ----------------------------------------------------------


@pytest.mark.parametrize("mc", [False, True], ids=["simulate", "monte-carlo"])
def test_a_json_in_use_by_another_run_is_refused_at_once(tmp_path, monkeypatch, mc):
    monkeypatch.setattr("anasim.comparator.prepare", _no_work)  # simulate
    monkeypatch.setattr("anasim.pipeline.prepare", _no_work)  # Monte Carlo
    out = tmp_path / "s.json"
    held = OutputLock(out, "--json")  # another run is writing s.json (an flock: the same as another process)
    try:
        res = invoke("simulate", TDKAN, *(MC if mc else ["--samples", "5"]), "--json", out)
    finally:
        held.release()
    assert res.exit_code == 1, res.output
    assert f"--json {out} is in use by another anasim run (pid {os.getpid()})" in res.output
    assert not out.exists() and not out.with_suffix(".mc").exists()
    assert not list(tmp_path.iterdir())  # the lock file goes with the run that held it


def test_output_lock_is_exclusive_and_taken_again_after_release(tmp_path):
    out = tmp_path / "s.json"
    first = OutputLock(out, "--json")
    with pytest.raises(AnasimError, match="is in use by another anasim run"):
        OutputLock(out, "--json")
    first.release()
    second = OutputLock(out, "--json")  # a lock file removed under a waiting run is not a lock
    assert (tmp_path / ".s.json.lock").read_text() == f"{os.getpid()}\n"
    second.release()
    stale = tmp_path / ".s.json.lock"
    stale.write_text("99999\n")  # a run that died leaves the file but no flock
    OutputLock(out, "--json").release()
    assert not stale.exists()


# --- atomic writes and a full disk ---------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda p: write_text(p, "new\n" * 1000),
        lambda p: write_json(p, {"new": list(range(100))}),
        lambda p: save_npy(p, np.arange(100.0)),
        lambda p: write_report(p, {"new": 1}, circuit=np.arange(10.0)),
    ],
    ids=["text", "json", "npy", "report"],
)
def test_a_write_that_fails_leaves_the_old_file_whole_and_names_it(full_disk, write):
    old = full_disk / "r.json"
    old.write_text('{"old": true}\n')
    old.chmod(0o640)
    with pytest.raises(WriteError, match=f"no space left on device writing {re.escape(str(full_disk))}/r\\."):
        write(old)
    assert old.read_text() == '{"old": true}\n' and os.listdir(full_disk) == ["r.json"]  # no temporary left
    write(full_disk.parent / "r.json")  # elsewhere the same write works, and a replaced file keeps its mode
    shutil.copy(old, full_disk.parent / "ok.json")
    (full_disk.parent / "ok.json").chmod(0o640)
    write(full_disk.parent / "ok.json")
    assert (full_disk.parent / "ok.json").stat().st_mode & 0o777 == 0o640


def test_simulate_on_a_full_disk_keeps_its_results_in_the_temp_folder(full_disk, tmp_path):
    res = invoke("simulate", TDKAN, "--samples", "5", "--json", full_disk / "s.json")
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    found = re.search(r"no space left on device writing (\S+); the computed results are kept in (\S+) and", res.output)
    assert found and Path(found.group(1)).parent == full_disk, res.output
    kept = Path(found.group(2))
    assert kept.parent.parent == tmp_path / "spare" and f"move them to {full_disk / 's.json'}" in res.output
    assert json.loads(kept.read_text())["samples_done"] == 5
    assert np.isfinite(np.load(kept.with_suffix(".npz"))["circuit"]).all()
    assert os.listdir(full_disk) == []  # no half file, no lock


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 3-realization Monte Carlo: its folder and summary."""
    where = tmp_path_factory.mktemp("mc")
    res = invoke("simulate", TDKAN, *MC, "--json", where / "mc.json")
    assert res.exit_code == 0, res.output
    return where


def rows_of(folder: Path) -> list[dict]:
    """Rows without the timings, which vary from run to run."""
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_s", "ngspice_s", "ngspice_elapsed_s")} for r in rows]


def test_a_full_disk_stops_the_monte_carlo_with_the_file_and_resume_finishes_it(finished, full_disk, monkeypatch):
    real = outputs.os.fsync

    def full_at_second(fd):  # the disk fills as the second realization's outputs are written
        if "p0_r00001.npy" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(outputs.os, "fsync", full_at_second)
    out = full_disk.parent / "mc.json"
    res = invoke("simulate", TDKAN, *MC, "--json", out)
    folder = out.with_suffix(".mc")
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert f"no space left on device writing {folder}/outputs/p0_r00001.npy; free space and run the same command " \
        f"with --resume (the rows done so far are kept in {folder})" in res.output  # fmt: skip
    assert rows_of(folder) == rows_of(finished / "mc.mc")[:1]
    monkeypatch.setattr(outputs.os, "fsync", real)  # space freed
    res = invoke("simulate", TDKAN, *MC, "--json", out, "--resume")
    assert res.exit_code == 0, res.output
    assert rows_of(folder) == rows_of(finished / "mc.mc")
    np.testing.assert_array_equal(np.load(folder / "nominal.npy"), np.load(finished / "mc.mc" / "nominal.npy"))


def _cut_nominal(folder: Path, keep: int) -> None:
    data = (folder / "nominal.npy").read_bytes()
    (folder / "nominal.npy").write_bytes(data[:keep])


def _cut_last_row(folder: Path) -> None:
    text = (folder / "rows.jsonl").read_text()
    (folder / "rows.jsonl").write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])


def _every_row_twice(folder: Path) -> None:
    text = (folder / "rows.jsonl").read_text()
    (folder / "rows.jsonl").write_text(text + text)  # two runs on one --json before it was locked


@pytest.mark.parametrize(
    "damage",
    [lambda f: _cut_nominal(f, 0), lambda f: _cut_nominal(f, 100), _cut_last_row, _every_row_twice],
    ids=["empty-nominal", "cut-nominal", "cut-last-row", "every-row-twice"],
)
def test_resume_runs_again_what_it_cannot_trust(finished, tmp_path, damage):
    shutil.copytree(finished / "mc.mc", tmp_path / "mc.mc")
    damage(tmp_path / "mc.mc")
    res = invoke("simulate", TDKAN, *MC, "--json", tmp_path / "mc.json", "--resume")
    assert res.exit_code == 0 and "Aborted" not in res.output, res.output
    assert rows_of(tmp_path / "mc.mc") == rows_of(finished / "mc.mc")  # every realization once, the same figures
    summary, first = (json.loads((d / "mc.json").read_text()) for d in (tmp_path, finished))
    assert summary["realizations"] == 3 and summary["accuracies"] == first["accuracies"]
    assert summary["nominal_accuracy"] == first["nominal_accuracy"]
    np.testing.assert_array_equal(
        np.load(tmp_path / "mc.mc" / "nominal.npy"), np.load(finished / "mc.mc" / "nominal.npy")
    )


def test_a_full_disk_under_the_run_folder_is_one_line(tmp_path, monkeypatch):
    real = Path.write_text

    def write_text(self, *a, **k):  # decks and logs are work files, not results: plain writes
        if self.name == "deck.cir":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    res = invoke("simulate", TDKAN, "--samples", "5", "--run-dir", tmp_path / "run")
    deck = re.escape(str(tmp_path / "run" / "layer0")) + r"/chunk_\d{6}/deck\.cir"  # which chunk: thread order
    last = f"Error: no space left on device writing {deck}; free space and run the command again"
    assert res.exit_code == 1 and re.fullmatch(last, res.output.splitlines()[-1]), res.output


def test_an_output_that_is_a_symbolic_link_stays_one(tmp_path):
    """Writing through a link replaces the file it points to, as a plain write did: the link stays."""
    from anasim.outputs import write_text

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "r.json").write_text("old\n")
    (tmp_path / "r.json").symlink_to(tmp_path / "real" / "r.json")
    write_text(tmp_path / "r.json", "new\n")
    assert (tmp_path / "r.json").is_symlink() and (tmp_path / "real" / "r.json").read_text() == "new\n"
