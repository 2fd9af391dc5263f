"""Evidence as text: what the system under investigation says, made safe for Markdown, HTML and figures.

Much of what the kit shows comes from the system it investigates: connection ids and item values from the
table, log lines, policy statements and their Sids, environment values. Those strings are data, never markup.
This module is the one place that turns them into something a renderer reads:

    markdown_text(value)     inline Markdown that renders as exactly that text: no HTML, link, image,
                             emphasis, heading, list, math or autolink can come out of it
    markdown_code(value)     the same, as a code span (identifiers in monospace)
    figure_text(value)       text for a matplotlib label, never read as mathtext
    sanitize_html(fragment)  the second line of defence for the HTML export: an allow-list of tags,
                             attributes, link schemes and CSS properties; anything else is shown as text

DataFrames need nothing from here: pandas escapes cells, index and column names when it renders HTML.

``markdown_text`` escapes as little as it can while staying safe, because a report's secrets are found by
``kit.redact`` *after* the notebook ran, in the escaped text: characters that make up tokens, keys, ARNs,
URLs and e-mail addresses (letters, digits, ``/ + = . - _ : @ %``) are left as they are wherever Markdown
does not read them, and are escaped only where it would (``-`` opening a line, ``_`` that could open
emphasis, ``:`` in ``://``).

What this module must not do: decide what is secret (``kit.redact``), or let a value through unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, Final

# --------------------------------------------------------------------------------------------------
# Markdown

# Always escaped with a backslash: Markdown (CommonMark, GFM, nbconvert's mistune with its math plugin,
# JupyterLab's marked) reads each of them somewhere in a line. `!` needs nothing: it only starts an image
# before `[`, which is escaped.
_ALWAYS: Final = frozenset("\\`*[](){}|~$")
# As HTML entities instead: `&` would start an entity, `<` raw HTML or an autolink; `>` is escaped too so a
# stray one never reads as a blockquote.
_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Read only where a line starts: list markers, headings, a setext underline, a definition, an ordered
# list's number ("1." — "1)" is escaped anyway).
_LINE_START: Final = frozenset("-+=#:")
_ORDERED: Final = re.compile(r"\d{1,9}\.")
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
LINE_BREAK_MARKUP: Final = "<br/>"  # XML-closed: nbconvert parses a heading as XML to add its anchor


def _escaped(line: str, index: int) -> bool:
    """Whether the character at ``index`` needs a backslash where it stands (see the module docstring)."""
    char = line[index]
    before = line[index - 1] if index else ""
    if char in _ALWAYS:
        return True
    if char == "_":
        # An underscore right after a letter or digit can close emphasis but never open it, and without an
        # opener there is no emphasis: so `AWS_SECRET_ACCESS_KEY` keeps its spelling.
        return not before.isalnum()
    if char == ":":  # "https://…" is autolinked; "https\://…" is not
        return line.startswith("//", index + 1) or index == 0
    if char == ".":  # "www.example.com" is autolinked by GFM; "1. x" starts an ordered list
        opening = line[max(0, index - 3) : index]
        word_start = index < 4 or not line[index - 4].isalnum()
        ordered = index <= 9 and _ORDERED.fullmatch(line[: index + 1]) is not None
        return (opening.lower() == "www" and word_start) or ordered
    return index == 0 and char in _LINE_START


def _escape_line(line: str) -> str:
    out = []
    for index, char in enumerate(line):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif _escaped(line, index):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def markdown_text(value: object) -> str:
    """``value`` as inline Markdown that renders as exactly its text.

    Surrounding whitespace is dropped (HTML would not show it, and four leading spaces would make a code
    block); a line break inside becomes ``<br/>``, so a multi-line log message stays one paragraph or list
    item and no line of it can start a block. Safe anywhere inline text may go: a paragraph, a list item, a
    heading, after ``**Evidence:**``.
    """
    text = str(value).strip()
    return LINE_BREAK_MARKUP.join(_escape_line(line.strip()) for line in _LINE_BREAK.split(text))


def markdown_code(value: object) -> str:
    """``value`` as a Markdown code span: its text verbatim, in monospace.

    The fence is one backtick longer than the longest run of backticks inside, and a space pads each side
    (CommonMark removes exactly those), so no backtick in the value can end the span early. Line breaks become
    spaces, as a code span shows them anyway.
    """
    text = " ".join(_LINE_BREAK.split(str(value)))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


# --------------------------------------------------------------------------------------------------
# Figures


def figure_text(value: object) -> str:
    """``value`` for a matplotlib label or title: a ``$`` stays a dollar sign instead of starting mathtext.

    Without this, two dollar signs in a label (``$connect … $default``, or a hostile id) are parsed as TeX,
    and an unparsable one makes drawing the whole figure fail.
    """
    return str(value).replace("$", r"\$")


# --------------------------------------------------------------------------------------------------
# HTML

SAFE_TAGS: Final = frozenset(
    {
        # text
        "p", "div", "span", "br", "hr", "pre", "code", "blockquote", "em", "strong", "b", "i", "u", "s",
        "del", "ins", "small", "sub", "sup", "kbd", "samp", "var", "abbr", "mark",
        # headings and lists
        "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
        # tables (pandas, mistune)
        "table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td",
        # links; no <img>: figures are the template's own <img src="data:…">, never sanitised markup
        "a",
    }
)  # fmt: skip
# Dropped with everything inside: pandas puts a scoped <style> before each table (cosmetic), and CSS text
# shown as a paragraph would only clutter the report.
DROPPED_TAGS: Final = frozenset({"style"})
GLOBAL_ATTRIBUTES: Final = frozenset({"class", "id", "title", "style"})
TAG_ATTRIBUTES: Final[dict[str, frozenset[str]]] = {
    "a": frozenset({"href"}),
    "table": frozenset({"border"}),
    "th": frozenset({"colspan", "rowspan", "halign", "valign", "align"}),
    "td": frozenset({"colspan", "rowspan", "valign", "align"}),
    "col": frozenset({"span"}),
    "colgroup": frozenset({"span"}),
    "ol": frozenset({"start", "type"}),
}
# What our outputs style: table alignment (pandas, mistune) and papermill's red error banner.
CSS_PROPERTIES: Final = frozenset(
    {
        "color",
        "background-color",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "text-align",
        "vertical-align",
        "white-space",
    }
)
LINK_SCHEMES: Final = frozenset({"http", "https", "mailto"})  # and relative links (``#papermill-error-cell``)


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    return name in GLOBAL_ATTRIBUTES or name in TAG_ATTRIBUTES.get(tag, frozenset())


@cache
def _cleaner() -> Any:
    """The bleach cleaner (bleach ships with nbconvert and is its own sanitiser), built on first use."""
    import bleach
    from bleach.css_sanitizer import CSSSanitizer
    from bleach.html5lib_shim import Filter

    class _DropElements(Filter):  # type: ignore[misc]
        """Removes DROPPED_TAGS elements with their content (the sanitiser passes them through)."""

        def __iter__(self) -> Iterator[dict[str, Any]]:
            depth = 0
            for token in super().__iter__():
                kind = token.get("type")
                dropped = token.get("name") in DROPPED_TAGS
                if dropped and kind == "StartTag":
                    depth += 1
                elif dropped and kind == "EndTag" and depth:
                    depth -= 1
                elif not depth:
                    yield token

    return bleach.Cleaner(
        tags=SAFE_TAGS | DROPPED_TAGS,
        attributes=_attribute_allowed,
        protocols=LINK_SCHEMES,
        strip=False,  # a tag that is not allowed is shown as text, not hidden: it is evidence too
        strip_comments=True,
        css_sanitizer=CSSSanitizer(allowed_css_properties=CSS_PROPERTIES),
        filters=[_DropElements],
    )


def sanitize_html(fragment: str | bytes) -> str:
    """``fragment`` with only :data:`SAFE_TAGS`, their allowed attributes, ``http``/``https``/``mailto`` (or
    relative) links and a few CSS properties; any other tag is escaped so it reads as text, ``<style>``
    elements are removed, comments too. ``javascript:``, ``data:`` and ``vbscript:`` links lose their href.

    Used as nbconvert's ``clean_html`` filter, on each Markdown cell, HTML and Markdown output and highlighted
    code, never on the page nbconvert wraps around them.
    """
    text = fragment.decode("utf-8") if isinstance(fragment, bytes) else str(fragment)
    return str(_cleaner().clean(text))
