"""Monte Carlo of circuit non-idealities: perturbed circuits in ngspice against the torch reference.

``run`` computes the reference once, records the settings and lowers the network once into the
family's plan, then fans the realizations out (:mod:`anasim.montecarlo.fanout`). A worker
(:mod:`anasim.montecarlo.worker`, no torch) runs the plan through the one driver with a
:class:`~anasim.montecarlo.variations.Perturbation` applied to every circuit of it and a fixed
number of samples per ngspice run, so a realization's outputs do not depend on the workers; the
parent adds the row's torch eq. 6 twin. On an
engine that reruns (VACASK), a worker takes a batch of realizations and runs them together
(:mod:`anasim.montecarlo.batch`): each deck parsed once, each realization's instance parameters altered
before its analysis; a row's ``path`` says whether it ran so ("rerun") or with decks of its own
("parse"). The parent saves each realization's outputs, then appends its row to ``rows.jsonl``
(flushed), and writes the summary JSON from the rows (:mod:`anasim.montecarlo.summary`): at the end, on Ctrl-C and when
the Dask scheduler is lost.
``resume`` reads the record and rows back and runs the missing realizations and again the failed
ones (a killed worker, a timeout, a full disk may pass; a circuit failing for its own reasons fails
again, its draws fixed by its seed, at the cost of one realization). A smaller --mc than recorded
summarizes realizations 0..N-1 and keeps the other rows.

On disk, for ``--json mc.json``: the summary ``mc.json`` and a folder ``mc.mc/`` holding
``settings.json``, ``rows.jsonl``, ``reference.npz`` (x, target, reference, nominal circuit) and
``outputs/p<point>_r<index>.npy`` [samples, outputs] per realization. Every file but the rows is
written whole or not at all (:mod:`anasim.outputs`); a resume checks what it reads back (a cut
last row, a nominal.npy that is not whole) and runs again what it cannot trust. A full disk stops
the run with the file named and the rows kept.
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import AnasimError, Interrupted
from ..families import SimSettings
from ..metrics import Comparison
from ..outputs import append_line, read_npy, save_npy, save_npz, write_json, write_text
from ..progress import Progress
from ..results import MC_FORMAT as FORMAT  # of the summary JSON: what `anasim report` checks
from ..results import mc_json
from ..sim.engine import get_engine
from ..summary import environment
from . import lane
from .batch import Batch, batches, realize_batch, reruns
from .batch import size as batch_size
from .fanout import SchedulerLost, WorkerLost, check_scheduler, default_workers, run_tasks
from .summary import coefficient_sigma, reference_head, row_metrics, summarize
from .variations import NOISE_DISTS, VARIATIONS
from .worker import Context, Task, realize

__all__ = ["CHUNK", "TORCH_STREAM", "Context", "MonteCarlo", "Task", "read_rows", "realize", "record_of", "run"]

# Samples per ngspice run in every realization, whatever the workers: one run for 1,000 samples
# (parse and set-up once; a [196,64,10] realization takes 6% less than two runs of 500)
CHUNK = 1000
TORCH_STREAM = 0x746F7263  # "torc": the torch draws of realization r never reuse the circuit's stream
# the engine's analysis time and its whole run (wall), summed over its runs, and the CPU seconds
# of its processes where the engine counts them (VACASK; a shared process: this realization's share)
TIMES = ("ngspice_s", "ngspice_elapsed_s", "engine_cpu_s")


@dataclass(frozen=True)
class MonteCarlo:
    """What to vary: ``vary`` sigmas for every realization, and optionally one name swept over values."""

    realizations: int
    vary: tuple[tuple[str, float], ...] = ()
    sweep: tuple[str, tuple[float, ...]] | None = None
    seed: int = 0
    dist: str = "binary"

    def check(self) -> MonteCarlo:
        if self.realizations < 1:
            raise AnasimError(f"--mc {self.realizations}: give at least 1 realization")
        if not (isinstance(self.seed, int) and self.seed >= 0):  # numpy draws [seed, r]: no negative seeds
            raise AnasimError(f"--seed {self.seed!r}: give a whole number >= 0")
        if self.dist not in NOISE_DISTS:
            raise AnasimError(f"--noise-dist {self.dist!r}: use one of {', '.join(NOISE_DISTS)}")
        names = [n for n, _ in self.vary]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise AnasimError(f"--vary {twice[0]} is given more than once: give each variation one sigma")
        if self.sweep is not None and self.sweep[0] in names:
            raise AnasimError(
                f"--vary {self.sweep[0]} and --sweep {self.sweep[0]}: a swept variation takes its sigmas from "
                "--sweep only; drop one"
            )
        return self

    def points(self) -> list[tuple[tuple[str, float], ...]]:
        """The sigmas of each point (one point without a sweep), in registry order."""
        fixed = dict(self.vary)
        values = [None] if self.sweep is None else list(self.sweep[1])
        out = []
        for value in values:
            sig = fixed if value is None else fixed | {self.sweep[0]: value}
            out.append(tuple((n, float(sig[n])) for n in VARIATIONS if n in sig))
        return out


_TWIN: dict[int, tuple] = {}  # id(model) -> (model, its last eq. 6 twin)


def torch_twin(family, model, z, task: Task):
    """The software Monte Carlo beside a circuit realization: the family's eq. 6 model at the
    point's coefficient sigma, from the realization's own stream [seed, index, TORCH_STREAM]
    (it does not depend on the circuit, so the parent computes it), its outputs on ``z``; None
    where the family has none or the point no single coefficient sigma."""
    sigma = coefficient_sigma(task.sigmas)
    if task.point < 0 or family.eq6 is None or sigma is None:
        return None
    dist = task.dist if dict(task.sigmas).get("coeff") else "gauss"
    # one twin per model, its coefficients written anew for each realization (the parent's rows come one by one)
    held = _TWIN.get(id(model))
    scratch = held[1] if held is not None and held[0] is model else None
    twin = family.eq6(model, sigma, [task.seed, task.index, TORCH_STREAM], dist, scratch=scratch)
    _TWIN.clear()
    _TWIN[id(model)] = (model, twin)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core's work, as the workers did it: the same sums, the same numbers
    try:
        return family.reference(twin, z)[0]
    finally:
        torch.set_num_threads(threads)


def _each(it):
    """(task, result) pairs of the fan-out, a batch's one by one (a lost batch: each task lost)."""
    for task, res in it:
        if isinstance(task, Batch):
            yield from zip(task.tasks, res if isinstance(res, list) else [res] * len(task.tasks))
        else:
            yield task, res


