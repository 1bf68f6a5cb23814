"""Output files of every command: written atomically, checked against the inputs, locked while a run writes.

Every results file (JSON, .npz/.npy, netlist, checkpoint, report, figure, device model) goes
through :func:`atomic_write`: a temporary file in the same folder, flushed to disk, then
``os.replace``d over the target, so a crash, a Ctrl-C or a full disk leaves the old file or the
new one, never half of one (a resume can trust whatever it finds). A failed write raises
:class:`WriteError`, which names the file and says "no space left on device" in words.

Before any work, :func:`check_outputs` refuses an output that would overwrite one of the
command's inputs or another of its outputs, and :class:`OutputLock` holds ``--json`` the way
:class:`~anasim.sim.run.RunDir` holds ``--run-dir``: a second run on the same file stops at once.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from .errors import AnasimError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_UMASK = os.umask(0o022)  # read once (setting it is the only way): new files get the usual mode
os.umask(_UMASK)


class WriteError(AnasimError):
    """A results file could not be written; ``path`` is the file, ``errno`` the OS reason and
    ``reason`` the words for it without advice (for callers that give their own)."""

    def __init__(self, message: str, path: Path, errno_: int | None = None, reason: str = ""):
        super().__init__(message)
        self.path, self.errno, self.reason = path, errno_, reason or message


def why_not_written(path, exc: OSError, what: str = "") -> str:
    """``exc`` in words: 'no space left on device writing [what] <path>' or 'cannot write [what] <path> (reason)'."""
    name = f"{what} {path}" if what else str(path)
    if exc.errno in NO_SPACE:
        return f"no space left on device writing {name}"
    return f"cannot write {name} ({exc.strerror or exc})"


def _write_error(path: Path, exc: OSError, what: str, hint: str) -> WriteError:
    why = why_not_written(path, exc, what)
    return WriteError(why + (f"; {hint}" if hint else ""), path, exc.errno, why)


def reason(exc: OSError | WriteError) -> str:
    """Why a write failed, without advice: for callers that wrap it in a message of their own."""
    return exc.reason if isinstance(exc, WriteError) else str(exc.strerror or exc)


def atomic_write(path, write: Callable[[io.BufferedWriter], object], hint: str = "", what: str = "") -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, then put it in place of ``path``.

    Raises :class:`WriteError` (``hint`` appended: what the user does next) and leaves ``path``
    as it was when anything fails, a full disk included."""
    return atomic_write_all([(path, write)], hint, what)[0]


def atomic_write_all(files, hint: str = "", what: str = "") -> list[Path]:
    """:func:`atomic_write` of several (path, write) at once: every file is written to its
    temporary file first, and only then are they put in place, so files that belong together
    (a JSON and its .npz) are all new or all as they were."""
    done: list[tuple[str, Path]] = []
    path = None
    try:
        for path, write in files:
            # a symbolic link stays one: the file it points to is the one replaced
            path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            done.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:  # closed whatever fails below
                # mkstemp makes it 0600: the file being replaced keeps its mode, a new one the umask's
                os.fchmod(fh.fileno(), path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_UMASK)
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())  # on disk before the rename: a power cut leaves old or new
        for tmp, path in done:
            os.replace(tmp, path)
        for folder in {p.parent for _, p in done}:  # the renames themselves on disk too
            _fsync_dir(folder)
        return [p for _, p in done]
    except OSError as exc:
        raise _write_error(path, exc, what, hint) from None
    finally:
        for tmp, _ in done:
            with suppress(OSError):
                os.unlink(tmp)  # gone already when it was put in place


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a folder that cannot be opened for reading: the rename is done, only not yet durable
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder
    finally:
        os.close(fd)


def write_text(path, text: str, hint: str = "", what: str = "") -> Path:
    return atomic_write(path, text_writer(text), hint, what)


def write_bytes(path, data: bytes, hint: str = "", what: str = "") -> Path:
    return atomic_write(path, lambda fh: fh.write(data), hint, what)


def write_json(path, data, hint: str = "", indent: int = 1) -> Path:
    """Strict JSON (NaN or inf refused: callers turn them into null first)."""
    return write_text(path, json.dumps(data, indent=indent, allow_nan=False) + "\n", hint)


def save_npy(path, array, hint: str = "") -> Path:
    return atomic_write(path, lambda fh: np.save(fh, array), hint)


def npz_writer(arrays: dict, compressed: bool = False):
    """A writer of ``arrays`` as .npz for :func:`atomic_write_all`."""
    saver = np.savez_compressed if compressed else np.savez
    return lambda fh: saver(fh, **arrays)


