"""One file to send an expert: a run's code-hidden pages, the diagnosis first, with its notebooks attached.

``kit report --bundle`` (after a run) or ``kit report --bundle FOLDER`` (an existing run folder) writes
``<run>.bundle.html`` into the run folder: one self-contained HTML page that opens offline, in any browser.

    bundle_page(summary, pages, attachments)   the page (pure): a heading saying what the run found and what
                                               changed, a table of contents, each ``.report.html`` in a
                                               sandboxed ``<iframe srcdoc>`` (00_diagnose's first), and the
                                               executed notebooks and summary.json as ``data:`` downloads
    write_bundle(folder)                       reads the run folder and writes the bundle (I/O)

The pages and notebooks are the run's own files, byte for byte: they passed the report's ``Redactor`` when
the run wrote them, and the bundle adds only text from ``summary.json`` (itself redacted), escaped. The
iframes are sandboxed without scripts, so a page's content cannot act on the bundle or on another page.

What this module must not do: read outside the run folder, reference anything over the network, or put a
path of this machine into the bundle.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kit.errors import ConfigurationError
from kit.report_changes import recorded_html, recorded_lines
from kit.report_index import BUNDLE_SUFFIX, INDEX_NAME, SUMMARY_NAME, build_index, read_summary, write_text

IPYNB_TYPE: Final = "application/x-ipynb+json"
JSON_TYPE: Final = "application/json"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
header { border: 1px solid #ddd; border-radius: 0.4em; padding: 0.8em 1.2em; margin-bottom: 1.2em; }
section { margin-top: 1.5em; }
iframe { width: 100%; height: 85vh; border: 1px solid #ccc; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
"""


@dataclass(frozen=True)
class Attachment:
    """A file of the run, attached to the bundle as a download."""

    name: str
    media_type: str
    content: bytes

    def link(self) -> str:
        data = base64.b64encode(self.content).decode("ascii")
        return (
            f'<a download="{html.escape(self.name)}" href="data:{self.media_type};base64,{data}">'
            f"{html.escape(self.name)}</a> ({len(self.content):,} bytes)"
        )


@dataclass(frozen=True)
class Page:
    """A notebook's code-hidden page and its executed notebook."""

    notebook: str
    page: str
    attachment: Attachment | None


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one: summary.json is read, never trusted."""
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _anchor(notebook: str) -> str:
    return "nb-" + "".join(char if char.isalnum() or char in "-_" else "-" for char in notebook)


def ordered(notebooks: Sequence[object], first: str | None) -> list[Mapping[str, Any]]:
    """The notebooks of ``summary.json`` with the one that wrote the diagnosis (``first``) leading, the rest
    in run order."""
    listed = [_mapping(notebook) for notebook in notebooks]
    return sorted(listed, key=lambda notebook: notebook.get("name") != first)


def _header(summary: Mapping[str, Any]) -> str:
    cause, target = _mapping(summary.get("root_cause")), _mapping(summary.get("target"))
    if cause:
        found = f"<code>{_text(cause.get('id'))}</code>: {_text(cause.get('summary'))}"
    else:
        errors = summary.get("errors") or []
        found = _text("; ".join(map(str, errors)) if isinstance(errors, list) and errors else "no diagnosis")
    rows = [
        ("run", _text(summary.get("run"))),
        ("started (UTC)", _text(summary.get("started"))),
        ("target", _text(" ".join(str(v) for v in (target.get("kind"), summary.get("scenario")) if v))),
        ("status", f"{_text(summary.get('status'))} (exit {_text(summary.get('exit_code'))})"),
        ("root cause", found),
    ]
    if recorded_lines(summary):
        rows.append(("since the previous run", recorded_html(summary)))
    cells = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f"<header><h1>kit report {_text(summary.get('run'))}</h1><dl>{cells}</dl></header>"


def bundle_page(summary: Mapping[str, Any], pages: Sequence[Page], attachments: Sequence[Attachment]) -> str:
    """The bundle as one HTML document (pure): header, contents, each page in order, then ``attachments``
    (files of the whole run, such as summary.json). Every piece of text is escaped; each page goes whole into
    an ``srcdoc`` attribute (escaped as an attribute value) of a sandboxed iframe."""
    contents = "".join(
        f'<li><a href="#{_anchor(page.notebook)}">{_text(page.notebook)}</a></li>' for page in pages
    )
    sections = []
    for page in pages:
        download = f"<p>Executed notebook: {page.attachment.link()}</p>" if page.attachment else ""
        srcdoc = html.escape(page.page, quote=True)
        sections.append(
            f'<section id="{_anchor(page.notebook)}"><h2>{_text(page.notebook)}</h2>{download}'
            f'<iframe sandbox="" title="{_text(page.notebook)}" srcdoc="{srcdoc}"></iframe></section>'
        )
    files = "".join(f"<li>{attachment.link()}</li>" for attachment in attachments)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kit report {_text(summary.get('run'))}</title><style>{_STYLE}</style></head><body>\n"
        f"{_header(summary)}\n<nav><h2>Contents</h2><ol>{contents}</ol>"
        f"<p>The run's files: </p><ul>{files}</ul></nav>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def _inside(folder: Path, name: object) -> Path | None:
    """``folder/name`` when ``name`` is a plain file name of a file there; None otherwise."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        return None
    path = folder / name
    return path if path.is_file() else None


def write_bundle(folder: Path, destination: Path | None = None) -> Path:
    """Write ``folder``'s bundle to ``destination`` (default ``<folder>/<run>.bundle.html``, then the
    reports' index, if there is one beside the folder, is rebuilt to link it); a folder that is not a
    finished run is a ``ConfigurationError`` naming what is missing."""
    summary = read_summary(folder)
    if not isinstance(summary, dict) or not isinstance(summary.get("notebooks"), list):
        raise ConfigurationError(
            f"{folder.name or folder} is not a finished report folder (no readable {SUMMARY_NAME} listing "
            "its notebooks); pass a run folder under reports/ that kit report completed."
        )
    pages = []
    for notebook in ordered(summary["notebooks"], summary.get("diagnosis_from") or "00_diagnose"):
        files = _mapping(notebook.get("files"))
        page = _inside(folder, files.get("report_html"))
        if page is None:
            continue
        executed = _inside(folder, files.get("ipynb"))
        attachment = (
            Attachment(executed.name, IPYNB_TYPE, executed.read_bytes()) if executed is not None else None
        )
        pages.append(Page(str(notebook.get("name")), page.read_text(encoding="utf-8"), attachment))
    if not pages:
        raise ConfigurationError(f"{folder.name} holds no .report.html page to bundle; run kit report again.")
    attachments = [Attachment(SUMMARY_NAME, JSON_TYPE, (folder / SUMMARY_NAME).read_bytes())]
    target = destination or folder / f"{folder.name}{BUNDLE_SUFFIX}"
    write_text(target, bundle_page(summary, pages, attachments))
    if destination is None and (folder.parent / INDEX_NAME).is_file():
        build_index(folder.parent)
    return target
