"""mkdocs hooks (mkdocs.yml `hooks:`): what the pages take from the code or the results at build time,
so it cannot drift. `<!-- anasim:variations -->` becomes the table of anasim.montecarlo.variations.VARIATIONS;
the figures in benchmarks/results/ are served under figures/ without a copy in docs/."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MARK = "<!-- anasim:variations -->"
FAMILY = {"tdkan": "TD-KAN", "mlp": "device MLP", "kirchhoffnet": "KirchhoffNet"}


def variations_table() -> str:
    from anasim.montecarlo.variations import describe

    rows = ["| name | unit | families | what varies |", "|---|---|---|---|"]
    for name, unit, families, meaning in describe():
        fams = ", ".join(FAMILY.get(f, f) for f in families.split(","))
        rows.append(f"| `{name}` | {unit} | {fams} | {meaning.replace('|', '/')} |")
    return "\n".join(rows)


def on_files(files, config):
    for png in sorted(RESULTS.rglob("*.png")):
        files.append(File.generated(config, f"figures/{png.relative_to(RESULTS).as_posix()}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):
    if MARK in markdown:
        markdown = markdown.replace(MARK, variations_table())
    return markdown
