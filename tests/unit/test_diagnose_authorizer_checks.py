"""kit.diagnose.authorizer_checks offline, one table of cases (pass, fail, skip) on hand-built evidence: the
``$connect`` route's Lambda authorizer refusing handshakes (``authorizer``) and its context lacking what the
handler reads (``authorizer-context``). The evidence builders and the case's shape are in
diagnose_evidence.py.
"""

from __future__ import annotations

import json

import pytest

from kit.diagnose import authorizer_checks

from .diagnose_evidence import (
    CONN,
    Case,
    assert_case,
    assert_cases_cover,
    exec_line,
    invocations,
    lifecycle,
    log_lines,
    probe_rows,
    route,
    routes,
    skip_case,
)

AUTHORIZED = {
    "authorization_type": "CUSTOM",
    "authorizer_id": "au1",
    "authorizer_name": "chatgenius-token",
    "authorizer_function": "chatgenius-connect-authorizer",
    "authorizer_identity_source": "route.request.querystring.token",
}
WITH_AUTHORIZER = routes(route("$connect", **AUTHORIZED), route("$disconnect"), route("message"))
IAM_ONLY = routes(route("$connect", authorization_type="AWS_IAM"), route("$disconnect"))
ANSWER = {
    "principalId": "user",
    "policyDocument": {"Version": "2012-10-17", "Statement": []},
    "context": {"workspaceId": "ws-1"},
}
RESULT_LINE = exec_line("gw-1", f"Authorizer result body before parsing: {json.dumps(ANSWER)}")
MISSING = {
    "app_outcome": "config_error",
    "app_error_code": "MissingAuthorizerContext",
    "item_written": False,
    "connect_status": 500,
}

CASES: list[Case] = [
    # authorizer
    Case(
        "authorizer: no authorizer on $connect",
        authorizer_checks.check_authorizer,
        {},
        [("pass", None)],
        "no Lambda authorizer (NONE)",
    ),
    Case(
        "authorizer: AWS_IAM is not a Lambda authorizer",
        authorizer_checks.check_authorizer,
        {"routes": IAM_ONLY, "lifecycle": lifecycle({"connect_status": 403})},
        [("pass", None)],
        "(AWS_IAM)",
    ),
    Case(
        "authorizer: handshakes through it accepted",
        authorizer_checks.check_authorizer,
        {"routes": WITH_AUTHORIZER},
        [("pass", None)],
        "none of 1 handshakes answered 401 or 403",
    ),
    Case(
        "authorizer: denied (403 in the logs)",
        authorizer_checks.check_authorizer,
        {
            "routes": WITH_AUTHORIZER,
            "lifecycle": lifecycle({"connect_status": 403, "connect_invoked": False}),
            "log_lines": log_lines(
                exec_line("gw-1", "Starting authorizer: au1 for request: gw-1"),
                exec_line("gw-1", "Authorizer denied the request: no"),
            ),
        },
        [("fail", "authorizer-denied")],
        "1 of 1 handshakes answered 403 ×1; $connect uses Lambda authorizer chatgenius-token, function "
        "chatgenius-connect-authorizer, identity source route.request.querystring.token; the execution log "
        "shows 1 authorizer runs, 0 'Unauthorized request'",
    ),
    Case(
        "authorizer: the identity source missing (401)",
        authorizer_checks.check_authorizer,
        {
            "routes": WITH_AUTHORIZER,
            "lifecycle": lifecycle(
                {"connect_status": 401}, {"connection_id": "other", "connect_status": 200}
            ),
        },
        [("fail", "authorizer-denied")],
        "1 of 2 handshakes answered 401 ×1",
    ),
    Case(
        "authorizer: a 500 is not a denial (the handler or the authorizer failed)",
        authorizer_checks.check_authorizer,
        {"routes": WITH_AUTHORIZER, "lifecycle": lifecycle({"connect_status": 500})},
        [("pass", None)],
    ),
    Case(
        "authorizer: the probe's refused handshake, without logs",
        authorizer_checks.check_authorizer,
        {"routes": WITH_AUTHORIZER, "lifecycle": None, "probe": probe_rows(http_status=403)},
        [("fail", "authorizer-denied")],
        "403 ×1",
    ),
    Case(
        "authorizer: no handshake seen",
        authorizer_checks.check_authorizer,
        {"routes": WITH_AUTHORIZER, "lifecycle": None, "probe": None},
        [("skip", None)],
        "no $connect handshake seen",
    ),
    skip_case("authorizer skip", authorizer_checks.check_authorizer, "api"),
    # authorizer-context
    Case(
        "authorizer-context: no authorizer on $connect",
        authorizer_checks.check_authorizer_context,
        {"lifecycle": lifecycle(MISSING)},
        [("pass", None)],
        "no Lambda authorizer",
    ),
    Case(
        "authorizer-context: the handler stored the connection",
        authorizer_checks.check_authorizer_context,
        {"routes": WITH_AUTHORIZER},
        [("pass", None)],
        "no $connect invocation failed",
    ),
    Case(
        "authorizer-context: the handler said the context lacks the user",
        authorizer_checks.check_authorizer_context,
        {"routes": WITH_AUTHORIZER, "lifecycle": lifecycle(MISSING), "log_lines": log_lines(RESULT_LINE)},
        [("fail", "authorizer-context-missing")],
        "1 $connect invocation(s) failed reading requestContext.authorizer, answered [500] "
        "(MissingAuthorizerContext or an error naming the authorizer); $connect uses Lambda authorizer "
        "chatgenius-token, function chatgenius-connect-authorizer, identity source "
        "route.request.querystring.token; the authorizer's context carries workspaceId",
    ),
    Case(
        "authorizer-context: another handler's error naming the authorizer",
        authorizer_checks.check_authorizer_context,
        {
            "routes": WITH_AUTHORIZER,
            "lifecycle": lifecycle({"connect_status": 502, "app_outcome": None, "item_written": None}),
            "invocations": invocations(
                {
                    "status": "error",
                    "error_type": "TypeError",
                    "error_message": "Cannot read properties of undefined (reading 'userId') at authorizer",
                    "connection_id": CONN,
                }
            ),
        },
        [("fail", "authorizer-context-missing")],
        "the authorizer's answer is not in the execution log",
    ),
    Case(
        "authorizer-context: another error is not this cause",
        authorizer_checks.check_authorizer_context,
        {
            "routes": WITH_AUTHORIZER,
            "lifecycle": lifecycle({"app_error_code": "AccessDeniedException", "connect_status": 500}),
        },
        [("pass", None)],
    ),
    Case(
        "authorizer-context: no connection in the logs",
        authorizer_checks.check_authorizer_context,
        {"routes": WITH_AUTHORIZER, "lifecycle": None},
        [("skip", None)],
        "no connection seen in the logs",
    ),
    skip_case("authorizer-context skip", authorizer_checks.check_authorizer_context, "api"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, authorizer_checks)
