"""kit.cli's parser: the flags the kit's own error messages tell the user to pass exist where they apply."""

from __future__ import annotations

import pytest

from kit.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["table", "create", "--target", "aws", "--allow-writes"],
        ["diagnose", "--target", "aws", "--allow-writes"],
    ],
)
def test_commands_that_write_take_allow_writes(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).allow_writes is True


@pytest.mark.parametrize("argv", [["table", "create"], ["diagnose"]])
def test_writes_are_off_unless_asked(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).allow_writes is False
