"""Monte Carlo: variations on the IR (no ngspice), exactness against the nominal circuit, torch's
eq. 6 draw by draw and a hand-worked 2x2 crossbar, and rows that do not depend on workers,
Dask, Ctrl-C or a killed worker. The ngspice tests use the small fixed checkpoints of the
equivalence benchmark (100 digits samples at most) to stay fast.
"""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anasim.circuit.ir import ISource, OpAmp, Resistor
from anasim.errors import AnasimError
from anasim.families import SimSettings
from anasim.families.mlp.lower import lower as lower_mlp
from anasim.families.mlp.model import DeviceMLP
from anasim.families.mlp.options import MlpOptions
from anasim.families.tdkan.lower import coefficient_index, lower, lower_stages
from anasim.families.tdkan.model import scale_coefficients
from anasim.families.tdkan.options import TdkanOptions
from anasim.montecarlo.fanout import check_scheduler
from anasim.montecarlo.realizations import MonteCarlo
from anasim.montecarlo.variations import VARIATIONS, Perturbation, coefficient_factors, parse_sigma, parse_sweep
from anasim.pipeline import compare, load, monte_carlo
from anasim.sim.batch import sweep
from anasim_cli.main import cli

CKPT = Path(__file__).parents[1] / "benchmarks" / "results" / "equivalence"
TDKAN, KN = CKPT / "tdkan.pt", CKPT / "kn.pt"


@pytest.fixture(scope="module")
def tdkan():
    return load(TDKAN)


def rows_of(folder: Path) -> list[dict]:
    """Rows without the wall time: what must not depend on how the run was done."""
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k not in ("wall_s", "ngspice_s", "ngspice_elapsed_s")} for r in rows),
        key=lambda r: (r["point"], r["index"]),
    )


# --- the registry and the transform, without ngspice --------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("bogus=0.1", "unknown variation 'bogus'; use one of area (relative sigma)"),
        ("area=-0.1", "give area=SIGMA with SIGMA a number >= 0"),
        ("area", "give area=SIGMA"),
        ("opamp-offset=abc", "give opamp-offset=SIGMA"),
    ],
)
def test_bad_variation_is_refused_with_the_list(text, message):
    with pytest.raises(AnasimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sigma(text)


def test_variation_of_another_family_is_refused():
    with pytest.raises(AnasimError, match="--vary cap applies to kirchhoffnet models, not tdkan"):
        parse_sigma("cap=0.1", "tdkan")
    assert parse_sweep("area=0,0.01,0.2") == ("area", (0.0, 0.01, 0.2))


def test_list_variations_names_every_one_with_its_unit():
    out = CliRunner().invoke(cli, ["simulate", "--list-variations"])
    assert out.exit_code == 0, out.output
    for v in VARIATIONS.values():
        assert any(line.split()[:1] == [v.name] and v.unit in line for line in out.output.splitlines())


def test_cli_refuses_unknown_variation_before_any_work(tmp_path):
    out = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--mc", "2", "--vary", "areas=0.1", "--json", "x.json"])
    assert out.exit_code != 0 and "unknown variation 'areas'" in out.output and "iv-shift (V)" in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vary", "area=0.1", "--vary", "area=0.2"], "--vary area is given more than once"),
        (["--vary", "area=0.1", "--sweep", "area=0,0.1"], "a swept variation takes its sigmas from --sweep only"),
        (["--sweep", "area=0,0.1", "--sweep", "rf=0.1"], "--sweep is given 2 times"),
        (["--vary", "area=0.1", "--scheduler", "http://foo"], "--scheduler http://foo: give a Dask scheduler address"),
        (["--vary", "area=0.1", "--scheduler", "tcp://"], "such as tcp://host:8786"),
    ],
)
def test_cli_refuses_ambiguous_settings_before_any_work(args, message, tmp_path):
    out = CliRunner().invoke(cli, ["simulate", str(TDKAN), "--mc", "2", *args, "--json", str(tmp_path / "x.json")])
    assert out.exit_code != 0 and message in out.output, out.output
    assert "Traceback" not in out.output and not (tmp_path / "x.mc").exists()


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "10.0.0.5:8786", "tls://host:8786", "inproc://x/1/2"])
def test_dask_addresses_are_taken(address):
    check_scheduler(address)  # no error: Dask reads each of them


