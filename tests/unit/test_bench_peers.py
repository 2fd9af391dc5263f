"""``make bench-peers``'s pure parts: targets judged at their exact edges, the rows each client count gets, the
table, the sizes read from the environment, serverless-offline's command and environment, the peer's files
(serverless.yml, the handler symlink, the pinned packages) and the results file's sections.

Nothing here runs npm, node, an engine or a lab: the bench itself is run by ``make bench-peers``. The process
group is checked with a Python stand-in for serverless that listens on loopback.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from bench import peer_bench  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402
from bench.clients import Opened  # noqa: E402
from bench.peer_offline import (  # noqa: E402
    FUNCTION_TIMEOUT_S,
    PEERS_DIR,
    OfflinePorts,
    OfflineServer,
    installed_versions,
    offline_command,
    offline_environment,
)
from bench.results_file import carried_over, read_results, write_results  # noqa: E402
from bench.versus import (  # noqa: E402
    CONNECT_VS_PEER,
    CONNECT_VS_RAW,
    P50_VS_PEER,
    PEER,
    RAW_PUT,
    ClientsResult,
    Comparison,
    PeerSettings,
    compare,
    compare_all,
    parse_clients,
    peers_section,
    render_table,
)
from kit.errors import ConfigurationError, EngineError  # noqa: E402
from kit.local import LOCAL_ACCESS_KEY_ID  # noqa: E402
from kit.target import DEFAULT_LAB_REGION  # noqa: E402

PORTS = OfflinePorts(websocket=41001, http=41002, lambda_=41003, alb=41004)


# --- targets at their edges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "other", "better", "target", "met"),
    [
        (100.0, 100.0, "higher", CONNECT_VS_PEER, True),  # exactly 1.0x the peer's connects/s meets
        (99.999, 100.0, "higher", CONNECT_VS_PEER, False),  # just below does not
        (250.0, 100.0, "higher", CONNECT_VS_PEER, True),
        (80.0, 100.0, "higher", CONNECT_VS_RAW, True),  # exactly 0.8x raw put_item meets
        (79.999, 100.0, "higher", CONNECT_VS_RAW, False),
        (7.0, 7.0, "lower", P50_VS_PEER, True),  # a p50 equal to the peer's meets
        (7.0001, 7.0, "lower", P50_VS_PEER, False),  # a hair slower does not
        (3.0, 7.0, "lower", P50_VS_PEER, True),
        (math.nan, 100.0, "higher", CONNECT_VS_PEER, False),  # unmeasured never meets
        (100.0, math.nan, "higher", CONNECT_VS_PEER, False),
        (100.0, 0.0, "higher", CONNECT_VS_PEER, False),  # no ratio against nothing
    ],
)
def test_a_target_is_met_at_its_edge_and_not_below(
    lab: float, other: float, better: str, target: float, met: bool
) -> None:
    row = Comparison("w", "m", "u", lab, other, better=better, target=target)  # type: ignore[arg-type]
    assert row.met is met


def test_a_row_without_target_is_judged_neither_way_and_its_ratio_is_lab_over_other() -> None:
    row = Comparison("w", "m", "ms", 30.0, 10.0, better="lower")
    assert row.met is None
    assert row.ratio == pytest.approx(3.0)
    assert row.target_text == "-"


def test_an_unmeasured_value_is_written_as_null() -> None:
    document = Comparison("w", "m", "u", math.nan, 5.0, target=1.0).as_dict()
    assert document["lab"] is None
    assert document["ratio_lab_to_other"] is None
    assert document["met"] is False
    json.dumps(document, allow_nan=False)


# --- the rows of a client count ---------------------------------------------------------------------------


def _result(clients: int, rate: float, p50: float = 10.0, raw_rate: float = 200.0) -> ClientsResult:
    return ClientsResult(
        clients=clients,
        connects=100,
        connects_stored=100,
        connect_rate=rate,
        handshake_p50_ms=p50,
        handshake_p99_ms=2 * p50,
        raw_put_rate=raw_rate,
        held_requested=clients,
        held=clients,
        broadcast_expected=clients - 1,
        broadcast_delivered=clients - 1,
        delivery_p50_ms=5.0,
        delivery_p99_ms=9.0,
    )


def _targets(rows: list[Comparison]) -> dict[tuple[str, str], float | None]:
    return {(row.measure, row.other_name): row.target for row in rows}


def test_one_client_is_held_to_the_p50_target_only() -> None:
    rows = compare(_result(1, 20.0, p50=50.0), _result(1, 100.0, p50=8.0))
    targets = _targets(rows)
    assert targets[("$connect handshake p50", PEER)] == P50_VS_PEER
    assert targets[("connects/s", PEER)] is None
    assert targets[("connects/s", RAW_PUT)] is None
    assert not any(row.measure.startswith("broadcast") for row in rows)  # one client has nobody to reach
    assert [row.met for row in rows if row.target is not None] == [False]  # 50 ms against 8 ms


def test_clients_at_once_are_held_to_both_rate_targets() -> None:
    lab, peer = _result(10, 150.0, raw_rate=180.0), _result(10, 150.0)
    rows = compare(lab, peer)
    targets = _targets(rows)
    assert targets[("connects/s", PEER)] == CONNECT_VS_PEER
    assert targets[("connects/s", RAW_PUT)] == CONNECT_VS_RAW
    assert targets[("$connect handshake p50", PEER)] is None
    judged = {row.other_name: row.met for row in rows if row.target is not None}
    assert judged == {PEER: True, RAW_PUT: True}  # 150 = 1.0x the peer's; 150/180 = 0.83x raw
    raw_row = next(row for row in rows if row.other_name == RAW_PUT)
    assert raw_row.other == 180.0  # the lab's own engine, not the peer's
    assert {"broadcast delivery p50", "broadcast delivery p99", "stack CPU per $connect"} <= {
        row.measure for row in rows
    }


@pytest.mark.parametrize(
    ("stored", "failed", "shortfall"),
    [
        (100, 0, ""),  # every connection stored, none failed: the rates are judged by their ratios
        (99, 0, "lab stored 99/100"),  # one connection the table does not hold
        (101, 0, "lab stored 101/100"),  # nor one it holds twice over: stored must equal connects
        (100, 1, "1 handshake(s) failed"),
        (0, 3, "lab stored 0/100, 3 handshake(s) failed"),
    ],
)
def test_the_rate_targets_are_met_only_when_the_lab_stored_every_connection_and_none_failed(
    stored: int, failed: int, shortfall: str
) -> None:
    lab = _result(10, 300.0, raw_rate=180.0)  # ratios well above both targets
    lab.connects_stored, lab.connect_failures = stored, failed
    rows = [row for row in compare(lab, _result(10, 150.0)) if row.measure == "connects/s"]
    assert {row.other_name for row in rows} == {PEER, RAW_PUT}
    for row in rows:
        assert row.ratio is not None and row.ratio >= 1.6
        assert row.met is (not shortfall)
        assert row.shortfall == shortfall
        assert row.as_dict()["shortfall"] == (shortfall or None)
    lines = [line for line in render_table(rows).splitlines() if "connects/s" in line]
    assert [line.split("|")[-1].strip() for line in lines] == [
        f"NO ({shortfall})" if shortfall else "yes"
    ] * 2


def test_a_count_only_one_side_measured_is_left_out_of_the_rows() -> None:
    rows = compare_all([_result(1, 20.0), _result(10, 100.0)], [_result(10, 90.0)])
    assert {row.workload for row in rows} == {"10 clients at once"}


def test_the_disconnects_a_drain_left_behind_are_a_row_of_each_count() -> None:
    lab, peer = _result(10, 150.0), _result(10, 150.0)
    lab.disconnects_outstanding = 3
    rows = compare(lab, peer)
    (row,) = [row for row in rows if row.measure.startswith("$disconnects outstanding")]
    assert (row.lab, row.other, row.target) == (3, 0, None)
    line = next(line for line in render_table(rows).splitlines() if "$disconnects outstanding" in line)
    assert [cell.strip() for cell in line.split("|")][2:4] == ["3 items", "0 items"]
    assert row.as_dict()["lab"] == 3


def test_closing_keeps_the_most_disconnects_any_drain_left(monkeypatch: pytest.MonkeyPatch) -> None:
    left = iter([3, 0, 1])  # what each close's drain finds still in the table

    async def nothing(*_: object, **__: object) -> None:
        return None

    async def drained(*_: object, **__: object) -> int:
        return next(left)

    monkeypatch.setattr(peer_bench.ws, "close_clients", nothing)
    monkeypatch.setattr(peer_bench, "_stored_at_most", nothing)
    monkeypatch.setattr(peer_bench, "drain", drained)
    stack = peer_bench.Stack("lab", "ws://127.0.0.1:1", dynamodb=None, table="t", roots=())
    result = ClientsResult(clients=2)

    async def close_three_times() -> None:
        for _ in range(3):
            await peer_bench._close(stack, Opened(clients=[]), result, workspace="w", batch=5)

    asyncio.run(close_three_times())
    assert result.disconnects_outstanding == 3


# --- the table --------------------------------------------------------------------------------------------


def test_the_table_shows_each_side_the_ratio_the_target_and_whether_it_is_met() -> None:
    rows = compare(_result(10, 120.0), _result(10, 240.0))
    text = render_table(rows, work_only_lab=["IAM at the front door"], work_only_peer=["a process each"])
    header, _rule, *lines = text.splitlines()
    assert [cell.strip() for cell in header.split("|")] == [
        "workload",
        "measure",
        "lab",
        PEER,
        "lab/peer",
        "target",
        "met",
    ]
    rate = next(line for line in lines if "connects/s" in line)
    assert [cell.strip() for cell in rate.split("|")] == [
        "10 clients at once",
        "connects/s",
        "120 connects/s",
        "240 connects/s",
        "0.500",
        "≥ 1",
        "NO",
    ]
    assert "lab/raw" in text and "200 puts/s" in text
    assert "Work only the lab does:\n  - IAM at the front door" in text
    assert f"Work only {PEER} does:\n  - a process each" in text


def test_an_unmeasured_side_shows_a_dash_not_a_number() -> None:
    rows = compare(_result(10, 120.0), ClientsResult(clients=10))
    line = next(line for line in render_table(rows).splitlines() if "connects/s" in line)
    cells = [cell.strip() for cell in line.split("|")]
    assert cells[3:] == ["-", "-", "≥ 1", "NO"]


# --- sizes --------------------------------------------------------------------------------------------------


def test_default_sizes_are_the_issues_client_counts() -> None:
    settings = PeerSettings.from_environment({})
    assert settings.clients == (1, 10, 50)
    assert (settings.connects, settings.rounds, settings.broadcasts) == (150, 3, 5)


def test_the_scale_shrinks_counts_and_an_explicit_size_wins() -> None:
    settings = PeerSettings.from_environment({"KIT_BENCH_SCALE": "0.1", "KIT_BENCH_PEERS_ROUNDS": "1"})
    assert settings.connects == 15
    assert settings.rounds == 1
    assert settings.connects_for(50) == 50  # never fewer handshakes than clients in flight
    assert settings.connects_for(1) == 15


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1,10,50", (1, 10, 50)), (" 50, 1 ,10,10", (1, 10, 50)), ("", (1, 10, 50)), ("3", (3,))],
)
def test_client_counts_are_read_sorted_and_distinct(raw: str, expected: tuple[int, ...]) -> None:
    assert parse_clients(raw) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"KIT_BENCH_PEERS_CLIENTS": "1,ten"},
        {"KIT_BENCH_PEERS_CLIENTS": "0,10"},
        {"KIT_BENCH_PEERS_CLIENTS": "1,,10"},
        {"KIT_BENCH_PEERS_CLIENTS": "5000"},
        {"KIT_BENCH_PEERS_CONNECTS": "1"},
        {"KIT_BENCH_PEERS_ROUNDS": "many"},
        {"KIT_BENCH_SCALE": "0"},
    ],
)
def test_bad_sizes_are_one_line_errors(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PeerSettings.from_environment(environ)
    assert "\n" not in str(raised.value)


def test_python_m_bench_peers_with_bad_sizes_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIT_BENCH_PEERS_CLIENTS", "1,ten")
    assert bench_main(["peers"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench peers: KIT_BENCH_PEERS_CLIENTS=") and "\n" not in err


# --- serverless-offline: command, environment, installed packages ------------------------------------------


def test_the_command_listens_on_loopback_on_the_chosen_ports() -> None:
    command = offline_command("/usr/bin/node", PORTS)
    assert command[:4] == ["/usr/bin/node", "node_modules/serverless/bin/serverless.js", "offline", "start"]
    options = dict(zip(command[4::2], command[5::2], strict=False))
    assert options["--host"] == "127.0.0.1"
    assert options["--websocketPort"] == "41001"
    assert options["--httpPort"] == "41002"
    assert options["--lambdaPort"] == "41003"
    assert options["--albPort"] == "41004"


def test_the_environment_carries_the_engine_and_the_dummy_keys_and_nothing_of_the_callers_aws() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "AWS_PROFILE": "production",
        "AWS_ENDPOINT_URL": "https://example.invalid",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
        "SLS_NOTIFICATIONS_MODE": "on",
    }
    environment = offline_environment(
        base,
        ports=PORTS,
        dynamodb_url="http://127.0.0.1:40000",
        table="chatgenius-connections",
        region=DEFAULT_LAB_REGION,
        python_prefix="/work/.venv",
    )
    assert "AWS_PROFILE" not in environment and "AWS_ENDPOINT_URL" not in environment
    assert environment["AWS_ACCESS_KEY_ID"] == LOCAL_ACCESS_KEY_ID
    assert environment["AWS_SECRET_ACCESS_KEY"] != "real-secret"
    assert environment["KIT_PEER_DYNAMODB_URL"] == "http://127.0.0.1:40000"
    assert environment["KIT_PEER_MANAGEMENT_URL"] == "http://127.0.0.1:41001"  # @connections: the ws port
    assert environment["KIT_PEER_TABLE_NAME"] == "chatgenius-connections"
    assert environment["VIRTUAL_ENV"] == "/work/.venv"
    assert environment["PATH"].split(":")[:2] == ["/work/.venv/bin", "/usr/bin"]  # its python3 has boto3
    assert environment["SLS_TELEMETRY_DISABLED"] == "1"
    assert environment["SLS_NOTIFICATIONS_MODE"] == "off"
    assert environment["HOME"] == "/root"


def test_missing_packages_name_the_command_that_installs_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="run `make bench-peers`"):
        installed_versions(tmp_path)


# --- the peer's files ---------------------------------------------------------------------------------------


def _serverless_yml() -> dict:
    return yaml.safe_load((PEERS_DIR / "serverless.yml").read_text())


def test_the_peer_runs_the_labs_own_handler_file() -> None:
    handler = _serverless_yml()["functions"]["connections"]["handler"]
    module, _, function = handler.rpartition(".")
    assert function == "handler"
    assert (PEERS_DIR / f"{module}.py").resolve() == PROJECT_ROOT / "kit" / "handler" / "app.py"


def test_serverless_yml_serves_the_labs_routes_on_loopback_in_the_labs_region() -> None:
    config = _serverless_yml()
    events = config["functions"]["connections"]["events"]
    assert {event["websocket"]["route"] for event in events} == {"$connect", "$disconnect", "message"}
    assert config["provider"]["runtime"] == "python3.11"
    assert config["provider"]["region"] == DEFAULT_LAB_REGION
    assert config["provider"]["environment"]["AUTH_MODE"] == "email"  # as the lab's healthy stack
    assert config["custom"]["serverless-offline"]["host"] == "127.0.0.1"


def test_every_variable_serverless_yml_reads_is_one_the_bench_sets() -> None:
    text = (PEERS_DIR / "serverless.yml").read_text()
    wanted = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", text))
    environment = offline_environment(
        {}, ports=PORTS, dynamodb_url="u", table="t", region=DEFAULT_LAB_REGION, python_prefix="/p"
    )
    assert wanted and wanted <= set(environment)


def test_the_peers_packages_are_pinned_to_serverless_3_and_serverless_offline_13() -> None:
    manifest = json.loads((PEERS_DIR / "package.json").read_text())
    lock = json.loads((PEERS_DIR / "package-lock.json").read_text())
    pinned = manifest["dependencies"]
    assert pinned["serverless"].startswith("3.") and pinned["serverless-offline"].startswith("13.")
    for name, version in pinned.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    root = json.loads((PROJECT_ROOT / "package.json").read_text())
    assert not {"serverless", "serverless-offline"} & set(root.get("dependencies", {}))


def test_only_make_bench_peers_installs_the_peer() -> None:
    rules = {
        line.split(":", 1)[0]: line.split(":", 1)[1]
        for line in (PROJECT_ROOT / "Makefile").read_text().splitlines()
        if re.match(r"^[a-z-]+:", line)
    }
    assert "PEERS_STAMP" in rules["bench-peers"]
    for target in ("setup", "test", "test-fast", "report", "bench", "check"):
        assert "PEERS" not in rules[target], target


# --- the results file ---------------------------------------------------------------------------------------


def test_make_bench_keeps_the_peers_section_and_its_own_figures_win() -> None:
    previous = {"figures": ["old"], "peers": {"comparisons": []}}
    assert carried_over(previous, {"figures": ["new"]}) == {"figures": ["new"], "peers": {"comparisons": []}}
    assert carried_over({}, {"figures": []}) == {"figures": []}


def test_a_missing_or_broken_results_file_reads_as_empty(tmp_path: Path) -> None:
    assert read_results(tmp_path / "none.json") == {}
    (tmp_path / "broken.json").write_text("{not json")
    assert read_results(tmp_path / "broken.json") == {}
    write_results(tmp_path / "ok.json", {"peers": {"all_targets_met": False}})
    assert read_results(tmp_path / "ok.json") == {"peers": {"all_targets_met": False}}


def test_the_peers_section_is_met_only_when_every_judged_row_is() -> None:
    settings = PeerSettings.from_environment({})
    rows = compare(_result(10, 300.0), _result(10, 200.0))

    def section(errors: list[str]) -> dict:
        return peers_section(
            rows,
            started_at="t",
            duration_s=1.0,
            machine={},
            settings=settings,
            versions={"serverless-offline": "13"},
            errors=errors,
        )

    assert section([])["all_targets_met"] is True
    assert section(["lab could not be measured"])["all_targets_met"] is False
    json.dumps(section([]), allow_nan=False)


def test_the_timeout_the_notes_name_is_serverless_ymls() -> None:
    assert _serverless_yml()["provider"]["timeout"] == FUNCTION_TIMEOUT_S


# --- the peer's process group, with a stand-in for serverless (python, no npm) ---------------------------

# Run by OfflineServer as `<node> node_modules/serverless/bin/serverless.js offline start --host ... ` from the
# folder: it starts a grandchild through /bin/sh (as serverless-offline starts its Python runners), writes the
# grandchild's pid, then listens on the websocket port (or, with FAIL, exits at once; with MUTE, never listens).
STAND_IN = """
import os, socket, subprocess, sys, time
arguments = sys.argv[1:]
port = int(arguments[arguments.index("--websocketPort") + 1])
if os.environ.get("FAIL"):  # as serverless 3 fails: a banner, then "Error:" and the error's line, blank lines
    print("Running \\"serverless\\" from node_modules\\n\\nEnvironment: linux, node 20", flush=True)
    print("Error:\\nCannot resolve serverless.yml\\n\\n", flush=True)
    sys.exit(1)
