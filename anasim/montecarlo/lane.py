"""Monte Carlo's lane: a batch of realizations whose variations only scale currents, run as arrays.

Where it sits: :func:`anasim.montecarlo.batch.realize_batch` tries it first on an engine with
capability ``scaled-reruns`` (VACASK). A realization of linear variations (area, iv-scale,
coeff: :attr:`~anasim.montecarlo.variations.Variation.fields`) of a plan of DC stages differs
from the nominal rewritten parts (:func:`anasim.sim.batch.nominal_parts`) only in fields of some
of their elements. The lane maps once per worker where each variation's draws land in those
parts, then per realization multiplies arrays of nominal fields by its draws (the same
arithmetic as ``Variation.apply``, element by element) and hands them to the engine as
:class:`~anasim.sim.run.Scaled`: each part of each stage is one engine process for the whole
batch, and no varied circuit is built, validated or written. The outputs are those of
:func:`anasim.montecarlo.worker.realize` (tests/test_lane.py: to 1e-12 of the range). Anything
else (another analysis or variation, a sample that fails, an engine run that does not finish)
returns None and the batch runs its usual way, which finds and names what failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..circuit.ir import VCCS, Device, Resistor
from ..errors import SimError
from ..memo import ByIdentity
from ..sim import batch as runner
from ..sim.driver import rescaled
from ..sim.engine import engine_scope, get_engine
from ..sim.run import Scaled, SimResult, add_counters, run_directory
from .variations import VARIATIONS, Perturbation, landing, part_index

KINDS = {Device: ("area", "scale"), VCCS: ("gain",), Resistor: ("value",)}  # the fields a kind carries


@dataclass(frozen=True)
class Group:
    part: int
    kind: type
    index: np.ndarray  # positions in the part's elements
    fields: dict  # field -> nominal values [len(index)]


@dataclass(frozen=True)
class StageMap:
    """Where the draws of one stage's variations land in its nominal parts."""

    parts: list
    groups: tuple[Group, ...]
    # variation -> (group, field, "*" or "/", positions in the group, positions in the draws)
    ops: dict


_MAPS = ByIdentity(16)  # (stage circuit, variations) -> StageMap or None
# realizations per batch: a VACASK process's start and its parse of the circuit spread over more of
# them (digits [64,16,10], overhead from CPU: 31% at 8, 23% at 32); the deck text bounded: 10^6
# numbers, some 20 MB (digits: 8,200 a realization; a linear [196,64,10] one: 100,000)
MOST, NUMBERS = 64, 1_000_000


def usable(ctx, tasks) -> bool:
    """Whether the lane can run ``tasks``: linear variations of a plan of DC stages on an engine
    with scaled reruns, every sample in one run (as the realization's runner has them)."""
    plan, s = ctx.plan, ctx.settings
    if "scaled-reruns" not in get_engine(s.engine).capabilities:
        return False
    if plan.analysis != "dc" or not plan.stages or plan.netlist is not None or s.plain or s.power_samples:
        return False
    if s.chunk is None or len(plan.x) > s.chunk or len(plan.x) == 0:
        return False
    return all(t.point >= 0 and all(VARIATIONS[n].fields or not sg for n, sg in t.sigmas) for t in tasks)


def varied(tasks) -> tuple[str, ...]:
    """The variations any of ``tasks`` draws (a nonzero sigma), in registry order."""
    return tuple(n for n in VARIATIONS if any(dict(t.sigmas).get(n) for t in tasks))


