"""report.html in a real browser: headless Chromium (Debian package chromium, installed by make)
loads the page with no console errors, decodes every embedded image, and saves a screenshot
(also copied to out/browser/report.png for a person to look at). Never skipped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from anasim.report import make_report

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
# Appended to a copy of the page: after load, every <img> reports whether it decoded, and its size.
CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-images", JSON.stringify(imgs));
});
</script></body>"""


def chromium(*args, cwd) -> subprocess.CompletedProcess:
    """One headless Chromium run with a new profile folder (under cwd): nothing of a user's profile is read."""
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: run 'make install' (Debian package chromium)"
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=cwd)
    return subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={profile}", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_report_in_headless_chromium(results, tmp_path):
    rep = make_report([results / "sim.json", results / "mc.json"], tmp_path / "rep", [("agreement", 0.995)])
    shot = tmp_path / "report.png"
    proc = chromium("--window-size=1200,4200", f"--screenshot={shot}", rep.html.as_uri(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, "console messages: " + "\n".join(console)
    assert shot.stat().st_size > 50_000  # a page of tables and figures, not a blank one
    (REPO / "out" / "browser").mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, REPO / "out" / "browser" / "report.png")

    checked = tmp_path / "checked.html"
    checked.write_text(rep.html.read_text().replace("</body>", CHECK))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", checked.as_uri(), cwd=tmp_path)
    found = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == rep.html.read_text().count("<img ") >= 5
    for complete, width, height in images:
        assert complete and width > 200 and height > 200  # every embedded PNG decoded to a figure
    assert not [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
