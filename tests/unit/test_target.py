"""kit.target offline: env-file parsing, WebSocket URLs, resolving an AWS target, clients, redaction.

Nothing here talks to a network: AWS targets are resolved against temporary AWS config files with every
AWS_* variable removed and instance metadata disabled, and clients are built but never called.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kit.credentials import Credentials, Secret, mask_access_key_id
from kit.env_file import (
    MANAGEMENT_URL_KEYS,
    REGION_KEYS,
    TABLE_KEYS,
    WEBSOCKET_URL_KEYS,
    parse_env_text,
    parse_websocket_url,
    read_env_file,
)
from kit.errors import ConfigurationError
from kit.local import LOCAL_ACCESS_KEY_ID
from kit.target import Target, canonical_service

ENV_DIR = Path(__file__).resolve().parents[1] / "data" / "env"
# The fake secrets in tests/data/env/*.env; none of them may ever be printed.
FIXTURE_SECRET = "kitFixtureSecret/DO-NOT-PRINT/0123456789abcdefAB"
FIXTURE_TOKEN = "kitFixtureSessionToken-DO-NOT-PRINT-FQoGZXIvYXdz"
FIXTURE_KEY_ID = "AKIAFIXTURE00000XYZ1"
LAB_ENDPOINTS = {"dynamodb": "http://127.0.0.1:8000", "*": "http://127.0.0.1:5000"}


def env_path(name: str) -> Path:
    return ENV_DIR / name


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty AWS home: no AWS_* variables, config files in tmp_path, no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "aws"
    home.mkdir()
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


def add_profile(home: Path, name: str, *, region: str | None = None, keys: bool = True) -> None:
    section = "default" if name == "default" else f"profile {name}"
    with (home / "config").open("a") as config:
        config.write(f"[{section}]\n" + (f"region = {region}\n" if region else "") + "output = json\n")
    if keys:
        with (home / "credentials").open("a") as credentials:
            credentials.write(
                f"[{name}]\naws_access_key_id = AKIAPROFILE0000{name[:4].upper():>4}\n"
                "aws_secret_access_key = profile-secret-not-printed\n"
            )


# --------------------------------------------------------------------------------------------------
# WebSocket URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod", ("prqb9y0mvd", "us-east-2", "prod")),
        ("wss://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod/", ("prqb9y0mvd", "us-east-2", "prod")),
        (
            "wss://abc123defg.execute-api.eu-west-1.amazonaws.com/dev?token=a@b.c&workspaceId=w1",
            ("abc123defg", "eu-west-1", "dev"),
        ),
        (
            "https://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod/@connections/abc=",
            ("prqb9y0mvd", "us-east-2", "prod"),
        ),
        ("prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod", ("prqb9y0mvd", "us-east-2", "prod")),
        ("WSS://PRQB9Y0MVD.execute-api.us-east-2.amazonaws.com/prod", ("prqb9y0mvd", "us-east-2", "prod")),
        ("wss://x1.execute-api.cn-north-1.amazonaws.com.cn/prod", ("x1", "cn-north-1", "prod")),
        ("wss://prqb9y0mvd.execute-api.us-east-2.amazonaws.com", None),  # no stage
        ("wss://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/", None),
        ("wss://chat.example.com/prod", None),  # custom domain
        ("wss://prqb9y0mvd.execute-api.amazonaws.com/prod", None),  # no region
        ("ftp://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod", None),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_websocket_url(url: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_websocket_url(url) == expected


# --------------------------------------------------------------------------------------------------
# Env files


def test_good_env_file_values_and_no_problems() -> None:
    env = read_env_file(env_path("good.env"))
    assert env.problems == []
    assert env.values["AWS_REGION"] == "us-east-2"
    assert env.values["AWS_SECRET_ACCESS_KEY"] == FIXTURE_SECRET  # quotes removed
    assert env.first(("CONNECTIONS_TABLE",)) == ("CONNECTIONS_TABLE", "chatgenius-connections")
    assert env.line_of("CONNECTIONS_TABLE") == 7  # blank line before it counted
    assert env.line_of("AWS_REGION") == 2


def test_bad_lines_are_kept_as_problems_with_line_numbers() -> None:
    env = read_env_file(env_path("bad-lines.env"))
    assert env.problems == [
        "line 2: could not parse, so it is ignored; look for an unclosed quote or a missing '='.",
        "line 6: JUST_A_NAME has no '=', so it sets nothing.",
        "line 7: could not parse, so it is ignored; look for an unclosed quote or a missing '='.",
        "line 9: CONNECTIONS_TABLE is set again (first on line 8); the later value wins.",
        "line 10: could not parse, so it is ignored; look for an unclosed quote or a missing '='.",
    ]
    # Good lines around the bad ones still count; the last value wins as in dotenv.
    assert env.values["AWS_REGION"] == "us-east-2"
    assert env.values["CONNECTIONS_TABLE"] == "chatgenius-connections-v2"
    assert "AWS_SESSION_TOKEN" not in env.values
    assert FIXTURE_TOKEN not in " ".join(env.problems)


def test_aliases_resolve_in_order_and_conflicts_are_problems() -> None:
    env = read_env_file(env_path("aliases.env"))
    assert env.first(REGION_KEYS) == ("NEXT_PUBLIC_AWS_REGION", "us-east-2")
    assert env.first(TABLE_KEYS) == ("CONNECTIONS_TABLE_NAME", "chatgenius-connections-staging")
    assert env.get(WEBSOCKET_URL_KEYS) == "wss://abc123defg.execute-api.us-east-2.amazonaws.com/staging"
    assert env.first(MANAGEMENT_URL_KEYS) is not None
    assert env.get(("NOT_SET", "ALSO_NOT")) is None
    assert any(
        p.startswith("line 3: the table is set twice") and "TABLE_NAME (line 4) is chatgenius-messages" in p
        for p in env.problems
    )
    assert any(
        p.startswith("line 6: API_GATEWAY_MANAGEMENT_ENDPOINT uses a WebSocket scheme") for p in env.problems
    )


def test_next_public_credentials_are_flagged() -> None:
    env = read_env_file(env_path("next-public-credentials.env"))
    flagged = [p for p in env.problems if "NEXT_PUBLIC_ variable" in p]
    assert [p.split(":")[0] for p in flagged] == ["line 2", "line 3"]
    assert "NEXT_PUBLIC_AWS_SECRET_ACCESS_KEY" in flagged[1]
    assert FIXTURE_SECRET not in " ".join(env.problems)


def test_region_mismatch_between_url_and_region_is_a_problem() -> None:
    env = read_env_file(env_path("region-mismatch.env"))
    assert env.problems == [
        "line 4: NEXT_PUBLIC_WEBSOCKET_URL points at an API in us-east-2, but AWS_REGION (line 1) is "
        "us-east-1; the $connect Lambda runs in us-east-2 and, unless it sets its own region, writes to "
        "the table in us-east-2."
    ]


@pytest.mark.parametrize(
    ("text", "expected_problem"),
    [
        ("CONNECTIONS_TABLE=\n", "line 1: CONNECTIONS_TABLE is empty, so the kit ignores it."),
        ("\n\nAWS_REGION=\n", "line 3: AWS_REGION is empty, so the kit ignores it."),
        ("TABLE_NAME=${STAGE}-connections\n", "line 1: TABLE_NAME refers to another variable with '$'"),
        ("WS_URL=https://x.example.com/prod\n", "line 1: WS_URL uses https://, but browsers open"),
        ("WS_URL=wss://chat.example.com/prod\n", "line 1: WS_URL is not an execute-api URL"),
        (
            "AWS_REGION=us-east-1\nREGION=us-east-2\n",
            "line 1: the region is set twice with different values: AWS_REGION is us-east-1 but REGION "
            "(line 2) is us-east-2",
        ),
        ('A="unclosed\nB=2\n', "line 1: could not parse"),
    ],
)
def test_env_text_problems(text: str, expected_problem: str) -> None:
    env = parse_env_text(text)
    assert any(p.startswith(expected_problem) for p in env.problems), env.problems


def test_same_value_under_two_aliases_is_not_a_problem() -> None:
    env = parse_env_text("AWS_REGION=us-east-2\nNEXT_PUBLIC_AWS_REGION=us-east-2\n")
    assert env.problems == []


def test_missing_env_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / ".env.local"
    with pytest.raises(ConfigurationError, match=r"Env file .*\.env\.local does not exist"):
        read_env_file(missing)


def test_env_file_never_prints_values() -> None:
    env = read_env_file(env_path("good.env"))
    for shown in (repr(env), str(env), str(dataclasses.asdict(env)), repr(env.values)):
        assert FIXTURE_SECRET not in shown
        assert FIXTURE_TOKEN not in shown
    assert "AWS_SECRET_ACCESS_KEY" in repr(env.values)  # keys are shown, values are not


# --------------------------------------------------------------------------------------------------
# Credentials and secrets


@pytest.mark.parametrize(
    ("key_id", "masked"),
    [("AKIAIOSFODNN7EXAMPLE", "AKIA…MPLE"), (FIXTURE_KEY_ID, "AKIA…XYZ1"), ("ASIA12", "…12"), ("", "…")],
)
def test_mask_access_key_id(key_id: str, masked: str) -> None:
    assert mask_access_key_id(key_id) == masked


def test_credentials_never_show_the_secret_or_token() -> None:
    credentials = Credentials(FIXTURE_KEY_ID, FIXTURE_SECRET, FIXTURE_TOKEN)
    shown = [
        repr(credentials),
        str(credentials),
        f"{credentials}",
        str(dataclasses.asdict(credentials)),
        repr(dataclasses.astuple(credentials)),
        f"{credentials.secret_access_key}",
    ]
    for text in shown:
        assert FIXTURE_SECRET not in text
        assert FIXTURE_TOKEN not in text
    # The access key id is not a secret, but repr masks it anyway: reports get pasted into tickets.
    assert repr(credentials) == str(credentials)
    assert FIXTURE_KEY_ID not in repr(credentials)
    assert "AKIA…XYZ1" in repr(credentials)
    assert credentials.secret_access_key.reveal() == FIXTURE_SECRET
    assert credentials == Credentials(FIXTURE_KEY_ID, Secret(FIXTURE_SECRET), FIXTURE_TOKEN)
    assert hash(credentials) == hash(Credentials(FIXTURE_KEY_ID, FIXTURE_SECRET, FIXTURE_TOKEN))


def test_credentials_need_both_halves() -> None:
    with pytest.raises(ConfigurationError, match="both an access key id and a secret"):
        Credentials(FIXTURE_KEY_ID, "")


# --------------------------------------------------------------------------------------------------
# Lab targets


def test_local_target_clients_use_endpoints_region_and_quick_config() -> None:
    target = Target.local(LAB_ENDPOINTS)
    dynamodb = target.client("dynamodb")
    assert dynamodb.meta.endpoint_url == "http://127.0.0.1:8000"
    assert dynamodb.meta.region_name == "us-east-2"
    assert dynamodb.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert dynamodb.meta.config.connect_timeout == 2
    assert dynamodb.meta.config.read_timeout == 15
    assert "kit/" in dynamodb.meta.config.user_agent_extra
    assert target.client("dynamodb") is dynamodb  # cached per service
    assert target.session() is target.session()
    logs = target.client("cloudwatch-logs")
    assert logs.meta.service_model.service_name == "logs"
    assert logs.meta.endpoint_url == "http://127.0.0.1:5000"  # the "*" endpoint
    assert target.client("logs") is logs
    assert target.credentials is not None
    assert target.credentials.access_key_id == LOCAL_ACCESS_KEY_ID
    assert not target.read_only
    target.require_writes("create the table")  # the lab is writable


def test_local_target_ignores_a_broken_aws_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile-anywhere")
    target = Target.local({"dynamodb": "http://127.0.0.1:8000"})
    assert target.client("dynamodb").meta.region_name == "us-east-2"


def test_copies_of_a_target_do_not_share_clients() -> None:
    target = Target.local(LAB_ENDPOINTS)
    client = target.client("dynamodb")
    other = dataclasses.replace(target, region="us-east-1")
    assert other.client("dynamodb") is not client
    assert other.client("dynamodb").meta.region_name == "us-east-1"
    assert other == dataclasses.replace(target, region="us-east-1")
    assert hash(other) == hash(dataclasses.replace(target, region="us-east-1"))
    assert "_cache" not in repr(target)


def test_targets_share_one_data_loader_and_its_search_paths_stay_put(aws_home: Path) -> None:
    """Every target has a session of its own (their credentials differ) but botocore's parsed models are
    shared: a second target's first client reads no file again, and boto3 adding its data folder to each
    session's loader adds it once."""
    first, second = Target.local(LAB_ENDPOINTS), Target.local(LAB_ENDPOINTS)
    assert first.session() is not second.session()
    loader = first.session()._loader
    assert second.session()._loader is loader
    paths = list(loader.search_paths)
    assert len(paths) == len(set(paths))
    first.client("dynamodb")
    add_profile(aws_home, "dev")
    profiled = Target.aws(profile="dev", region="us-east-2", table="connections")
    assert profiled.session()._loader is loader  # a profile's session too
    assert profiled.session().profile_name == "dev"
    assert list(loader.search_paths) == paths
    reads: list[str] = []
    files = loader.file_loader
    original = files.load_file
    files.load_file = lambda path: (reads.append(path), original(path))[1]
    try:
        assert second.client("dynamodb").meta.service_model.service_name == "dynamodb"
    finally:
        del files.load_file
    assert reads == []  # every file the client needs was already parsed


