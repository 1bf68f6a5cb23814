"""Report step, output side: one list of blocks rendered twice, as markdown and as one HTML page.

``report.md`` links its figures as PNG files in ``figures/``; ``report.html`` embeds the same
PNGs base64, so the page opens anywhere with no network and no files beside it. Tables are
padded pipe tables, readable as plain text in a CI log.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AnasimError
from ..outputs import WriteError, reason, write_bytes, write_text

CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; } th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
.fail { color: #b00; font-weight: bold; } .pass { color: #070; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
"""


def md_table(headers: list[str], rows: list[list]) -> str:
    """A pipe table with padded columns: aligned in a terminal, valid markdown."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, width)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in width) + "|", *map(line, cells[1:])])


def _is_num(text: str) -> bool:
    t = text.rstrip("%").replace(",", "").replace("e", "").replace("-", "").replace("+", "").replace(".", "")
    return t.isdigit()


@dataclass
class Doc:
    title: str
    blocks: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # file name -> PNG bytes

    def h(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str, cls: str = "") -> None:
        self.blocks.append(("p", text, cls))

    def table(self, headers: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", headers, rows))

    def fig(self, name: str, caption: str, png: bytes) -> None:
        self.figures[f"{name}.png"] = png
        self.blocks.append(("fig", f"{name}.png", caption))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def markdown(self) -> str:
        out = [f"# {self.title}"]
        for b in self.blocks:
            if b[0] == "h2":
                out.append(f"## {b[1]}")
            elif b[0] == "p":
                out.append(f"**{b[1]}**" if b[2] == "fail" else b[1])
            elif b[0] == "table":
                out.append(md_table(b[1], b[2]))
            elif b[0] == "fig":
                out.append(f"![{b[2]}](figures/{b[1]})\n\n*{b[2]}*")
            elif b[0] == "pre":
                out.append(f"```\n{b[1]}\n```")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        e = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(self.title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{e(self.title)}</h1>",
        ]
        for b in self.blocks:
            if b[0] == "h2":
                out.append(f"<h2>{e(b[1])}</h2>")
            elif b[0] == "p":
                out.append(f'<p class="{b[2]}">{e(b[1])}</p>' if b[2] else f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{e(str(h))}</th>" for h in b[1])
                body = "".join(
                    "<tr>"
                    + "".join(
                        f'<td class="num">{e(str(c))}</td>' if _is_num(str(c)) else f"<td>{e(str(c))}</td>" for c in r
                    )
                    + "</tr>"
                    for r in b[2]
                )
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b[0] == "fig":
                data = base64.b64encode(self.figures[b[1]]).decode()
                out.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{e(b[2])}">'
                    f"<figcaption>{e(b[2])}</figcaption></figure>"
                )
            elif b[0] == "pre":
                out.append(f"<pre>{e(b[1])}</pre>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        """report.md, figures/*.png and report.html in ``folder`` (created)."""
        folder = Path(folder)
        try:
            (folder / "figures").mkdir(parents=True, exist_ok=True)
            for name, png in self.figures.items():
                write_bytes(folder / "figures" / name, png)
            md, page = folder / "report.md", folder / "report.html"
            write_text(md, self.markdown())
            write_text(page, self.html())
        except (OSError, WriteError) as exc:
            raise AnasimError(
                f"{folder}: cannot write the report there ({reason(exc)}); choose another -o folder"
            ) from None
        return md, page