def test_perturbation_is_seeded_per_realization_and_stage(tdkan):
    circuit = lower(tdkan.model, TdkanOptions())[0]
    p = Perturbation((("area", 0.1),), seed=7, realization=3)
    a, b = p(circuit, "whole"), p(circuit, "whole")
    assert a == b  # same seed, realization and stage: the same draws
    assert p(circuit, "stage0") != a and Perturbation((("area", 0.1),), 7, 4)(circuit, "whole") != a
    # adding a variation leaves the draws of the others unchanged (a stream per variation)
    both = Perturbation((("area", 0.1), ("opamp-offset", 1e-3)), 7, 3)(circuit, "whole")
    area = {e.name: e.area for e in a.elements if hasattr(e, "area")}
    assert area == {e.name: e.area for e in both.elements if hasattr(e, "area")}
    assert Perturbation((("area", 0.0),), 7, 3)(circuit, "whole") == circuit  # sigma 0: untouched


def test_area_draws_stay_positive_and_have_the_asked_sigma(tdkan):
    circuit = lower(tdkan.model, TdkanOptions())[0]
    f = np.array(list(coefficient_factors([circuit], [Perturbation((("area", 0.5),), 0, 0)(circuit, "w")]).values()))
    assert len(f) == len(circuit.group("coefficients")) > 1000 and (f > 0).all()
    # truncation at 0 (2.3% of a N(1, 0.25) mass) moves the std a little: 0.5 within 10%
    assert abs(f.std() - 0.5) < 0.05
    binary = Perturbation((("coeff", 0.2),), 0, 0, dist="binary")(circuit, "w")
    fb = np.array(list(coefficient_factors([circuit], [binary]).values()))
    np.testing.assert_allclose(np.sort(np.unique(fb.round(12))), [0.8, 1.2], rtol=1e-12)


def test_each_variation_reaches_its_elements(tdkan):
    circuit = lower(tdkan.model, TdkanOptions(mapping="shared"))[0]
    for name in ("area", "iv-scale", "iv-shift", "coeff", "opamp-gain", "opamp-offset", "rf"):
        varied = Perturbation(((name, 0.1),), 0, 0)(circuit, "whole")
        kinds = {type(e1).__name__ for e0, e1 in zip(circuit.elements, varied.elements) if e0 != e1}
        expected = {"area": {"VCCS"}, "coeff": {"VCCS"}, "rf": {"Resistor"}, "opamp-gain": {"OpAmp"}}
        assert kinds and kinds == expected.get(name, kinds), name


# --- exactness, in ngspice ------------------------------------------------------------------


def test_all_sigmas_zero_reproduce_simulate_exactly(tdkan, tmp_path):
    ref = compare(tdkan, samples=60, settings=SimSettings(jobs=1))
    mc = MonteCarlo(2, (("area", 0.0), ("opamp-offset", 0.0)))
    monte_carlo(tdkan, mc, samples=60, json_out=tmp_path / "mc.json", workers=1)
    for r in (0, 1):
        out = np.load(tmp_path / "mc.mc" / "outputs" / f"p0_r{r:05d}.npy")
        np.testing.assert_array_equal(out, ref.circuit)  # bit for bit
    np.testing.assert_array_equal(np.load(tmp_path / "mc.mc" / "nominal.npy"), ref.circuit)


def test_area_mismatch_equals_torch_with_the_same_draws(tdkan, tmp_path):
    """Edge mapping, ideal op-amps: realization r's circuit equals the torch model whose
    coefficients get the draws of its devices (eq. 6), sample by sample."""
    n, mc = 100, MonteCarlo(3, (("area", 0.2),), seed=5)
    summary = monte_carlo(tdkan, mc, samples=n, json_out=tmp_path / "mc.json", workers=1)
    data = np.load(tmp_path / "mc.mc" / "reference.npz")
    z = torch.as_tensor(data["x"])
    nominal = lower_stages(tdkan.model, TdkanOptions())
    for r in range(3):
        p = Perturbation((("area", 0.2),), 5, r)
        varied = [p(c, f"stage{i}") for i, c in enumerate(nominal)]
        factors = coefficient_factors(nominal, varied)
        twin = scale_coefficients(tdkan.model, {coefficient_index(k): f for k, f in factors.items()})
        with torch.no_grad():
            torch_out = twin(z).numpy()
        out = np.load(tmp_path / "mc.mc" / "outputs" / f"p0_r{r:05d}.npy")
        span = np.ptp(torch_out)
        assert np.abs(out - torch_out).max() < 1e-5 * span  # tolerance: 1e-5 of the output range
        row = summary["accuracies"][r]
        assert row == pytest.approx(float((torch_out.argmax(1) == data["target"]).mean()), abs=0)
        assert np.abs(out - np.load(tmp_path / "mc.mc" / "nominal.npy")).max() > 1e-2 * span  # it did vary


