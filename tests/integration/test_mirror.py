"""Mirror a deployed stack into the lab (issue 13, item 2), on the simulation tier (tests/integration/account.py).

`kit lab up --from aws` reads the simulated account the way it reads a real one (a profile, an app's
.env.local, the recording proxies count every call): 0 mutating calls. It then builds the same stack in a lab
of its own (every scenario reproduced on a mirror: test_mirror_scenarios.py). Secret-looking variables reach
the mirror's function and nothing the kit writes; a failure is one line and leaves no lab.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from kit import mirror
from kit.lab.lab import Lab
from kit.lab.scenarios import ClientPlan
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from kit.probe_core import ProbeTimeouts
from kit.target import Target

from .account import KIT, PROFILE, Call, SimulatedAccount
from .labclient import EmptyDynamoDB

pytestmark = pytest.mark.integration

TIMEOUTS = ProbeTimeouts(handshake_s=10, item_wait_s=2, delivery_wait_s=2)
SECRET_VALUE = "mirror-canary-9f3b2c7d1e"  # planted in the account's function as JWT_SECRET
USER_EMAIL = "ada.mirror@example.com"
ITEM = {  # one connection in the account's table, as the fixed handler stores it
    "connectionId": {"S": "mirrorConn1="},
    "workspaceId": {"S": "ws-mirror"},
    "userId": {"S": USER_EMAIL},
    "connectedAt": {"N": "1764800000000"},
}


def probe_flags(client: ClientPlan) -> list[str]:
    """`kit diagnose`'s flags for a probe that connects the way the scenario's clients do."""
    flags = ["--probe-clients", "2", "--allow-aws-probe"]
    if not client.include_workspace_id:
        flags.append("--no-workspace-id")
    if client.close_after_connect:
        flags.append("--close-at-once")
    if client.join_after_connect:
        flags.append("--probe-join")
    return flags


def mutating(calls: list[Call]) -> list[str]:
    return [f"{c.service} {c.operation}" for c in calls if c.mutating]


def read_mirror(account: SimulatedAccount, **options: object) -> tuple[mirror.AccountCopy, list[Call]]:
    """What `kit lab up --from aws` reads, read in this process from the user's shell; the calls it made."""
    with account.recording() as calls, account.as_user():
        target = Target.from_parameters(
            "aws", profile=PROFILE, env_file=str(account.env_file), api_id=account.api_id
        ).as_read_only()
        copy = mirror.read_account(target, salt="test", **options)  # type: ignore[arg-type]
    return copy, calls


# --------------------------------------------------------------------------------------------------------
# The command itself, what it writes, and what it refuses
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedAccount]:
    with SimulatedAccount("healthy", tmp_path_factory.mktemp("mirrored")) as simulated:
        admin = simulated.admin("lambda")
        name = simulated.info["functions"]["$connect"]
        current = admin.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        admin.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**current, "JWT_SECRET": SECRET_VALUE}}
        )
        simulated.admin("dynamodb").put_item(TableName=simulated.table, Item=ITEM)
        yield simulated


def from_aws(account: SimulatedAccount, *, api_id: bool = True) -> list[str]:
    """`kit lab up`'s flags for mirroring the account: --from aws, then the target's, without --target."""
    given = account.target_args(api_id=api_id)
    return ["--from", *given[1:]]  # --target aws → --from aws


