"""Python patterns for Arrow's regular-expression engine (RE2), with Python's meaning kept.

:mod:`kit.logparse.patterns` writes every line shape once, as a Python pattern; the per-line parser runs it
with :mod:`re`, the vectorised one with ``pyarrow.compute.extract_regex`` (RE2, in C++, a whole column at a
time). The two engines differ in a few places, so a pattern is translated, not passed through:

* ``\\s`` is Unicode whitespace in Python and ASCII whitespace in RE2: it becomes the explicit class of
  :data:`PYTHON_WHITESPACE` (``\\S`` its negation);
* ``$`` (no MULTILINE) also matches before a final ``\\n`` in Python: it becomes ``(?:\\n?\\z)``;
  ``\\Z`` becomes ``\\z``;
* every capturing group gets a name (``g1``, ``g2``...), which ``extract_regex`` requires; ``re.S`` becomes
  an inline ``(?s)``.

What RE2 cannot do or means differently (lookarounds, back-references, ``\\w``/``\\d``/``\\b``, which are
Unicode-aware in Python, other flags) is not guessed at: :func:`translate` returns None and the caller uses
Python's engine for that pattern.

One difference stays and callers account for it: where a row matches but an optional group did not take
part, RE2 through Arrow gives ``""`` where Python gives None.

Pure: no I/O.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

PYTHON_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""The characters :mod:`re` matches with ``\\s`` in a str pattern (those for which ``str.isspace()``)."""

_WHITESPACE_MEMBERS: Final = "".join(f"\\x{{{ord(char):x}}}" for char in PYTHON_WHITESPACE)
_UNSUPPORTED_ESCAPES: Final = frozenset("wWdDbBAgG0123456789")
_ALLOWED_FLAGS: Final = re.UNICODE | re.DOTALL


@cache
def translate(pattern: re.Pattern[str]) -> tuple[str, int] | None:
    """The RE2 text of ``pattern`` and its number of groups, or None when it cannot mean the same in RE2."""
    if pattern.flags & ~_ALLOWED_FLAGS:
        return None
    source = pattern.pattern
    out: list[str] = ["(?s)"] if pattern.flags & re.DOTALL else []
    groups = 0
    open_groups: list[bool] = []  # for each group open here: does it capture?
    in_class = False
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            escape = _escape(source[index + 1 : index + 2], in_class)
            if escape is None:
                return None
            out.append(escape)
            index += 2
            continue
        index += 1
        if in_class:
            in_class = char != "]"
            out.append(char)
            continue
        if char == "[":
            in_class = True
            opening, index = _class_opening(source, index)
            out.append(opening)
        elif char == "(":
            if source.startswith("?:", index):
                out.append("(?:")
                open_groups.append(False)
                index += 2
            elif source.startswith("?P<", index):
                groups += 1
                end = source.index(">", index)
                out.append(f"(?P<g{groups}>")
                open_groups.append(True)
                index = end + 1
            elif source.startswith("?", index):
                return None  # lookarounds, back-references, inline flags, comments
            else:
                groups += 1
                out.append(f"(?P<g{groups}>")
                open_groups.append(True)
        elif char == ")":
            if not open_groups:
                return None
            open_groups.pop()
            out.append(char)
        elif char == "$":
            if any(open_groups):
                return None  # the translation would capture the final newline Python leaves out
            out.append("(?:\\n?\\z)")
        else:
            out.append(char)
    return "".join(out), groups


def _class_opening(source: str, index: int) -> tuple[str, int]:
    """``[``, a ``^`` after it, and a ``]`` right after those (a member, not the end); the index after."""
    opening = "["
    if source[index : index + 1] == "^":
        opening += "^"
        index += 1
    if source[index : index + 1] == "]":
        opening += "\\]"
        index += 1
    return opening, index


def _escape(escaped: str, in_class: bool) -> str | None:
    """The RE2 form of ``\\`` + ``escaped``, or None where it would not mean the same."""
    if not escaped or escaped in _UNSUPPORTED_ESCAPES or (escaped == "S" and in_class):
        return None
    if escaped == "s":
        return _WHITESPACE_MEMBERS if in_class else f"[{_WHITESPACE_MEMBERS}]"
    if escaped == "S":
        return f"[^{_WHITESPACE_MEMBERS}]"
    if escaped == "Z":
        return "\\z"
    if escaped == " ":
        return " "
    return "\\" + escaped


def anchored(pattern: re.Pattern[str]) -> str:
    """The RE2 text of ``pattern`` anchored at the start, as ``pattern.match`` applies it."""
    translated = translate(pattern)
    if translated is None:
        raise ValueError(f"{pattern.pattern!r} has no RE2 translation")
    source = translated[0]
    flags = "(?s)" if source.startswith("(?s)") else ""
    return f"{flags}^(?:{source.removeprefix(flags)})"