def record_of(net, mc: MonteCarlo, data, split: str, samples: int, opts, settings: SimSettings) -> dict:
    """The settings a resume must match (``realizations`` may grow)."""
    return {
        "checkpoint_sha256": net.digest,
        "dataset": data.name,
        "split": split,
        "samples": samples,
        "hardware": asdict(opts),
        "analysis": settings.analysis,
        "period": settings.period if settings.analysis == "tran" else None,
        "vary": dict(mc.vary),
        "sweep": None if mc.sweep is None else {mc.sweep[0]: list(mc.sweep[1])},
        "seed": mc.seed,
        "noise_dist": mc.dist,
        "chunk": CHUNK,
        # outputs move with the engine and solver (KLU and Sparse differ at reltol level): a
        # resume under another one would mix them
        "engine": get_engine().version(),
        "solver": settings.solver,
        "realizations": mc.realizations,
    } | ({"path": "rerun: batches of realizations altered in one engine process"} if reruns(settings.engine) else {})


def _resume_check(folder: Path, record: dict, resume: bool) -> None:
    saved = folder / "settings.json"
    if not resume:
        if read_rows(folder):
            raise AnasimError(
                f"{folder} holds the rows of an earlier Monte Carlo: add --resume to continue it, "
                "or give another --json (or remove the folder)"
            )
        return
    if not saved.exists():
        raise AnasimError(f"--resume: {saved} does not exist; nothing to resume (drop --resume to start)")
    old = json.loads(saved.read_text())
    differ = [k for k in record if k != "realizations" and old.get(k) != record[k]]
    if differ:
        what = "; ".join(f"{k}: recorded {old.get(k)!r}, now {record[k]!r}" for k in differ)
        raise AnasimError(f"--resume: {saved} was run with other settings ({what}); use the same ones or a new --json")


