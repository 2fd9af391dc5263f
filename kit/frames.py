"""Frame contracts: build DataFrames that have exactly their declared columns and dtypes.

Every module that returns a frame declares ``*_COLUMNS`` (name → dtype) and builds the frame here, so an
empty answer still has the columns and a timestamp is always UTC-aware. Pure; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd

UTC_DTYPE: Final = "datetime64[ns, UTC]"


def empty(columns: Mapping[str, str]) -> pd.DataFrame:
    """A frame with these columns and dtypes, empty: the kit's one way to answer "nothing" with a frame."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def utc(value: object) -> pd.Timestamp | None:
    """A UTC timestamp from a datetime (naive means UTC), an ISO 8601 string or epoch seconds; else None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if isinstance(value, datetime):
            stamp = pd.Timestamp(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            stamp = pd.Timestamp(value, unit="s")
        elif isinstance(value, str) and value.strip():
            stamp = pd.Timestamp(value.strip())
        else:
            return None
    except (ValueError, TypeError, OverflowError):
        return None
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def from_rows(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """Rows (dicts) as a frame with exactly ``columns``; missing keys are NA, datetimes become UTC."""
    if not rows:
        return empty(columns)
    data: dict[str, Any] = {}
    for name, dtype in columns.items():
        values = [row.get(name) for row in rows]
        if dtype == UTC_DTYPE:
            data[name] = pd.Series([utc(v) for v in values], dtype=UTC_DTYPE)
        else:
            data[name] = pd.Series(values, dtype=object).astype(dtype)
    return pd.DataFrame(data)
