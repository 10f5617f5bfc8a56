"""The self-contained HTML attribution report of a task (figures inlined, no network needed)."""

from __future__ import annotations

import pandas as pd


def _figures_html(markdown: str) -> str:
    """The plots module's `**title**` + `![title](data:…)` blocks as HTML."""
    html = []
    for line in markdown.splitlines():
        if line.startswith("**") and line.endswith("**"):
            html.append(f"<h2>{line.strip('*')}</h2>")
        elif line.startswith("!["):
            html.append(f"<img src='{line[line.index('(') + 1 : -1]}'/>")
    return "\n".join(html)


def attribution_html(
    task: str,
    version: int,
    method: str,
    top: pd.DataFrame,
    key: pd.DataFrame,
    figures: str,
    key_rule: str,
    shown: int,
) -> str:
    """The report page: what was computed (`method`), the top genes by mean |IG|, the key genes
    (`key_rule` says how they were chosen; at most `shown` rows) and the figures."""
    key_table = key.head(shown).round(5).to_html(index=False) if len(key) else "<p>none</p>"
    return (
        f"<html><head><meta charset='utf-8'><title>Attribution {task}</title></head><body>"
        f"<h1>Attribution report: {task} (champion v{version})</h1><p>{method}</p>"
        f"<h2>Top {len(top)} genes by mean |IG|</h2>{top.round(5).to_html()}"
        f"<h2>Key genes ({key_rule})</h2>{key_table}"
        f"{_figures_html(figures)}</body></html>"
    )