def test_a_data_path_gets_a_loader_of_its_own(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = Target.local(LAB_ENDPOINTS).session()._loader
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    own = Target.local(LAB_ENDPOINTS).session()._loader
    assert own is not shared
    assert own.search_paths[0] == str(tmp_path)


def test_a_target_built_with_a_missing_profile_says_so_at_session_build(aws_home: Path) -> None:
    """A target made directly (not by Target.aws, which checks the profile while resolving) reports a missing
    profile as a ConfigurationError when its session is built, not as botocore's ProfileNotFound at the
    first client."""
    target = Target(kind="aws", region="us-east-2", profile="ghost")
    with pytest.raises(ConfigurationError) as caught:
        target.session()
    assert str(caught.value).startswith(
        f"AWS profile 'ghost' was not found in {aws_home / 'config'} or {aws_home / 'credentials'}; "
    )


def test_a_profile_session_uses_the_shared_loader_despite_a_stale_aws_profile(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target's profile, not AWS_PROFILE, decides the session: a stale AWS_PROFILE naming a missing
    profile neither breaks it nor costs it the shared data loader."""
    shared = Target.local(LAB_ENDPOINTS).session()._loader
    add_profile(aws_home, "dev", region="eu-west-1")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile-anywhere")
    session = Target(kind="aws", region="us-east-2", profile="dev").session()
    assert session._loader is shared
    assert session.profile_name == "dev"
    assert session.get_credentials().access_key == "AKIAPROFILE0000 DEV"


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ({}, "A lab target needs at least one local endpoint"),
        ({"dynamodb": "https://dynamodb.us-east-2.amazonaws.com"}, "only talks to loopback"),
        ({"dynamodb": "http://10.0.0.5:8000"}, "only talks to loopback"),
    ],
)
def test_lab_targets_are_loopback_only(endpoints: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Target.local(endpoints)


def test_lab_client_never_falls_through_to_aws() -> None:
    target = Target.local({"dynamodb": "http://localhost:8000"})
    with pytest.raises(ConfigurationError, match="The lab target has no endpoint for logs"):
        target.client("logs")


def test_management_client_uses_management_url() -> None:
    target = Target.local(LAB_ENDPOINTS, management_url="http://127.0.0.1:9000/prod")
    management = target.client("apigatewaymanagementapi")
    assert management.meta.endpoint_url == "http://127.0.0.1:9000/prod"


@pytest.mark.parametrize(
    ("region", "table", "message"),
    [
        ("Ohio", "chatgenius-connections", "'Ohio' is not an AWS region name"),
        ("us-east-2", "ab", "'ab' is not a valid DynamoDB table name"),
        ("us-east-2", "chat connections", "is not a valid DynamoDB table name"),
    ],
)
def test_target_validates_region_and_table(region: str, table: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Target.local(LAB_ENDPOINTS, region=region, table=table)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("logs", "logs"), ("CloudWatch-Logs", "logs"), ("dynamo", "dynamodb"), ("iam", "iam")],
)
def test_canonical_service(alias: str, name: str) -> None:
    assert canonical_service(alias) == name


# --------------------------------------------------------------------------------------------------
# AWS targets


def test_aws_target_from_env_file(aws_home: Path) -> None:
    target = Target.aws(env_file=env_path("good.env"))
    assert (target.kind, target.region, target.table) == ("aws", "us-east-2", "chatgenius-connections")
    assert target.credentials is not None
    assert target.credentials.access_key_id == FIXTURE_KEY_ID
    assert target.credentials.session_token is not None
    assert (target.api_id, target.stage) == ("prqb9y0mvd", "prod")
    assert target.management_url == "https://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod"
    assert target.read_only
    assert target.source == f"file {env_path('good.env')}"
    assert target.provenance["region"].endswith("(AWS_REGION)")
    assert target.problems == ()
    dynamodb = target.client("dynamodb")
    assert dynamodb.meta.region_name == "us-east-2"
    assert dynamodb.meta.endpoint_url == "https://dynamodb.us-east-2.amazonaws.com"
    # botocore counts the first call too: 10 retries are 11 attempts in all.
    assert dynamodb.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert (dynamodb.meta.config.connect_timeout, dynamodb.meta.config.read_timeout) == (5, 30)
    frozen = target.session().get_credentials().get_frozen_credentials()
    assert frozen.access_key == FIXTURE_KEY_ID
    management = target.client("apigatewaymanagementapi")
    assert management.meta.endpoint_url == "https://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod"


def test_aws_target_from_profile(aws_home: Path) -> None:
    add_profile(aws_home, "dev", region="eu-west-1")
    target = Target.aws(profile="dev")
    assert (target.region, target.profile, target.credentials) == ("eu-west-1", "dev", None)
    assert target.provenance["region"] == "profile dev"
    assert target.provenance["credentials"] == "profile dev (shared-credentials-file)"
    assert target.source == "profile dev"
    assert target.table == "chatgenius-connections"
    assert target.provenance["table"] == "default"
    assert target.client("dynamodb").meta.region_name == "eu-west-1"


def test_explicit_profile_wins_over_env_file_credentials(aws_home: Path) -> None:
    add_profile(aws_home, "dev")
    target = Target.aws(profile="dev", env_file=env_path("good.env"))
    assert target.credentials is None
    assert target.profile == "dev"
    assert any("--profile dev was given" in p for p in target.problems)


def test_env_file_credentials_ignore_a_stale_aws_profile(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_profile(aws_home, "default", region="us-west-2")
    monkeypatch.setenv("AWS_PROFILE", "default")
    target = Target.aws(env_file=env_path("good.env"))
    assert target.credentials is not None
    assert target.session().get_credentials().access_key == FIXTURE_KEY_ID


@pytest.mark.parametrize(
    ("argument", "environ", "expected_region", "expected_source"),
    [
        ("ap-south-1", {"AWS_REGION": "eu-north-1"}, "ap-south-1", "--region"),
        (None, {"AWS_REGION": "eu-north-1"}, "us-east-2", "(AWS_REGION)"),  # env file beats environ
    ],
)
def test_region_precedence_with_env_file(
    aws_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    argument: str | None,
    environ: dict[str, str],
    expected_region: str,
    expected_source: str,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    target = Target.aws(region=argument, env_file=env_path("good.env"))
    assert target.region == expected_region
    assert target.provenance["region"].endswith(expected_source)


@pytest.mark.parametrize(
    ("environ", "expected_region", "expected_source"),
    [
        (
            {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "eu-west-3"},
            "eu-north-1",
            "environment (AWS_REGION)",
        ),
        ({"AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-3", "environment (AWS_DEFAULT_REGION)"),
        ({}, "ca-central-1", "profile default"),
    ],
)
def test_region_precedence_without_env_file(
    aws_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected_region: str,
    expected_source: str,
) -> None:
    add_profile(aws_home, "default", region="ca-central-1")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    target = Target.aws()
    assert (target.region, target.provenance["region"]) == (expected_region, expected_source)


def test_region_disagreeing_with_the_api_is_a_target_problem(aws_home: Path) -> None:
    target = Target.aws(region="us-west-2", env_file=env_path("good.env"))
    assert target.problems == (
        "The WebSocket API prqb9y0mvd is in us-east-2 but the target region is us-west-2 (from --region); "
        "unless the $connect Lambda sets its own region, it writes to the table in us-east-2.",
    )


def test_aliases_file_gives_table_url_and_https_management(aws_home: Path) -> None:
    add_profile(aws_home, "chat-dev")
    target = Target.aws(env_file=env_path("aliases.env"))
    assert target.table == "chatgenius-connections-staging"
    assert target.profile == "chat-dev"
    assert (target.api_id, target.region, target.stage) == ("abc123defg", "us-east-2", "staging")
    assert target.management_url == "https://abc123defg.execute-api.us-east-2.amazonaws.com/staging"


# --------------------------------------------------------------------------------------------------
# Configuration errors: one sentence, naming what is missing and where it was looked for


def test_missing_region_names_every_place_looked(aws_home: Path) -> None:
    add_profile(aws_home, "dev")
    with pytest.raises(ConfigurationError) as caught:
        Target.aws(profile="dev", env_file=env_path("no-region.env"))
    assert str(caught.value) == (
        f"No AWS region: not given with --region, not in {env_path('no-region.env')} (looked for "
        "AWS_REGION, AWS_DEFAULT_REGION, NEXT_PUBLIC_AWS_REGION, REGION), not in AWS_REGION/AWS_DEFAULT_REGION, "
        "and profile 'dev' has none; pass --region us-east-2."
    )


def test_missing_region_suggests_the_apis_region(aws_home: Path) -> None:
    add_profile(aws_home, "default")
    with pytest.raises(ConfigurationError, match=r"no env file was given, .* profile 'default' has none"):
        Target.aws()
    with pytest.raises(ConfigurationError, match=r"pass --region us-east-2 \(the WebSocket API's region\)"):
        Target.aws(websocket_url="wss://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod")


def test_missing_credentials_names_every_place_looked(aws_home: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Target.aws(env_file=env_path("no-credentials.env"))
    message = str(caught.value)
    assert message.startswith(
        f"No AWS credentials: not in {env_path('no-credentials.env')} (looked for AWS_ACCESS_KEY_ID, "
        "NEXT_PUBLIC_AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY, NEXT_PUBLIC_AWS_SECRET_ACCESS_KEY), "
        "not in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in profile 'default' of "
    )
    assert str(aws_home / "config") in message
    assert str(aws_home / "credentials") in message
    assert message.endswith("pass --profile.")


def test_half_credentials_are_an_error(aws_home: Path) -> None:
    with pytest.raises(ConfigurationError, match="sets AWS_SECRET_ACCESS_KEY but none of AWS_ACCESS_KEY_ID"):
        Target.aws(env_file=env_path("half-credentials.env"))


@pytest.mark.parametrize("source", ["argument", "env file", "environment"])
def test_unknown_profile_names_profile_and_config_files(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    env_file = None
    if source == "argument":
        kwargs = {"profile": "ghost"}
    elif source == "env file":
        env_file = tmp_path / ".env.local"
        env_file.write_text("AWS_PROFILE=ghost\nAWS_REGION=us-east-2\n")
        kwargs = {}
    else:
        monkeypatch.setenv("AWS_PROFILE", "ghost")
        kwargs = {}
    with pytest.raises(ConfigurationError) as caught:
        Target.aws(env_file=env_file, **kwargs)
    message = str(caught.value)
    assert message.startswith("AWS profile 'ghost' (from ")
    assert f"was not found in {aws_home / 'config'} or {aws_home / 'credentials'}" in message
    assert "aws configure list-profiles" in message


def test_invalid_table_from_env_file(aws_home: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Target.aws(env_file=env_path("bad-table.env"))
    assert str(caught.value).startswith(
        f"No usable table name: 'chatgenius connections' from {env_path('bad-table.env')} (CONNECTIONS_TABLE)"
    )


def test_empty_table_argument(aws_home: Path) -> None:
    with pytest.raises(ConfigurationError, match="No usable table name: '' from --table"):
        Target.aws(table="", env_file=env_path("good.env"))


def test_missing_env_file_for_aws(aws_home: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Target.aws(env_file=tmp_path / "nope.env")


# --------------------------------------------------------------------------------------------------
# Read-only and redaction


def test_aws_targets_are_read_only_unless_allowed(aws_home: Path) -> None:
    target = Target.aws(env_file=env_path("good.env"))
    with pytest.raises(ConfigurationError) as caught:
        target.require_writes("create table chatgenius-connections")
    assert str(caught.value) == (
        "Cannot create table chatgenius-connections: target aws us-east-2 is read-only against a real "
        "AWS account; pass --allow-writes to let the kit change it."
    )
    Target.aws(env_file=env_path("good.env"), allow_writes=True).require_writes("create the table")


def test_describe_is_redacted(aws_home: Path) -> None:
    target = Target.aws(env_file=env_path("good.env"))
    summary = target.describe()
    assert summary["kind"] == "aws"
    assert summary["access_key_id"] == "AKIA…XYZ1"
    assert summary["credential_source"] == "good.env (AWS_ACCESS_KEY_ID)", "a file's name, not its path"
    assert summary["endpoints"] == "AWS"
    assert all(isinstance(value, str) for value in summary.values())
    assert FIXTURE_KEY_ID not in str(summary)
    lab = Target.local(LAB_ENDPOINTS).describe()
    assert lab["endpoints"] == "*=http://127.0.0.1:5000, dynamodb=http://127.0.0.1:8000"
    assert lab["read_only"] == "no"


@pytest.mark.parametrize(
    "env_name",
    [
        "good.env",
        "bad-lines.env",
        "next-public-credentials.env",
        "region-mismatch.env",
        "half-credentials.env",
    ],
)
def test_secrets_never_reach_repr_errors_or_logs(
    aws_home: Path, caplog: pytest.LogCaptureFixture, env_name: str
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    env = read_env_file(env_path(env_name))
    shown += [repr(env), *env.problems]
    try:
        target = Target.aws(env_file=env_path(env_name))
    except ConfigurationError as exc:
        shown.append(str(exc))
    else:
        target.client("dynamodb")
        shown += [repr(target), str(target), str(target.describe()), *target.problems]
        shown.append(str(dataclasses.asdict(target)))
        try:
            Target.aws(env_file=env_path(env_name), table="x")
        except ConfigurationError as exc:
            shown.append(str(exc))
        with pytest.raises(ConfigurationError) as caught:
            target.require_writes("write")
        shown.append(str(caught.value))
    shown.append(caplog.text)
    everything = "\n".join(shown)
    assert FIXTURE_SECRET not in everything
    assert FIXTURE_TOKEN not in everything


def test_region_mismatch_inside_the_env_file_is_reported_once(aws_home: Path) -> None:
    target = Target.aws(env_file=env_path("region-mismatch.env"))
    assert target.region == "us-east-1"
    assert [p for p in target.problems if "us-east-2" in p] == [
        "line 4: NEXT_PUBLIC_WEBSOCKET_URL points at an API in us-east-2, but AWS_REGION (line 1) is "
        "us-east-1; the $connect Lambda runs in us-east-2 and, unless it sets its own region, writes to "
        "the table in us-east-2."
    ]


def test_credentials_from_the_environment(aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FIXTURE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FIXTURE_SECRET)
    target = Target.aws(region="us-east-2")
    assert target.source == "environment (AWS_ACCESS_KEY_ID)"
    assert target.credentials is None  # the session's chain holds them; the target does not copy them
    assert FIXTURE_SECRET not in repr(target) + str(target.describe())


# --------------------------------------------------------------------------------------------------
# Target.from_parameters: the one choice between the lab, a real account and a bare local endpoint

LAB_FILE = {
    "region": "us-west-2",
    "websocket_url": "ws://127.0.0.1:7001/prod",
    "management_url": "http://127.0.0.1:7002/prod",
    "endpoints": {"dynamodb": "http://127.0.0.1:7003", "iam": "http://127.0.0.1:7004"},
    "credentials": {},
    "table": "lab-connections",
    "api_id": "labapi0001",
    "stage": "prod",
    "scenario": "healthy",
}


@pytest.fixture
def lab_file(tmp_path: Path) -> Path:
    """A lab file as a running lab (this process) writes it."""
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({**LAB_FILE, "pid": os.getpid()}))
    return path


# (parameters, what the target must be): every key of the expectation is a Target attribute.
CHOICES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "lab reads the lab file",
        {"kind": "lab"},
        {"kind": "lab", "region": "us-west-2", "table": "lab-connections", "api_id": "labapi0001"},
    ),
    ("kind read without case or blanks", {"kind": " LAB "}, {"kind": "lab", "region": "us-west-2"}),
    (
        "the lab file says everything: the rest is ignored",
        {"kind": "lab", "region": "eu-west-1", "table": "other", "profile": "dev"},
        {"kind": "lab", "region": "us-west-2", "table": "lab-connections", "profile": None},
    ),
    (
        "aws: a real account, read-only",
        {"kind": "aws", "region": "us-east-1", "table": "app-connections"},
        {"kind": "aws", "region": "us-east-1", "table": "app-connections", "read_only": True},
    ),
    (
        "aws: empty strings mean not given (papermill)",
        {"kind": "aws", "profile": "", "region": "", "table": "", "env_file": "GOOD", "websocket_url": ""},
        {"kind": "aws", "region": "us-east-2", "table": "chatgenius-connections", "read_only": True},
    ),
    (
        "aws: writable only when asked",
        {"kind": "aws", "region": "us-east-1", "allow_writes": True},
        {"kind": "aws", "read_only": False},
    ),
    (
        "a DynamoDB URL: that endpoint alone, us-east-2 by default",
        {"kind": "lab", "dynamodb_url": "http://127.0.0.1:8000"},
        {
            "kind": "lab",
            "region": "us-east-2",
            "table": "chatgenius-connections",
            "endpoints": {"dynamodb": "http://127.0.0.1:8000"},
        },
    ),
    (
        "a DynamoDB URL wins over aws, and takes region and table",
        {"kind": "aws", "dynamodb_url": "http://127.0.0.1:8000", "region": "us-east-1", "table": "t-1"},
        {"kind": "lab", "region": "us-east-1", "table": "t-1", "read_only": False},
    ),
]


@pytest.mark.parametrize(("parameters", "expected"), [pytest.param(p, e, id=name) for name, p, e in CHOICES])
def test_from_parameters_chooses_the_target(
    aws_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    lab_file: Path,
    parameters: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FIXTURE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FIXTURE_SECRET)
    if parameters.get("env_file") == "GOOD":
        parameters = {**parameters, "env_file": str(env_path("good.env"))}
    kind = parameters.pop("kind")
    target = Target.from_parameters(kind, lab_file=lab_file, **parameters)
    assert {name: getattr(target, name) for name in expected} == expected
    if target.kind == "lab" and "dynamodb_url" not in parameters:
        assert target.source == f"lab file {lab_file}"


def _stopped(path: Path) -> None:
    path.write_text(json.dumps({"stopped": "DynamoDB Local died.", "pid": os.getpid()}))


def _dead_pid(path: Path) -> None:
    path.write_text(json.dumps({**LAB_FILE, "pid": 2**22 + 1}))  # above Linux's pid_max


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        pytest.param("lab", Path.unlink, "no lab is running ({path} not found); start one", id="no lab file"),
        pytest.param("lab", _stopped, "the lab is not running: DynamoDB Local died. Start", id="stopped"),
        pytest.param("lab", _dead_pid, "{path} names a lab (pid 4194305) that is no longer", id="dead"),
        pytest.param("lab", lambda p: p.write_text("{"), "{path} is not valid JSON", id="not JSON"),
        pytest.param("prod", None, "The target parameter is 'prod'; use 'lab'", id="unknown kind"),
        pytest.param("", None, "The target parameter is ''; use 'lab'", id="no kind"),
    ],
)
def test_from_parameters_says_in_one_line_why_there_is_no_target(
    lab_file: Path, kind: str, change: Callable[[Path], object] | None, message: str
) -> None:
    if change is not None:
        change(lab_file)
    with pytest.raises(ConfigurationError) as raised:
        Target.from_parameters(kind, lab_file=lab_file)
    assert message.format(path=lab_file) in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("allow_writes", "read_only"), [(False, True), (True, False)])
def test_notebook_parameters_make_an_account_writable_only_when_asked(
    aws_home: Path, allow_writes: bool, read_only: bool
) -> None:
    target = Target.from_parameters(
        "aws",
        profile="",
        region="us-east-2",
        table="",
        env_file=str(env_path("good.env")),
        websocket_url="",
        allow_writes=allow_writes,
    )
    assert target.read_only is read_only


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("NEXT_PUBLIC_AWS_SECRET_ACCESS_KEY", True),
        ("NEXT_PUBLIC_API_KEY", True),
        ("NEXT_PUBLIC_DB_PWD", True),  # the same judge as the report's redactor
        ("NEXT_PUBLIC_AUTH_TOKEN", True),
        ("NEXT_PUBLIC_WEBSOCKET_URL", False),
        ("NEXT_PUBLIC_TOKEN_FILE", False),  # where a secret is, not the secret
        ("API_KEY", False),  # a server-only variable: no warning
    ],
)
def test_a_secret_in_a_next_public_variable_is_flagged(name: str, flagged: bool) -> None:
    env = parse_env_text(f"{name}=s3cr3t-value-1234\n")
    assert any("NEXT_PUBLIC_ variable" in p for p in env.problems) is flagged
