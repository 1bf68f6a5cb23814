"""Check a deck anasim did not write (``simulate --netlist``) before ngspice reads it: circuit only.

Where it sits: inside the ngspice engine, as its ``check_included``:
:func:`anasim.sim.driver.compiled_netlist` includes the user's deck in the deck anasim runs,
and the batched runner hashes what it reads. ngspice executes more than circuits: a ``.control``
block (its ``shell`` command runs any program), a comment line starting ``*#`` (a control
command, a Spice3 convention: ``*# shell touch x`` runs in ngspice 39, measured), and whatever a
``.include`` or ``.lib`` pulls in from anywhere. So the deck and every file it includes, recursively, may hold:

* comments and blank lines; element lines of any letter but A (XSPICE code models, which read
  files named in their models) and N (OSDI devices);
* the dot-commands of :data:`ALLOWED`: what ``anasim compile`` writes (``.func``, ``.nodeset``,
  ``.end``), device libraries (``.subckt``, ``.ends``, ``.model``, ``.param``, ``.lib`` sections)
  and circuit settings (``.options``, ``.ic``, ``.global``, ``.title``). Analyses, outputs and
  control blocks are anasim's to write;
* ``.include``/``.inc``/``.lib`` of an existing file at or below the deck's own folder (a relative
  path without ``..``, resolved against the including file's folder) or in the device library
  shipped with anasim (``netlists/devices``). No symbolic links on the way: ngspice resolves a
  ``.lib``'s own includes from its real folder, an ``.include``'s from the path it was given.
  ngspice 39 looks for a relative name in its working folder first (measured), which is the run
  folder: names of the files anasim keeps there (:data:`RUN_FILES`) are refused.

Anything else is refused with the file, line and statement, before ngspice starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import AnasimError

# dot-commands a circuit deck may hold (the first word of the line, lower case)
ALLOWED = frozenset(
    {".func", ".nodeset", ".end", ".subckt", ".ends", ".model", ".param", ".options", ".option", ".opt", ".ic",
     ".global", ".title", ".include", ".inc", ".lib", ".endl"}
)  # fmt: skip
INCLUDES = frozenset({".include", ".inc", ".lib"})
REFUSED_ELEMENTS = {"a": "an XSPICE code model (A element)", "n": "an OSDI device (N element)"}
# (tran.txt, op.raw and loop.txt: the data files of run folders written before the engine seam)
RUN_FILES = frozenset(
    {"deck.cir", "ngspice.log", "out.txt", "out.raw", "tran.txt", "op.raw", "loop.txt", "outputs.npy",
     "nominal.npy", "deck.sha256", ".anasim-lock"}
)  # fmt: skip
# the folders anasim makes in a run folder (stages, parts, chunks, retried samples and sweeps, episodes)
RUN_DIRS = re.compile(r"^(stage\d+|part\d+|layer\d+(_sample\d+)?|chunk_\d+|sample_\d+|sweep_\d+_\d+|episode\d+)$")
# ngspice splits lines at \n only; Python's splitlines also at \v, \f, \x1c-\x1e, \x85, ...: a byte
# that the two read differently (or a NUL, which ends a C string) could hide a line from this check
CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
MAX_DEPTH = 20  # nested includes; ngspice has no limit of its own, a cycle would never end


def shipped_library() -> Path | None:
    """The ``netlists/devices`` folder beside the package (a source checkout), if there is one."""
    path = Path(__file__).resolve().parents[3] / "netlists" / "devices"
    return path if path.is_dir() else None


def statements(text: str):
    """(line number, statement) of a deck as ngspice reads it: ``+`` lines joined to the line
    before, leading blanks dropped, numbered by the line each statement starts on."""
    current: tuple[int, str] | None = None
    for k, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if line.startswith("+") and current is not None:
            current = (current[0], current[1] + " " + line[1:])
            continue
        if current is not None:
            yield current
        current = (k, line)
    if current is not None:
        yield current


def check_deck(path: str | Path) -> list[Path]:
    """Refuse ``path`` (AnasimError naming file, line and statement) unless it and every file it
    includes hold circuit statements only (see the module docstring); the files checked."""
    top = Path(path).resolve()  # anasim includes the deck by its real path
    roots = [top.parent] + [lib for lib in [shipped_library()] if lib is not None]
    seen: list[Path] = []
    _check_file(top, roots, seen, 0)
    return seen


def _check_file(path: Path, roots: list[Path], seen: list[Path], depth: int) -> None:
    if path in seen:
        return
    seen.append(path)
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise AnasimError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise AnasimError(
            f"{path}: byte {exc.start} is not ASCII: a netlist is plain text; include only netlist files"
        ) from None
    bad = CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise AnasimError(
            f"{path}:{line}: control character {bad.group()!r}: a netlist is plain text (tabs and line ends "
            "only); remove it"
        )
    for k, line in statements(text):
        where = f"{path}:{k}: {line[:80]!r}"
        low = line.lower()
        if not low or low.startswith(("$", ";", "//")):
            continue
        if low.startswith("*"):
            if low.startswith(("*#", "*ng_script")):
                raise AnasimError(
                    f"{where}: a comment starting '*#' or '*ng_script' is an ngspice command, not a comment; "
                    "remove the line (a --netlist deck holds the circuit only)"
                )
            continue
        word = low.split()[0]
        if word in (".control", ".endc") or word == "shell":
            raise AnasimError(
                f"{where}: a --netlist deck holds the circuit only, no .control block or shell command "
                "(anasim writes the analysis); compile it without --stimulus to simulate it with anasim, or run "
                "a deck with its own .control block alone with ngspice -b"
            )
        if word.startswith("."):
            if word not in ALLOWED:
                raise AnasimError(
                    f"{where}: {word} is not a circuit statement anasim accepts in a --netlist deck "
                    f"(allowed: {', '.join(sorted(ALLOWED))}); remove it, anasim writes the analysis and outputs"
                )
            if word in INCLUDES:
                target = _include(line, path, roots, where)
                if target is not None:
                    if depth >= MAX_DEPTH:
                        raise AnasimError(f"{where}: includes nested more than {MAX_DEPTH} deep")
                    _check_file(target, roots, seen, depth + 1)
            continue
        if not word[0].isalpha():
            raise AnasimError(f"{where}: not a circuit statement (an element name starts with a letter)")
        if word[0] in REFUSED_ELEMENTS:
            raise AnasimError(
                f"{where}: {REFUSED_ELEMENTS[word[0]]} loads files or code of its own; a --netlist deck may "
                "use the SPICE primitives only"
            )


def _include(line: str, path: Path, roots: list[Path], where: str) -> Path | None:
    """The file a ``.include``/``.inc``/``.lib`` line reads, checked to lie in ``roots``; None for
    a ``.lib name`` line that opens a library section (one word, no file)."""
    words = line.split(None, 1)
    rest = words[1].strip() if len(words) > 1 else ""
    if not rest:
        raise AnasimError(f"{where}: names no file")
    if rest[0] in "\"'":
        end = rest.find(rest[0], 1)
        if end < 0:
            raise AnasimError(f"{where}: the file name's quote is not closed")
        name, tail = rest[1:end], rest[end + 1 :].strip()
    else:
        name, _, tail = rest.replace("\t", " ").partition(" ")  # ngspice splits at any blank
        tail = tail.strip()
    if words[0].lower() == ".lib" and not tail and rest[0] not in "\"'":
        # '.lib tt': the start of section tt (ends at .endl); ngspice 39 reads no file for a one-word
        # .lib, in a library or not (measured: '.lib /x/evil.lib' holding a shell command ran nothing)
        return None
    if re.search(r"[;\s]", name):  # ngspice ends a line at ';' (a comment) and a name at a blank
        raise AnasimError(f"{where}: {name!r}: an included file's name may not hold ';' or blanks; rename it")
    fix = (
        "include only files at or below the deck's folder (relative paths without '..') or in anasim's "
        "netlists/devices library; copy the file beside the deck"
    )
    if name.startswith("~") or ".." in Path(name).parts or "$" in name:
        raise AnasimError(f"{where}: {name!r} may point outside the deck's folder; {fix}")
    first = Path(name).parts[0] if not os.path.isabs(name) else ""
    if first in RUN_FILES or (RUN_DIRS.match(first) and len(Path(name).parts) > 1):
        raise AnasimError(
            f"{where}: ngspice looks for {name!r} in its run folder first, where anasim keeps a file of that "
            "name; rename the included file"
        )
    target = Path(os.path.normpath(name if os.path.isabs(name) else path.parent / name))
    if not target.is_file():
        raise AnasimError(f"{where}: {target} is not a file (ngspice would look for it elsewhere); {fix}")
    real = target.resolve()
    if real != target:
        raise AnasimError(f"{where}: {target} is (or lies in) a symbolic link to {real}; include {real} itself")
    if not any(real.is_relative_to(root) for root in roots):
        raise AnasimError(f"{where}: {real} lies outside the deck's folder; {fix}")
    return real
