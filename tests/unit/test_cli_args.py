"""kit.cli's parser: the flags the kit's own error messages tell the user to pass exist where they apply."""

from __future__ import annotations

import pytest

from kit.cli import build_parser

MAX_MINUTES = 10_519_200  # 20 years of 365.25 days: pinned here, not read from kit.cli


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


@pytest.mark.parametrize("minutes", ["1", "60", str(MAX_MINUTES)])
def test_the_logs_window_takes_whole_minutes_from_one(minutes: str) -> None:
    assert build_parser().parse_args(["logs", "--minutes", minutes]).minutes == int(minutes)


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        ("-5", f"-5 is outside 1 to {MAX_MINUTES:,} (20 years)"),
        (
            "0",
            f"0 is outside 1 to {MAX_MINUTES:,} (20 years)",
        ),  # an empty window would read nothing, silently
        (
            str(MAX_MINUTES + 1),
            f"{MAX_MINUTES + 1} is outside 1 to {MAX_MINUTES:,}",
        ),  # not a window anyone means
        ("1.5", "expected a whole number of minutes, got '1.5'"),
        ("soon", "expected a whole number of minutes, got 'soon'"),
    ],
)
def test_a_window_that_is_not_one_is_refused(
    minutes: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["logs", "events", "--minutes", minutes])
    assert exited.value.code == 2
    assert f"argument --minutes: {said}" in capsys.readouterr().err
