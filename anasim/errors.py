"""Error types shared by every step of the flow.

Every error a user can cause derives from :class:`AnasimError`; the CLI turns these into a
one-line message and a nonzero exit instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class AnasimError(Exception):
    """An expected failure whose message tells the user what to do."""


class AnasimWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints it on one line."""


class DataError(AnasimError):
    """A data file (I-V sweep, dataset) is missing or malformed."""


class DeviceError(AnasimError):
    """An unknown device name or an invalid device model."""


class CheckpointError(AnasimError):
    """A checkpoint that is not an anasim checkpoint, of another version, or with bad weights."""


class Interrupted(AnasimError):
    """Ctrl-C: what finished is on disk; the message says where and how to continue."""

    exit_code = 130


class SimError(AnasimError):
    """A simulator run failed; carries the run directory and the engine's own output (its log)."""

    def __init__(self, message: str, run_dir: Path | None = None, output: str = "", engine: str = "simulator"):
        super().__init__(message)
        self.run_dir = run_dir
        self.output = output
        self.engine = engine  # whose output it is, for the heading of its last lines

    def __str__(self) -> str:
        text = super().__str__()
        if self.run_dir is not None:
            text += f" (run directory: {self.run_dir})"
        tail = "\n".join(self.output.strip().splitlines()[-15:])
        return f"{text}\n--- {self.engine} output (last lines) ---\n{tail}" if tail else text


class Stalled(SimError):
    """No sweep point finished within the budget: the engine's run was killed. ``done``: the points
    it had reported finished (0..done-1; an engine may report late, so a few more may have)."""

    def __init__(self, message: str, run_dir: Path | None, output: str, done: int, engine: str = "simulator"):
        super().__init__(message, run_dir, output, engine)
        self.done = done


class Stopped(Exception):
    """The engine's run was killed because the simulation is stopping (Ctrl-C): not a failure of the
    deck, so nothing takes it for a convergence failure."""
