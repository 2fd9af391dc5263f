"""A Logs Insights evaluator for the subset of the query language the kit uses (pure: events in, rows out).

moto's ``StartQuery`` understands only ``fields``, ``sort`` and ``limit`` and silently ignores ``filter``,
``parse`` and ``stats``, so the lab answers Insights itself (:mod:`kit.lab.insights`) and the bench's
emulated account does too (:mod:`bench.insights`); both evaluate the query over the stored events here,
never a canned answer.

The subset (commands joined by ``|``):

    fields a, b, ...                      keep these fields (``@ptr`` is always returned for events)
    filter <condition>                    and / or / not, ( ), ispresent(f), f like /re/ or "text",
                                          f not like ..., f = | != | < | <= | > | >= literal,
                                          f in [literal, ...], f [not] in ( <subquery> )
    parse <field> /regex (?<name>...)/    named groups become fields (absent when the regex does not match)
    stats count(*)|count(f)|avg|min|max|sum(f) [as name], ... [by f, ...]
    sort f [asc|desc]                     (desc when not said, as Insights)
    dedup f, ...                          the first row of each key in the current order; rows with a
                                          missing key are all kept
    limit n

A subquery runs over the same events and window as the query around it, as Insights' does. Regular
expressions are Insights' (Java-style ``(?<name>...)`` groups). Anything else raises
:class:`QuerySyntaxError`, whose text is what ``StartQuery`` answers as ``MalformedQueryException``.

    evaluate(query, events, limit) -> rows      events: a frame of @timestamp (epoch ms), @message,
                                                @logStream, @log, @ptr; rows: GetQueryResults' shape
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

EVENT_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ptr")
DEFAULT_FIELDS = ("@timestamp", "@message")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<regex>/(?:\\.|[^/\\])*/)
      | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>|\||\(|\)|\[|\]|,|\*)
      | (?P<name>[@A-Za-z_][\w.@$]*)
    )""",
    re.X,
)
_AGGREGATES = ("count", "avg", "min", "max", "sum")
_KEYWORDS = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})


class QuerySyntaxError(ValueError):
    """A query outside the supported subset, or malformed."""


@dataclass
class _Token:
    kind: str  # regex | string | number | op | name
    text: str


def tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = "\n".join(
        line.split("#", 1)[0] if not line.lstrip().startswith("#") else "" for line in query.splitlines()
    )
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QuerySyntaxError(f"unexpected text at {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def python_regex(literal: str) -> re.Pattern[str]:
    """An Insights ``/regex/`` as a Python pattern: ``(?<name>`` named groups become ``(?P<name>``."""
    body = literal[1:-1].replace("\\/", "/")
    try:
        return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", body))
    except re.error as exc:
        raise QuerySyntaxError(f"bad regular expression {literal}: {exc}") from exc


def _string(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


# ---------------------------------------------------------------------------------------------------------
# Parsing: tokens -> commands (each a function of the frame and the whole event frame, for subqueries)
# ---------------------------------------------------------------------------------------------------------

Step = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]
Condition = Callable[[pd.DataFrame, pd.DataFrame], pd.Series]


@dataclass
class Query:
    steps: list[Step] = field(default_factory=list)
    shown: tuple[str, ...] | None = None  # the fields a `fields` or `stats` command chose
    aggregated: bool = False

    def run(self, events: pd.DataFrame) -> pd.DataFrame:
        frame = events
        for step in self.steps:
            frame = step(frame, events)
        return frame


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError(f"the query ends where {text or kind or 'more'} was expected")
        if (text is not None and token.text.lower() != text) or (kind is not None and token.kind != kind):
            raise QuerySyntaxError(f"expected {text or kind}, found {token.text!r}")
        self.at += 1
        return token

    def is_next(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text.lower() == text

    def field_name(self) -> str:
        token = self.take(kind="name")
        if token.text.lower() in _KEYWORDS:
            raise QuerySyntaxError(f"expected a field name, found {token.text!r}")
        return token.text

    def names(self) -> list[str]:
        names = [self.field_name()]
        while self.is_next(","):
            self.take(",")
            names.append(self.field_name())
        return names

    def query(self) -> Query:
        query = Query()
        self.command(query)
        while self.is_next("|"):
            self.take("|")
            self.command(query)
        return query

    def command(self, query: Query) -> None:
        word = self.take(kind="name").text.lower()
        if word == "fields":
            chosen = tuple(self.names())
            query.shown = chosen
            query.steps.append(lambda frame, _events: frame)
        elif word == "filter":
            condition = self.condition()
            query.steps.append(lambda frame, events: frame[condition(frame, events).to_numpy(dtype=bool)])
        elif word == "parse":
            query.steps.append(self.parse_step())
        elif word == "stats":
            query.steps.append(self.stats_step(query))
        elif word == "sort":
            name = self.field_name()
            ascending = False
            if self.is_next("asc") or self.is_next("desc"):
                ascending = self.take(kind="name").text.lower() == "asc"
            query.steps.append(lambda frame, _events: _sorted(frame, name, ascending=ascending))
        elif word == "dedup":
            keys = self.names()
            query.steps.append(lambda frame, _events: _dedup(frame, keys))
        elif word == "limit":
            count = int(self.take(kind="number").text)
            query.steps.append(lambda frame, _events: frame.head(count))
        else:
            raise QuerySyntaxError(f"command {word!r} is not supported by the lab's Logs Insights")

    def parse_step(self) -> Step:
        source = self.field_name()
        pattern = python_regex(self.take(kind="regex").text)
        if not pattern.groupindex:
            raise QuerySyntaxError("parse needs a regular expression with named groups (?<name>...)")

        def step(frame: pd.DataFrame, _events: pd.DataFrame) -> pd.DataFrame:
            values = _column(frame, source)
            found = values.str.extract(pattern, expand=True)
            frame = frame.copy()
            for name in pattern.groupindex:
                frame[name] = found[name].astype("string")
            return frame

        return step

    def stats_step(self, query: Query) -> Step:
        aggregates: list[tuple[str, str | None, str]] = []  # (function, field, output name)
        while True:
            function = self.take(kind="name").text.lower()
            if function not in _AGGREGATES:
                raise QuerySyntaxError(f"stats function {function!r} is not supported")
            self.take("(")
            argument = None if self.is_next("*") and self.take("*") else self.field_name()
            self.take(")")
            name = f"{function}({argument or '*'})"
            if self.is_next("as"):
                self.take("as")
                name = self.field_name()
            aggregates.append((function, argument, name))
            if not self.is_next(","):
                break
            self.take(",")
        keys: list[str] = []
        if self.is_next("by"):
            self.take("by")
            keys = self.names()
        query.shown = (*keys, *(name for _, _, name in aggregates))
        query.aggregated = True

        def step(frame: pd.DataFrame, _events: pd.DataFrame) -> pd.DataFrame:
            return _stats(frame, aggregates, keys)

        return step

    # conditions: or > and > not > comparison
    def condition(self) -> Condition:
        left = self.conjunction()
        while self.is_next("or"):
            self.take("or")
            right, first = self.conjunction(), left
            left = _combine(first, right, "or")
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.is_next("and"):
            self.take("and")
            right, first = self.negation(), left
            left = _combine(first, right, "and")
        return left

    def negation(self) -> Condition:
        if self.is_next("not"):
            self.take("not")
            inner = self.negation()
            return lambda frame, events: ~inner(frame, events)
        return self.comparison()

    def comparison(self) -> Condition:
        if self.is_next("("):
            self.take("(")
            inner = self.condition()
            self.take(")")
            return inner
        if self.is_next("ispresent"):
            self.take(kind="name")
            self.take("(")
            name = self.field_name()
            self.take(")")
            return lambda frame, _events: _column(frame, name).notna()
        name = self.field_name()
        negated = self.is_next("not")
        if negated:
            self.take("not")
        token = self.take()
        word = token.text.lower()
        if word == "like":
            matcher = self.matcher()
            test: Condition = lambda frame, _events: matcher(_column(frame, name))  # noqa: E731
        elif word == "in":
            test = self.membership(name)
        elif not negated and token.kind == "op" and word in ("=", "!=", "<", "<=", ">", ">="):
            literal = self.take()
            test = _compare(name, word, literal)
        else:
            raise QuerySyntaxError(f"unsupported condition at {token.text!r}")
        if negated:
            positive = test
            return lambda frame, events: ~positive(frame, events)
        return test

    def matcher(self) -> Callable[[pd.Series], pd.Series]:
        token = self.take()
        if token.kind == "regex":
            pattern = python_regex(token.text)
            return lambda values: _contains(values, pattern)
        if token.kind == "string":
            text = _string(token.text)
            return lambda values: values.str.contains(text, regex=False).fillna(False).astype(bool)
        raise QuerySyntaxError(f'like needs /regex/ or "text", found {token.text!r}')

    def membership(self, name: str) -> Condition:
        if self.is_next("["):
            self.take("[")
            literals = [self.literal_text()]
            while self.is_next(","):
                self.take(",")
                literals.append(self.literal_text())
            self.take("]")
            chosen = set(literals)
            return lambda frame, _events: _column(frame, name).isin(chosen).fillna(False).astype(bool)
        self.take("(")
        subquery = self.query()
        self.take(")")

        def test(frame: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
            answer = subquery.run(events)
            values = set(_column(answer, name).dropna().tolist())
            return _column(frame, name).isin(values).fillna(False).astype(bool)

        return test

    def literal_text(self) -> str:
        token = self.take()
        if token.kind == "string":
            return _string(token.text)
        if token.kind == "number":
            return token.text
        raise QuerySyntaxError(f"expected a literal, found {token.text!r}")


def _contains(values: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    with warnings.catch_warnings():  # pandas warns of groups in a pattern used only to match
        warnings.simplefilter("ignore", UserWarning)
        return values.str.contains(pattern, regex=True).fillna(False).astype(bool)


def _combine(left: Condition, right: Condition, how: str) -> Condition:
    if how == "and":
        return lambda frame, events: left(frame, events) & right(frame, events)
    return lambda frame, events: left(frame, events) | right(frame, events)


def _compare(name: str, operator: str, literal: _Token) -> Condition:
    def test(frame: pd.DataFrame, _events: pd.DataFrame) -> pd.Series:
        values = _column(frame, name)
        if literal.kind == "number":
            numbers = pd.to_numeric(values, errors="coerce")
            target: Any = float(literal.text)
            compared = _apply(numbers, operator, target)
        elif literal.kind == "string":
            compared = _apply(values, operator, _string(literal.text))
        else:
            raise QuerySyntaxError(f"cannot compare with {literal.text!r}")
        return compared.fillna(False).astype(bool)

    return test


def _apply(values: pd.Series, operator: str, target: Any) -> pd.Series:
    operations: dict[str, Callable[[pd.Series], pd.Series]] = {
        "=": lambda v: v == target,
        "!=": lambda v: v != target,
        "<": lambda v: v < target,
        "<=": lambda v: v <= target,
        ">": lambda v: v > target,
        ">=": lambda v: v >= target,
    }
    return operations[operator](values)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _sorted(frame: pd.DataFrame, name: str, *, ascending: bool) -> pd.DataFrame:
    values = _column(frame, name)
    numbers = pd.to_numeric(values, errors="coerce")
    key = numbers if numbers.notna().sum() == values.notna().sum() else values
    order = key.sort_values(ascending=ascending, kind="stable", na_position="last").index
    return frame.loc[order]


def _dedup(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    columns = pd.DataFrame({key: _column(frame, key) for key in keys}, index=frame.index)
    missing = columns.isna().any(axis=1)
    first = ~columns.duplicated(keep="first")
    return frame[(missing | first).to_numpy(dtype=bool)]


def _stats(
    frame: pd.DataFrame, aggregates: list[tuple[str, str | None, str]], keys: list[str]
) -> pd.DataFrame:
    data = pd.DataFrame({key: _column(frame, key).fillna("") for key in keys}, index=frame.index)
    for function, argument, name in aggregates:
        if argument is None:
            data[name] = 1
        elif function == "count":
            data[name] = _column(frame, argument).notna().astype(int)
        else:
            data[name] = pd.to_numeric(_column(frame, argument), errors="coerce")
    how = {
        name: ("sum" if function == "count" else {"avg": "mean"}.get(function, function))
        for function, _, name in aggregates
    }
    if not keys:
        row = {name: data[name].agg(how[name]) for name in how}
        return pd.DataFrame([row])
    return data.groupby(keys, sort=False).agg(how).reset_index()


# ---------------------------------------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------------------------------------


def insights_time(epoch_ms: int) -> str:
    """``@timestamp`` as Insights returns it: ``YYYY-MM-DD HH:MM:SS.mmm``, UTC, no zone."""
    return str(pd.Timestamp(epoch_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S.%f"))[:-3]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def evaluate(query: str, events: pd.DataFrame, limit: int = 10_000) -> list[list[dict[str, str]]]:
    """The rows ``GetQueryResults`` answers for ``query`` over ``events`` (already cut to the window).

    Each row is a list of ``{"field", "value"}`` (values are text; a field the row lacks is left out); rows
    of events carry ``@ptr``. At most ``limit`` rows, as ``StartQuery``'s ``limit`` caps them.
    """
    parser = _Parser(tokenize(query))
    parsed = parser.query()
    if parser.peek() is not None:
        raise QuerySyntaxError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    answer = parsed.run(events).head(limit)
    shown = list(parsed.shown or DEFAULT_FIELDS)
    if not parsed.aggregated and "@ptr" not in shown:
        shown.append("@ptr")
    rows: list[list[dict[str, str]]] = []
    columns = {name: answer[name].tolist() for name in shown if name in answer.columns}
    for index in range(len(answer)):
        row = []
        for name, values in columns.items():
            value = values[index]
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                continue
            text = insights_time(int(value)) if name == "@timestamp" else _text(value)
            row.append({"field": name, "value": text})
        rows.append(row)
    return rows
