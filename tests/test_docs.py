"""The documentation site (mkdocs.yml, docs/): builds with --strict (no broken link, reference or
API object), the getting-started page's marked code blocks run as written, the benchmarks page is
current with benchmarks/results/*.json, and the built home page and a guide page render in
headless Chromium with every image decoded (screenshots in out/docs/). Never skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_browser import CHECK, chromium

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))
import render_benchmarks  # noqa: E402

BIN = Path(sys.executable).parent
MARK = "<!-- test: run -->"


def marked_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of every fenced block right after a ``<!-- test: run -->`` line."""
    found = re.findall(re.escape(MARK) + r"\n```(\w+)\n(.*?)\n```", page.read_text(), flags=re.S)
    return [(lang, body) for lang, body in found]


def test_benchmarks_page_is_current_with_the_results():
    assert not render_benchmarks.missing(), render_benchmarks.missing()
    text = render_benchmarks.render()
    assert render_benchmarks.PAGE.read_text() == text, (
        "docs/benchmarks.md is not current with benchmarks/results/*.json: run python docs/render_benchmarks.py"
    )
    readme = render_benchmarks.README.read_text()
    assert render_benchmarks.render_readme(readme) == readme, (
        "README.md's measured tables are not current with benchmarks/results/*.json: run python docs/render_benchmarks.py"
    )


def test_a_results_file_without_a_renderer_is_named(tmp_path, monkeypatch):
    (tmp_path / "accuracy.json").write_text((render_benchmarks.RESULTS / "accuracy.json").read_text())
    (tmp_path / "vacask_mc.json").write_text(json.dumps({"rows": [{"sigma": 0.05, "accuracy": 0.97}]}))
    monkeypatch.setattr(render_benchmarks, "RESULTS", tmp_path)
    with pytest.raises(
        SystemExit, match=r"no renderer for benchmarks/results/vacask_mc\.json: add a line to RENDERERS"
    ):
        render_benchmarks.render()
    monkeypatch.setitem(
        render_benchmarks.RENDERERS,
        "vacask_mc.json",
        render_benchmarks.Section("x.py", render_benchmarks.generic, "VACASK MC"),
    )
    page = render_benchmarks.render()
    assert "## VACASK MC" in page and "| 0.05 | 97.00% |" in page and "date: not recorded in the JSON" in page


def test_getting_started_blocks_run(tmp_path):
    blocks = marked_blocks(REPO / "docs" / "getting-started.md")
    assert [lang for lang, _ in blocks] == ["bash", "bash", "bash", "python"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for lang, body in blocks:
        cmd = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{lang} block failed:\n{body}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "report" / "report.html").exists()
    sim = json.loads((tmp_path / "sim.json").read_text())
    assert sim["samples"] == 360 and sim["argmax_agreement"] >= 0.99  # the page shows 100% on this model
    # the output the page and the README quote is this run's (training is seeded, on one thread)
    quoted = f"circuit accuracy     {100 * sim['circuit_accuracy']:.2f}%"
    for doc in (REPO / "docs" / "getting-started.md", REPO / "README.md"):
        assert quoted in doc.read_text(), f"{doc.name} quotes another output than the run's {quoted!r}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]
    return out


def test_site_builds_strict_with_generated_pages(site):
    mc = (site / "guide" / "montecarlo" / "index.html").read_text()
    from anasim.montecarlo.variations import VARIATIONS

    for name in VARIATIONS:  # the table is generated from the registry at build time
        assert f"<code>{name}</code>" in mc, name
    cli = (site / "cli" / "index.html").read_text()
    for command in ("train", "compile", "simulate", "report", "--wire-r", "--list-variations"):
        assert command in cli, command
    api = (site / "api" / "index.html").read_text()
    assert "anasim.pipeline.simulate" in api and "anasim.montecarlo.variations.VARIATIONS" in api
    assert (site / "figures" / "montecarlo" / "digits.png").stat().st_size > 10_000


@pytest.mark.parametrize("page", ["index.html", "guide/montecarlo/index.html"])
def test_built_pages_render_in_headless_chromium(site, page, tmp_path):
    html = site / page
    shot = tmp_path / "page.png"
    proc = chromium("--window-size=1280,2400", f"--screenshot={shot}", html.as_uri(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    out = REPO / "out" / "docs"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, out / (page.replace("/index.html", "").replace(".html", "").replace("/", "_") + ".png"))

    checked = html.with_name("checked.html")  # beside the page, so its relative image paths hold
    checked.write_text(html.read_text().replace("</body>", CHECK))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", checked.as_uri(), cwd=tmp_path)
    found = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == html.read_text().count("<img ") >= 1
    for complete, width, height in images:
        assert complete and width > 0 and height > 0  # no missing image


def test_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250  # issue 33: a README a newcomer reads in five minutes
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 10
    for link in links:
        assert (REPO / link).exists(), f"README.md links to {link}, which does not exist"
