"""Write the comparison: leaderboard.csv / .md, a self-contained report.html (plots inlined)."""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime
from pathlib import Path

import pandas as pd

from crema_exp.atomic import atomic_write

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.table-frame { overflow: auto; max-width: 100%; max-height: 32em; margin-bottom: 1.5em;
               border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
thead th { position: sticky; top: 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.failed { color: #b00; } .running { color: #a60; }
"""


def format_cell(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if len(text) > 8 and _is_float(text):  # swept floats such as 0.7151893663724195
        return f"{float(text):.4g}"
    return text


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    return table.map(format_cell)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_write(path, "w") as f:
        table.to_csv(f, index=False)


def markdown_table(table: pd.DataFrame) -> str:
    cells = formatted(table)
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(c) for c in cells.columns) + " |",
             "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(escape(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_markdown(sections: dict[str, pd.DataFrame], path: Path) -> None:
    text = "".join(f"## {title}\n\n{markdown_table(table)}\n" for title, table in sections.items()
                   if not table.empty)
    with atomic_write(path, "w") as f:
        f.write(text)


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<h3>{html.escape(caption)}</h3>\n"
            f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">\n')


def write_html(path: Path, *, title: str, summary: list[str], tables: dict[str, pd.DataFrame],
               figures: dict[str, Path | None]) -> None:
    """One file that opens anywhere: tables as HTML, figures as base64 PNG."""
    parts = [f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n",
             "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary) + "</ul>\n"]
    for caption, table in tables.items():
        if table.empty:
            continue
        parts.append(f"<h2>{html.escape(caption)}</h2>\n")
        # the table scrolls inside its own frame: the page keeps its width at any table size
        parts.append('<div class="table-frame">'
                     + formatted(table).to_html(index=False, escape=True, border=0) + "</div>\n")
    parts.append("<h2>Figures</h2>\n")
    parts += [_image(figure, caption) for caption, figure in figures.items() if figure is not None]
    parts.append(f"<p><small>written {datetime.now().isoformat(timespec='seconds')} by "
                 "python -m crema_exp.compare</small></p></body></html>\n")
    with atomic_write(path, "w") as f:
        f.write("".join(parts))