def start_mirror(account: SimulatedAccount, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    state = account.home / "kit-state"
    env = account.kit_env()
    process = subprocess.Popen(
        [*KIT, "lab", "up", *from_aws(account), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=account.home / "app",
    )
    return process, state


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return out, err


def lab_client(info: dict[str, Any], service: str) -> Any:
    """A client of the mirror's lab (its lab file's endpoints, the lab's dummy key)."""
    return boto3.client(
        service,
        endpoint_url=info["endpoints"][service],
        region_name=info["region"],
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
    )


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_kit_lab_up_from_aws_mirrors_the_account_and_keeps_secrets_in_memory(
    account: SimulatedAccount,
) -> None:
    with account.recording() as calls:
        process, state = start_mirror(account, "--copy-items", "5")
        lab_file = state / "lab.json"
        deadline = time.monotonic() + 120
        while not lab_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    try:
        assert lab_file.exists(), stop(process)
        info = json.loads(lab_file.read_text())
        assert info["scenario"] == "mirror" and info["api_id"] != account.api_id
        assert info["mirror"]["region"] == account.region
        manifest = json.loads((state / "mirror.json").read_text())
        kinds = {entry["kind"] for entry in manifest["copied"]}
        assert {"api", "integration", "route", "stage", "function", "role", "role policy", "table"} <= kinds
        assert any(change["what"] == "API id" for change in manifest["changed"])
        function = next(entry for entry in manifest["copied"] if entry["kind"] == "function")
        assert "JWT_SECRET" in function["detail"] and "code from its code location" in function["detail"]
        # The mirror's function has the value, in memory; no file the kit wrote holds it.
        variables = lab_client(info, "lambda").get_function_configuration(
            FunctionName=info["functions"]["$connect"]
        )["Environment"]["Variables"]
        assert variables["JWT_SECRET"] == SECRET_VALUE
        # --copy-items: the account's one item, its e-mail address masked, its keys as they were.
        (item,) = lab_client(info, "dynamodb").scan(TableName=info["table"])["Items"]
        assert item["connectionId"] == ITEM["connectionId"] and item["workspaceId"] == ITEM["workspaceId"]
        assert USER_EMAIL not in json.dumps(item) and item["userId"]["S"].startswith("a")
        table_entry = next(e for e in manifest["copied"] if e["kind"] == "table")
        assert "1 items, masked" in table_entry["detail"]
        for path in state.rglob("*"):
            if path.is_file():
                assert SECRET_VALUE not in path.read_text(errors="replace"), path
    finally:
        out, err = stop(process)
    assert mutating(calls) == [], mutating(calls)
    assert SECRET_VALUE not in out + err
    assert "mirrored" in err and "not reproduced" in err, err
    assert not lab_file.exists()


def one_line_refusal(account: SimulatedAccount, *extra: str) -> str:
    state = account.home / "kit-state"
    for left in ("lab.json", "mirror.json"):  # a successful mirror before keeps its manifest
        (state / left).unlink(missing_ok=True)
    run = account.run(["lab", "up", *from_aws(account), *extra], subprocess_=True)
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("kit:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert not (state / "lab.json").exists() and not (state / "mirror.json").exists()
    return errors[0]


def test_a_two_way_routes_route_responses_are_read_for_the_mirror(account: SimulatedAccount) -> None:
    """GetRouteResponses, read-only, for each route with a RouteResponseSelectionExpression (issue 14 item 4)."""
    apigw = account.admin("apigatewayv2")
    target = next(
        r["Target"] for r in apigw.get_routes(ApiId=account.api_id)["Items"] if r["RouteKey"] == "message"
    )
    route = apigw.create_route(
        ApiId=account.api_id, RouteKey="echo", Target=target, RouteResponseSelectionExpression="$default"
    )
    try:
        apigw.create_route_response(
            ApiId=account.api_id, RouteId=route["RouteId"], RouteResponseKey="$default"
        )
        copy, calls = read_mirror(account)
    finally:
        apigw.delete_route(ApiId=account.api_id, RouteId=route["RouteId"])
    assert mutating(calls) == []
    assert [r["RouteResponseKey"] for r in copy.route_responses["echo"]] == ["$default"]
    assert set(copy.route_responses) == {"echo"}  # one-way routes: nothing asked
    assert not [gap for gap in copy.gaps if "route response" in gap.what]


def test_code_that_cannot_be_downloaded_is_one_line_naming_the_flag(account: SimulatedAccount) -> None:
    with account.refusing("denied", ("DownloadCode",)):
        said = one_line_refusal(account)
    assert "could not be downloaded" in said and "--function-code chatgenius-websocket=PATH" in said


def test_an_api_id_that_is_not_there_is_one_line(account: SimulatedAccount) -> None:
    run = account.run(
        ["lab", "up", *from_aws(account, api_id=False), "--api-id", "nope123"],
        subprocess_=True,
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("kit:")]
    assert run.returncode == 2 and len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "nope123" in errors[0]


def test_a_role_the_kit_may_not_read_is_one_line(account: SimulatedAccount) -> None:
    with account.refusing("denied", ("GetRole",)):
        said = one_line_refusal(account)
    assert "GetRole" in said and "chatgenius-websocket-handler" in said


def test_function_code_from_a_folder_replaces_the_download(account: SimulatedAccount, tmp_path: Path) -> None:
    code = tmp_path / "my-fn"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
    with account.recording() as calls:
        copy, _ = read_mirror(account, function_code={"chatgenius-websocket": code})
    assert all(c.operation != "DownloadCode" for c in calls)
    (function,) = copy.functions
    assert function.code_from == "--function-code my-fn"
    refused = one_line_refusal(account, "--function-code", "no-such-function=x.zip")
    assert "no-such-function" in refused


def test_a_mirror_that_fails_halfway_leaves_no_lab(
    account: SimulatedAccount, empty_dynamodb: EmptyDynamoDB
) -> None:
    copy, _ = read_mirror(account)
    broken_table = replace(copy.tables[0], description={**copy.tables[0].description, "KeySchema": []})
    broken = replace(copy, tables=[broken_table])
    before = set(children_of(os.getpid()))
    lab = Lab(mirror=broken, write_lab_file=False, dynamodb=empty_dynamodb())
    with pytest.raises(Exception):  # noqa: B017 - whatever the lab's DynamoDB says, the lab must be gone
        lab.start()
    assert lab.info is None and Lab._running is None
    deadline = time.monotonic() + 10
    while set(children_of(os.getpid())) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(children_of(os.getpid())) - before == set()


def test_expired_credentials_and_an_unknown_profile_are_one_line(account: SimulatedAccount) -> None:
    with account.refusing("expired"), account.recording() as calls:
        said = one_line_refusal(account)
    assert "ExpiredToken" in said and "aws sso login" in said
    assert [c.operation for c in calls] == ["GetCallerIdentity"]
    run = account.run(["lab", "up", "--from", "aws", "--profile", "nope", "--region", "us-east-2"])
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "profile 'nope'" in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--scenario", "seed-put-denied"], "--from aws mirrors the account as it is"),
        (["--copy-items", "-1"], "--copy-items -1"),
        (["--function-code", "fn"], "is not NAME=PATH"),
    ],
)
def test_mirror_flags_that_make_no_sense_are_one_line(
    account: SimulatedAccount, extra: list[str], said: str
) -> None:
    with account.recording() as calls:
        run = account.run(["lab", "up", *from_aws(account), *extra])
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and said in run.stderr, run.stderr
    assert calls == []


def test_mirror_flags_without_from_aws_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from kit import cli

    assert cli.main(["lab", "up", "--api-id", "abc"]) == cli.EXIT_KIT_FAILED
    assert capsys.readouterr().err == "kit: --api-id goes with --from aws (a mirror).\n"
