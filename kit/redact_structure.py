"""Redaction by structure: what is secret because of where it sits, not because of what it looks like.

A value is secret when its key or column says so (``password``, ``SecretAccessKey``, ``x-api-key``,
``sessionToken``...), or when it is the value of a name/value pair whose name says so (an items frame in long
form, ``attribute=password`` in one cell and the value in the next; ``{"Name": "DB_PASSWORD", "Value": ...}``;
a row of a table whose header cell says ``token``). This module decides that for names
(:func:`is_secret_name`), JSON-like values (:func:`redact_mapping`), DataFrames and Series
(:func:`redact_frame`), HTML tables (:func:`redact_tables`) and Markdown tables (:func:`redact_pipe_tables`);
what is secret by its shape or because it is
known is :class:`kit.redact.Redactor`'s business, passed in here as ``text``, a function applied to every
other string.

Names are judged by their words (``SecretAccessKey`` → secret, access, key), so ``credential_source``,
``token_kind``, ``max_token_length``, ``AccessKeyId``, ``password__type`` and ``TOKENIZERS_PARALLELISM`` stay
visible: they describe a secret without holding one, and the diagnosis needs them.

What this module must not do: change what it is given (frames, mappings and markup come back as copies), or
drop a row, a column or a key: a masked value becomes ``***``; absent values (None, NA) stay absent.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

REDACTED: Final = "***"
Text = Callable[[str], str]

# Words that make a name secret. Stems also count inside a longer word ("nextauthsecret", "dbpassword").
SECRET_WORDS: Final = frozenset(
    {
        "secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase", "passcode",
        "token", "tokens", "credential", "credentials", "creds", "signature", "authorization",
        "cookie", "cookies", "apikey", "privatekey",
    }
)  # fmt: skip
SECRET_STEMS: Final = ("secret", "passw", "token", "credential", "apikey", "privatekey")
# "KEY" alone names a partition key or a header nonce (Sec-WebSocket-Key); these say which key is a secret.
SECRET_KEY_QUALIFIERS: Final = frozenset(
    {"api", "private", "access", "secret", "signing", "encryption", "master", "auth", "client", "session"}
)
NOT_SECRET_WORDS: Final = frozenset({"tokenizer", "tokenizers", "tokenize", "tokenized", "tokenization"})
# A name whose last word is one of these describes a secret (where it came from, its kind, its size, when it
# expires) rather than holding it; the first words "has"/"is" make a flag.
DESCRIBING_WORDS: Final = frozenset(
    {
        "source", "sources", "mode", "type", "kind", "file", "path", "dir", "name", "names", "id", "ids",
        "arn", "url", "uri", "endpoint", "count", "length", "len", "size", "expires", "expiry",
        "expiration", "expired", "provider", "format", "pattern", "present", "required", "set", "enabled",
        "status", "version", "ttl", "prefix", "age", "policy", "rotation",
    }
)  # fmt: skip
FLAG_WORDS: Final = frozenset({"has", "is", "no", "num", "max", "min"})

# Columns (and mapping keys) that hold a name, and those that hold that name's value, in a long-form table.
NAME_FIELDS: Final = frozenset(
    {
        "name", "key", "attribute", "attributename", "parameter", "parametername", "parameterkey",
        "variable", "var", "field", "fieldname", "header", "headername", "setting", "property", "option",
    }
)  # fmt: skip
VALUE_FIELDS: Final = frozenset(
    {
        "value", "values", "val", "attributevalue", "parametervalue", "settingvalue", "headervalue",
        "fieldvalue", "data",
    }
)  # fmt: skip

# SecretAccessKey → Secret, Access, Key; XAmzSecurityToken → X, Amz, Security, Token; AWS_KEY → AWS, KEY.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def name_words(name: str) -> list[str]:
    """The lower-case words of a key, column or variable name, split at separators and camelCase."""
    return [word.lower() for word in _WORD.findall(name)]


# Environment variables whose value is a secret, by name. ACCESS_KEY(?!_ID): AWS_SECRET_ACCESS_KEY yes,
# AWS_ACCESS_KEY_ID no (a key id is masked apart, as kit.credentials.mask_access_key_id shows it).
SECRET_VARIABLE: Final = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_KEY(?!_ID)", re.IGNORECASE
)
# AWS_WEB_IDENTITY_TOKEN_FILE and the like name where a secret is, not the secret; replacing a path (and, by
# the redactor's fragment rule, every URL sharing 12 characters with it) would only blank out a report.
REFERENCE_SUFFIXES: Final = ("_FILE", "_PATH", "_DIR", "_SOCK")


def is_secret_variable(name: str) -> bool:
    """Whether an environment variable of this name holds a secret: the kit's one judge, for the functions'
    environment it shows, the ``NEXT_PUBLIC_`` warning and the values a report's redactor hunts.

    :data:`SECRET_VARIABLE`'s stems, or a name :func:`is_secret_name` judges secret (``DB_PWD``,
    ``SIGNING_KEY``); never a name for where a secret is (``..._FILE``, ``..._PATH``).
    """
    return bool(SECRET_VARIABLE.search(name) or is_secret_name(name)) and not name.upper().endswith(
        REFERENCE_SUFFIXES
    )


def is_secret_name(name: object) -> bool:
    """Whether a key, column, header or variable of this name holds a secret (see the module docstring)."""
    return isinstance(name, str) and 0 < len(name) <= 128 and _names_secret(name)


@functools.lru_cache(maxsize=4096)  # the same few keys recur on every line of a log
def _names_secret(name: str) -> bool:
    words = name_words(name)
    if not words or words[-1] in DESCRIBING_WORDS or (words[0] in FLAG_WORDS and len(words) > 1):
        return False
    for index, word in enumerate(words):
        if word in NOT_SECRET_WORDS:
            continue
        if word in SECRET_WORDS or any(stem in word for stem in SECRET_STEMS):
            return True
        if word == "key" and index > 0 and words[index - 1] in SECRET_KEY_QUALIFIERS:
            return True
    return False


def field_name(name: object) -> str:
    """``Attribute Name``, ``attribute_name`` and ``AttributeName`` are one field name: ``attributename``."""
    return "".join(name_words(name)) if isinstance(name, str) else ""


# --------------------------------------------------------------------------------------------------------
# JSON-like values


def redact_mapping(value: Any, text: Text, *, secret: bool = False) -> Any:
    """A JSON-like value with every string passed through ``text`` and every value under a secret key masked.

    Under a secret key (or as the value of a secret name/value pair) every string and number below is
    masked, however deeply nested (``{"password": {"S": "..."}}``); keys stay, so the shape is still shown.
    """
    if isinstance(value, str):
        return REDACTED if secret and value else text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return REDACTED if secret else value
    if isinstance(value, Mapping):
        paired = _paired_secret(value)
        return {
            (text(key) if isinstance(key, str) else key): redact_mapping(
                item,
                text,
                secret=secret or is_secret_name(key) or (paired and field_name(key) in VALUE_FIELDS),
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_mapping(item, text, secret=secret) for item in value]
    return value


def _paired_secret(mapping: Mapping[Any, Any]) -> bool:
    """``{"Name": "DB_PASSWORD", "Value": "..."}``: a name field naming a secret, next to a value field."""
    return any(field_name(key) in NAME_FIELDS and is_secret_name(item) for key, item in mapping.items())


# --------------------------------------------------------------------------------------------------------
# DataFrames and Series


def redact_frame(frame: pd.DataFrame | pd.Series, text: Text, *, rows: int | None = None) -> Any:
    """A copy of ``frame`` (or a Series) redacted by structure, every other string cell and label by ``text``.

    Masked: a column named as a secret; the value cells of a row whose name cell (a column in
    :data:`NAME_FIELDS`) names a secret; every cell of a row whose index label names a secret; a Series'
    value under a secret label. Dicts and lists in cells go through :func:`redact_mapping`. ``rows`` limits
    the text pass to the first and last ``rows`` rows (what a display shows): the structural masks always
    cover the whole frame. Masked columns become ``object`` dtype so ``***`` fits in any of them.
    """
    if isinstance(frame, pd.Series):
        return redact_frame(frame.to_frame(), text, rows=rows).iloc[:, 0].rename(_labeller(text)(frame.name))
    out = frame.copy()
    n = len(out)
    chosen = list(range(n)) if rows is None or n <= 2 * rows else [*range(rows), *range(n - rows, n)]
    by_label = _secret_labels(out.index)
    value_columns = [i for i, column in enumerate(out.columns) if field_name(_last(column)) in VALUE_FIELDS]
    paired = np.zeros(n, dtype=bool)
    if value_columns:
        for i, column in enumerate(out.columns):
            if field_name(_last(column)) in NAME_FIELDS:
                paired |= np.fromiter((is_secret_name(c) for c in out.iloc[:, i].tolist()), bool, n)

    for position, column in enumerate(list(out.columns)):
        cells = out.iloc[:, position]
        if _is_secret_label(column):
            masked = np.ones(n, dtype=bool)
        else:
            masked = by_label | paired if position in value_columns else by_label
        masked_rows = np.flatnonzero(masked).tolist()
        texts = _text_rows(cells, chosen)
        if not masked_rows and not texts:
            continue
        values = cells.astype(object).tolist()
        for row in texts:
            values[row] = _cell(values[row], text)
        for row in masked_rows:
            if not _absent(values[row]):
                values[row] = REDACTED
        # `***` fits no numeric column, and a category it is not one of would become NA.
        dtype = object if masked_rows or isinstance(cells.dtype, pd.CategoricalDtype) else cells.dtype
        out.isetitem(position, pd.Series(values, index=out.index, dtype=dtype, name=column))
    return out.rename(index=_labeller(text), columns=_labeller(text))


def _secret_labels(index: pd.Index) -> np.ndarray[Any, Any]:
    """Per row, whether its index label names a secret (only text labels can)."""
    if isinstance(index, pd.RangeIndex) or pd.api.types.is_numeric_dtype(index.dtype):
        return np.zeros(len(index), dtype=bool)
    return np.fromiter((_is_secret_label(label) for label in index), bool, len(index))


def _last(column: object) -> object:
    """The last level of a MultiIndex column label (the attribute name), or the label itself."""
    return column[-1] if isinstance(column, tuple) and column else column


def _is_secret_label(label: object) -> bool:
    parts = label if isinstance(label, tuple) else (label,)
    return any(is_secret_name(part) for part in parts)


def _text_rows(cells: pd.Series, chosen: list[int]) -> list[int]:
    """The rows of ``chosen`` whose cell holds text or a structure (only those can hold a secret's text)."""
    if pd.api.types.is_numeric_dtype(cells.dtype) or pd.api.types.is_datetime64_any_dtype(cells.dtype):
        return []
    if isinstance(cells.dtype, pd.CategoricalDtype):
        return chosen
    if not (isinstance(cells.dtype, pd.StringDtype) or cells.dtype == object):
        return []
    return chosen


def _cell(value: Any, text: Text) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, Mapping | list | tuple):
        return redact_mapping(value, text)
    if isinstance(value, bytes):
        return text(value.decode("utf-8", "replace"))
    return value


