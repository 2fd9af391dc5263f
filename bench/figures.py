"""Figures, their ratios and targets, and how they are shown: the pure core of the bench.

A ``Figure`` is one measured value with the baseline it is compared with (measured in the same run), the
ratio between them, and the target that ratio is held to. ``met`` is decided here, from the ratio, so
nothing in the bench compares a raw time with a fixed number; the one exception is a budget the issue states
as an absolute (lines/s, MB), whose figure says ``target_of="value"`` and still carries its baseline. A
``shortfall`` (the run missed what the target takes for granted: frames delivered, connections stored) fails
the target whatever the ratio, and the table's "met" cell says it. ``render_table`` and ``results_document``
turn a list of figures into what ``make bench`` prints and writes.
No I/O, no clocks.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Better = Literal["higher", "lower"]
RatioOf = Literal["value/baseline", "baseline/value"]
TargetSource = Literal["issue", "bench"]
TargetOf = Literal["ratio", "value"]
Detail = float | int | str | bool | None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100.")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(value: float, baseline: float | None, ratio_of: RatioOf) -> float | None:
    """``value/baseline`` or ``baseline/value``; None when either side is missing, zero or not finite."""
    if baseline is None or not math.isfinite(value) or not math.isfinite(baseline):
        return None
    numerator, denominator = (value, baseline) if ratio_of == "value/baseline" else (baseline, value)
    if denominator == 0:
        return None
    return numerator / denominator


def target_met(measured_ratio: float | None, target: float, better: Better, shortfall: str = "") -> bool:
    """Whether the ratio (or an absolute budget's value) reaches the target; a missing one never does, nor
    one whose run fell short of what the target takes for granted (``shortfall`` says how, e.g. 998/999
    delivered)."""
    if measured_ratio is None or shortfall:
        return False
    return measured_ratio >= target if better == "higher" else measured_ratio <= target


@dataclass(frozen=True)
class Figure:
    """One measured figure; build it with :func:`figure` so ``ratio`` and ``met`` follow from the inputs."""

    name: str
    title: str
    value: float
    unit: str
    baseline: float | None
    baseline_title: str
    ratio: float | None
    ratio_of: RatioOf
    target: float
    better: Better
    target_source: TargetSource
    met: bool
    details: dict[str, Detail] = field(default_factory=dict)
    note: str = ""
    target_of: TargetOf = "ratio"
    shortfall: str = ""  # why the target is not met whatever the ratio (see target_met)

    @property
    def target_text(self) -> str:
        sign = "≥" if self.better == "higher" else "≤"
        if self.target_of == "value":
            return f"{sign} {format_number(self.target)} {self.unit}"
        return f"{sign} {self.target:g}"

    def as_dict(self) -> dict[str, object]:
        document = asdict(self)
        document["target_text"] = self.target_text
        return {key: _finite_or_none(value) for key, value in document.items()}


def figure(
    name: str,
    title: str,
    *,
    value: float,
    unit: str,
    baseline: float | None,
    baseline_title: str,
    ratio_of: RatioOf,
    target: float,
    better: Better = "higher",
    target_source: TargetSource,
    details: Mapping[str, Detail] | None = None,
    note: str = "",
    target_of: TargetOf = "ratio",
    shortfall: str = "",
) -> Figure:
    measured = ratio(value, baseline, ratio_of)
    held_to = measured if target_of == "ratio" else (value if math.isfinite(value) else None)
    return Figure(
        name=name,
        title=title,
        value=value,
        unit=unit,
        baseline=baseline,
        baseline_title=baseline_title,
        ratio=measured,
        ratio_of=ratio_of,
        target=target,
        better=better,
        target_source=target_source,
        met=target_met(held_to, target, better, shortfall),
        details=dict(details or {}),
        note=note,
        target_of=target_of,
        shortfall=shortfall,
    )


def _finite_or_none(value: object) -> object:
    """JSON has no NaN: a value that could not be measured is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    return value


def format_number(value: float | None) -> str:
    """Three significant figures, no exponent for the ranges a bench produces; ``-`` when unmeasured."""
    if value is None or not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def met_text(met: bool | None, shortfall: str = "") -> str:
    """A table's "met" cell: ``yes``, ``NO``, ``NO (<shortfall>)``, or ``-`` with no target to meet."""
    if met is None:
        return "-"
    if met:
        return "yes"
    return f"NO ({shortfall})" if shortfall else "NO"


def render_table(figures: Sequence[Figure], *, width: int = 110) -> str:
    """The figures as a fixed-width table, then each figure's details and note."""
    header = ("figure", "value", "baseline (same run)", "ratio", "target", "met")
    rows = [
        (
            f.title,
            f"{format_number(f.value)} {f.unit}",
            f"{format_number(f.baseline)} ({f.baseline_title})" if f.baseline is not None else "-",
            f"{format_number(f.ratio)} ({f.ratio_of})" if f.ratio is not None else "-",
            f"{f.target_text} ({f.target_source})",
            met_text(f.met, f.shortfall),
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "-+-".join("-" * w for w in widths)
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)), rule]
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for f in figures:
        lines += ["", f"{f.title} [{f.name}]"]
        for key, value in f.details.items():
            shown = format_number(value) if isinstance(value, float) else str(value)
            lines.append(f"  {key}: {shown}")
        if f.note:
            lines += textwrap.wrap(
                f.note, width=width, initial_indent="  note: ", subsequent_indent="        "
            )
    return "\n".join(lines)


def results_document(
    figures: Sequence[Figure],
    *,
    machine: Mapping[str, object],
    settings: Mapping[str, object],
    started_at: str,
    duration_s: float,
    errors: Sequence[str] = (),
) -> dict[str, object]:
    """What ``bench/results.json`` holds: when, where, how big, and every figure with its ratio and target."""
    return {
        "timestamp": started_at,
        "duration_s": round(duration_s, 1),
        "machine": dict(machine),
        "settings": dict(settings),
        "figures": [f.as_dict() for f in figures],
        "all_met": bool(figures) and all(f.met for f in figures) and not errors,
        "errors": list(errors),
    }
