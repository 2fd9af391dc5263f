"""The `kit` command end to end: a lab in the foreground, commands against it, exit codes, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import logparse
from kit.lab import scenarios

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ sits beside kit/; its generator writes the lab's own log lines
    sys.path.insert(0, str(ROOT))

from bench.evidence import log_events  # noqa: E402

pytestmark = pytest.mark.integration

KIT = [sys.executable, "-m", "kit.cli"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KIT + args, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KIT_STATE_DIR": str(tmp_path / "state")}


def test_scenarios_are_listed(env: dict[str, str]) -> None:
    out = _run(["lab", "scenarios"], env)
    assert out.returncode == 0
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == list(scenarios.SCENARIOS)


@pytest.mark.parametrize("command", [["diagnose"], ["probe"], ["logs"], ["config"], ["table"]])
def test_no_lab_is_one_line_and_exit_2(env: dict[str, str], command: list[str]) -> None:
    out = _run(command, env)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "kit lab up" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["python-text.log", "access.log", "scenario-access.json", "odd.log"])
def test_logs_parse_reads_raw_lines_and_exports(env: dict[str, str], name: str) -> None:
    out = _run(["logs", "parse", str(ROOT / "tests/data/logs" / name), "--csv"], env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split(",") == list(logparse.LOG_COLUMNS)


def test_logs_parse_of_a_missing_file_is_one_line(env: dict[str, str]) -> None:
    out = _run(["logs", "parse", "/nonexistent/file.log"], env)
    assert out.returncode == 2 and out.stderr.startswith("kit: cannot read")


# `kit logs parse` with the reading module's part size set first (where there is one: the code before
# parts ignores it and reads the file whole, which is what the memory test below must catch).
PARSE_IN_PARTS = (
    "import sys\n"
    "try:\n"
    "    import kit.logparse.reading as reading\n"
    "    reading.PART_SIZE = int(sys.argv[1])\n"
    "except ImportError:\n"
    "    pass\n"
    "from kit.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _peak_rss_mb(args: list[str], env: dict[str, str], tmp_path: Path) -> float:
    """Run `kit` with ``args`` (output thrown away) and return its own peak resident set, from wait4."""
    with (tmp_path / "stderr.txt").open("w+") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", PARSE_IN_PARTS, *args],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        assert child.returncode == 0, errors.read()
    return usage.ru_maxrss / 1024  # KiB on Linux


def test_logs_parse_of_a_big_file_stays_within_three_times_its_size(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The issue's 200 MB file took 15.1 GB because the whole frame and its text were built; a part at a time,
    the memory a file adds over a file of a few lines is what a part costs, not what the file does. Parts of
    1 MiB here (the default is 8) keep a 24 MB file quick while its growth would show any whole-file copy:
    the parse costs ten times its input, so one whole-file frame alone would be about 200 MB."""
    block = b"".join(event["message"].rstrip("\n").encode() + b"\n" for event in log_events(20_000))
    big = tmp_path / "big.log"
    with big.open("wb") as file:
        while file.tell() < 24 << 20:
            file.write(block)
    size_mb = big.stat().st_size / (1 << 20)
    part = str(1 << 20)
    floor = _peak_rss_mb(
        [part, "logs", "parse", str(ROOT / "tests/data/logs/python-text.log"), "--csv"], env, tmp_path
    )
    peak = _peak_rss_mb([part, "logs", "parse", str(big), "--csv"], env, tmp_path)
    assert peak - floor <= 3 * size_mb, (
        f"{peak:.0f} MB at peak, {floor:.0f} MB for a small file, {size_mb:.0f} MB file"
    )


def test_logs_parse_into_a_closed_pipe_stops_quietly(env: dict[str, str], tmp_path: Path) -> None:
    lines = tmp_path / "lines.log"
    lines.write_bytes((ROOT / "tests/data/logs/python-text.log").read_bytes() * 2000)
    command = " ".join(
        [sys.executable, "-m", "kit.cli", "logs", "parse", str(lines), "--json", "| head -c 100"]
    )
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith('[\n  {\n    "log_group": null,')


@pytest.fixture
def lab_up(env: dict[str, str]) -> Iterator[dict[str, str]]:
    process = subprocess.Popen(
        [*KIT, "lab", "up", "--scenario", "no-connect-integration"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lab_file = Path(env["KIT_STATE_DIR"]) / "lab.json"
    deadline = time.monotonic() + 90
    while not lab_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab_file.exists(), process.stderr.read() if process.poll() is not None else "lab did not start"
    try:
        yield env
    finally:
        descendants = _descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    assert not lab_file.exists(), "the lab file must go when the lab stops"
    assert descendants, "the lab should have started child processes (DynamoDB Local, workers)"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in descendants) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in descendants if _alive(pid)], "processes left behind after the lab stopped"


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = [pid]
    while queue:
        out = subprocess.run(["pgrep", "-P", str(queue.pop())], capture_output=True, text=True, check=False)
        children = [int(line) for line in out.stdout.split()]
        found += children
        queue += children
    return found


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return False


def test_commands_against_a_running_lab(lab_up: dict[str, str]) -> None:
    env = lab_up
    info = json.loads((Path(env["KIT_STATE_DIR"]) / "lab.json").read_text())
    assert info["scenario"] == "no-connect-integration"
    assert info["websocket_url"].startswith("ws://127.0.0.1:") and info["management_url"].startswith(
        "http://127.0.0.1:"
    )
    assert set(info["endpoints"]) == {"dynamodb", "iam", "lambda", "apigatewayv2", "logs", "sts"}

    diagnosis = _run(["diagnose", "--json", "--probe-clients", "1"], env)
    assert diagnosis.returncode == 1, diagnosis.stderr
    result = json.loads(diagnosis.stdout)
    assert result["root_cause"]["id"] == "connect-route-missing"
    assert {f["check"] for f in result["findings"]} >= {"connect-route", "iam-put", "table-structure"}

    routes = json.loads(_run(["config", "routes", "--json"], env).stdout)
    connect = [r for r in routes if r["route_key"] == "$connect"]
    assert connect and connect[0]["ok"] is False

    table = _run(["table"], env)
    assert table.returncode == 0 and "matches the expected schema" in table.stdout

    iam = _run(["iam", "--json"], env)
    assert iam.returncode == 0, iam.stderr
    assert all(row["allowed"] for row in json.loads(iam.stdout))

    # The fix: printed, verified on the lab (which keeps it), then taken back.
    printed = _run(["fix", "--json", "--probe-clients", "1"], env)
    assert printed.returncode == 0, printed.stderr
    planned = json.loads(printed.stdout)
    assert planned["cause"] == "connect-route-missing"
    assert [c["operation"] for c in planned["changes"]] == ["connect_route"]
    assert any("aws apigatewayv2 create-route" in line for line in planned["changes"][0]["cli"])
    verified = _run(["fix", "--verify"], env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "fixed: the root cause is gone and the storage test passes" in verified.stdout
    assert "called apigatewayv2.create_route(" in verified.stdout
    assert "kit fix --undo" in verified.stderr
    undone = _run(["fix", "--undo"], env)
    assert undone.returncode == 0, undone.stderr
    assert "called apigatewayv2.delete_route(" in undone.stdout
    again = _run(["diagnose", "--json", "--probe-clients", "1"], env)
    assert json.loads(again.stdout)["root_cause"]["id"] == "connect-route-missing", again.stdout[:500]
    nothing = _run(["fix", "--undo"], env)
    assert nothing.returncode == 2 and "nothing to undo" in nothing.stderr
