"""The ngspice engine: everything anasim knows about ngspice, behind :class:`Ngspice`.

Where it sits: :mod:`anasim.sim.engine` registers one :class:`Ngspice` as ``ENGINES["ngspice"]``;
runners call it and never see its files or its log. Inside: :mod:`.writer` (the dialect),
:mod:`.process` (``ngspice -b`` runs, the readers of its data files and log, the version and the
solver), :mod:`.tuning` (part sizes and sweep options measured on it), :mod:`.deckcheck` (what a
user's deck may hold), :mod:`.lockstep` and :mod:`.libngspice` (a Python plant in lock-step with
libngspice through PySpice).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from ...circuit.blocks import primitives
from ...circuit.ir import Circuit, Curve, nodes_of
from ...circuit.stimulus import Run
from ...errors import AnasimError
from .. import live
from ..run import Vectors
from . import process, writer
from .deckcheck import check_deck
from .tuning import TUNING

# what ngspice runs here, beside the solver ("klu" only where the binary was built with KLU)
CAPABILITIES = frozenset({"dc-sweep", "op", "tran", "static-power", "lockstep"})


class Ngspice:
    """ngspice 39+ as ``ngspice -n -b`` subprocesses (one per deck), libngspice for lock-step runs."""

    name = process.NAME
    runs_as = "ngspice -b subprocesses"  # how results describe the runs (their "mode")
    tuning = TUNING

    @property
    def capabilities(self) -> frozenset[str]:
        return CAPABILITIES | ({"klu"} if process.has_klu() else frozenset())

    def version(self) -> str:
        return process.ngspice_version()

    def path(self) -> str:
        """The binary on PATH (found again each time: a test may put another one first)."""
        return process.ngspice_path()

    # --- decks and runs ------------------------------------------------------------------------

    def write(self, circuit: Circuit, run: Run | None = None) -> str:
        return writer.netlist(circuit, run)

    def run(self, circuit: Circuit, run: Run, folder: Path, *, deck: str | None = None, timeout: float = 3600.0,
            on_point=None, stall: float | None = None) -> Vectors:  # fmt: skip
        """Run ``circuit`` under ``run`` in ``folder`` (``deck``: its text, when the caller wrote it
        already to hash it). ``on_point(n)``: n sweep points finished; ``stall``: seconds without a
        new one before the run is killed (:class:`~anasim.errors.Stalled`). SimError (naming the
        folder, with ngspice's log) when ngspice times out or writes no data."""
        text = self.write(circuit, run) if deck is None else deck
        log = process.run_deck(text, folder, writer.results_file(run), timeout, on_point, stall)
        vec = self.load(circuit, run, folder)
        vec.counters, vec.log = process.parse_rusage(log), log
        vec.aborted, vec.gave_up_at = process.aborted(log), process.gave_up_at(log)
        return vec

    def results_file(self, run: Run) -> str:
        return writer.results_file(run)

    def standalone(self, run: Run, finals: str, saved: str) -> str:
        # a .control block's print shows run.finals at the end of the run
        printed = f"prints them as {finals} and " if run.finals else ""
        return f"'ngspice -b' {printed}writes {saved} to {writer.results_file(run)}"

    def load(self, circuit: Circuit, run: Run, folder: Path) -> Vectors | None:
        """The vectors a finished run of ``run`` left in ``folder`` (None when it left none)."""
        path = folder / writer.results_file(run)
        if not path.is_file():
            return None
        if run.save is not None:
            table = process.read_wrdata(path, len(run.save))
            if table.shape[1] < 1 + len(run.save):  # no point written: an empty table
                table = np.empty((0, 1 + len(run.save)))
            voltages = {node: table[:, 1 + i] for i, node in enumerate(run.save)}
            return Vectors(table[:, 0], voltages, folder=folder, engine=self.name)
        raw = process.read_ascii_raw(path)
        scale = next(iter(raw.values()))
        elements = list(primitives(circuit))
        nodes = {n for e in elements for n in nodes_of(e)} - {"0"}
        # ngspice names vectors in lower case: v(node), i(card) for a voltage-defined card
        voltages = {n: raw[f"v({n})".lower()] for n in nodes if f"v({n})".lower() in raw}
        currents = {e: raw[key] for e in elements if (key := f"i({writer.card_name(e)})".lower()) in raw}
        return Vectors(scale, voltages, currents, folder=folder, engine=self.name)

    def run_file(self, deck: Path, expect: str) -> Path:
        """Run a deck file as it is (its own analysis and outputs) in its folder with bare
        ``ngspice -n -b``; the data file ``expect`` it wrote."""
        proc = subprocess.run(process.batch_command(deck.name), cwd=deck.parent, capture_output=True, text=True)
        data = deck.parent / expect
        if proc.returncode != 0 or not data.is_file():
            raise AnasimError(f"ngspice -n -b {deck} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        return data

    def check_included(self, path) -> list[Path]:
        """Refuse a user's deck that holds more than a circuit; the files it reads (itself first)."""
        return check_deck(path)

    def subckt(self, name: str, curve: Curve, comments=()) -> str:
        """A two-terminal device on ``curve`` as a library subcircuit with an ``area`` parameter."""
        return writer.subckt(name, curve, comments)

    def lockstep(self, circuit, plant_step, x0, inputs, outputs, dt: float, t_stop: float, observe=None, options=None):
        """:func:`anasim.sim.ngspice.lockstep.run_lockstep`: a Python plant in lock-step with a
        circuit in libngspice (capability ``lockstep``)."""
        from .lockstep import run_lockstep  # PySpice is loaded by the first lock-step run only

        return run_lockstep(circuit, plant_step, x0, inputs, outputs, dt, t_stop, observe, options)

    def reruns(self):
        raise AnasimError("ngspice has no reruns (capability reruns): its Monte Carlo parses a deck per realization")

    def rerun_scaled(self, circuit, runs, fields, folder, timeout=3600.0, stall=None):
        raise AnasimError("ngspice has no scaled reruns (capability scaled-reruns): its Monte Carlo parses a deck "
                          "per realization")  # fmt: skip

    # --- the linear solver and what results call the engine --------------------------------------

    def resolve_solver(self, solver: str) -> str:
        return process.resolve_solver(solver)

    def active_solver(self) -> str:
        return process.active_solver()

    def deck_label(self) -> str:
        """The engine a deck written now names in its header (the scope's, else this version)."""
        return process.active_engine()

    def solver_scope(self, solver: str | None = None, label: str | None = None, check: bool = True):
        return process.solver_scope(solver, label, check)

    def label(self, solver: str | None = None) -> str:
        return process.engine_label(solver)

    # --- Ctrl-C --------------------------------------------------------------------------------

    def stop_all(self) -> None:
        live.stop_all()

    def resume_runs(self) -> None:
        live.resume_runs()
