"""kit.logparse.vectorised.jsonblock: the block reading gives what the per-line rule gives, or hands the row
back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kit.logparse import patterns as p
from kit.logparse.vectorised import jsonblock

HANDLER = {
    "route": "$connect",
    "connection_id": "L0SM9cOFvHcCIhw=",
    "request_id": "f14e1218-cbb7-48d6-8dc9-99b24ee2561b",
    "outcome": "stored",
    "status": 200,
    "error_code": None,
    "detail": None,
    "failures": {},
}


def _line(**changes: object) -> str:
    return json.dumps(HANDLER | changes)


def _per_line(message: str) -> dict[str, object]:
    document = p.decode_object(message)
    return p.app_fields(document) if document is not None else {}


def _block_rows(block: jsonblock.Block, size: int) -> list[dict[str, object] | None]:
    """Each row's fields as app_fields would give them, or None for a row handed back."""
    rows: list[dict[str, object] | None] = []
    for index in range(size):
        if block.one_by_one[index]:
            rows.append(None)
            continue
        fields: dict[str, object] = {}
        for name, values in block.text.items():
            value = values[index].as_py()
            if value is not None:
                fields[name] = value
        for name, numbers in block.numbers.items():
            if not math.isnan(numbers[index]):
                fields[name] = float(numbers[index])
        rows.append(fields)
    return rows


CASES = {
    "the handler's lines": ([_line(), _line(route="$disconnect", disconnect_status_code=1001)], []),
    "a trailing line break": ([_line() + "\n", _line() + "\r\n"], []),
    "status as text": ([_line(status="200"), _line(status=" 201 "), _line(status="n/a")], []),
    "a request id that is a number": ([_line(request_id=12345), _line(request_id=7)], []),
    "text from a number Arrow reads as a double": ([_line(request_id=1), _line(request_id=1.5)], [0, 1]),
    "an ISO time Arrow would read as a timestamp": (
        [_line(detail="2025-01-01T00:00:00Z"), _line(detail="2025-01-01 00:00:00")],
        [0, 1],
    ),
    "level in lower case": ([_line(level="warning"), _line(level="Info")], []),
    "booleans, lists and objects are no value": (
        [
            _line(outcome=True, detail=[1, 2], error_code={"a": 1}),
            _line(outcome=False, detail=[], error_code={}),
        ],
        [],
    ),
    "an event printed with its requestContext": (
        [
            json.dumps(
                {"requestContext": {"connectionId": "abc=", "routeKey": "$connect", "eventType": "CONNECT"}}
            ),
            json.dumps(
                {"route": "x", "requestContext": {"routeKey": "$default", "disconnectStatusCode": 1001}}
            ),
            json.dumps({"route": "y"}),
        ],
        [],
    ),
    "a requestContext that is not an object": ([json.dumps({"requestContext": "text"})], []),
    "an inner JSON message": (
        [json.dumps({"level": "INFO", "message": json.dumps({"outcome": "stored"})})],
        [0],
    ),
    "a plain message": ([json.dumps({"level": "INFO", "message": "hello"})], []),
    "an empty object": (["{}", _line()], []),
    "NaN and infinity": ([_line(status=float("nan")), _line(status=float("inf"))], []),
    # A double holds every integer up to 2**53; past it Python's float() rounds to the nearest, and so must
    # the block (Arrow's checked cast refuses instead).
    "a status of 2**53, the last exact integer": ([_line(status=2**53), _line(status=-(2**53))], []),
    "a status past 2**53, rounded as float() rounds": (
        [_line(status=2**53 + 1), _line(status=-(2**53 + 3)), _line(status=2**63 - 1)],
        [],
    ),
    "a status past int64, which Arrow reads another way": (
        [_line(status=2**63), _line(status=-(2**63) - 1), _line(status=2**64), _line(status=10**20)],
        [],
    ),
}


@pytest.mark.parametrize(("messages", "handed_back"), CASES.values(), ids=CASES.keys())
def test_each_row_is_what_the_per_line_rule_gives(messages: list[str], handed_back: list[int]) -> None:
    block = jsonblock.read_app_fields(messages)
    rows = _block_rows(block, len(messages))
    assert [index for index, row in enumerate(rows) if row is None] == handed_back
    for message, row in zip(messages, rows, strict=True):
        if row is not None:
            assert row == _per_line(message), message


BAD_BLOCKS = {
    "a value whose type changes": _line(status="200"),
    "a duplicated key": '{"outcome": "stored", "outcome": "error"}',
    "trailing text after the object": _line() + " and a traceback",
    "a number too large for a double": '{"status": 1e400}',
    "a lone surrogate escape": '{"detail": "\\ud800"}',
    "two objects on two lines": _line() + "\n" + _line(),
    "not an object": "[1, 2]",
}


@pytest.mark.parametrize("bad", BAD_BLOCKS.values(), ids=BAD_BLOCKS.keys())
def test_a_line_the_reader_refuses_is_handed_back_alone(bad: str) -> None:
    good = [_line(connection_id=f"c{index}") for index in range(200)]
    messages = [*good[:137], bad, *good[137:]]
    block = jsonblock.read_app_fields(messages)
    handed_back = np.flatnonzero(block.one_by_one)
    assert 137 in handed_back
    assert len(handed_back) <= jsonblock.SMALLEST_BLOCK  # the halving isolates it; the rest stays whole
    rows = _block_rows(block, len(messages))
    for message, row in zip(messages, rows, strict=True):
        if row is not None:
            assert row == _per_line(message)


def test_nothing_at_all() -> None:
    block = jsonblock.read_app_fields([])
    assert len(block.one_by_one) == 0
    assert set(block.text) | set(block.numbers) == set(jsonblock.COLUMNS)


ACCESS = {
    "requestId": "abc=",
    "eventType": "CONNECT",
    "connectionId": "L0SM9cOFvHcCIhw=",
    "routeKey": "$connect",
    "status": "200",
    "integrationStatus": "-",
    "error": "-",
}

ACCESS_CASES = {
    "access lines": ([json.dumps(ACCESS), json.dumps(ACCESS | {"status": "403", "error": "Forbidden"})], []),
    "'-' is no value": ([json.dumps(ACCESS | {"requestId": "-", "extendedRequestId": "ext="})], []),
    "a level key makes no row certain": (
        [json.dumps(ACCESS), json.dumps({"level": "INFO", "message": "x"})],
        [0, 1],
    ),
    "an access key that is null may be absent or present": (
        [json.dumps({"requestId": None, "eventType": None, "connectionId": None}), json.dumps(ACCESS)],
        [0],
    ),
    "no access key at all is a plain JSON line": ([json.dumps({"hello": "world"}), json.dumps(ACCESS)], [0]),
    "a platform record": (
        [json.dumps({"type": "platform.start", "requestId": "r1"}), json.dumps(ACCESS | {"type": "x"})],
        [0],
    ),
}


@pytest.mark.parametrize(("messages", "handed_back"), ACCESS_CASES.values(), ids=ACCESS_CASES.keys())
def test_access_lines_are_what_the_per_line_rule_gives(messages: list[str], handed_back: list[int]) -> None:
    block = jsonblock.read_access_fields(messages)
    rows = _block_rows(block, len(messages))
    assert [index for index, row in enumerate(rows) if row is None] == handed_back
    for message, row in zip(messages, rows, strict=True):
        if row is not None:
            document = p.decode_object(message)
            assert document is not None and p.json_role(document) == "access"
            assert row == p.access_fields(document), message
