"""Log lines as people paste them from a terminal: ``aws logs tail`` and ``sam logs`` put a prefix (the
event's time, and in some forms its stream) before each message. :func:`detect` decides a file's form from
its first lines; :func:`strip` takes the prefix off every line of that form into the ``timestamp`` and
``log_stream`` columns, so the message inside is read as its kind (Lambda's START/END/REPORT, a console
line, API Gateway's lines). Pure.

The forms (the prefixes' shapes; ``sam logs`` is [inferred] from SAM CLI's printed output, not from its
source):

    tail-detailed   ``aws logs tail --format detailed`` (the default): <ISO time+offset> <stream> <message>
    tail-short      ``aws logs tail --format short``: <ISO time, no offset> <message>
    sam             ``sam logs``: <stream> <ISO time> <message>

A form is chosen only when most of the first lines have its prefix (:data:`MAJORITY`), so a file of raw
Lambda lines whose messages start with a date is never mistaken for one; a line without the prefix (the
second line of a multi-line message) is kept whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import pandas as pd

_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
_OFFSET = r"(?:Z|[+-]\d{2}:\d{2})"
FORMS: Final[dict[str, re.Pattern[str]]] = {
    "tail-detailed": re.compile(rf"^(?P<time>{_TIME}{_OFFSET}) (?P<stream>\S+) (?P<message>.*)$", re.DOTALL),
    "sam": re.compile(rf"^(?P<stream>\S+) (?P<time>{_TIME}{_OFFSET}?) (?P<message>.*)$", re.DOTALL),
    "tail-short": re.compile(rf"^(?P<time>{_TIME}) (?P<message>.*)$", re.DOTALL),
}
SAMPLE: Final = 50  # lines looked at
MAJORITY: Final = 0.8  # of them with the form's prefix


def detect(lines: Iterable[str]) -> str | None:
    """The form of a file whose first lines are ``lines`` (blank lines aside), or None for raw lines."""
    sample = [line for line in (str(x) for x in lines) if line.strip()][:SAMPLE]
    if not sample:
        return None
    for name, pattern in FORMS.items():
        if sum(1 for line in sample if pattern.match(line)) >= MAJORITY * len(sample):
            return name
    return None


def strip(frame: pd.DataFrame, form: str | None) -> pd.DataFrame:
    """``frame`` (raw event columns) with each line's ``form`` prefix moved into ``timestamp`` (epoch ms, as
    CloudWatch gives it) and ``log_stream``; lines without it, and every line when ``form`` is None, stay
    as they are."""
    if form is None or frame.empty:
        return frame
    parts = frame["message"].str.extract(FORMS[form])
    matched = parts["message"].notna()
    if not matched.any():
        return frame
    out = frame.copy()
    out.loc[matched, "message"] = parts.loc[matched, "message"]
    times = pd.to_datetime(parts.loc[matched, "time"], utc=True, errors="coerce", format="ISO8601")
    millis = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    out.loc[matched, "timestamp"] = millis.astype("Int64")
    if "stream" in parts:
        out.loc[matched, "log_stream"] = parts.loc[matched, "stream"]
    return out.astype(frame.dtypes.to_dict())


# ---------------------------------------------------------------------------------------------------------
# Whole documents: Logs Insights results and the console's CSV download
# ---------------------------------------------------------------------------------------------------------

_INSIGHTS_HEAD = re.compile(rb'^\s*\{\s*"(?:results|statistics|status)"')
_CSV_MESSAGE_COLUMNS = ("@message", "message")
_CSV_TIME_COLUMNS = ("@timestamp", "timestamp")
_CSV_STREAM_COLUMNS = ("@logStream", "logStreamName", "log_stream", "logStream")
_CSV_GROUP_COLUMNS = ("@log", "logGroupName", "log_group", "logGroup")


# How a file that is not log text starts, and what to do with it: the kit reads text, not archives.
_PACKED: Final = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip, or zcat FILE > FILE.log)"),
    (b"PK\x03\x04", "a zip archive", "unzip it and give the log file inside"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),  # then a digit and "1AY&SY"
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (unzstd)"),
    (
        b"\xff\xfe",
        "UTF-16 text (as a PowerShell redirect writes it)",
        "save it as UTF-8 (Out-File -Encoding utf8)",
    ),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
)


_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")  # "BZh" alone could start a line of text


def not_text(head: bytes) -> str | None:
    """What a file is, and what to do, when it is an archive or UTF-16 rather than log text (pure). Stray
    binary lines inside log text are not this: they are read and marked by the parse."""
    for magic, what, next_step in _PACKED:
        if head.startswith(magic) and (magic != b"BZh" or _BZIP2.match(head)):
            return f"is {what}, not log text; {next_step}"
    return None


def is_insights(head: bytes) -> bool:
    """Whether a file starts as ``aws logs get-query-results`` output (its first key)."""
    return _INSIGHTS_HEAD.match(head.removeprefix(b"\xef\xbb\xbf")) is not None


def is_csv(head: bytes) -> bool:
    """Whether a file starts with a CSV header naming a message column (the console's download)."""
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    names = [name.strip().strip('"') for name in first.split(",")]
    return len(names) >= 2 and any(name in _CSV_MESSAGE_COLUMNS for name in names)


def _epoch_ms(text: str) -> int | None:
    """``2024-01-01 12:00:00.000`` (Insights, UTC), an ISO time, or epoch milliseconds → epoch ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    return (
        None if pd.isna(moment) else int((moment - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    )


def _group(value: str | None) -> str | None:
    """``@log`` is ``<account>:<group>``; the group alone."""
    if not value:
        return None
    account, _, group = value.partition(":")
    return group if account.isdigit() and group else value


def insights_events(document: object, name: str) -> list[dict[str, object]]:
    """The rows of a ``get-query-results`` answer as events (``@message`` each; its time, stream and group
    when the query kept them). A document without ``results`` or a row without ``@message`` is an error
    naming it."""
    from kit.errors import ConfigurationError

    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise ConfigurationError(
            f"{name}: a Logs Insights answer without a results list; save the whole output "
            "of `aws logs get-query-results`."
        )
    events: list[dict[str, object]] = []
    for number, row in enumerate(results, 1):
        fields = (
            {str(f.get("field")): f.get("value") for f in row if isinstance(f, dict)}
            if isinstance(row, list)
            else {}
        )
        if "@message" not in fields:
            raise ConfigurationError(
                f"{name}: result {number} has no @message field; keep `fields @message` "
                "(and @timestamp, @logStream, @log) in the query."
            )
        events.append(
            {
                "message": str(fields["@message"]),
                "timestamp": _epoch_ms(str(fields["@timestamp"])) if fields.get("@timestamp") else None,
                "logStreamName": fields.get("@logStream"),
                "logGroupName": _group(fields.get("@log")),
            }
        )
    return events


def csv_events(text: str, name: str) -> list[dict[str, object]]:
    """The rows of a CSV download (a header naming ``@message`` or ``message``; quoted fields may hold line
    breaks) as events."""
    import csv
    import io

    from kit.errors import ConfigurationError

    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    columns = reader.fieldnames or []

    def first(candidates: tuple[str, ...]) -> str | None:
        return next((c for c in candidates if c in columns), None)

    message, time, stream, group = (
        first(c) for c in (_CSV_MESSAGE_COLUMNS, _CSV_TIME_COLUMNS, _CSV_STREAM_COLUMNS, _CSV_GROUP_COLUMNS)
    )
    if message is None:
        raise ConfigurationError(f"{name}: a CSV without a message column; download it with @message kept.")
    events: list[dict[str, object]] = []
    try:
        for row in reader:
            events.append(
                {
                    "message": row.get(message) or "",
                    "timestamp": _epoch_ms(row[time]) if time and row.get(time) else None,
                    "logStreamName": row.get(stream) if stream else None,
                    "logGroupName": _group(row.get(group)) if group else None,
                }
            )
    except csv.Error as exc:
        raise ConfigurationError(f"{name}: line {reader.line_num} is not valid CSV ({exc}).") from exc
    return events
