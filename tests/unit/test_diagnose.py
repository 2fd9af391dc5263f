"""kit.diagnose offline, the pipeline as a whole: every check run over hand-built evidence, ranking, JSON and
the summary, evidence not read, exit codes.

The evidence builders are in diagnose_evidence.py; each check's own table of cases is in the
``test_diagnose_<module>.py`` of its module (config_checks, table_checks, permission_checks, handler_checks,
symptom_checks). Nothing here touches the network, the lab or a clock that matters.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import config, frames, iam, logparse, probe_core
from kit.diagnose import (
    causes,
    config_checks,
    permission_checks,
    ranking,
    reading,
)
from kit.diagnose.findings import (
    FINDING_COLUMNS,
    Check,
    Diagnosis,
    Evidence,
    Finding,
)
from kit.diagnose.ranking import CHECKS
from kit.dynamo import direct_write, schema
from kit.dynamo.items import COVERAGE_COLUMNS, ITEMS_COLUMNS
from kit.errors import AwsError, ConfigurationError, EngineError

from .diagnose_evidence import (
    INDEX,
    MISSING_TABLE,
    PROBLEM,
    REGION,
    SWALLOWED,
    TABLE,
    TABLE_ARN,
    closed,
    coverage,
    differences,
    direct_write_steps,
    functions,
    healthy,
    invocations,
    items,
    lifecycle,
    log_lines,
    permissions,
    probe_rows,
    routes,
    stage,
)

HERE = Path(__file__).parent


# --------------------------------------------------------------------------------------------------------
# The builders and the checks as a whole
# --------------------------------------------------------------------------------------------------------


def test_builders_keep_the_declared_contracts() -> None:
    built = {
        "routes": (routes(), config.ROUTES_COLUMNS),
        "functions": (functions(), config.FUNCTION_COLUMNS),
        "stage": (stage(), config.STAGE_COLUMNS),
        "differences": (differences(), schema.DIFFERENCE_COLUMNS),
        "items": (items(), ITEMS_COLUMNS),
        "coverage": (coverage(), COVERAGE_COLUMNS),
        "permissions": (permissions(), iam.PERMISSION_COLUMNS),
        "log_lines": (log_lines(), logparse.LOG_COLUMNS),
        "invocations": (invocations(), logparse.INVOCATION_COLUMNS),
        "lifecycle": (lifecycle(), logparse.LIFECYCLE_COLUMNS),
        "probe": (probe_rows(), probe_core.PROBE_COLUMNS),
        "direct_write": (direct_write_steps(), direct_write.DIRECT_WRITE_COLUMNS),
    }
    for name, (frame, columns) in built.items():
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == dict(columns), name


def test_healthy_evidence_passes_every_check() -> None:
    findings = ranking.run_checks(healthy())
    assert findings["verdict"].tolist() == ["pass"] * len(findings), ranking.summary_text(
        Diagnosis(ranking.rank(findings), findings)
    )
    assert set(findings["check"]) >= {"connect-route", "iam-put", "probe", "apigw-logs"}
    assert ranking.rank(findings)["id"] == "none"


def test_every_check_has_its_modules_table_of_cases() -> None:
    """Each module of checks has its test file (which holds every one of its checks to a pass, a fail or warn
    and a skip)."""
    modules = {check.__module__.removeprefix("kit.diagnose.") for check in CHECKS}
    assert modules == {
        "authorizer_checks",
        "config_checks",
        "delivery_checks",
        "table_checks",
        "permission_checks",
        "handler_checks",
        "symptom_checks",
    }
    assert all((HERE / f"test_diagnose_{module}.py").is_file() for module in modules)


def test_a_skip_from_a_problem_also_reports_the_unread_section() -> None:
    evidence = replace(healthy(), permissions=None, problems={"iam": PROBLEM.format("iam")})
    findings = ranking.run_checks(evidence).set_index("check")
    assert findings.loc["iam-put", "verdict"] == "skip"
    assert findings.loc["iam-put", "evidence"] == PROBLEM.format("iam")
    assert findings.loc["read-iam", "verdict"] == "fail"
    assert findings.loc["read-iam", "cause"] == "evidence-unread"
    assert findings.loc["read-iam", "evidence"] == PROBLEM.format("iam")


# --------------------------------------------------------------------------------------------------------
# NA in boolean columns
# --------------------------------------------------------------------------------------------------------


def _booleans_na(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None:
        return None
    frame = frame.copy()
    for column, dtype in frame.dtypes.items():
        if str(dtype) == "boolean":
            frame[column] = pd.array([pd.NA] * len(frame), dtype="boolean")
    return frame


def _all_booleans_na() -> Evidence:
    evidence = healthy()
    sections = {
        name: _booleans_na(getattr(evidence, name))
        for name in (
            "routes",
            "functions",
            "stage",
            "items",
            "coverage",
            "permissions",
            "log_lines",
            "invocations",
            "probe",
            "direct_write",
        )
    }
    return replace(
        evidence,
        **sections,
        lifecycle=_booleans_na(lifecycle({}, closed("b", 300))),
    )


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_na_in_boolean_columns_never_raises(check: Check) -> None:
    found = check(_all_booleans_na())
    assert found
    assert all(f.verdict in ("pass", "fail", "warn", "skip") for f in found)


def test_na_in_boolean_columns_counts_as_false() -> None:
    findings = ranking.run_checks(_all_booleans_na()).set_index("check")
    # NA never turns into a crash-turned-skip: every check answered on the evidence.
    assert not findings["evidence"].str.contains("the check itself failed").any()
    assert findings.loc["iam-put", "verdict"] == "fail"  # an unknown verdict is not an Allow
    assert findings.loc["apigw-logs", "verdict"] == "warn"  # no proof the access log is on
    assert findings.loc["index-coverage", "verdict"] == "pass"  # not in index, but no reason given


# --------------------------------------------------------------------------------------------------------
# A check that raises
# --------------------------------------------------------------------------------------------------------


def check_that_breaks(evidence: Evidence) -> list[Finding]:
    raise KeyError("a column this check expected")


def test_a_check_that_raises_is_inconclusive_never_an_all_clear() -> None:
    findings = ranking.run_checks(
        healthy(),
        checks=(config_checks.check_connect_route, check_that_breaks, permission_checks.check_put_permission),
    )
    assert findings["check"].tolist() == ["connect-route", "that_breaks", "iam-put"]
    broken = findings.iloc[1]
    assert broken["verdict"] == "fail"
    assert broken["cause"] == "evidence-unread"
    assert "the check itself failed" in broken["evidence"]
    assert "a column this check expected" in broken["evidence"]
    assert ranking.rank(findings)["id"] == "evidence-unread"
    assert causes.exit_code(ranking.rank(findings)["id"]) == 3


def test_a_check_that_raises_does_not_hide_a_root_cause() -> None:
    evidence = replace(healthy(), permissions=permissions(put="implicit-deny"))
    findings = ranking.run_checks(
        evidence, checks=(check_that_breaks, permission_checks.check_put_permission)
    )
    assert findings["verdict"].tolist() == ["fail", "fail"]
    assert ranking.rank(findings)["id"] == "put-access-denied"


def test_no_checks_give_an_empty_typed_frame() -> None:
    findings = ranking.run_checks(healthy(), checks=())
    assert findings.empty
    assert list(findings.columns) == list(FINDING_COLUMNS)
    assert ranking.rank(findings)["id"] == "none"


# --------------------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------------------


def findings_of(*verdict_causes: tuple[str, str | None]) -> pd.DataFrame:
    rows = [
        {
            "check": f"check-{number}",
            "question": "?",
            "verdict": verdict,
            "cause": cause,
            "evidence": f"evidence {number} for {cause}",
            "next_step": "",
        }
        for number, (verdict, cause) in enumerate(verdict_causes)
    ]
    return frames.from_rows(rows, FINDING_COLUMNS)


def fail(cause: str | None) -> tuple[str, str | None]:
    return ("fail", cause)


def warn(cause: str | None) -> tuple[str, str | None]:
    return ("warn", cause)


RANKING: list[tuple[str, list[tuple[str, str | None]], str]] = [
    ("nothing", [], "none"),
    ("all pass", [("pass", None), ("pass", None)], "none"),
    ("route beats put", [fail("put-access-denied"), fail("connect-route-missing")], "connect-route-missing"),
    ("table beats index", [fail("index-access-denied"), fail("table-not-found")], "table-not-found"),
    ("put beats table", [fail("table-not-found"), fail("put-access-denied")], "put-access-denied"),
    (
        "mapping beats crash",
        [fail("handler-crash"), fail("connection-id-not-mapped")],
        "connection-id-not-mapped",
    ),
    ("crash beats put", [fail("put-access-denied"), fail("handler-crash")], "handler-crash"),
    ("region beats workspace", [fail("workspace-id-missing"), fail("wrong-region")], "wrong-region"),
    (
        "workspace beats early",
        [fail("early-disconnect"), fail("workspace-id-missing")],
        "workspace-id-missing",
    ),
    ("index beats early", [fail("early-disconnect"), fail("index-access-denied")], "index-access-denied"),
    (
        "route beats write-on-message",
        [fail("write-on-message"), fail("connect-route-missing")],
        "connect-route-missing",
    ),
    ("crash beats write-on-message", [fail("write-on-message"), fail("handler-crash")], "handler-crash"),
    ("write-on-message beats put", [fail("put-access-denied"), fail("write-on-message")], "write-on-message"),
    (
        "write-on-message beats not awaited",
        [fail("write-not-awaited"), fail("write-on-message")],
        "write-on-message",
    ),
    ("not awaited beats put", [fail("put-access-denied"), fail("write-not-awaited")], "write-not-awaited"),
    (
        "a missing table beats a denied direct write",
        [fail("table-write-denied"), fail("table-not-found")],
        "table-not-found",
    ),
    (
        "schema beats a denied direct write",
        [fail("table-write-denied"), fail("table-schema-mismatch")],
        "table-schema-mismatch",
    ),
    (
        "a denied direct write beats workspace",
        [fail("workspace-id-missing"), fail("table-write-denied")],
        "table-write-denied",
    ),
    ("a warn on write-on-message is not a root cause", [warn("write-on-message")], "none"),
    ("warn only", [warn("app-logs-missing"), warn("email-as-token"), warn(None)], "none"),
    ("a warn with a cause id is not a root cause", [warn("put-access-denied")], "none"),
    ("a skip is not a root cause", [("skip", None), ("skip", "put-access-denied")], "none"),
    (
        "contributing only",
        [fail("error-swallowed"), warn("app-logs-missing"), warn("email-as-token")],
        "none",
    ),
    (
        "contributing beside a cause",
        [
            fail("error-swallowed"),
            warn("app-logs-missing"),
            fail("put-access-denied"),
            warn("email-as-token"),
        ],
        "put-access-denied",
    ),
    # What was seen ranks after every cause that explains it, before none; reads that failed rank around it.
    (
        "a cause beats an unreachable target",
        [fail("target-unreachable"), fail("early-disconnect")],
        "early-disconnect",
    ),
    (
        "an unreachable target beats a refused handshake",
        [fail("handshake-refused"), fail("target-unreachable")],
        "target-unreachable",
    ),
    (
        "a crash beats a refused handshake",
        [fail("handshake-refused"), fail("handler-crash")],
        "handler-crash",
    ),
    (
        "a refused handshake beats not stored",
        [fail("not-stored"), fail("handshake-refused")],
        "handshake-refused",
    ),
    ("a denied put beats not stored", [fail("not-stored"), fail("put-access-denied")], "put-access-denied"),
    ("not stored beats not delivered", [fail("not-delivered"), fail("not-stored")], "not-stored"),
    (
        "a denied index beats not delivered",
        [fail("not-delivered"), fail("index-access-denied")],
        "index-access-denied",
    ),
    # The causes of messages not delivered while connections are stored: after storage's, before the symptom.
    (
        "an early disconnect beats a selection mismatch",
        [fail("route-selection-mismatch"), fail("early-disconnect")],
        "early-disconnect",
    ),
    (
        "a selection mismatch beats a denied ManageConnections",
        [fail("manage-connections-denied"), fail("route-selection-mismatch")],
        "route-selection-mismatch",
    ),
    (
        "a denied ManageConnections beats a wrong endpoint",
        [fail("management-endpoint-wrong"), fail("manage-connections-denied")],
        "manage-connections-denied",
    ),
    (
        "a wrong endpoint beats a missing message route",
        [fail("message-route-missing"), fail("management-endpoint-wrong")],
        "management-endpoint-wrong",
    ),
    (
        "a stale deployment beats a missing message route",
        [fail("message-route-missing"), fail("stale-deployment")],
        "stale-deployment",
    ),
    (
        "a missing message route beats not delivered",
        [fail("not-delivered"), fail("message-route-missing")],
        "message-route-missing",
    ),
    (
        "not delivered beats evidence unread",
        [fail("evidence-unread"), fail("not-delivered")],
        "not-delivered",
    ),
    ("evidence unread beats none", [("pass", None), fail("evidence-unread")], "evidence-unread"),
    ("a symptom as a warn is not a root cause", [warn("not-delivered"), warn("handshake-refused")], "none"),
    ("a fail without a cause id", [fail(None)], "none"),
    ("an unknown cause id", [fail("gremlins")], "none"),
    (
        "everything at once",
        [fail(cause.id) for cause in reversed(causes.CAUSES) if cause.id != "none"],
        "target-not-found",
    ),
    (  # what runs is the deployment: today's configuration, and what it lacks, is not served yet
        "a stale deployment beats a missing $connect route",
        [fail("connect-route-missing"), fail("stale-deployment")],
        "stale-deployment",
    ),
    (
        "a stale deployment beats what its old handler does",
        [fail("table-not-found"), fail("handler-crash"), fail("not-stored"), fail("stale-deployment")],
        "stale-deployment",
    ),
    (  # a refused handshake never reaches $connect: what the handler or table would do is moot
        "a denying authorizer beats the refused handshake and what $connect would do",
        [fail("handshake-refused"), fail("put-access-denied"), fail("authorizer-denied")],
        "authorizer-denied",
    ),
    (
        "a stale deployment beats a denying authorizer (the deployed one is what runs)",
        [fail("authorizer-denied"), fail("stale-deployment")],
        "stale-deployment",
    ),
    (
        "a missing $connect route beats a denying authorizer",
        [fail("authorizer-denied"), fail("connect-route-missing")],
        "connect-route-missing",
    ),
    (  # the handler failed because of the authorizer: that explains its failures and an empty table
        "a context without the user beats a denied put and not stored",
        [fail("not-stored"), fail("put-access-denied"), fail("authorizer-context-missing")],
        "authorizer-context-missing",
    ),
    (
        "a crashing handler beats a context without the user",
        [fail("authorizer-context-missing"), fail("handler-crash")],
        "handler-crash",
    ),
    (
        "a wrong target beats a stale deployment",
        [fail("stale-deployment"), fail("target-not-found")],
        "target-not-found",
    ),
    (
        "a wrong target beats every cause in the stack",
        [fail("table-not-found"), fail("connect-route-missing"), fail("target-not-found")],
        "target-not-found",
    ),
    (  # nothing runs: what the $connect handler or the table would do is moot
        "an invoke permission missing beats what the handler would do",
        [fail("put-access-denied"), fail("handshake-refused"), fail("invoke-permission-missing")],
        "invoke-permission-missing",
    ),
    (  # the stage serves a deployment whose $connect may be another function, with its own policy
        "a stale deployment beats an invoke permission missing",
        [fail("invoke-permission-missing"), fail("stale-deployment")],
        "stale-deployment",
    ),
    (
        "AWS_IAM refusals beat the symptom they explain and the handler behind them",
        [fail("handshake-refused"), fail("handler-crash"), fail("connect-iam-denied")],
        "connect-iam-denied",
    ),
    ("a symptom beats evidence missing", [fail("evidence-missing"), fail("not-stored")], "not-stored"),
    (
        "evidence unread beats evidence missing",
        [fail("evidence-missing"), fail("evidence-unread")],
        "evidence-unread",
    ),
    ("evidence missing beats none", [("pass", None), fail("evidence-missing")], "evidence-missing"),
]


@pytest.mark.parametrize("order", ["as-listed", "reversed"])
@pytest.mark.parametrize(
    ("failing", "expected"), [(f, e) for _, f, e in RANKING], ids=[r[0] for r in RANKING]
)
def test_rank(failing: list[tuple[str, str | None]], expected: str, order: str) -> None:
    listed = failing if order == "as-listed" else list(reversed(failing))
    root = ranking.rank(findings_of(*listed))
    assert root["id"] == expected
    chosen = causes.cause(expected)
    assert (root["summary"], root["next_step"]) == (chosen.summary, chosen.next_step)
    assert (root["evidence"] == []) == (expected == "none")


@pytest.mark.parametrize("cause", [c.id for c in causes.CAUSES if c.id != "none"])
def test_each_cause_alone_is_the_root_cause(cause: str) -> None:
    assert ranking.rank(findings_of(("pass", None), fail(cause), warn("email-as-token")))["id"] == cause


def test_contributing_ids_are_not_causes() -> None:
    assert not {"error-swallowed", "app-logs-missing", "email-as-token", "emulator-connection-ids"} & set(
        causes.BY_ID
    )
    ranks = [cause.rank for cause in causes.CAUSES]
    assert len(set(ranks)) == len(ranks)


def test_rank_gathers_the_evidence_of_every_finding_of_the_root_cause() -> None:
    findings = findings_of(fail("put-access-denied"), fail("table-not-found"), fail("table-not-found"))
    root = ranking.rank(findings)
    assert root["id"] == "put-access-denied"
    assert root["evidence"] == ["evidence 0 for put-access-denied"]
    root = ranking.rank(
        findings_of(fail("table-not-found"), fail("index-access-denied"), fail("table-not-found"))
    )
    assert root["evidence"] == ["evidence 0 for table-not-found", "evidence 2 for table-not-found"]


# --------------------------------------------------------------------------------------------------------
# Output: JSON and the terminal summary
# --------------------------------------------------------------------------------------------------------


def _denied() -> Diagnosis:
    evidence = replace(
        healthy(),
        permissions=permissions(put="implicit-deny"),
        lifecycle=lifecycle(SWALLOWED | {"app_error_code": "AccessDeniedException"}),
        probe=None,
        problems={"probe": "the probe was not allowed"},
    )
    return ranking.diagnose(evidence)


def test_to_json_parses_with_the_root_cause_and_the_findings() -> None:
    diagnosis = _denied()
    parsed = json.loads(ranking.to_json(diagnosis))
    assert set(parsed) == {"root_cause", "findings", "counts"}
    assert set(parsed["root_cause"]) == {"id", "summary", "evidence", "next_step"}
    assert parsed["root_cause"]["id"] == "put-access-denied"
    assert parsed["root_cause"]["evidence"] == [
        f"implicit-deny: dynamodb:PutItem on {TABLE_ARN} is implicit-deny."
    ]
    assert parsed["root_cause"]["next_step"] == causes.cause("put-access-denied").next_step
    assert len(parsed["findings"]) == len(diagnosis.findings)
    for finding in parsed["findings"]:
        assert list(finding) == list(FINDING_COLUMNS)
        assert finding["verdict"] in ("pass", "fail", "warn", "skip")
        assert finding["cause"] is None or isinstance(finding["cause"], str)  # NA becomes null
    by_check = {finding["check"]: finding for finding in parsed["findings"]}
    assert by_check["iam-put"]["cause"] == "put-access-denied"
    assert by_check["error-handling"]["cause"] == "error-swallowed"
    assert by_check["connect-route"]["cause"] is None
    assert (by_check["read-probe"]["verdict"], by_check["read-probe"]["cause"]) == ("fail", "evidence-unread")


def test_to_json_of_a_healthy_diagnosis() -> None:
    parsed = json.loads(ranking.to_json(ranking.diagnose(healthy())))
    assert parsed["root_cause"] == {
        "id": "none",
        "summary": causes.cause("none").summary,
        "evidence": [],
        "next_step": causes.cause("none").next_step,
    }
    assert {finding["verdict"] for finding in parsed["findings"]} == {"pass"}


def test_findings_keep_their_declared_dtypes() -> None:
    findings = _denied().findings
    assert {column: str(dtype) for column, dtype in findings.dtypes.items()} == FINDING_COLUMNS


def test_summary_text_names_the_root_cause_and_tags_each_finding() -> None:
    diagnosis = _denied()
    text = ranking.summary_text(diagnosis)
    lines = text.splitlines()
    assert lines[0] == f"Root cause: put-access-denied — {causes.cause('put-access-denied').summary}"
    assert lines[1].startswith("  evidence: implicit-deny")
    assert "FAIL iam-put [put-access-denied]: implicit-deny" in text
    assert "FAIL error-handling [error-swallowed]" in text
    assert "ok   connect-route: $connect → AWS_PROXY" in text
    assert "FAIL read-probe [evidence-unread]: the probe was not allowed" in text
    assert len([line for line in lines if line[:4] in ("ok  ", "FAIL", "warn", "skip")]) == len(
        diagnosis.findings
    )


# --------------------------------------------------------------------------------------------------------
# What was seen is never overruled by an all-clear; evidence not read is never an all-clear
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (
            {"http_status": 500, "stored": None, "visible": None, "sent": None, "delivered": None},
            "handshake-refused",
        ),
        (
            {"http_status": 403, "stored": None, "visible": None, "sent": None, "delivered": None},
            "handshake-refused",
        ),
        (
            {"http_status": None, "stored": None, "visible": None, "sent": None, "delivered": None},
            "target-unreachable",
        ),
        ({"stored": False, "visible": None}, "not-stored"),
        ({"sent": False, "delivered": False}, "not-delivered"),
        ({"delivered": False}, "not-delivered"),
    ],
    ids=["refused 500", "refused 403", "no answer", "not stored", "error frame", "not received"],
)
def test_what_the_probe_saw_fail_is_never_none(seen: dict[str, Any], expected: str) -> None:
    # Everything else healthy: the logs, the table, the role; only the probe saw it.
    diagnosis = ranking.diagnose(replace(healthy(), probe=probe_rows(**seen)))
    assert diagnosis.root_cause["id"] == expected, ranking.summary_text(diagnosis)
    assert diagnosis.root_cause["evidence"]
    assert causes.exit_code(diagnosis.root_cause["id"]) != 0


@pytest.mark.parametrize(
    ("kind", "cause", "step_has"),
    [
        ("unreachable", "target-unreachable", "did not answer"),
        ("denied", "evidence-unread", "Grant the kit's identity"),
        ("failed", "evidence-unread", "Fix what the message names"),
        (None, "evidence-unread", "Fix what the message names"),  # a problem recorded without its kind
    ],
)
def test_a_section_not_read_is_inconclusive_by_its_kind(kind: str | None, cause: str, step_has: str) -> None:
    kinds = {"logs": kind} if kind is not None else {}
    evidence = replace(healthy(), problems={"logs": "FilterLogEvents failed"}, problem_kinds=kinds)
    diagnosis = ranking.diagnose(evidence)
    read = diagnosis.findings.set_index("check").loc["read-logs"]
    assert (read["verdict"], read["cause"], read["evidence"]) == ("fail", cause, "FilterLogEvents failed")
    assert step_has in read["next_step"]
    assert diagnosis.root_cause["id"] == cause
    assert causes.cause(cause).kind == "inconclusive"
    assert causes.exit_code(cause) == 3


def test_read_evidence_records_what_kind_of_failure_each_unread_section_was() -> None:
    evidence = Evidence("t", REGION, TABLE, INDEX)
    failures = {
        "tables": AwsError(
            "no answer", service="dynamodb", operation="ListTables", code="EndpointConnectionError"
        ),
        "iam": AwsError("refused", service="iam", operation="GetRole", code="AccessDenied"),
        "api": ConfigurationError("no API id"),
        "probe": EngineError("the engine stopped"),
    }
    for section, error in failures.items():

        def read(error: Exception = error) -> None:
            raise error

        assert reading._section(evidence, section, read) is None
    assert evidence.problems == {section: str(error) for section, error in failures.items()}
    assert evidence.problem_kinds == {
        "tables": "unreachable",
        "iam": "denied",
        "api": "failed",
        "probe": "unreachable",
    }


EXIT_CASES = [
    (cause.id, {"none": 0, "cause": 1, "symptom": 1, "inconclusive": 3}[cause.kind])
    for cause in causes.CAUSES
]


@pytest.mark.parametrize(
    ("cause", "code"), [*EXIT_CASES, ("gremlins", 1)], ids=[c for c, _ in EXIT_CASES] + ["unknown"]
)
def test_exit_codes_follow_the_cli_contract(cause: str, code: int) -> None:
    assert causes.exit_code(cause) == code


def test_the_kinds_of_the_new_verdicts() -> None:
    kinds = {cause.id: cause.kind for cause in causes.CAUSES}
    assert {c for c, k in kinds.items() if k == "symptom"} == {
        "handshake-refused",
        "not-stored",
        "not-delivered",
    }
    assert {c for c, k in kinds.items() if k == "inconclusive"} == {
        "target-not-found",
        "target-unreachable",
        "evidence-unread",
        "evidence-missing",
    }
    assert {c for c, k in kinds.items() if k == "none"} == {"none"}


@pytest.mark.parametrize(
    ("problem_kinds", "expected"),
    [({}, 0), ({"logs": "unreachable"}, 3), ({"logs": "denied"}, 3)],
    ids=["all read", "unreachable", "denied"],
)
def test_kit_diagnose_exits_by_the_verdict(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    problem_kinds: dict[str, str],
    expected: int,
) -> None:
    from kit import cli

    problems = {section: f"{section} not read" for section in problem_kinds}
    evidence = replace(healthy(), problems=problems, problem_kinds=problem_kinds)
    monkeypatch.setattr(cli, "_target_from_args", lambda args: None)
    monkeypatch.setattr(reading, "read_evidence", lambda target, **options: evidence)
    assert cli.main(["diagnose"]) == expected
    assert capsys.readouterr().out.startswith("Root cause: ")


# -- the all-clear gate: "nothing failed" is an all-clear only on what it stands on ---------------------------

BACKED = {"connect-route": "pass", "table-structure": "pass", "handler-crash": "pass", "iam-put": "pass"}


def checks_of(verdicts: dict[str, str]) -> pd.DataFrame:
    rows = [
        {"check": check, "question": "?", "verdict": verdict, "cause": None, "evidence": f"{check} said so"}
        for check, verdict in verdicts.items()
    ]
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS)).astype(FINDING_COLUMNS)


ALL_CLEAR_CASES = [
    ("everything seen", {}, "pass", ""),
    (
        "the probe stands for $connect and PutItem",
        {"handler-crash": "skip", "iam-put": "skip", "probe": "pass"},
        "pass",
        "",
    ),
    ("route skipped", {"connect-route": "skip"}, "fail", "the API's $connect route (connect-route: skip"),
    ("route only warned", {"connect-route": "warn"}, "fail", "the API's $connect route"),
    ("route never run", {"connect-route": None}, "fail", "connect-route: not run"),
    ("table skipped", {"table-structure": "skip"}, "fail", "the connections table"),
    ("no $connect seen", {"handler-crash": "skip"}, "fail", "a $connect seen answering (handler-crash: skip"),
    ("no role read and no probe", {"iam-put": "skip"}, "fail", "PutItem, or a connection seen stored"),
    ("probe skipped too", {"iam-put": "skip", "probe": "skip"}, "fail", "probe: skip, probe said so"),
]


@pytest.mark.parametrize(
    ("changes", "verdict", "evidence_has"),
    [(c, v, e) for _, c, v, e in ALL_CLEAR_CASES],
    ids=[case[0] for case in ALL_CLEAR_CASES],
)
def test_an_all_clear_stands_on_route_table_connect_and_put(
    changes: dict[str, str | None], verdict: str, evidence_has: str
) -> None:
    verdicts = {k: v for k, v in {**BACKED, **changes}.items() if v is not None}
    gate = ranking.all_clear_findings(checks_of(verdicts))
    assert [(f.check, f.verdict) for f in gate] == [("all-clear", verdict)]
    assert evidence_has in gate[0].evidence
    findings = pd.concat([checks_of(verdicts), pd.DataFrame([gate[0].__dict__])], ignore_index=True)
    assert ranking.rank(findings)["id"] == ("none" if verdict == "pass" else "evidence-missing")


def test_no_all_clear_finding_beside_a_failing_one() -> None:
    findings = checks_of({**BACKED, "connect-route": "skip"})
    findings.loc[len(findings)] = ["iam-put", "?", "fail", "put-access-denied", "denied", ""]
    assert ranking.all_clear_findings(findings) == []


def test_a_quiet_window_without_a_probe_is_not_an_all_clear() -> None:
    """A read-only run over a window with no connection in it: every check passes or skips, and the verdict
    says what it did not see (exit 3), never "connections are stored"."""
    quiet = replace(
        healthy(),
        log_lines=log_lines().iloc[0:0],
        invocations=invocations().iloc[0:0],
        lifecycle=lifecycle().iloc[0:0],
        probe=None,
    )
    diagnosis = ranking.diagnose(quiet)
    assert diagnosis.root_cause["id"] == "evidence-missing", ranking.summary_text(diagnosis)
    assert causes.exit_code(diagnosis.root_cause["id"]) == 3
    assert "a $connect seen answering" in diagnosis.root_cause["evidence"][0]
    gate = diagnosis.findings.set_index("check").loc["all-clear"]
    assert "--allow-aws-probe" in str(gate["next_step"]) and "--minutes" in str(gate["next_step"])


def test_no_api_id_read_is_inconclusive() -> None:
    """No WebSocket URL and several APIs to choose from: the API section is unread, the verdict inconclusive."""
    unread = replace(
        healthy(),
        routes=frames.empty(config.ROUTES_COLUMNS),
        functions=frames.empty(config.FUNCTION_COLUMNS),
        problems={"api": "2 WebSocket APIs exist in us-east-2: a (x), b (y); say which with --api-id."},
        problem_kinds={"api": "failed"},
        probe=None,
    )
    diagnosis = ranking.diagnose(unread)
    assert diagnosis.root_cause["id"] == "evidence-unread", ranking.summary_text(diagnosis)
    assert causes.exit_code(diagnosis.root_cause["id"]) == 3


@pytest.mark.parametrize(
    ("tables", "said"),
    [
        ({REGION: []}, "no table at all there"),
        ({REGION: ["other"]}, "tables there: other"),
        ({REGION: [TABLE]}, f"table {TABLE} does exist"),
    ],
)
def test_an_api_not_there_is_the_targets_problem_not_the_stacks(
    tables: dict[str, list[str]], said: str
) -> None:
    """The wrong --region: the API is not found, the table is not there; never blame TABLE_NAME."""
    missing = replace(
        healthy(),
        routes=frames.empty(config.ROUTES_COLUMNS),
        functions=frames.empty(config.FUNCTION_COLUMNS),
        tables=tables,
        schema_differences=differences(*([] if TABLE in tables[REGION] else [MISSING_TABLE])),
        problems={"api": "API Gateway GetApi for API abc in us-east-2 failed with NotFoundException."},
        problem_kinds={"api": "missing"},
        probe=None,
    )
    diagnosis = ranking.diagnose(missing)
    assert diagnosis.root_cause["id"] == "target-not-found", ranking.summary_text(diagnosis)
    assert said in diagnosis.root_cause["evidence"][0]
    assert "table-not-found" not in set(diagnosis.findings["cause"].dropna())
    assert causes.exit_code("target-not-found") == 3
