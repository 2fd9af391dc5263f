"""Where things sit on this machine, kept out of what a report shows: a reader sees a file's name instead.

    file_names(text)               every absolute path in ``text`` replaced by its last part (``.env.local``)
    without_local_paths(text, roots)   every path under one of ``roots`` replaced by its last part; for whole
                                   pages, where only the machine's own folders are looked for
    local_roots()                  those folders: the project root, the kit's state folder, ``$HOME``, the
                                   temporary folder and the Python environment (each also as it resolves)

A report is sent to someone else: the project root, a home folder or a temporary folder says nothing about the
fault and something about the machine. What this module must not do: touch a URL (``https://host/tmp/x`` keeps
its path), or read or write any file.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from kit.local import PROJECT_ROOT, state_dir

# A path part: anything but a separator, white space, quotes, markup and the punctuation that ends a path in
# prose ("… in /a/b.json, then"). A path starts after nothing or a character that cannot be part of a word,
# a URL, base64 (an embedded figure) or another path ("https://h/tmp", "a/tmp", "+/tmp" are not local paths).
_PART: Final = r"[^\s/\\\"'<>`|,;:()\[\]{}]+"
_NOT_AFTER: Final = r"(?<![\w.:/~%+=\\-])"
_ABSOLUTE: Final = re.compile(_NOT_AFTER + r"~?(?:/" + _PART + r")+/?")


def _last_part(path: str) -> str:
    parts = [part for part in path.split("/") if part and part != "~"]
    return parts[-1] if parts else path


def file_names(text: str) -> str:
    """``text`` with each absolute path (``/x/y/.env.local``, ``~/y/z``) replaced by its last part."""
    return _ABSOLUTE.sub(lambda match: _last_part(match.group(0)), text)


def local_roots() -> tuple[str, ...]:
    """The folders of this machine a page must not name, longest first (see the module docstring)."""
    folders = [PROJECT_ROOT, state_dir(), Path.home(), Path(tempfile.gettempdir()), Path(sys.prefix)]
    if os.environ.get("HOME"):
        folders.append(Path(os.environ["HOME"]))
    roots = {str(folder) for folder in folders} | {str(folder.resolve()) for folder in folders}
    return tuple(sorted((root for root in roots if root not in ("/", "")), key=len, reverse=True))


def without_local_paths(text: str, roots: Iterable[str]) -> str:
    """``text`` with each path under one of ``roots`` replaced by its last part (the root alone by its name).

    Only those folders are looked for, so the text can be a whole HTML page: nothing else is changed.
    """
    ordered = sorted({root.rstrip("/") for root in roots if root.rstrip("/")}, key=len, reverse=True)
    if not ordered:
        return text
    pattern = re.compile(
        _NOT_AFTER + "(?:" + "|".join(map(re.escape, ordered)) + r")(?![\w.-])(?:/" + _PART + r")*/?"
    )
    return pattern.sub(lambda match: _last_part(match.group(0)), text)