def _absent(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: not a scalar, so present
        return False


def _labeller(text: Text) -> Callable[[Any], Any]:
    return lambda label: text(label) if isinstance(label, str) else label


# --------------------------------------------------------------------------------------------------------
# HTML tables (pandas' to_html, Styler, nbconvert's Markdown tables)

_TABLE = re.compile(r"<table\b[^>]*>.*?</table\s*>", re.IGNORECASE | re.DOTALL)
_ROW = re.compile(r"<tr\b[^>]*>.*?</tr\s*>", re.IGNORECASE | re.DOTALL)
_CELL = re.compile(r"(<(t[hd])\b([^>]*)>)(.*?)(</\2\s*>)", re.IGNORECASE | re.DOTALL)
_THEAD_END = re.compile(r"</thead\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
# How pandas shows a missing value: masking it would claim a value was there.
_SHOWN_ABSENT = frozenset({"", "NaN", "nan", "None", "<NA>", "NaT", "null"})
_COLSPAN = re.compile(r"\bcolspan\s*=\s*[\"']?(\d+)", re.IGNORECASE)


def redact_tables(markup: str) -> str:
    """``markup`` with the cells of every HTML table that sit under or beside a secret name replaced.

    A header cell naming a secret masks its column's data cells; a row header (``<th>`` in a body row) naming
    a secret masks that row's data cells; a name column (:data:`NAME_FIELDS`) naming a secret masks the
    row's value columns (:data:`VALUE_FIELDS`). Everything else is left byte for byte.
    """
    if "<t" not in markup.lower():
        return markup
    return _TABLE.sub(lambda m: _redact_table(m.group(0)), markup)


def _cell_text(inner: str) -> str:
    return html.unescape(_TAG.sub("", inner)).strip()


def _positions(row: str) -> list[tuple[re.Match[str], int, int]]:
    """Each cell of a row with the first and last column it spans."""
    cells, column = [], 0
    for cell in _CELL.finditer(row):
        span = _COLSPAN.search(cell.group(3))
        width = max(1, int(span.group(1))) if span else 1
        cells.append((cell, column, column + width - 1))
        column += width
    return cells


def _redact_table(table: str) -> str:
    rows = list(_ROW.finditer(table))
    head_end = _THEAD_END.search(table)
    header_rows: list[re.Match[str]] = []
    for row in rows:
        in_head = head_end is not None and row.start() < head_end.start()
        cells = _positions(row.group(0))
        if in_head or (head_end is None and cells and all(c.group(2).lower() == "th" for c, _, _ in cells)):
            header_rows.append(row)
        else:
            break
    secret_columns: set[int] = set()
    name_columns: set[int] = set()
    value_columns: set[int] = set()
    for row in header_rows:
        for cell, first, last in _positions(row.group(0)):
            label = _cell_text(cell.group(4))
            span = set(range(first, last + 1))
            if is_secret_name(label):
                secret_columns |= span
            if field_name(label) in NAME_FIELDS:
                name_columns |= span
            if field_name(label) in VALUE_FIELDS:
                value_columns |= span

    pieces: list[str] = []
    last_end = 0
    for row in rows[len(header_rows) :]:
        cells = _positions(row.group(0))
        labels = {first: _cell_text(cell.group(4)) for cell, first, _ in cells}
        row_secret = any(is_secret_name(labels[f]) for c, f, _ in cells if c.group(2).lower() == "th")
        paired = any(is_secret_name(labels.get(column, "")) for column in name_columns)
        masked = [
            cell
            for cell, first, _ in cells
            if cell.group(2).lower() == "td"
            and (row_secret or first in secret_columns or (paired and first in value_columns))
            and labels[first] not in _SHOWN_ABSENT
        ]
        if not masked:
            continue
        pieces.append(table[last_end : row.start()])
        pieces.append(_mask_cells(row.group(0), masked))
        last_end = row.end()
    pieces.append(table[last_end:])
    return "".join(pieces)


def _mask_cells(row: str, masked: list[re.Match[str]]) -> str:
    out: list[str] = []
    last = 0
    for cell in masked:
        out += [row[last : cell.start(4)], REDACTED]
        last = cell.end(4)
    out.append(row[last:])
    return "".join(out)


# --------------------------------------------------------------------------------------------------------
# Markdown (pipe) tables: a notebook's Markdown cells, DataFrame.to_markdown() printed or displayed

_PIPE_RULE = re.compile(r"[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*")
_PIPE = re.compile(r"(?<!\\)\|")


def _pipe_cells(line: str) -> tuple[list[str], bool, bool]:
    """A table row's cells, and whether it opens and closes with a pipe."""
    body = line.strip()
    opened, closed = body.startswith("|"), body.endswith("|") and len(body) > 1
    body = body[1 if opened else 0 : -1 if closed else len(body)]
    return [cell.strip() for cell in _PIPE.split(body)], opened, closed


def redact_pipe_tables(text: str) -> str:
    """``text`` with the cells of every Markdown table masked by the rules of :func:`redact_tables`."""
    if "|" not in text or "---" not in text:
        return text
    lines = text.split("\n")
    row = 0
    while row < len(lines) - 1:
        if "|" not in lines[row] or not _PIPE_RULE.fullmatch(lines[row + 1]):
            row += 1
            continue
        header, _, _ = _pipe_cells(lines[row])
        if len(_pipe_cells(lines[row + 1])[0]) != len(header):  # `text\n---` is a heading, not a table
            row += 1
            continue
        secret = {i for i, name in enumerate(header) if is_secret_name(name)}
        names = {i for i, name in enumerate(header) if field_name(name) in NAME_FIELDS}
        values = {i for i, name in enumerate(header) if field_name(name) in VALUE_FIELDS}
        row += 2
        while row < len(lines) and "|" in lines[row] and lines[row].strip():
            cells, opened, closed = _pipe_cells(lines[row])
            paired = any(is_secret_name(cells[i]) for i in names if i < len(cells))
            masked = [
                REDACTED if cell not in _SHOWN_ABSENT and (i in secret or (paired and i in values)) else cell
                for i, cell in enumerate(cells)
            ]
            if masked != cells:
                lines[row] = ("| " if opened else "") + " | ".join(masked) + (" |" if closed else "")
            row += 1
    return "\n".join(lines)
