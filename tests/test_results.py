"""The typed result records of anasim.results (issue 32, item 2): each record survives to_json,
strict JSON and from_json unchanged; the files the pipeline and Monte Carlo write are read into
records that write the same JSON back (nothing lost); files of another format version are refused
with both versions named, an older Monte Carlo summary without a version is read; a Monte Carlo
row with a field this anasim does not know is read and written back with it."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from anasim.errors import AnasimError
from anasim.report import make_report
from anasim.results import (
    FORMAT,
    MC_FORMAT,
    Agreement,
    EngineBlock,
    EngineRun,
    LayerRecord,
    McPoint,
    McRecord,
    McRow,
    McSettings,
    ModelRecord,
    SimRecord,
    jsonable,
    read_rows,
)
from anasim_cli.main import cli

LAYER = LayerRecord(0, inputs=64, outputs=4, devices=2048, crossbar_rows=16, crossbar_columns=4, tiles=8,
                    tile_grid=[4, 2], area_range=[0.01, 0.2])  # fmt: skip
MODEL = ModelRecord("tdkan", "TD-KAN", "digits_tdkan.pt", "0123456789abcdef", arch="tdkan", dims=[64, 4, 10],
                    bases=["cmtd"], params=2600, dataset="digits", test_accuracy=0.9, layers=[LAYER],
                    circuit={"opamps": 14, "area_range": None})  # fmt: skip
AGREE = Agreement(["ngspice", "vacask"], 5, 1.2e-12, 8.7, 1.4e-13, 2)
BLOCK = EngineBlock("ngspice-46, klu", "subprocesses, stage by stage", "klu", [], 5, {"3": "no convergence"}, 1e-9,
                    {"elapsed_s": 0.5}, 1.2, 0.9)  # fmt: skip
SIM = SimRecord(
    5, "classification", MODEL, max_abs_error=1e-9, mean_abs_error=1e-10, output_scale=8.7,
    max_error_rel_range=1.1e-10, reference_accuracy=1.0, circuit_accuracy=1.0, argmax_agreement=1.0,
    failed_samples={"3": "no convergence"}, family="tdkan", dataset="digits", split="test", requested_samples=5,
    checkpoint="/x/digits_tdkan.pt", checkpoint_sha256="ab" * 32, partial=False, samples_done=4,
    engine=EngineRun("ngspice", "ngspice-46, klu", "subprocesses", 2, "klu", []), analysis="tran",
    hardware={"r_wire": 1.0, "analysis": "tran"}, rusage={"elapsed_s": 0.5},
    extra={"settling_time_s": {"median": 3e-7, "max": 4e-7}, "static_power_w": {"mean": 0.07, "max": 0.08},
           "energy_j": 2.1e-8},
    wall_s=3.5, engines={"ngspice": BLOCK, "vacask": BLOCK}, engine_agreement=AGREE, engine_agreements=[AGREE],
    devices={"cmtd": {"kind": "table"}}, environment={"anasim": "0.2.0", "command": "anasim simulate"}, period_s=2e-6,
)  # fmt: skip
SETTINGS = McSettings("0123456789abcdef", "digits", "test", 10, {"r_wire": 1.0}, "dc", None, {"area": 0.05},
                      None, 7, "binary", 1000, "ngspice-46", "klu", 3)  # fmt: skip
ROW = McRow(0, 2, [7, 2], {"area": 0.05}, max_abs_error=0.01, mean_abs_error=0.001, max_error_rel_range=1e-3,
            accuracy=0.9, agreement=0.95, failed_samples=0, torch_eq6_accuracy=0.91, wall_s=1.5, ngspice_s=0.4,
            ngspice_elapsed_s=0.6, extra={"reparsed": True})  # fmt: skip
FAILED = McRow(0, 1, [7, 1], {"area": 0.05}, error="worker lost", wall_s=0.1)
POINT = McPoint({"area": 0.05}, 2, "accuracy", [FAILED], {"mean_accuracy": 0.9, "worst_accuracy": 0.85,
                "best_accuracy": 0.95, "std_accuracy": 0.07, "p05_accuracy": 0.855, "mean_agreement": 0.96},
                [0.85, 0.95], {"sigma": 0.05, "mean_accuracy": 0.9, "accuracies": [0.9]})  # fmt: skip
LOSS_POINT = McPoint({"area": 0.1}, 1, "loss", [], {"mean_loss": 0.2, "worst_loss": 0.2, "best_loss": 0.2,
                     "std_loss": 0.0, "p95_loss": 0.2}, [0.2])  # fmt: skip
MC = McRecord("0123456789abcdef", SETTINGS, [POINT], "accuracy", checkpoint="digits_tdkan.pt", anasim="0.2.0",
              results="/x/mc.mc", environment={"command": "anasim simulate --mc 3"}, reference=0.9, nominal=0.89,
              partial=True, samples=10, note="realizations 0-2 summarized")  # fmt: skip
MC_SWEEP = McRecord("0123456789abcdef", SETTINGS, [LOSS_POINT, LOSS_POINT], "loss", format=None, reference=0.1)


def through_json(record):
    """``record`` to JSON text (strict, as the files are written) and back to a record."""
    return type(record).from_json(json.loads(json.dumps(jsonable(record.to_json()), allow_nan=False)))


@pytest.mark.parametrize(
    "record",
    [LAYER, MODEL, AGREE, BLOCK, EngineRun(), SIM, SETTINGS, ROW, FAILED, POINT, LOSS_POINT, MC, MC_SWEEP],
    ids=lambda r: type(r).__name__,
)
def test_round_trip(record):
    """to_json, strict JSON text, from_json: the same record (exact equality, no tolerance)."""
    assert through_json(record) == record


def test_a_single_point_is_also_at_the_top_level():
    """As montecarlo/summary.py wrote it before the records (the console and older readers read it there)."""
    data = MC.to_json()
    assert data["mean_accuracy"] == 0.9 and data["accuracies"] == [0.85, 0.95] and data["format"] == MC_FORMAT
    assert "mean_loss" not in MC_SWEEP.to_json()  # two points: figures per point only


def test_pipeline_files_read_into_records_and_back(results):
    """The files simulate and --mc wrote: from_json then to_json gives the file's JSON again, every
    field in place, and the typed attributes hold what the report shows."""
    for name, cls in (("sim.json", SimRecord), ("kn.json", SimRecord), ("mc.json", McRecord)):
        data = json.loads((results / name).read_text())
        record = cls.from_json(data, name)
        assert jsonable(record.to_json()) == data, name
        assert list(record.to_json()) == list(data), name  # in the file's field order
    sim = SimRecord.from_json(json.loads((results / "sim.json").read_text()))
    assert (sim.format, sim.samples, sim.engine.name, sim.classification) == (FORMAT, 60, "ngspice", True)
    assert [(L.crossbar_rows, L.crossbar_columns, L.tiles) for L in sim.model.layers] == [(64, 8, 1), (4, 20, 1)]
    kn = SimRecord.from_json(json.loads((results / "kn.json").read_text()))
    assert kn.end_time_s is not None and kn.scale_a == pytest.approx(1e-9, rel=0)  # KirchhoffNet's extra, typed
    mc = McRecord.from_json(json.loads((results / "mc.json").read_text()))
    assert (mc.key, mc.points[0].realizations, mc.settings.noise_dist) == ("accuracy", 3, "binary")
    rows = read_rows(results / "mc.mc" / "rows.jsonl")
    assert sorted(r.index for r in rows) == [0, 1, 2] and all(r.accuracy is not None for r in rows)


def test_a_row_with_an_unknown_field_is_read(results, tmp_path):
    """A later Monte Carlo may add fields to its rows (e.g. whether a realization re-parsed its
    circuit): they are kept in ``extra``, written back, and the report still reads the folder."""
    shutil.copytree(results / "mc.mc", tmp_path / "mc.mc")
    rows_file = tmp_path / "mc.mc" / "rows.jsonl"
    lines = [json.loads(line) | {"reparsed": i % 2 == 0} for i, line in enumerate(rows_file.read_text().splitlines())]
    # a failed realization, as montecarlo writes it: no figures, its times null when unmeasured
    lines.append({"point": 0, "index": 3, "seed": [0, 3], "sigmas": {"area": 0.05}, "error": "sample 0: no convergence",
                  "wall_s": 0.1, "ngspice_s": None, "ngspice_elapsed_s": None, "reparsed": False})  # fmt: skip
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in lines))
    data = json.loads((results / "mc.json").read_text()) | {"results": str(tmp_path / "mc.mc")}
    (tmp_path / "mc.json").write_text(json.dumps(data))
    rows = read_rows(rows_file)
    assert [r.extra["reparsed"] for r in rows] == [i % 2 == 0 for i in range(len(lines) - 1)] + [False]
    assert [r.to_json() for r in rows] == lines
    assert "median" in make_report([tmp_path / "mc.json"], tmp_path / "rep").markdown.read_text()


def crafted(results, tmp_path, name: str, change) -> str:
    data = json.loads((results / name).read_text())
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    if (results / name).with_suffix(".npz").exists():
        shutil.copy((results / name).with_suffix(".npz"), path.with_suffix(".npz"))
    return str(path)


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("sim.json", lambda d: d.update(format="anasim-simulate/0"),
         r"sim\.json: results format 'anasim-simulate/0'; this anasim reads anasim-simulate/1"),
        ("mc.json", lambda d: d.update(format="anasim-montecarlo/0"),
         r"mc\.json: results format 'anasim-montecarlo/0'; this anasim reads anasim-montecarlo/1"),
        ("sim.json", lambda d: d.pop("model"), r"sim\.json: no 'model' field"),
        ("sim.json", lambda d: d.update(engines=[1]), r"sim\.json: field 'engines': a JSON object was expected"),
        ("mc.json", lambda d: d.pop("settings"), r"mc\.json: Monte Carlo summary without 'settings'"),
    ],
)  # fmt: skip
def test_other_versions_and_broken_files_refused(results, tmp_path, name, change, message):
    """One line naming the file, the version found and the version read (or the field), exit 1."""
    res = CliRunner().invoke(cli, ["report", crafted(results, tmp_path, name, change), "-o", str(tmp_path / "rep")])
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    with pytest.raises(AnasimError, match=message):
        make_report([tmp_path / name], tmp_path / "rep")


def test_an_older_monte_carlo_summary_is_read(results, tmp_path):
    """A summary written before anasim-montecarlo/1 (no format, no environment; the same fields
    otherwise) is read: the difference is small, and the report says '-' where it has nothing."""

    def older(d):
        del d["format"], d["environment"]

    path = crafted(results, tmp_path, "mc.json", older)
    record = McRecord.from_json(json.loads(open(path).read()), path)
    assert record.format is None and record.environment is None and record.points[0].realizations == 3
    md = make_report([path], tmp_path / "rep").markdown.read_text()
    assert "## Monte Carlo" in md and "monte carlo 0" in md  # its seed, in the environment table
