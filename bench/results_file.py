"""``bench/results.json`` on disk: read it (what is there, or nothing) and write it whole, atomically.

``make bench`` writes its figures and keeps the ``peers`` section ``make bench-peers`` wrote, and the other
way round, so one file holds the last run of each. Must not: decide what goes in the document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

# Sections each bench writes on its own, carried over when the other rewrites the file.
OWN_SECTIONS = ("peers",)


def read_results(path: Path) -> dict[str, object]:
    """The results document at ``path``; empty when there is none or it is not a JSON object."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def carried_over(
    previous: Mapping[str, object], document: Mapping[str, object], sections: Sequence[str] = OWN_SECTIONS
) -> dict[str, object]:
    """``document`` with the ``sections`` of ``previous`` it does not set itself (pure)."""
    kept = {key: previous[key] for key in sections if key in previous and key not in document}
    return {**document, **kept}


def write_results(path: Path, document: Mapping[str, object]) -> None:
    """Write ``document`` to ``path`` through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    temporary.replace(path)
