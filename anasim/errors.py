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
    """ngspice failed; carries the run directory and ngspice's own output."""

    def __init__(self, message: str, run_dir: Path | None = None, output: str = ""):
        super().__init__(message)
        self.run_dir = run_dir
        self.output = output

    def __str__(self) -> str:
        text = super().__str__()
        if self.run_dir is not None:
            text += f" (run directory: {self.run_dir})"
        tail = "\n".join(self.output.strip().splitlines()[-15:])
        return f"{text}\n--- ngspice output (last lines) ---\n{tail}" if tail else text