def batch_size(ctx, tasks) -> int:
    """Realizations per lane batch: :data:`MOST`, fewer where their numbers (the scaled values
    and the later stages' samples, written as deck text) would pass :data:`NUMBERS`."""
    maps = [stage_map(st.circuit, varied(tasks)) for st in ctx.plan.stages]
    values = sum(len(g.index) for m in maps if m is not None for g in m.groups)
    samples = len(ctx.plan.x) * sum(len(st.circuit.inputs) for st in ctx.plan.stages[1:])
    return max(1, min(MOST, NUMBERS // max(1, values + samples)))


def stage_map(circuit, names: tuple[str, ...]) -> StageMap | None:
    """The map of ``circuit``'s variations ``names`` into its nominal parts; None where a draw
    would land on no element, on one in several parts, or on a kind the fields do not cover (as
    :meth:`~anasim.montecarlo.variations.Perturbation.rewritten` says None)."""
    return _MAPS.get(circuit, lambda: _build(circuit, names), names)


def _build(circuit, names: tuple[str, ...]) -> StageMap | None:
    parts = runner.nominal_parts(circuit)
    where, twice = part_index(parts)
    hits: list[tuple[str, int, type, int, str, str, int]] = []  # (variation, part, kind, position, field, op, draw)
    for name in names:
        v = VARIATIONS[name]
        for j, i in enumerate(v.select(circuit)):
            at = landing(v, circuit.elements[i], parts, where, twice)
            kind = None if at is None else type(parts[at[0]].circuit.elements[at[1]])
            if kind not in KINDS:
                return None
            hits.append((name, at[0], kind, at[1], at[2], at[3], j))
    members: dict[tuple[int, type], list[int]] = {}
    for _, p, kind, k, *_ in hits:
        members.setdefault((p, kind), []).append(k)
    groups, slot = [], {}
    for (p, kind), ks in members.items():
        index = np.array(sorted(set(ks)), dtype=np.intp)
        elements = [parts[p].circuit.elements[k] for k in index.tolist()]
        fields = {f: np.array([getattr(e, f) for e in elements], dtype=float) for f in KINDS[kind]}
        slot[(p, kind)] = (len(groups), {k: n for n, k in enumerate(index.tolist())})
        groups.append(Group(p, kind, index, fields))
    ops: dict[str, list] = {}
    by_op: dict[tuple, tuple[list, list]] = {}
    for name, p, kind, k, field, op, j in hits:
        g, local = slot[(p, kind)]
        mine = by_op.setdefault((name, g, field, op), ([], []))
        mine[0].append(local[k])
        mine[1].append(j)
    for (name, g, field, op), (local, draw) in by_op.items():
        ops.setdefault(name, []).append((g, field, op, np.array(local, dtype=np.intp), np.array(draw, dtype=np.intp)))
    return StageMap(parts, tuple(groups), ops)


def scaled(stage: StageMap, pert: Perturbation, circuit, key: str) -> list[tuple[Scaled, ...]]:
    """A realization's fields, part by part: the nominal ones times its draws, variation by
    variation in registry order (as the elements would get them one ``apply`` after another)."""
    fields = [{f: a.copy() for f, a in g.fields.items()} for g in stage.groups]
    for v, _, values in pert.draws(circuit, key):
        values = np.asarray(values, dtype=float)
        for g, field, op, local, draw in stage.ops.get(v.name, ()):
            a = fields[g][field]
            a[local] = a[local] * values[draw] if op == "*" else a[local] / values[draw]
    out: list[list[Scaled]] = [[] for _ in stage.parts]
    for g, f in zip(stage.groups, fields):
        out[g.part].append(Scaled(g.kind, g.index, f))
    return [tuple(s) for s in out]


def realize(ctx, tasks) -> list[dict] | None:
    """The rows of ``tasks`` (as :func:`~anasim.montecarlo.worker.realize` gives them), every
    part of every stage one engine run for all of them; None when the lane cannot run them."""
    plan, s = ctx.plan, ctx.settings
    names = varied(tasks)
    perts = [Perturbation(t.sigmas, t.seed, t.index, t.dist) for t in tasks]
    x = np.asarray(plan.x, dtype=float)
    work = Path(ctx.run_dir) / f"p{tasks[0].point}_lane_r{tasks[0].index:05d}" if ctx.run_dir else None
    with run_directory(work) as rd, engine_scope(s.engine) as engine, engine.solver_scope(s.solver):
        maps = [stage_map(st.circuit, names) for st in plan.stages]
        if any(m is None for m in maps):
            return None
        usage = [dict() for _ in tasks]
        current = [x] * len(tasks)
        for i, (st, m) in enumerate(zip(plan.stages, maps)):
            fields = [scaled(m, p, st.circuit, st.key) for p in perts]
            outs = [np.full((len(x), len(st.circuit.outputs)), np.nan) for _ in tasks]
            for p, part in enumerate(m.parts):
                runs = [runner.sweep_of(part.circuit, part.stimulus(c)) for c in current]
                budget = s.sample_timeout or runner.default_sample_timeout(part.circuit)
                try:
                    vecs = engine.rerun_scaled(part.circuit, runs, [f[p] for f in fields],
                                               rd.path / f"layer{i}_part{p:03d}", runner.run_timeout(budget, len(x)),
                                               budget)  # fmt: skip
                except SimError:
                    return None
                for r, vec in enumerate(vecs):
                    table = vec.table(part.circuit.outputs)
                    if table.shape[0] < len(x) or vec.aborted:
                        return None
                    outs[r][:, list(part.outputs)] = table[: len(x)]
                    add_counters(usage[r], vec.counters)
            if not all(np.isfinite(o).all() for o in outs):
                return None
            current = outs
    rows = []
    for out, use in zip(current, usage):
        res = rescaled(SimResult(out, rusage=use), plan.post)
        rows.append({"outputs": res.outputs, "failed": {}, "wall_s": 0.0, "ngspice_s": use.get("analysis_s"),
                     "ngspice_elapsed_s": use.get("elapsed_s"), "engine_cpu_s": use.get("cpu_s"), "path": "rerun"})  # fmt: skip
    return rows


def timed(ctx, tasks) -> list[dict] | None:
    """:func:`realize`, each row with its share of the batch's wall seconds."""
    t0 = time.perf_counter()
    rows = realize(ctx, tasks)
    if rows is not None:
        for row in rows:
            row["wall_s"] = (time.perf_counter() - t0) / len(rows)
    return rows