def save_npz(path, hint: str = "", compressed: bool = False, **arrays) -> Path:
    return atomic_write(path, npz_writer(arrays, compressed), hint)


def text_writer(text: str):
    return lambda fh: fh.write(text.encode())


def append_line(fh, path, line: str, hint: str = "") -> None:
    """``line`` at the end of the open file ``fh`` (of ``path``), flushed; a full disk is a
    WriteError naming the file. Not atomic: readers drop a last line cut short."""
    try:
        fh.write(line + "\n")
        fh.flush()
    except OSError as exc:
        raise _write_error(Path(path), exc, "", hint) from None


def read_npy(path, shape) -> np.ndarray | None:
    """An array an earlier run saved, or None when there is none to trust (missing, cut short
    by a crash or a full disk before writes were atomic, or of another shape)."""
    try:
        out = np.load(path)
    except (OSError, ValueError, EOFError):
        return None
    return out if out.shape == tuple(shape) else None


def same_path(a, b) -> bool:
    """Whether ``a`` and ``b`` name one file or folder: the same resolved path, or (when both
    exist) the same file by another route (a hard link, a bind mount)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: it cannot be the other
        return False


def check_outputs(inputs: Iterable[tuple[str, object]], outputs: Iterable[tuple[str, object, str]]) -> None:
    """Refuse, before any work, an output that is one of the inputs or another output.

    ``inputs``: (label, path) such as ("the checkpoint m.pt", "m.pt"); ``outputs``: (label, path,
    option) such as ("--json m.json", "m.json", "--json"); None paths are skipped."""
    ins = [(label, p) for label, p in inputs if p is not None]
    outs = [(label, p, opt) for label, p, opt in outputs if p is not None]
    for i, (label, path, option) in enumerate(outs):
        for in_label, in_path in ins:
            if same_path(path, in_path):
                raise AnasimError(f"{label} would overwrite {in_label}; choose another {option}")
        for other, other_path, _ in outs[:i]:
            if same_path(path, other_path):
                raise AnasimError(
                    f"{other} and {label} are the same path ({Path(path)}): one would overwrite the other; "
                    f"choose another {option}"
                )


def json_outputs(json_out, beside: str, what: str) -> list[tuple[str, Path, str]]:
    """``--json`` and what a run writes beside it (suffix ``beside``: its .npz arrays, a Monte
    Carlo's .mc folder), as :func:`check_outputs` outputs; none when ``json_out`` is None."""
    if json_out is None:
        return []
    json_out = Path(json_out)
    near = json_out.with_suffix(beside)
    return [
        (f"--json {json_out}", json_out, "--json"),
        (f"the {what} of --json {json_out} ({near})", near, "--json (a name ending in .json)"),
    ]


class LockHeld(Exception):
    """The lock file is held by another process; ``holder`` is the pid it wrote (or 'unknown')."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def hold(lock_path: Path):
    """Open ``lock_path`` and take its flock without waiting; the open file (keep it: closing
    drops the lock) with our pid in it. An flock dies with its process: no stale locks."""
    fh = open(lock_path, "a+")  # noqa: SIM115 - held until the caller closes it
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise LockHeld(holder) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


class OutputLock:
    """Holds an output file for one run: ``.<name>.lock`` beside it, removed on release.

    Two runs writing one --json would interleave a Monte Carlo's rows (each realization counted
    twice) or replace each other's results. The lock file goes when the run ends; a run that
    opened it just before it went finds its lock on a removed file and takes a new one."""

    def __init__(self, path, option: str):
        path = Path(path)
        self.file = path.with_name(f".{path.name}.lock")
        while True:
            try:
                fh = hold(self.file)
            except LockHeld as held:
                raise AnasimError(
                    f"{option} {path} is in use by another anasim run (pid {held.holder}); wait for it to finish "
                    f"or choose another {option}"
                ) from None
            except OSError as exc:
                raise AnasimError(
                    f"{option} {path}: {why_not_written(self.file, exc)}; choose a writable {option}"
                ) from None
            try:
                if os.stat(self.file).st_ino == os.fstat(fh.fileno()).st_ino:
                    self.fh = fh
                    return
            except FileNotFoundError:
                pass
            fh.close()  # the run before us removed this file as we locked it: lock the new one

    def release(self) -> None:
        if self.fh is not None:
            with suppress(OSError):
                os.unlink(self.file)  # while still held: nobody can lock it in between
            self.fh.close()
            self.fh = None


@contextmanager
def output_lock(path, option: str):
    """:class:`OutputLock` on ``path`` for the ``with`` block (nothing when ``path`` is None)."""
    lock = None if path is None else OutputLock(path, option)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()
