"""kit.logparse.vectorised.re2: Python patterns translated for RE2 keep their meaning, or are refused."""

from __future__ import annotations

import re
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.logparse import patterns as p
from kit.logparse.vectorised import re2


def test_the_whitespace_class_is_pythons() -> None:
    python = {chr(code) for code in range(sys.maxunicode + 1) if re.match(r"\s", chr(code))}
    assert set(re2.PYTHON_WHITESPACE) == python


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (re.compile(r"^START ([^\s]+)"), "^START (?P<g1>[^{ws}]+)"),
        (re.compile(r"a\s+b"), "a[{ws}]+b"),
        (re.compile(r"a\S"), "a[^{ws}]"),
        (re.compile(r"(x)\s*$"), "(?P<g1>x)[{ws}]*(?:\\n?\\z)"),
        (re.compile(r"x\Z"), "x\\z"),
        (re.compile(r"(?P<name>a)(b)"), "(?P<g1>a)(?P<g2>b)"),
        (re.compile(r"(?:a|b)(c)"), "(?:a|b)(?P<g1>c)"),
        (re.compile(r"^(.*)", re.S), "(?s)^(?P<g1>.*)"),
        (re.compile(r"[]a](\()"), "[\\]a](?P<g1>\\()"),
        (re.compile(r"a\ b"), "a b"),
    ],
)
def test_translations(pattern: re.Pattern[str], expected: str) -> None:
    members = "".join(f"\\x{{{ord(char):x}}}" for char in re2.PYTHON_WHITESPACE)
    translated = re2.translate(pattern)
    assert translated is not None
    assert translated[0] == expected.replace("{ws}", members)
    assert translated[1] == pattern.groups


@pytest.mark.parametrize(
    "pattern",
    [
        re.compile(r"a(?=b)"),  # lookahead
        re.compile(r"(?<!a)b"),  # lookbehind
        re.compile(r"(a)\1"),  # back-reference
        re.compile(r"\w+"),  # Unicode word characters in Python
        re.compile(r"\d"),
        re.compile(r"\bword"),
        re.compile(r"[^\S]"),  # \S inside a class
        re.compile(r"(a$)"),  # $ inside a group would capture the newline
        re.compile(r"abc", re.I),
        re.compile(r"^a", re.M),
        re.compile(r"(?i)abc"),
    ],
)
def test_what_cannot_mean_the_same_is_refused(pattern: re.Pattern[str]) -> None:
    assert re2.translate(pattern) is None


TRANSLATED = [
    (name, value)
    for name, value in vars(p).items()
    if isinstance(value, re.Pattern) and value.groups and re2.translate(value) is not None
] + [(f"EXEC_RULES[{i}]", rule.pattern) for i, rule in enumerate(p.EXEC_RULES)]

TRICKY = [
    "START RequestId: abc\u2003def",  # a Unicode space ends the id in Python
    "START RequestId:\x1cabc",  # \x1c is whitespace to Python, not to RE2
    "Runtime.ExitError\n",  # $ before a final newline
    "Runtime.ExitError\n\n",
    "[ERROR] KeyError: 'x'\nTraceback",
    "[ERROR] something went wrong: badly",
    "REPORT RequestId: r1\tDuration: 1.0 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: "
    "70 MB\tInit Duration: 3.5 ms\tStatus: error\tError Type: Runtime.ExitError",
    "(abc) Execution failed due to configuration error: Invalid permissions on Lambda function\n",
    "(abc) Execution failed",
    "Stored connection L0SM9cOFvHcCIhw= \u00a0",
    "x.ÄException: y",  # a word character to Python, not to RE2's ASCII \b
    "ResourceNotFoundException: a\rb",
]


@pytest.mark.parametrize(("name", "pattern"), TRANSLATED, ids=[name for name, _ in TRANSLATED])
def test_translated_patterns_find_what_python_finds(name: str, pattern: re.Pattern[str]) -> None:
    for text in TRICKY:
        _assert_same(pattern, text)


FRAGMENTS = [
    *"ab (){}[]:.'\"\t\n\r\u2003\x1cR=-_0129Z",
    "START RequestId: ",
    "REPORT RequestId: ",
    " Duration: ",
    " ms",
    "[ERROR] ",
    "[INFO]\t",
    "Runtime.",
    "Stored connection ",
    "connectionId",
    "An error occurred (",
    "AccessDeniedException: ",
    "Exception: ",
    ") when calling the PutItem operation",
    "Execution failed",
    "Client [Connection Id: ",
    "2025-08-31T12:34:56.789Z",
]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join))
def test_any_text_is_found_alike(text: str) -> None:
    for _, pattern in TRANSLATED:
        _assert_same(pattern, text)


def _assert_same(pattern: re.Pattern[str], text: str) -> None:
    translated = re2.translate(pattern)
    assert translated is not None
    found = pc.extract_regex(pa.array([text], type=pa.large_string()), translated[0])[0].as_py()
    match = pattern.search(text)
    if match is None:
        assert found is None, (pattern.pattern, text)
        return
    assert found is not None, (pattern.pattern, text)
    # A group that took no part is "" through Arrow and None in Python (re2's one difference).
    assert list(found.values()) == [group or "" for group in match.groups()], (pattern.pattern, text)


def test_anchored() -> None:
    start = re2.anchored(p.JSON_START)
    assert pc.match_substring_regex(pa.array([" {", "x{", "\u2003{"]), start).to_pylist() == [
        True,
        False,
        True,
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.none() | st.text(alphabet="ab\u00e9\u2003\U0001f600 \t", max_size=12), max_size=12),
    st.text(alphabet="ab\u00e9\u2003\U0001f600 \t", min_size=1, max_size=3),
)
def test_the_haystack_finds_what_str_contains_finds(texts: list[str | None], literal: str) -> None:
    from kit.logparse.vectorised.textbuffer import Haystack

    values = pa.array(texts, type=pa.large_string())
    expected = [text is not None and literal in text for text in texts]
    for frequent in (0.05, 1000.0):  # Arrow's per-text search, and the search of the whole buffer
        haystack = Haystack(values)
        haystack.FREQUENT = frequent
        assert haystack.rows_with(literal).tolist() == expected
        sliced = Haystack(values.slice(1))
        sliced.FREQUENT = frequent
        assert sliced.rows_with(literal).tolist() == expected[1:]
