"""How a report page reads: the summary card on top, a table of contents, tables for readers, no local paths.

    summary_card(facts)              the card that leads every page: the verdict (in colour and in words), its
                                     evidence, the fix and whether it was verified, what failed, the target,
                                     when
    table_of_contents(page)          links to the notebook's headings (nbconvert's lab template has none)
    decorate_page(page, card)        the card and the contents put first in the body, the kit's style in the
                                     head, verdict cells labelled, local paths replaced by a file's name
    frame_html(frame)                a DataFrame as a report shows it: empty cells empty (no ``<NA>``), no
                                     index column unless the index means something, long values cut
    summarise_outputs(nb)            each output's text cut to :data:`OUTPUT_SHOWN` characters for the page

Everything here is pure: text and data in, HTML out. ``kit.report`` calls ``decorate_page`` on each page it
renders, after every notebook ran (so every page, the diagnosis notebook's own too, carries the card), and
:mod:`kit.redact_display` shows each frame through ``frame_html`` in the report's kernels.

What this module must not do: put any text into HTML unescaped (everything in the card came from the system
under investigation), reference anything outside the page (no CDN, font or image URL: the style is inline),
or decide what is secret (the report redacts each page after this).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from kit.diagnose import causes
from kit.local_paths import without_local_paths

CARD_ID: Final = "kit-summary"
TOC_ID: Final = "kit-contents"
EVIDENCE_SHOWN: Final = 3  # evidence lines in the card; the diagnosis notebook lists every one
TEXT_SHOWN: Final = 400  # characters of any one value in the card: a 400 KB item is summarised, not pasted
CELL_SHOWN: Final = 300  # characters of a table cell when pandas' display.max_colwidth says nothing smaller
# Characters of one output's text in a page: a million log lines printed, or a 400 KB item shown, is cut
# here (the executed .ipynb keeps it whole), so six notebooks' pages stay under a few MB.
OUTPUT_SHOWN: Final = 50_000

# Tones: the colour of a label. The label's words always say the same thing, so colour is never alone.
BAD, WARN, GOOD, NEUTRAL = "kit-bad", "kit-warn", "kit-good", "kit-neutral"
VERDICT_TONES: Final = {"fail": BAD, "warn": WARN, "pass": GOOD, "skip": NEUTRAL}

STYLE: Final = """
.kit-card { border: 2px solid #57606a; border-radius: 6px; padding: 0.8em 1.2em; margin: 0 0 1.5em 0;
  background: #f6f8fa; font-size: 1rem; line-height: 1.45; text-align: left; }
.kit-card.kit-bad { border-color: #cf222e; } .kit-card.kit-warn { border-color: #9a6700; }
.kit-card.kit-good { border-color: #1a7f37; }
.kit-card h2 { margin: 0 0 0.5em 0; font-size: 1.25rem; }
.kit-card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.35em 1em; margin: 0; }
.kit-card dt { font-weight: bold; } .kit-card dd { margin: 0; overflow-wrap: anywhere; }
.kit-card ul { margin: 0; padding-left: 1.2em; }
.kit-label { display: inline-block; padding: 0 0.45em; border-radius: 4px; font-weight: bold;
  font-size: 0.85em; letter-spacing: 0.02em; color: #fff; }
.kit-label.kit-bad { background: #cf222e; } .kit-label.kit-warn { background: #9a6700; }
.kit-label.kit-good { background: #1a7f37; } .kit-label.kit-neutral { background: #57606a; }
td.kit-verdict { font-weight: bold; } td.kit-verdict.kit-bad { color: #cf222e; }
td.kit-verdict.kit-warn { color: #9a6700; } td.kit-verdict.kit-good { color: #1a7f37; }
td.kit-verdict.kit-neutral { color: #57606a; }
.kit-toc { margin: 0 0 1.5em 0; font-size: 0.95rem; }
.kit-toc ul { margin: 0.3em 0; padding-left: 1.4em; } .kit-toc .kit-toc-2 { margin-left: 1.4em; }
.kit-toc .kit-toc-3 { margin-left: 2.8em; }
.jp-RenderedHTMLCommon table { margin-left: 0; table-layout: auto; }
/* Left-aligned, top-aligned, wrapped: a word breaks only when it is longer than a cell's minimum width, so a
   short value stays whole and an ARN or a token still wraps. (The template right-aligns output tables with
   a :not() selector; these match it and add the table, so they win.) */
:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon table td,
:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon table th,
.jp-RenderedHTMLCommon table td, .jp-RenderedHTMLCommon table th {
  text-align: left; vertical-align: top; white-space: normal; overflow-wrap: anywhere; min-width: 6em;
  max-width: 40em; }
.jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""


# --------------------------------------------------------------------------------------------------------
# The summary card


@dataclass(frozen=True)
class FailedPart:
    """A notebook of the run that failed: where (papermill's ``In [N]``, None when it never ran) and why."""

    notebook: str
    ename: str | None = None
    evalue: str | None = None
    cell: int | None = None


@dataclass(frozen=True)
class CardFacts:
    """What the card says, from the run: the diagnosis document (``kit.notebook.summary_document``, None when
    the run has none), the target (``Target.describe`` plus ``kind``), when it started, what failed."""

    diagnosis: Mapping[str, Any] | None
    target: Mapping[str, Any]
    started: str  # ISO 8601, UTC
    run: str = ""
    scenario: str | None = None
    diagnosis_expected: bool = False
    failed: Sequence[FailedPart] = ()
    errors: Sequence[str] = field(default_factory=tuple)
    changes: str = ""  # since the previous run, as escaped HTML (kit.report_changes.Changes.html)


def _text(value: object, limit: int = TEXT_SHOWN) -> str:
    """``value`` as escaped HTML text, cut to ``limit`` characters with a note of how much was left out."""
    text = str(value).strip()
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return html.escape(text)


def _label(words: str, tone: str) -> str:
    return f'<span class="kit-label {tone}">{html.escape(words)}</span>'


def verdict_of(diagnosis: Mapping[str, Any] | None, facts: CardFacts) -> tuple[str, str]:
    """(label, tone) of the run's verdict: the root cause's kind, or why there is no diagnosis."""
    cause = (diagnosis or {}).get("root_cause")
    if not isinstance(cause, Mapping):
        if facts.diagnosis_expected or facts.errors:
            return "NO DIAGNOSIS: THE RUN FAILED", BAD
        return "NO DIAGNOSIS IN THIS RUN", NEUTRAL
    known = causes.BY_ID.get(str(cause.get("id")))
    kind = known.kind if known is not None else "cause"
    return {
        "cause": ("ROOT CAUSE", BAD),
        "symptom": ("SYMPTOM, NO CAUSE FOUND", BAD),
        "inconclusive": ("INCONCLUSIVE", WARN),
        "none": ("NO ROOT CAUSE FOUND", GOOD),
    }[kind]


def _cause_html(facts: CardFacts) -> tuple[str, str, list[tuple[str, str]]]:
    """(tone, the verdict's line, further rows) for the card."""
    label, tone = verdict_of(facts.diagnosis, facts)
    cause = (facts.diagnosis or {}).get("root_cause")
    if not isinstance(cause, Mapping):
        why = "; ".join(facts.errors) or (
            "the notebook that writes the diagnosis did not write it"
            if facts.diagnosis_expected
            else "no notebook of this run writes a diagnosis"
        )
        return tone, f"{_label(label, tone)} {_text(why)}", []
    line = (
        f"{_label(label, tone)} <code>{_text(cause.get('id'), 80)}</code> {_text(cause.get('summary', ''))}"
    )
    rows: list[tuple[str, str]] = []
    evidence = [item for item in cause.get("evidence") or [] if str(item).strip()]
    if evidence:
        items = "".join(f"<li>{_text(item)}</li>" for item in evidence[:EVIDENCE_SHOWN])
        more = len(evidence) - EVIDENCE_SHOWN
        if more > 0:
            items += f"<li>and {more} more (the diagnosis notebook lists them)</li>"
        rows.append(("Evidence", f"<ul>{items}</ul>"))
    if str(cause.get("id")) != "none":
        rows.append(("Fix", _fix_html(facts.diagnosis or {}, cause)))
    return tone, line, rows


def _fix_html(diagnosis: Mapping[str, Any], cause: Mapping[str, Any]) -> str:
    """The fix in one line, and whether it was verified: on the lab, on a mirror, or not and why."""
    planned = diagnosis.get("fix")
    summary = planned.get("summary") if isinstance(planned, Mapping) else None
    text = _text(summary or cause.get("next_step") or "see the diagnosis notebook")
    proof = diagnosis.get("proof")
    if not isinstance(proof, Mapping):
        return f"{text}<br>{_label('NOT VERIFIED', NEUTRAL)} this run did not try to verify the fix"
    where = _text(proof.get("where") or "")
    if proof.get("verified") and proof.get("fixed"):
        said = str(proof.get("verdict", "")).removeprefix("fixed: ")
        return f"{text}<br>{_label('VERIFIED: FIXED', GOOD)} {where}: {_text(said)}"
    if proof.get("verified"):
        said = str(proof.get("verdict", "")).removeprefix("not enough: ")
        return f"{text}<br>{_label('VERIFIED: NOT ENOUGH', WARN)} {where}: {_text(said)}"
    why = _text(proof.get("why_not") or "no reason recorded")
    return f"{text}<br>{_label('NOT VERIFIED', NEUTRAL)} {where + ': ' if where else ''}{why}"


def _failed_html(failed: Sequence[FailedPart]) -> str:
    parts = []
    for part in failed:
        where = f"at cell In [{part.cell}]" if part.cell is not None else "before any cell ran"
        why = f" ({_text(f'{part.ename}: {part.evalue}')})" if part.ename else ""
        parts.append(f"<li><code>{_text(part.notebook, 80)}</code> failed {where}{why}</li>")
    lead = f"{_label('FAILED', BAD)} what these notebooks show stops at the failing cell"
    return f"{lead}<ul>{''.join(parts)}</ul>"


def target_text(target: Mapping[str, Any], scenario: str | None) -> str:
    """The target in words, without where any file is: the lab (its scenario) or the account's API."""
    kind = str(target.get("kind", ""))
    where = [
        f"{name} {target[key]}"
        for name, key in (("API", "api_id"), ("stage", "stage"), ("table", "table"), ("region", "region"))
        if target.get(key)
    ]
    if kind == "lab":
        head = f"the lab, scenario {scenario}" if scenario else "the lab"
    elif kind == "aws":
        head = "an AWS account"
    else:
        head = kind or "unknown"
    if target.get("error"):
        where.append(f"could not be resolved: {target['error']}")
    return head + (f" ({', '.join(where)})" if where else "")


def summary_card(facts: CardFacts) -> str:
    """The card that leads every page of a run (see the module docstring); every value escaped."""
    tone, verdict, rows = _cause_html(facts)
    if facts.failed:
        rows.append(("Failed", _failed_html(facts.failed)))
    if facts.changes:
        rows.append(("Since the previous run", facts.changes))
    rows.append(("Target", _text(target_text(facts.target, facts.scenario))))
    when = facts.started.replace("T", " ").replace("+00:00", " UTC")
    rows.append(("When", _text(when) + (f" · run <code>{_text(facts.run, 120)}</code>" if facts.run else "")))
    body = "".join(f"<dt>{html.escape(name)}</dt><dd>{value}</dd>" for name, value in rows)
    return (
        f'<section id="{CARD_ID}" class="kit-card {tone}" aria-label="Summary of this report">'
        f"<h2>Summary</h2><dl><dt>Verdict</dt><dd>{verdict}</dd>{body}</dl></section>"
    )


# --------------------------------------------------------------------------------------------------------
# The table of contents

# nbconvert gives each Markdown heading an id and a "¶" anchor link: <h2 id="The-fix">The fix<a …>¶</a></h2>
_HEADING: Final = re.compile(r"<h([1-3])\b[^>]*?\bid=\"([^\"]+)\"[^>]*>(.*?)</h\1>", re.DOTALL)
_ANCHOR_LINK: Final = re.compile(r"<a class=\"anchor-link\"[^>]*>.*?</a>", re.DOTALL)
_TAG: Final = re.compile(r"<[^>]*>")


def headings(page: str) -> list[tuple[int, str, str]]:
    """(level, id, text) of each ``h1``-``h3`` with an id in ``page``, in order; id and text unescaped."""
    found = []
    for match in _HEADING.finditer(page):
        text = html.unescape(_TAG.sub("", _ANCHOR_LINK.sub("", match.group(3)))).strip()
        if text:
            found.append((int(match.group(1)), html.unescape(match.group(2)), text))
    return found


def table_of_contents(page: str) -> str:
    """A ``<nav>`` linking to the page's headings, the title (a lone ``h1`` first) left out; empty when that
    leaves fewer than two."""
    found = headings(page)
    if found and found[0][0] == 1 and sum(level == 1 for level, _, _ in found) == 1:
        found = found[1:]
    if len(found) < 2:
        return ""
    top = min(level for level, _, _ in found)
    items = "".join(
        f'<li class="kit-toc-{level - top + 1}"><a href="#{html.escape(anchor)}">{_text(text, 120)}</a></li>'
        for level, anchor, text in found
    )
    return (
        f'<nav id="{TOC_ID}" class="kit-toc" aria-label="Contents">'
        f"<strong>Contents</strong><ul>{items}</ul></nav>"
    )


# --------------------------------------------------------------------------------------------------------
# The page

_MAIN_START: Final = re.compile(r"<main\b[^>]*>")  # the lab template's content starts here
_BODY_START: Final = re.compile(r"<body\b[^>]*>")
_VERDICT_CELL: Final = re.compile(r"<td>(pass|fail|warn|skip)</td>")


def _verdict_cell(match: re.Match[str]) -> str:
    verdict = match.group(1)
    return f'<td class="kit-verdict {VERDICT_TONES[verdict]}">{verdict}</td>'


def decorate_page(page: str, card: str, roots: Iterable[str] = ()) -> str:
    """``page`` (nbconvert's HTML) with the kit's style, ``card`` then the contents first in its body, each
    verdict cell of a table (``pass``/``fail``/``warn``/``skip``) labelled in colour, and every path under
    ``roots`` replaced by its file's name (:func:`kit.local_paths.without_local_paths`)."""
    page = without_local_paths(page, roots)
    page = _VERDICT_CELL.sub(_verdict_cell, page)
    lead = card + table_of_contents(page)
    start = _MAIN_START.search(page) or _BODY_START.search(page)
    at = start.end() if start else 0
    page = page[:at] + lead + page[at:]
    style = f"<style>{STYLE}</style>"
    head_end = page.find("</head>")
    return page[:head_end] + style + page[head_end:] if head_end >= 0 else style + page


# --------------------------------------------------------------------------------------------------------
# Tables


def _plain_index(index: pd.Index) -> bool:
    """An index that says nothing a reader needs: unnamed row numbers (0, 1, 2, …, or what is left of them
    after a filter). A named index, or one of names or times, means something and is shown."""
    return index.nlevels == 1 and index.name is None and pd.api.types.is_integer_dtype(index.dtype)


def _cell(value: object, limit: int) -> object:
    if isinstance(value, list | tuple | dict | set | bytes):  # an item's map or list: cut as its text
        value = str(value)
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 1]}…"
    return value


def frame_html(frame: pd.DataFrame) -> str:
    """``frame`` as HTML for a report: missing values empty, text left-aligned (the page's style), values
    longer than ``display.max_colwidth`` (else :data:`CELL_SHOWN`) cut with ``…``, the index shown only when
    it means something; a frame longer than ``display.max_rows`` shows its first and last rows as pandas does
    (``display.min_rows``) and says how many there are. Cells are escaped."""
    max_rows = pd.get_option("display.max_rows")
    width = pd.get_option("display.max_colwidth")
    limit = min(int(width), CELL_SHOWN) if width else CELL_SHOWN
    shown = frame
    if max_rows and len(frame) > max_rows:  # only the rows a display shows are formatted
        keep = max(1, min(pd.get_option("display.min_rows") or max_rows, max_rows) // 2)
        shown = pd.concat([frame.head(keep), frame.tail(keep)])
    cells = shown.astype(object).where(shown.notna(), "").map(lambda value: _cell(value, limit))
    body: str = cells.to_html(
        index=not _plain_index(frame.index),
        border=0,
        escape=True,
        max_cols=pd.get_option("display.max_columns") or None,
        show_dimensions=False,
    )
    body = str(body).replace(' style="text-align: right;"', "")
    if shown is not frame:
        body += (
            f"<p>{len(frame):,} rows × {len(frame.columns)} columns: the first and last "
            f"{len(shown) // 2} shown</p>"
        )
    return body


# --------------------------------------------------------------------------------------------------------
# Outputs too long for a page

_TEXT_MIMES: Final = ("text/plain", "text/markdown")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n\n… {len(text) - limit:,} more characters not shown here (the .ipynb holds them)\n"
    )


def _joined(text: Any) -> str:
    return text if isinstance(text, str) else "".join(text)


def summarise_outputs(nb: Any, limit: int = OUTPUT_SHOWN) -> Any:
    """``nb`` (an nbformat notebook, changed in place and returned) with each output's text cut to ``limit``
    characters, saying how much was left out: printed text, plain text and Markdown are cut; an HTML output
    that long is replaced by its plain text, cut (or, without one, by a line saying it was too long); a
    traceback keeps its last lines. Figures are left as they are."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "stream":
                output["text"] = _cut(_joined(output.get("text", "")), limit)
            elif output.get("output_type") == "error":
                lines = [str(line) for line in output.get("traceback", [])]
                while len(lines) > 1 and sum(map(len, lines)) > limit:
                    lines.pop(0)
                output["traceback"] = [_cut(line, limit) for line in lines]
            data = output.get("data") or {}
            html_text = data.get("text/html")
            if html_text is not None and len(_joined(html_text)) > limit:
                size = len(_joined(html_text))
                del data["text/html"]
                if "text/plain" not in data:
                    data["text/plain"] = f"(an output of {size:,} characters, too long for this page)"
            for mime in _TEXT_MIMES:
                if mime in data:
                    data[mime] = _cut(_joined(data[mime]), limit)
    return nb
