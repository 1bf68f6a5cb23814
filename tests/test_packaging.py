"""The package as built for users: every subpackage and the device data are in the wheel, and
nothing at run time reads the sibling ``../shared`` folder that only the developers' machines have.
(.ci/wheel.sh installs the wheel into a fresh venv outside the checkout and runs the commands.)"""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return set(cfg["options"]["packages"].split())


def _on_disk() -> set[str]:
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "anasim").rglob("__init__.py")}
    return found | {"anasim_cli", "anasim.device_models"}  # the two mapped folders: cli/, device_models/


def test_setup_cfg_lists_every_package():
    assert _declared() == _on_disk()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)]
    subprocess.run(cmd, check=True, capture_output=True)
    (path,) = out.glob("anasim-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_every_module_and_the_device_data(wheel):
    names = set(wheel.namelist())
    for pkg in _on_disk():
        src = REPO / {"anasim_cli": "cli", "anasim.device_models": "device_models"}.get(pkg, pkg.replace(".", "/"))
        for py in src.glob("*.py"):
            assert f"{pkg.replace('.', '/')}/{py.name}" in names, (pkg, py.name)
    for model in (REPO / "device_models").glob("*.json"):
        assert f"anasim/device_models/{model.name}" in names
    for sweep in ("a21", "z15", "z21", "zaz21"):
        assert f"anasim/device_models/sweeps/cmtd_dft_negf/{sweep}.csv" in names
    assert "anasim/device_models/sweeps/README.md" in names
    assert not any(n.startswith("cli/") for n in names), "a bare top-level 'cli' package would clash"


@pytest.mark.parametrize("folder", ["anasim", "cli", "tests", "examples", "Makefile", ".ci/e2e.sh", ".ci/wheel.sh"])
def test_nothing_reads_the_developers_shared_folder(folder):
    path = REPO / folder
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and p.suffix in {".py", ".sh", ""}]
    files = [p for p in files if p.resolve() != Path(__file__).resolve()]  # this file names what it looks for
    hits = [
        f"{p}:{i}"
        for p in files
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if "../shared" in line or "shared/device_data" in line
    ]
    assert hits == [], hits