def test_the_network_is_lowered_once(tdkan, tmp_path, monkeypatch):
    """The parent lowers the network once into the plan it ships: the nominal run and every
    realization share it; perturbations copy its circuits (the torch cross-check above would see
    a perturbation leaking into the next)."""
    import anasim.families.tdkan as tdkan_family

    calls = []
    real = tdkan_family.lower_stages
    monkeypatch.setattr(tdkan_family, "lower_stages", lambda *a: calls.append(1) or real(*a))
    s = monte_carlo(tdkan, MonteCarlo(3, (("area", 0.1),)), samples=10, json_out=tmp_path / "m.json", workers=1)
    assert s["realizations"] == 3 and len(calls) == 1


def test_each_realization_has_its_torch_eq6_companion(tdkan, tmp_path):
    """Beside each circuit realization, torch with eq. 6 at the point's coefficient sigma:
    every coefficient times 1 + N(0, sigma^2) from the realization's own torch stream."""
    from anasim.montecarlo.realizations import TORCH_STREAM

    mc = MonteCarlo(3, (("opamp-offset", 1e-3),), ("area", (0.0, 0.2)), seed=2)
    s = monte_carlo(tdkan, mc, samples=40, json_out=tmp_path / "m.json", workers=1)
    assert "torch_eq6" not in s["points"][0]  # sigma 0: no coefficient noise to show
    t = s["points"][1]["torch_eq6"]
    data = np.load(tmp_path / "m.mc" / "reference.npz")
    for r in range(3):
        rng, twin = np.random.default_rng([2, r, TORCH_STREAM]), copy.deepcopy(tdkan.model)
        with torch.no_grad():
            for layer in twin.layers:
                layer.coeffs *= torch.as_tensor(1 + 0.2 * rng.standard_normal(tuple(layer.coeffs.shape)))
            acc = float((twin(torch.as_tensor(data["x"])).argmax(1).numpy() == data["target"]).mean())
        assert t["accuracies"][r] == acc  # exact: the same draws, the same forward pass
    assert t["sigma"] == 0.2 and t["worst_accuracy"] == min(t["accuracies"])
    assert t["accuracies"] != [s["reference_accuracy"]] * 3  # it did vary


def test_offset_and_finite_gain_on_a_2x2_crossbar_by_hand(tmp_path):
    """A 2x2 resistive crossbar (a one-layer MLP) with drawn op-amp gains and offsets, against
    the answer worked out by hand from KCL at each column and the difference amplifier."""
    model = DeviceMLP([2, 2], "relu").double()
    with torch.no_grad():
        model.linears[0].weight.copy_(torch.tensor([[1.0, 0.5], [-0.25, 2.0]]))
        model.linears[0].bias.copy_(torch.tensor([0.1, -0.3]))
    nominal = lower_mlp(model, MlpOptions(opamp_gain=1e3))[0]
    circuit = Perturbation((("opamp-gain", 0.5), ("opamp-offset", 2e-3)), 1, 0)(nominal, "whole")
    v = np.array([[0.3, -0.2], [1.0, 0.5], [-0.7, 0.9]])
    res = sweep(circuit, v, tmp_path, jobs=1)
    by = {e.name: e for e in circuit.elements}
    amp = {k: e for k, e in by.items() if isinstance(e, OpAmp)}
    assert len({a.gain for a in amp.values()}) == 6 and all(a.offset != 0 for a in amp.values())
    expected = np.zeros_like(v)
    for j in range(2):
        rf = by[f"fp0_{j}"].value
        col_out = {}
        for pol in "pn":
            col = f"l0_c{j}{pol}"
            cells = [e for e in by.values() if isinstance(e, Resistor) and e.n == col and e.name.startswith("w")]
            g = sum(1 / e.value for e in cells)
            s = sum(v[:, int(e.p.split("_")[1])] / e.value for e in cells)
            s = s + sum(e.dc for e in by.values() if isinstance(e, ISource) and e.n == col)
            a = amp[f"tia0_{j}_{pol}"]
            # KCL at the column: s - g Vc + (A (os - Vc) - Vc) / Rf = 0, and V(a) = A (os - Vc)
            vc = (s + a.gain * a.offset / rf) / (g + (1 + a.gain) / rf)
            col_out[pol] = a.gain * (a.offset - vc)
        d = amp[f"tia0_{j}_d"]
        # difference amp: q = V(an)/2, m = (V(ap) + out)/2, out = Ad (q - m + os)
        expected[:, j] = d.gain * (col_out["n"] - col_out["p"] + 2 * d.offset) / (2 + d.gain)
    ideal = v @ model.linears[0].weight.detach().numpy().T + model.linears[0].bias.detach().numpy()
    assert np.abs(expected - ideal).max() > 1e-3  # the non-idealities matter at gain 1e3
    np.testing.assert_allclose(res.outputs, expected, rtol=0, atol=1e-9)  # linear circuit: 1 nV