def read_rows(folder: Path) -> list[dict]:
    """Rows written so far; a last line cut short by a crash or a full disk is dropped (and
    rewritten on resume), and a realization written twice counts once."""
    path = folder / "rows.jsonl"
    if not path.exists():
        return []
    rows, seen = [], set()
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
            key = (row["point"], row["index"])
        except (json.JSONDecodeError, TypeError, KeyError):
            break
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Fanout:
    """Where the realizations run: ``workers`` local processes (None: the cores), or the workers
    of the Dask ``scheduler`` at that address."""

    workers: int | None = None
    scheduler: str | None = None


def run(net, mc: MonteCarlo, data, job, opts, fanout: Fanout = Fanout(), resume: bool = False) -> dict:
    """Run (or continue) the Monte Carlo of ``job`` (:class:`anasim.pipeline.Job`, its settings
    checked and its dataset loaded as ``data``; ``opts`` the family's options) and return its
    summary; raises Interrupted on Ctrl-C after writing the summary of the rows done so far."""
    split, samples, settings, json_out, run_dir = job.split, job.samples, job.settings, job.json_out, job.run_dir
    workers, scheduler = fanout.workers, fanout.scheduler
    mc = mc.check()
    family = net.family
    z_all, t_all = data.split(split)
    z, target = z_all[:samples].double(), t_all[:samples].numpy()
    cut = f"{len(z)} (of {samples} asked: the {split} split of {data.name} holds {len(z_all)})"
    if samples > len(z_all):  # said at once and in the summary, as plain simulate says it
        print(f"monte carlo: samples {cut}", file=sys.stderr, flush=True)
    # the realizations report as rows, not progress bars
    settings = replace(
        settings, jobs=1, chunk=CHUNK, progress=False, solver=get_engine().resolve_solver(settings.solver)
    )
    record = record_of(net, mc, data, split, len(z), opts, settings)
    json_out = Path(json_out)
    folder = json_out.with_suffix(".mc")
    _resume_check(folder, record, resume)
    check_scheduler(scheduler)
    again = f"free space and run the same command with --resume (the rows done so far are kept in {folder})"
    try:
        (folder / "outputs").mkdir(parents=True, exist_ok=True)
        if not resume:  # a folder without rows (stopped before its first realization) starts afresh
            (folder / "nominal.npy").unlink(missing_ok=True)
        write_json(folder / "settings.json", record, again if resume else "free space and run the command again")
    except OSError as exc:
        raise AnasimError(
            f"{folder}: cannot write the Monte Carlo results there ({exc.strerror}); choose another --json"
        ) from None

    ref, ref_failed = family.reference(net.model, z)
    if ref_failed:
        raise AnasimError(f"the torch reference failed on {len(ref_failed)} samples; use other samples")
    points = mc.points()
    rows = [r for r in read_rows(folder) if not r.get("error")]  # failed ones run again
    text = "".join(json.dumps(r) + "\n" for r in rows)
    rows_file = folder / "rows.jsonl"
    if not rows_file.exists() or rows_file.read_text(errors="replace") != text:
        write_text(rows_file, text, again)  # drops a last line a crash cut short, whole or not at all
    done = {(r["point"], r["index"]) for r in rows}
    beyond = sum(r["index"] >= mc.realizations for r in rows)  # a resume with a smaller --mc keeps them
    rows = [r for r in rows if r["index"] < mc.realizations]
    nominal_file = folder / "nominal.npy"
    need_nominal = read_npy(nominal_file, ref.shape) is None  # missing, empty or cut short: run again

    def tasks():  # made as the workers take them: a list of a million would be a million in memory
        if need_nominal:
            yield Task(-1, -1, (), mc.seed, mc.dist)
        for r in range(mc.realizations):  # realization-major: every point advances together
            for p, sig in enumerate(points):
                if (p, r) not in done:
                    yield Task(p, r, sig, mc.seed, mc.dist)

    save_npz(folder / "reference.npz", again, x=z.numpy(), target=target, reference=ref)
    # lowered once, here: the workers get circuits and input voltages, never the model
    plan = family.plan(net.model, z, opts, settings)
    ctx = Context(plan, settings, None if run_dir is None else str(Path(run_dir).resolve()))
    # an engine that reruns takes the realizations in batches, one process each (montecarlo/batch.py);
    # larger ones where the lane runs them as arrays (montecarlo/lane.py)
    if reruns(settings.engine):
        todo = need_nominal + sum((p, r) not in done for r in range(mc.realizations) for p in range(len(points)))
        first = [Task(p, 0, sig, mc.seed, mc.dist) for p, sig in enumerate(points)]
        most = lane.batch_size(ctx, first) if lane.usable(ctx, first) else None
        fn, work = realize_batch, batches(tasks(), batch_size(todo, workers or default_workers(), most))
    else:
        fn, work = realize, tasks()
    total = mc.realizations * len(points)
    key = "loss" if data.task == "regression" else "accuracy"
    figures = [r[key] for r in rows if r.get(key) is not None]
    shown_sum, shown_n = float(np.sum(figures)), len(figures)  # the bar's running mean, not a mean per row
    interrupted, lost, bar = False, None, None
    try:  # the bar's first line says the fan-out starts: a Ctrl-C from then on leaves a summary
        bar = Progress(total, "monte carlo", "realizations", initial=len(rows))
        with (
            (folder / "rows.jsonl").open("a") as fh,
            closing(run_tasks(fn, ctx, work, workers, scheduler)) as it,
        ):
            for task, res in _each(it):
                if task.point < 0:
                    if isinstance(res, WorkerLost) or "error" in res:
                        raise AnasimError(f"the nominal circuit could not be simulated: {res}")
                    save_npy(nominal_file, res["outputs"], again)
                    continue
                row = {
                    "point": task.point,
                    "index": task.index,
                    "seed": [task.seed, task.index],
                    "sigmas": dict(task.sigmas),
                }
                if isinstance(res, WorkerLost) or "error" in res:
                    row |= {"error": str(res) if isinstance(res, WorkerLost) else res["error"]}
                else:
                    save_npy(folder / "outputs" / f"p{task.point}_r{task.index:05d}.npy", res["outputs"], again)
                    row |= row_metrics(data.task, ref, res["outputs"], target, res["failed"])
                    twin = torch_twin(family, net.model, z, task)
                    if twin is not None:  # the torch eq. 6 model of the same realization
                        m = Comparison(data.task, ref, twin, target).metrics()
                        row[f"torch_eq6_{key}"] = m.get(f"circuit_{key}")
                    if res.get("solver_fallback"):  # samples KLU did not converge on, run under Sparse
                        row["solver_fallback"] = res["solver_fallback"]
                    if res["failed"]:
                        first = min(res["failed"])
                        row["first_failure"] = f"sample {first}: {res['failed'][first]}"
                if isinstance(res, dict):  # timings: vary from run to run, unlike the rest of the row
                    row |= {"wall_s": round(res["wall_s"], 3)} | {k: res.get(k) for k in TIMES}
                    if "path" in res:
                        row["path"] = res["path"]
                append_line(fh, rows_file, json.dumps(row), again)
                rows.append(row)
                if row.get(key) is not None:
                    shown_sum, shown_n = shown_sum + row[key], shown_n + 1
                mean = shown_sum / max(shown_n, 1)
                shown = f"{100 * mean:.2f}%" if key == "accuracy" and shown_n else f"{mean:.4g}" if shown_n else "-"
                bar.update(1, f"mean {key} {shown}")
    except KeyboardInterrupt:
        interrupted = True
    except SchedulerLost as exc:
        lost = exc
    finally:
        if bar is not None:
            bar.close()
    head = {"format": FORMAT, "checkpoint": str(net.path), "checkpoint_sha256": net.digest, "anasim": __version__}
    head |= {
        "results": str(folder),
        "environment": environment(get_engine().label(settings.solver), {"monte_carlo": mc.seed}),
    }
    head |= reference_head(data.task, ref, target, folder, nominal_file)
    head["partial"] = interrupted or lost is not None or len(rows) < total
    head["samples"] = len(z)
    if samples > len(z_all):
        head["samples_note"] = cut
    if beyond:  # rows of an earlier, larger --mc
        head["note"] = f"realizations 0-{mc.realizations - 1} summarized; {beyond} more rows kept in {folder}"
    summary = mc_json(summarize(rows, record, head, data.task, points))  # the record, as written
    write_json(json_out, summary, again)
    if interrupted or lost is not None:  # Ctrl-C: 130; a lost scheduler: 1
        raise (Interrupted if interrupted else SchedulerLost)(
            f"{'interrupted' if interrupted else f'{lost}; stopped'} after {len(rows)} of {total} realizations; "
            f"rows kept in {folder}, summary in {json_out}; run the same command with --resume to continue"
        )
    return summary
