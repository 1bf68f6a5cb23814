"""The layering rules of docs/architecture.md, read from the source (issue 32, items 4 and 5): the
layer order (a module imports its own layer or lower ones), no family importing another, no
dispatch on the model outside the FAMILIES registry, no private names across modules. The engine
rule (only anasim/sim/engine.py imports an engine's package) is tests/test_engine.py's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Lowest first. A module may import modules of its own layer or of lower ones; the first prefix
# that matches a module's dotted name gives its layer (the CLI's package installs as anasim_cli).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("anasim", "anasim.errors", "anasim.memo", "anasim.outputs", "anasim.progress")),
    ("devices", ("anasim.devices",)),
    ("circuit", ("anasim.circuit",)),
    ("sim", ("anasim.sim",)),
    ("variations", ("anasim.montecarlo.variations",)),
    ("families", ("anasim.families",)),
    ("models and records", ("anasim.data", "anasim.checkpoint", "anasim.train", "anasim.metrics",
                            "anasim.results", "anasim.sidecar", "anasim.summary")),
    ("runs", ("anasim.jobs", "anasim.comparator", "anasim.pipeline", "anasim.montecarlo")),
    ("applications", ("anasim.control", "anasim.library", "anasim.report")),
    ("cli", ("cli", "anasim_cli")),
]  # fmt: skip

# (importer, imported): the imports that run against the order, each with its reason. Keep it short.
UPWARD = {
    ("anasim.circuit.stimulus", "anasim.sim.engine"): "a Run's default solver and header label are the active "
    "engine's (imported inside the functions that build them)",
}

# shared by the crossbar families; every other module under anasim/families/<name>/ is that family's own
FAMILY_SHARED = {"anasim.families", "anasim.families.base", "anasim.families.crossbar"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    files = [*sorted((REPO / "anasim").rglob("*.py")), *sorted((REPO / "cli").rglob("*.py"))]
    return {module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in files}


SOURCES = sources()


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) of every import statement, at any depth."""
    path, tree = SOURCES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.append((target, [a.name for a in node.names], node.lineno))
    return found


def ours(target: str) -> bool:
    return target.split(".")[0] in ("anasim", "cli", "anasim_cli")


def layer(name: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{name} is in no layer of tests/test_layering.py: add it to LAYERS"
    return best[0]


def imported_modules(name: str) -> list[tuple[str, int]]:
    """anasim modules ``name`` imports: ``from pkg import mod`` counts as ``pkg.mod``."""
    found = []
    for target, names, line in imports(name):
        if not ours(target):
            continue
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in SOURCES]
        found += [(s, line) for s in subs] or [(target, line)]
    return found


def test_every_module_has_a_layer():
    for name in SOURCES:
        layer(name)


def test_nothing_imports_upward():
    bad = []
    for name in SOURCES:
        for target, line in imported_modules(name):
            if layer(target) > layer(name) and (name, target) not in UPWARD:
                bad.append(
                    f"{SOURCES[name][0].relative_to(REPO)}:{line}: {name} ({LAYERS[layer(name)][0]}) imports "
                    f"{target} ({LAYERS[layer(target)][0]})"
                )
    assert not bad, "imports against the layer order (docs/architecture.md):\n" + "\n".join(bad)


def test_the_upward_exceptions_are_still_there():
    """An exception that no longer happens leaves the list, so it cannot hide a new one."""
    for importer, target in UPWARD:
        assert target in [t for t, _ in imported_modules(importer)], (importer, target)


def family_of_module(name: str) -> str | None:
    parts = name.split(".")
    if name in FAMILY_SHARED or parts[:2] != ["anasim", "families"] or len(parts) < 3:
        return None
    return parts[2]


def test_no_family_imports_another():
    bad = []
    for name in SOURCES:
        mine = family_of_module(name)
        if mine is None:
            continue
        for target, line in imported_modules(name):
            theirs = family_of_module(target)
            if theirs is not None and theirs != mine:
                bad.append(f"{SOURCES[name][0].relative_to(REPO)}:{line}: family {mine} imports {target}")
    assert not bad, "a block two families share goes to anasim/circuit/:\n" + "\n".join(bad)


def is_arch(node: ast.AST) -> bool:
    """``arch``, ``x.arch``, ``x["arch"]`` or ``x.get("arch")``."""
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) == "arch"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "arch"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "arch"
    return False


def names_model(node: ast.AST) -> bool:
    return isinstance(node, ast.Name | ast.Attribute) and "model" in (
        node.id if isinstance(node, ast.Name) else node.attr
    )


def dispatch(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(is_arch(n) for n in [node.left, *node.comparators]):
            found.append((node.lineno, "compares the arch"))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("hasattr", "isinstance")
            and node.args
            and names_model(node.args[0])
        ):
            found.append((node.lineno, f"{node.func.id}() on the model"))
    return found


def test_no_dispatch_on_the_model_outside_the_registry():
    """What differs between families is a field of their Family (anasim/families/base.py)."""
    bad = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for name, (path, tree) in SOURCES.items()
        if not name.startswith("anasim.families")
        for line, what in dispatch(tree)
    ]
    assert not bad, "dispatch on the model belongs in its Family:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "code, expected",
    [
        ("if config['arch'] == 'mlp': pass", 1),
        ("if cfg.get('arch') != 'tdkan': pass", 1),
        ("x = arch in ('tdkan',)", 1),
        ("if hasattr(model, 'row_drive'): pass", 1),
        ("ok = isinstance(self.model, object)", 1),
        ("if engine.name == 'ngspice': pass", 0),
        ("family = FAMILIES[config['arch']]", 0),
    ],
)
def test_the_dispatch_check_sees_it(code, expected):
    assert len(dispatch(ast.parse(code))) == expected


def private_uses(name: str) -> list[tuple[int, str]]:
    """Underscore names taken from another anasim module: imported, or read off an imported module."""
    path, tree = SOURCES[name]
    found, modules = [], set()
    for target, names, line in imports(name):
        if not ours(target):
            continue
        for n in names:
            if n.startswith("_") and not n.startswith("__"):
                found.append((line, f"imports {n} from {target}"))
            if f"{target}.{n}" in SOURCES:
                modules.add(n)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.asname and ours(a.name)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append((node.lineno, f"reads {node.value.id}.{node.attr}"))
    return found


def test_no_private_names_across_modules():
    bad = [
        f"{SOURCES[name][0].relative_to(REPO)}:{line}: {what}" for name in SOURCES for line, what in private_uses(name)
    ]
    assert not bad, "a name another module uses is public (no leading underscore):\n" + "\n".join(bad)