# --- rows independent of workers, Dask, Ctrl-C and a killed worker --------------------------


@pytest.fixture(scope="module")
def one_worker_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mc1")
    mc = MonteCarlo(4, (("area", 0.1), ("opamp-offset", 1e-3)), seed=3)
    monte_carlo(load(TDKAN), mc, samples=80, json_out=folder / "mc.json", workers=1)
    return rows_of(folder / "mc.mc")


ARGS = ["--mc", "4", "--vary", "area=0.1", "--vary", "opamp-offset=1e-3", "--seed", "3", "--samples", "80"]


def test_two_workers_give_the_same_rows(one_worker_rows, tmp_path):
    out = CliRunner().invoke(cli, ["simulate", str(TDKAN), *ARGS, "--workers", "2", "--json", str(tmp_path / "m.json")])
    assert out.exit_code == 0, out.output
    assert rows_of(tmp_path / "m.mc") == one_worker_rows
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["realizations"] == 4 and len(summary["accuracies"]) == 4 and not summary["partial"]


def test_dask_local_cluster_gives_the_same_rows(one_worker_rows, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        mc = MonteCarlo(4, (("area", 0.1), ("opamp-offset", 1e-3)), seed=3)
        monte_carlo(load(TDKAN), mc, samples=80, json_out=tmp_path / "d.json", scheduler=cluster.scheduler_address)
    assert rows_of(tmp_path / "d.mc") == one_worker_rows


def _cli(*args, cwd):
    exe = Path(sys.executable).with_name("anasim")
    return subprocess.Popen(
        [str(exe), "simulate", str(TDKAN), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even when the suite runs with it ignored
    )  # fmt: skip


def _wait_rows(folder: Path, n: int, proc, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        rows = folder / "rows.jsonl"
        if rows.exists() and len(rows.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} rows in {folder}")


def test_ctrl_c_keeps_the_rows_and_resume_finishes_them_exactly(one_worker_rows, tmp_path):
    proc = _cli(*ARGS, "--workers", "2", "--json", "m.json", cwd=tmp_path)
    _wait_rows(tmp_path / "m.mc", 1, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "--resume" in out and json.loads((tmp_path / "m.json").read_text())["partial"] is True
    kept = rows_of(tmp_path / "m.mc")
    assert 1 <= len(kept) < 4 and all(r in one_worker_rows for r in kept)
    assert not subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout  # no ngspice left
    again = _cli(*ARGS, "--workers", "2", "--json", "m.json", "--resume", cwd=tmp_path)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert rows_of(tmp_path / "m.mc") == one_worker_rows


def test_resume_with_other_settings_is_refused(tmp_path, one_worker_rows):
    runner = CliRunner()
    first = runner.invoke(
        cli,
        [
            "simulate",
            str(TDKAN),
            *ARGS[:2],
            "--vary",
            "area=0.1",
            "--samples",
            "20",
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        cli,
        [
            "simulate",
            str(TDKAN),
            *ARGS[:2],
            "--vary",
            "area=0.2",
            "--samples",
            "20",
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert again.exit_code != 0 and "add --resume" in again.output
    other = runner.invoke(
        cli,
        [
            "simulate",
            str(TDKAN),
            *ARGS[:2],
            "--vary",
            "area=0.2",
            "--samples",
            "20",
            "--json",
            str(tmp_path / "m.json"),
            "--resume",
        ],
    )
    assert other.exit_code != 0 and "vary: recorded {'area': 0.1}, now {'area': 0.2}" in other.output


def test_a_run_stopped_before_its_first_row_starts_again(tmp_path, one_worker_rows):
    """A results folder without rows (say, the scheduler could not be reached) is no earlier run:
    the same command starts afresh, and a nominal kept there from other settings is not reused."""
    folder = tmp_path / "m.mc"
    folder.mkdir()
    (folder / "rows.jsonl").write_text("")
    np.save(folder / "nominal.npy", np.zeros((3, 3)))  # stale: another run's shape
    out = CliRunner().invoke(cli, ["simulate", str(TDKAN), *ARGS, "--json", str(tmp_path / "m.json")])
    assert out.exit_code == 0, out.output
    assert rows_of(folder) == one_worker_rows
    assert np.load(folder / "nominal.npy").shape != (3, 3)


def test_a_killed_worker_is_retried_and_nothing_is_lost(one_worker_rows, tmp_path):
    proc = _cli(*ARGS, "--workers", "2", "--json", "m.json", "--run-dir", "runs", cwd=tmp_path)
    killed = None
    t0 = time.monotonic()
    # until a worker's ngspice shows up (a busy machine may take more than the 60 s this test waited before)
    while killed is None and time.monotonic() - t0 < 240 and proc.poll() is None:
        for pid in subprocess.run(["pgrep", "-x", "ngspice"], capture_output=True, text=True).stdout.split():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
                ppid = int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1])
            except OSError:
                continue
            # a worker's, not the CLI's own ngspice (its `ngspice -v` probe runs in the same folder)
            if cwd.startswith(str(tmp_path)) and ppid != proc.pid:
                os.kill(ppid, signal.SIGKILL)  # the worker process running this realization
                killed = ppid
                break
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=300)
    assert killed is not None and proc.returncode == 0, out
    assert rows_of(tmp_path / "m.mc") == one_worker_rows


def test_a_failing_realization_is_recorded_and_the_others_go_on(tdkan, tmp_path, monkeypatch):
    import anasim.montecarlo.realizations as mcmod

    real = mcmod.realize

    def flaky(ctx, task):
        if task.index == 1:
            return {"error": "ngspice failed (exit 1) (run directory: /x)", "wall_s": 0.0}
        return real(ctx, task)

    monkeypatch.setattr(mcmod, "realize", flaky)
    s = monte_carlo(tdkan, MonteCarlo(3, (("area", 0.05),)), samples=20, json_out=tmp_path / "m.json", workers=1)
    assert s["realizations"] == 2 and [f["index"] for f in s["failed"]] == [1]
    assert s["failed"][0]["seed"] == [0, 1] and "ngspice failed" in s["failed"][0]["error"]


def test_sweep_and_kirchhoffnet_variations(tmp_path):
    mc = MonteCarlo(2, (), ("cap", (0.0, 0.1)), seed=1)
    s = monte_carlo(load(KN), mc, samples=4, json_out=tmp_path / "kn.json", workers=1)
    assert [p["sigmas"] for p in s["points"]] == [{"cap": 0.0}, {"cap": 0.1}]
    assert s["points"][0]["losses"] == [s["nominal_loss"]] * 2  # sigma 0 is the nominal circuit
    assert s["points"][1]["losses"] != s["points"][0]["losses"]
    # what the report checks and shows: the format version and the environment of the run
    assert s["format"] == "anasim-montecarlo/1" and s["environment"]["ngspice"].startswith("ngspice")
    assert s["environment"]["seeds"] == {"monte_carlo": 1}
    with pytest.raises(AnasimError, match="--vary area applies to tdkan, mlp models, not kirchhoffnet"):
        monte_carlo(load(KN), MonteCarlo(1, (("area", 0.1),)), samples=2, json_out=tmp_path / "x.json")


def test_unwritable_results_folder_is_refused_before_any_work(tdkan, tmp_path):
    with pytest.raises(AnasimError, match="cannot write the Monte Carlo results"):
        monte_carlo(tdkan, MonteCarlo(1), samples=5, json_out=Path("/proc/m.json"))


def test_more_samples_than_the_split_holds_is_said(tmp_path):
    """--samples 1000 on digits' 360 test images: the run says so at once and in the summary."""
    out = CliRunner().invoke(
        cli, ["simulate", str(TDKAN), "--mc", "1", "--samples", "1000", "--json", str(tmp_path / "m.json")]
    )
    assert out.exit_code == 0, out.output
    said = "360 (of 1000 asked: the test split of digits holds 360)"
    assert out.output.count(said) == 2  # the note before the run and the summary's samples row
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["samples"] == 360 and summary["samples_note"] == said
