""".ci/install-ngspice.sh (make install's ngspice with KLU): the bookworm-backports entry it
builds from a machine's apt sources, and that an ngspice with KLU is kept as it is. The install
itself is never run here (it would replace the ngspice other runs on this machine use): the
parsing runs against copies of apt's folder through ANASIM_APT_ETC."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "install-ngspice.sh"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
# fields in another order, a disabled and a deb-src stanza first, a keyring of its own
REORDERED = """Types: deb
Suites: bookworm
URIs: http://disabled.example/debian
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Suites: bookworm-security bookworm
Signed-By: /etc/apt/keyrings/mirror.gpg
Components: main contrib
URIs: http://mirror.example/debian http://second.example/debian
Types: deb deb-src
"""
ONE_LINE = """# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://mirror.example/debian bookworm main contrib
deb http://deb.debian.org/debian-security bookworm-security main
"""


def apt_copy(tmp_path: Path, sources: str | None = None, one_line: str | None = None) -> Path:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if sources is not None:
        (etc / "sources.list.d" / "debian.sources").write_text(sources)
    if one_line is not None:
        (etc / "sources.list").write_text(one_line)
    return etc


def print_entry(etc: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANASIM_APT_ETC": str(etc)}
    return subprocess.run(["bash", str(SCRIPT), "--print-entry"], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "sources, one_line, uri, key",
    [
        (DEB822, None, "http://deb.debian.org/debian", KEYRING),  # this machine's form
        (REORDERED, None, "http://mirror.example/debian", "/etc/apt/keyrings/mirror.gpg"),
        (None, ONE_LINE, "http://mirror.example/debian", "/etc/apt/keyrings/x.gpg"),
        (DEB822.replace("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", "", 1), None,
         "http://deb.debian.org/debian", KEYRING),
    ],
    ids=["deb822", "deb822-reordered", "one-line", "deb822-no-key"],
)  # fmt: skip
def test_backports_entry_reuses_the_bookworm_entry(tmp_path, sources, one_line, uri, key):
    res = print_entry(apt_copy(tmp_path, sources, one_line))
    assert res.returncode == 0, res.stderr
    assert res.stdout == (f"Types: deb\nURIs: {uri}\nSuites: bookworm-backports\nComponents: main\nSigned-By: {key}\n")


def test_this_machines_apt_sources_give_an_entry(tmp_path):
    etc = tmp_path / "apt"
    shutil.copytree("/etc/apt", etc, ignore=shutil.ignore_patterns("trusted.gpg*", "auth.conf*"), symlinks=True)
    res = print_entry(etc)
    assert res.returncode == 0, res.stderr
    assert "Suites: bookworm-backports\n" in res.stdout and res.stdout.startswith("Types: deb\nURIs: http")


@pytest.mark.parametrize("sources", ["", DEB822.split("\n\n")[1]], ids=["empty", "security-only"])
def test_no_bookworm_entry_says_what_to_do(tmp_path, sources):
    res = print_entry(apt_copy(tmp_path, sources))
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip() == f"anasim: no Debian 'bookworm' entry in {tmp_path / 'apt'} to reuse"


def test_an_ngspice_with_klu_is_kept(tmp_path):
    # a fake ngspice saying KLU first on PATH: the script stops at once (exit 0), changing
    # nothing (ANASIM_BACKPORTS_LIST would be written otherwise); the real libngspice.so is there
    fake = tmp_path / "bin" / "ngspice"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho '** ngspice-46 : Circuit level simulation program'\necho '** Compiled with KLU Direct Linear Solver'\n"
    )
    fake.chmod(0o755)
    listed = tmp_path / "backports.sources"
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "ANASIM_BACKPORTS_LIST": str(listed),
           "ANASIM_APT_ETC": str(apt_copy(tmp_path, DEB822))}  # fmt: skip
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert not listed.exists()


def test_makefile_installs_through_the_script():
    make = (SCRIPT.parents[1] / "Makefile").read_text()
    assert "bash .ci/install-ngspice.sh" in make
    apt_pkgs = next(line for line in make.splitlines() if line.startswith("APT_PKGS"))
    assert "ngspice" not in apt_pkgs and "chromium" in apt_pkgs and "dataset-fashion-mnist" in apt_pkgs
