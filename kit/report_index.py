"""The reports folder's index, ``reports/index.html``: one row per run folder, read from its
``summary.json``, newest first, and each target's recent verdicts over time. Rebuilt whole after every run
(and after a bundle is written); a folder without a readable summary is listed as incomplete, never left
out.

Everything a run folder says is escaped before it reaches the page, and every link is relative to the index
(``_href``): a folder may have any name.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from kit.report_changes import histories, recorded_html, verdict_kind

SUMMARY_NAME = "summary.json"
BUNDLE_SUFFIX = ".bundle.html"  # <run>.bundle.html, written by kit.report_bundle on request
INDEX_NAME = "index.html"


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader (or the index) never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


_INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.4em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.ok { color: #1a7f37; } .partial { color: #9a6700; } .failed, .incomplete { color: #cf222e; }
code { font-size: 0.95em; }
.verdict { display: inline-block; margin: 0 0.3em 0.3em 0; padding: 0.1em 0.5em; border-radius: 0.3em;
  color: #fff; text-decoration: none; font-size: 0.9em; }
.v-none { background: #1a7f37; } .v-cause, .v-symptom { background: #cf222e; }
.v-inconclusive { background: #9a6700; } .v-failed { background: #6e7781; }
.v-unknown { background: #57606a; }
p.changes { margin: 0; }
"""


def _href(folder: str, file: object) -> str:
    """A link to ``folder/file`` that is always relative: percent-encoded, and starting with ``./`` so a
    folder named ``javascript:…`` is a path, not a scheme."""
    return html.escape(f"./{quote(folder, safe='')}/{quote(str(file), safe='')}")


def read_summary(folder: Path) -> object | None:
    """A run folder's parsed ``summary.json``, or None when it has none or it is not JSON (a run still
    going, or one that stopped early)."""
    try:
        document: object = json.loads((folder / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document


def _index_row(name: str, summary: object, bundled: bool = False) -> tuple[str, str]:
    """(sort key, table row) for one run folder and its summary (``bundled``: its folder holds a bundle);
    folder names start with the UTC stamp, so they sort."""
    esc = html.escape
    if not isinstance(summary, dict):
        row = (
            f'<tr><td><a href="{_href(name, "")}">{esc(name)}</a></td><td colspan="6" class="incomplete">'
            "incomplete (running, or stopped before it wrote summary.json)</td></tr>"
        )
        return name, row
    cause = summary.get("root_cause") or {}
    cause_text = (
        f"<code>{esc(str(cause.get('id')))}</code><br>{esc(str(cause.get('summary', '')))}"
        if cause
        else esc("; ".join(map(str, summary.get("errors") or [])) or "no diagnosis")
    )
    links = [f'<a href="{_href(name, SUMMARY_NAME)}">summary.json</a>']
    if bundled:
        links.append(f'<a href="{_href(name, name + BUNDLE_SUFFIX)}">the bundle to send</a>')
    for notebook in summary.get("notebooks", []):
        files = notebook.get("files", {})
        mark = "" if notebook.get("status") == "ok" else " ✗"
        links.append(
            f"{esc(str(notebook.get('name')))}{mark}: "
            f'<a href="{_href(name, files.get("report_html", ""))}">report</a> · '
            f'<a href="{_href(name, files.get("html", ""))}">with code</a> · '
            f'<a href="{_href(name, files.get("ipynb", ""))}">ipynb</a>'
        )
    status = str(summary.get("status", ""))
    row = (
        f"<tr><td>{esc(str(summary.get('started', name)))}<br><small>{esc(name)}</small></td>"
        f"<td>{esc(str(summary.get('target', {}).get('kind', '')))}</td>"
        f"<td>{esc(str(summary.get('scenario') or ''))}</td>"
        f'<td class="{esc(status)}">{esc(status)} (exit {esc(str(summary.get("exit_code")))})</td>'
        f"<td>{cause_text}</td><td>{recorded_html(summary)}</td>"
        f"<td>{'<br>'.join(links)}</td></tr>"
    )
    return name, row


def _verdict_label(folder: str, verdict: str) -> str:
    """A run's verdict as a link to its folder: coloured by kind, and the kind said in words too."""
    kind = verdict_kind(verdict)
    text = "ok: none" if kind == "none" else verdict if verdict == kind else f"{kind}: {verdict}"
    return (
        f'<a class="verdict v-{html.escape(kind)}" href="{_href(folder, "")}" title="{html.escape(folder)}">'
        f"{html.escape(text)}</a>"
    )


def _history_table(runs: Sequence[tuple[str, object]]) -> str:
    """One row per target: its recent runs' verdicts, newest first."""
    rows = [
        f"<tr><td><code>{html.escape(key)}</code></td>"
        f"<td>{''.join(_verdict_label(folder, verdict) for folder, verdict in recent)}</td></tr>"
        for key, recent in histories(runs).items()
    ]
    if not rows:
        return ""
    return (
        "<h2>Each target over time</h2>\n<table><tr><th>target</th><th>recent runs, newest first</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n<h2>Every run</h2>\n"
    )


def build_index(reports_dir: Path) -> Path:
    """Rewrite ``index.html`` in ``reports_dir`` from every run folder's ``summary.json``, newest first."""
    runs = [(folder.name, read_summary(folder)) for folder in reports_dir.iterdir() if folder.is_dir()]
    rows = [
        _index_row(name, summary, (reports_dir / name / f"{name}{BUNDLE_SUFFIX}").is_file())
        for name, summary in runs
    ]
    rows.sort(key=lambda pair: pair[0], reverse=True)
    history = _history_table(runs)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>kit reports</title>'
        f"<style>{_INDEX_STYLE}</style></head><body>\n<h1>kit reports</h1>\n"
        f"<p>{len(rows)} run(s), newest first. Each run folder holds the executed notebooks, their HTML "
        "(with and without code) and summary.json.</p>\n" + history + "<table><tr><th>started (UTC)</th>"
        "<th>target</th><th>scenario</th><th>status</th><th>root cause</th><th>since the previous run</th>"
        "<th>files</th></tr>\n" + "\n".join(row for _, row in rows) + "\n</table>\n"
        "</body></html>\n"
    )
    path = reports_dir / INDEX_NAME
    write_text(path, page)
    return path
