"""Runs as a user lives them (issue 15): Ctrl-C during a DC simulate, a shared --run-dir, output
paths checked before any work, and progress in a log. Real ngspice, real signals."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anasim.errors import AnasimError
from anasim.pipeline import compare, load
from anasim.progress import Progress
from anasim.sim.run import LOCK_FILE, run_directory
from anasim_cli.main import cli

TDKAN = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence" / "tdkan.pt"


@pytest.fixture(scope="module")
def tdkan_net():
    return load(TDKAN)


def _ngspice_under(folder: Path) -> list[int]:
    """ngspice processes whose working folder lies under ``folder``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "ngspice":
                if str(folder) in os.readlink(f"/proc/{pid}/cwd"):
                    found.append(int(pid))
        except OSError:  # the process ended meanwhile
            pass
    return found


def test_ctrl_c_stops_at_once_writes_partial_results_and_a_rerun_continues(digits_model, tmp_path):
    # --jobs 1: 4 chunks of 500 samples, each through 2 stages, one after another (about 1.5 s each)
    args = ["simulate", str(digits_model), "--split", "all", "--samples", "1797", "--jobs", "1"]
    args += ["--json", "s.json", "--run-dir", "run"]
    exe = Path(sys.executable).with_name("anasim")
    # SIGINT as a terminal delivers it: a suite started in the background (nohup ... &) runs with
    # SIGINT ignored, which its children inherit, and the run would finish instead of stopping
    proc = subprocess.Popen(
        [str(exe), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    first = tmp_path / "run" / "layer1" / "chunk_000000.npy"  # the first chunk is through both stages
    t0 = time.monotonic()
    while not first.exists() and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    t_int = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    stop_s = time.monotonic() - t_int
    assert proc.returncode == 130, out
    assert stop_s < 10, f"took {stop_s:.1f} s to stop"  # the rest of the run takes 4+ s; retries took 70 s
    assert not _ngspice_under(tmp_path)  # every ngspice killed with it
    assert not list((tmp_path / "run").glob("layer*/sample_*"))  # no per-sample re-runs while stopping
    assert "run the same command to continue" in out
    report = json.loads((tmp_path / "s.json").read_text())
    partial = np.load(tmp_path / "s.npz")["circuit"]
    done = np.isfinite(partial).all(axis=1)
    assert report["partial"] is True and report["samples"] == 1797
    assert 500 <= report["samples_done"] == done.sum() < 1797 and done[:500].all()
    assert report["failed_samples"] == {}  # interrupted samples are not failures

    again = subprocess.run([str(exe), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    full = np.load(tmp_path / "s.npz")
    assert report["partial"] is False and report["samples_done"] == 1797
    assert report["rusage"]["reused_runs"] >= 2 * (done.sum() // 500)  # both stages of every finished chunk
    np.testing.assert_array_equal(full["circuit"][done], partial[done])  # reused outputs: bit for bit
    # the rest against torch: ideal op-amps give ~1e-6 of the range (README); 1e-4 leaves room
    assert report["max_error_rel_range"] < 1e-4 and report["argmax_agreement"] == 1.0


@pytest.mark.parametrize("holder", ["live", "dead"])
def test_a_run_dir_in_use_is_refused_and_a_dead_runs_lock_is_not(tdkan_net, tmp_path, holder):
    run = tmp_path / "run"
    run.mkdir()
    lock = open(run / LOCK_FILE, "w")  # noqa: SIM115
    lock.write("12345\n")
    lock.flush()
    if holder == "live":
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        with pytest.raises(AnasimError, match=r"--run-dir .*run is in use by another anasim run \(pid 12345\)"):
            compare(tdkan_net, samples=5, run_dir=run)
    else:  # a run that died leaves the file but no lock
        lock.close()
        assert compare(tdkan_net, samples=5, run_dir=run).info["samples_done"] == 5
    lock.close()


def test_two_runs_at_once_in_one_run_dir(tdkan_net, tmp_path):
    with run_directory(tmp_path / "run"):  # the first run is still going
        res = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--samples", "5", "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 1 and "is in use by another anasim run" in res.output
    assert not (tmp_path / "run" / "layer0").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["simulate", str(TDKAN), "--samples", "5", "--json", "/proc/nodir/s.json"], "--json /proc/nodir/s.json"),
        (["simulate", str(TDKAN), "--samples", "5", "--run-dir", "/proc/run"], "--run-dir /proc/run: cannot create"),
        (["train", "--epochs", "1", "-o", "/proc/m.pt"], "-o /proc/m.pt: cannot write checkpoint"),
    ],
)
def test_unwritable_outputs_are_refused_before_any_work(monkeypatch, args, needle):
    def no_work(*a, **k):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr("anasim.sim.batch.chained", no_work)
    monkeypatch.setattr("anasim.train.family_named", no_work)
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output


def test_json_in_a_new_folder_is_written(tmp_path):
    out = tmp_path / "nodir" / "s.json"
    res = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--samples", "5", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["samples"] == 5 and out.with_suffix(".npz").is_file()


@pytest.mark.parametrize(
    "args, desc, total",
    [
        (["simulate", str(TDKAN), "--samples", "360", "--jobs", "2"], "ngspice", "360 samples"),
        (["train", "--dims", "64,4,10", "--epochs", "20", "--patience", "20", "-o", "m.pt"], "train", "20 epochs"),
    ],
)
def test_long_commands_show_progress_as_a_few_plain_lines_in_a_log(tmp_path, monkeypatch, args, desc, total):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, args)  # CliRunner's stderr is not a terminal, like a log
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(f"{desc}:")]
    n = total.split()[0]
    assert lines[0] == f"{desc}: 0/{total}" and lines[-1].startswith(f"{desc}: {n}/{total}")
    assert len(lines) <= 12 and "\r" not in res.stderr


@pytest.mark.parametrize("total, step", [(10_000, 500), (1797, 500), (1797, 1), (3, 1)])
def test_progress_in_a_log_prints_at_most_one_line_per_tenth(total, step):
    class Log:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return False

    log = Log()
    bar = Progress(total, "ngspice", "samples", stream=log)
    for done in range(0, total, step):
        bar.update(min(step, total - done))
    bar.close()
    lines = log.text.splitlines()
    assert lines[-1].startswith(f"ngspice: {total}/{total} samples") and "\r" not in log.text
    assert min(11, -(-total // step)) <= len(lines) <= 12  # the start, one per tenth crossed, the end
