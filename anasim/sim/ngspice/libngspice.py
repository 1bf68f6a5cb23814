"""The process's one libngspice (PySpice's ``NgSpiceShared``), for :mod:`.lockstep` runs.

Where it sits: inside the ngspice engine, below :func:`.lockstep.run_lockstep`, which hands it a
deck and takes its callbacks. Here: creating the instance with our two data callbacks, its
version, cleaning up after a run, and what a deck may hold before libngspice loads it.

Facts measured on Debian ngspice 39.3 (libngspice0-dev), PySpice 1.5 (in .venv), this 2-core
machine (the cost and memory figures by ``benchmarks/lockstep.py``, the others by probe scripts):

* PySpice 1.5 loads the Debian ``libngspice.so`` by itself (``LIBRARY_PATH = 'libngspice{}.so'``;
  ``NGSPICE_LIBRARY_PATH`` overrides it); it warns "Unsupported Ngspice version 39" and uses its
  newest vector-type table, harmless here (only real vectors are read). Creating the instance
  takes about 0.4 s, once per process.
* External sources: ``Vname p n external`` works; *any* value before ``external`` (``dc 0
  external``, ``0 external``, ``dc=0 external``, ``DC 1 EXTERNAL``) segfaults libngspice 39 at
  the first analysis, killing Python. :func:`check_deck` refuses those lines before ngspice sees
  them; the netlister writes the safe form for ``VSource(external=True)``.
* Many runs in one process work and give bit-identical results; a second PySpice instance does
  not: ``NgSpiceShared.new_instance(ngspice_id=1)`` fails in cffi (the API declared twice), and
  libngspice is one simulator per process anyway. Parallel runs need processes.
* Memory (``benchmarks/lockstep.py``, RSS growth after 10, 25, 50 runs of 10k points): PySpice
  1.5 keeps every run's plot and circuit unless removed: +3.7, +6.3, +10.7 MiB (0.2 MiB a run,
  the run's vectors). With ``destroy all`` and ``remcirc`` after each run, +1.5 MiB flat, but
  1.3 kB a run remained (+1.3 MiB over 1,000 runs of 100 points, a probe script): ngspice's
  command history, which PySpice clears every 10,000 commands only. Clearing it after each run
  too (:func:`clean`): +2.0, +2.1, +2.1 MiB, and +0.04 MiB over the 1,000 short runs. One plot
  ('const') remains.

No user's ``.spiceinit``: libngspice 39's ngSpice_Init sources ``./.spiceinit`` if there is one,
else the one in the passwd entry's home folder (not ``$HOME``: measured, a ``shell touch`` in each
ran), and it has no ``-n`` (``ngSpice_nospiceinit`` came in later versions). So the instance is
created in a temporary folder holding an empty ``.spiceinit``, which is read instead of both.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path

import numpy as np

from ...errors import AnasimError, SimError

# ngspice's own chatter goes to this logger, kept off stderr: a SimError carries the transcript.
_LOG = logging.getLogger("anasim.sim.ngspice.libngspice")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


_ENGINE = None
LOCK = threading.RLock()  # libngspice is one simulator per process: one run at a time (re-entry refused)


def shared():
    """The process's one libngspice, created on first use with our callbacks."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
    except ImportError:
        raise SimError("PySpice is not installed: run 'make install'") from None

    class Engine(NgSpiceShared):
        """PySpice's instance with the two data callbacks replaced: PySpice's own wrappers decode
        every name and build a dict of complex values per call, and a KeyboardInterrupt landing
        in them is printed and swallowed by cffi with the source value left unset."""

        _logger = _LOG
        loop = None  # the run in progress: a lockstep._Loop
        transcript: list[str] = []

        def send_char(self, message, ngspice_id):
            self.transcript.append(message.partition(" ")[2])
            return 0

        @staticmethod
        def _get_vsrc_data(voltage, t, node, ngspice_id, user_data):
            loop = _ENGINE.loop
            voltage[0] = loop.source(t, ffi.string(node)) if loop is not None else np.nan
            return 0

        @staticmethod
        def _send_data(data, number_of_vectors, ngspice_id, user_data):
            loop = _ENGINE.loop
            if loop is not None:
                if loop.columns is None:
                    loop.columns = [ffi.string(data.vecsa[i].name).decode().lower() for i in range(number_of_vectors)]
                loop.accept([data.vecsa[i].creal for i in range(number_of_vectors)])
            return 0

    if NgSpiceShared._instances:
        raise SimError("another PySpice NgSpiceShared instance exists in this process; libngspice holds one")
    try:
        with tempfile.TemporaryDirectory(prefix="anasim-ngspice-") as clean:
            Path(clean, ".spiceinit").write_text("")
            # the process's working folder, for the ~0.4 s of ngSpice_Init (once per process)
            back = os.getcwd()
            os.chdir(clean)
            try:
                _ENGINE = Engine(ngspice_id=0, send_data=True)
            finally:
                os.chdir(back)
    except OSError as exc:
        raise SimError(
            f"cannot load libngspice ({NgSpiceShared.LIBRARY_PATH}): {exc}; install libngspice0-dev "
            "('make install') or set NGSPICE_LIBRARY_PATH to the library file"
        ) from None
    NgSpiceShared._instances[0] = _ENGINE  # PySpice's new_instance() hands out this one, never a second init
    return _ENGINE