runner = subprocess.Popen("sleep 600", shell=True)
open("runner.pid", "w").write(str(runner.pid))
if not os.environ.get("MUTE"):
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
time.sleep(600)
"""


def _stand_in(folder: Path) -> Path:
    script = folder / "node_modules" / "serverless" / "bin" / "serverless.js"
    script.parent.mkdir(parents=True)
    script.write_text(STAND_IN)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def _server(folder: Path, **environ: str) -> OfflineServer:
    ports = OfflinePorts.free()
    return OfflineServer(
        {"PATH": os.environ["PATH"], **environ}, ports, node=sys.executable, folder=folder, ready_timeout_s=5
    )


def test_the_peer_is_ready_when_its_port_answers_and_stops_with_its_whole_group(tmp_path: Path) -> None:
    server = _server(_stand_in(tmp_path)).start()
    runner = int((tmp_path / "runner.pid").read_text())
    assert server.start_s is not None and server.start_s < 5
    assert _alive(server.pid) and _alive(runner)
    server.stop()
    deadline = time.monotonic() + 5
    while _alive(runner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(runner)  # the grandchild went with the group, not just node
    server.stop()  # idempotent


def test_a_peer_that_exits_early_is_a_one_line_error_carrying_its_last_line(tmp_path: Path) -> None:
    with pytest.raises(
        EngineError, match=r"exited with status 1 .*: Cannot resolve serverless\.yml$"
    ) as raised:
        _server(_stand_in(tmp_path), FAIL="1").start()
    assert "\n" not in str(raised.value)


def test_a_peer_that_never_listens_is_an_error_after_the_timeout_and_leaves_nothing(tmp_path: Path) -> None:
    server = _server(_stand_in(tmp_path), MUTE="1")
    server.ready_timeout_s = 1
    with pytest.raises(EngineError, match=r"did not listen on 127\.0\.0\.1"):
        server.start()
    runner = int((tmp_path / "runner.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(runner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(runner)