def library_version() -> str:
    """``ngspice-46``: the version the loaded libngspice reports (``version -s``), to compare with
    the ``ngspice`` binary's (:func:`.process.ngspice_version`): the lock-step runs and
    the batch runs must be the same engine (NGSPICE_LIBRARY_PATH picks the library, PATH the binary)."""
    with LOCK:
        text = shared().exec_command("version -s")
    m = re.search(r"ngspice-(\S+)", text)
    return f"ngspice-{m.group(1)}" if m else "ngspice (unknown version)"


_EXTERNAL = re.compile(r"^(v\w+)\s+(\S+)\s+(\S+)\s+external\s*$", re.IGNORECASE)


def check_deck(deck: str) -> list[str]:
    """The external sources of a deck (lower-case card names). Refuses what would crash or end
    the process: a value before ``external`` (libngspice 39 segfaults) and ``.control`` blocks
    (this module runs the analysis; a ``quit`` there would end Python)."""
    lines: list[str] = []
    for raw in deck.splitlines():  # continuation lines joined, as ngspice reads them
        if raw.startswith("+") and lines:
            lines[-1] += " " + raw[1:]
        else:
            lines.append(raw)
    found = []
    for k, line in enumerate(lines[1:], 2):  # the first line is the title
        words = line.lower().split()
        if not words or words[0].startswith("*"):
            continue
        if words[0] == ".control":
            raise AnasimError(f"deck line {k}: no .control block: run_lockstep runs the transient itself")
        if words[0].startswith("v") and "external" in words:
            m = _EXTERNAL.match(line.strip())
            if m is None:
                raise AnasimError(
                    f"deck line {k}: {line.strip()!r}: write an external source as 'Vname p n external' "
                    "(libngspice 39 crashes on any value before 'external')"
                )
            found.append(m.group(1).lower())
    return found


def clean(engine) -> None:
    """Drop the run's plot and circuit (without this every run keeps both: the leak PySpice 1.5
    has per run) and ngspice's history of the commands sent (1.3 kB a run; PySpice clears it only
    every 10,000 commands)."""
    from PySpice.Spice.NgSpice.Shared import FFI, NgSpiceCommandError

    for command in ("destroy all", "remcirc"):
        try:
            engine.exec_command(command)
        except NgSpiceCommandError:
            pass
    engine._ngspice_shared.ngSpice_Command(FFI.NULL)  # NULL: clear the history (sharedspice.h)
