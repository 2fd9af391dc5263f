"""kit.diagnose.permission_checks offline, one table of cases (pass, fail or warn, skip) on hand-built
evidence: the execution role's PutItem, Query on the index, and the rest; whether API Gateway may invoke the
$connect function (its resource policy, the execution log's refusals). The evidence builders and the case's
shape are in diagnose_evidence.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from kit.diagnose import permission_checks

from .diagnose_evidence import (
    ACCOUNT,
    API_ID,
    FUNCTION_ARN,
    NOW,
    REGION,
    Case,
    assert_case,
    assert_cases_cover,
    exec_line,
    invoke_policy,
    lifecycle,
    log_lines,
    permissions,
    probe_rows,
    route,
    routes,
    served,
    skip_case,
    stage,
)

EXECUTE_API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}"
REFUSED = "Execution failed due to configuration error: Invalid permissions on Lambda function"


def refused(request: str = "gw-2", seconds: int = 1) -> tuple[dict[str, object], dict[str, object]]:
    """A $connect request API Gateway could not invoke, ``seconds`` after the healthy one (NOW)."""
    ts = NOW + timedelta(seconds=seconds)
    return (
        exec_line(request, "WebSocket Request Route: [$connect]", route_key="$connect", ts=ts),
        exec_line(request, REFUSED, level="ERROR", error_message=REFUSED.split(": ", 1)[1], ts=ts),
    )


def policies(document: str | None) -> dict[str, str | None]:
    return {FUNCTION_ARN: document}


UNREAD = {"function_policies": {}}
UNREAD_PROBLEM = {"function-policy": "Lambda GetPolicy failed with AccessDeniedException"}

CASES: list[Case] = [
    # iam-put
    Case("put pass", permission_checks.check_put_permission, {}, [("pass", None)], "allowed"),
    Case(
        "put implicit deny",
        permission_checks.check_put_permission,
        {"permissions": permissions(put="implicit-deny")},
        [("fail", "put-access-denied")],
        "implicit-deny",
    ),
    Case(
        "put explicit deny",
        permission_checks.check_put_permission,
        {"permissions": permissions(put="explicit-deny")},
        [("fail", "put-access-denied")],
        "explicit-deny",
    ),
    skip_case("put skip", permission_checks.check_put_permission, "iam", permissions=None),
    Case(
        "put skip empty frame",
        permission_checks.check_put_permission,
        {"permissions": permissions().iloc[0:0]},
        [("skip", None)],
        "no execution role",
    ),
    # iam-index-query
    Case("query pass", permission_checks.check_index_permission, {}, [("pass", None)], "/index/"),
    Case(
        "query denied",
        permission_checks.check_index_permission,
        {"permissions": permissions(query="implicit-deny")},
        [("fail", "index-access-denied")],
        "implicit-deny",
    ),
    skip_case("query skip", permission_checks.check_index_permission, "iam", permissions=None),
    # iam-other
    Case(
        "other pass", permission_checks.check_other_permissions, {}, [("pass", None)], "1 permissions allowed"
    ),
    Case(
        "other denied",
        permission_checks.check_other_permissions,
        {"permissions": permissions(delete="implicit-deny", put="implicit-deny")},
        [("warn", None)],
        "dynamodb:DeleteItem on",
    ),
    skip_case("other skip", permission_checks.check_other_permissions, "iam", permissions=None),
    # invoke-permission: the source ARN API Gateway presents is arn:…:abc123/prod/$connect
    Case("invoke pass", permission_checks.check_invoke_permission, {}, [("pass", None)], "is allowed by"),
    Case(
        "invoke pass exact route",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(f"{EXECUTE_API}:{API_ID}/prod/$connect"))},
        [("pass", None)],
        f"{EXECUTE_API}:{API_ID}/prod/$connect",
    ),
    Case(
        "invoke pass any stage",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(f"{EXECUTE_API}:{API_ID}/*/$connect"))},
        [("pass", None)],
    ),
    Case(
        "invoke no policy at all",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(None)},
        [("fail", "invoke-permission-missing")],
        "There is no resource policy",
    ),
    Case(
        "invoke source arn of another api",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(f"{EXECUTE_API}:other99/*"))},
        [("fail", "invoke-permission-missing")],
        "condition ArnLike AWS:SourceArn is not met",
    ),
    Case(
        "invoke source arn of another stage",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(f"{EXECUTE_API}:{API_ID}/dev/$connect"))},
        [("fail", "invoke-permission-missing")],
        f"for source ARN {EXECUTE_API}:{API_ID}/prod/$connect",
    ),
    Case(
        "invoke source arn of another route",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(f"{EXECUTE_API}:{API_ID}/prod/message"))},
        [("fail", "invoke-permission-missing")],
    ),
    Case(
        "invoke another account",
        permission_checks.check_invoke_permission,
        {
            "function_policies": policies(
                invoke_policy(f"arn:aws:execute-api:{REGION}:210987654321:{API_ID}/*")
            )
        },
        [("fail", "invoke-permission-missing")],
    ),
    Case(
        "invoke granted to another service",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(invoke_policy(principal="events.amazonaws.com"))},
        [("fail", "invoke-permission-missing")],
        "names apigateway.amazonaws.com as its Principal",
    ),
    Case(
        "invoke missing, the log's refusals quoted",
        permission_checks.check_invoke_permission,
        {"function_policies": policies(None), "log_lines": log_lines({}, *served(), *refused())},
        [("fail", "invoke-permission-missing")],
        "1 $connect requests failed with 'Execution failed due to configuration error: Invalid permissions",
    ),
    Case(  # the refusal is the authorizer function's (AuthorizerConfigurationException): not $connect's
        "invoke: an authorizer API Gateway may not invoke is not the $connect function's refusal",
        permission_checks.check_invoke_permission,
        {
            "log_lines": log_lines(
                {},
                *served(),
                *refused(),
                exec_line(
                    "gw-2", "AuthorizerConfigurationException", level="ERROR", ts=NOW + timedelta(seconds=1)
                ),
            )
        },
        [("pass", None)],
    ),
    Case(
        "invoke allowed now, refused before",
        permission_checks.check_invoke_permission,
        {"log_lines": log_lines({}, *served(), *refused())},
        [("warn", None)],
        "the grant may be newer than those requests",
    ),
    Case(
        "invoke unread, the last $connect refused",
        permission_checks.check_invoke_permission,
        {**UNREAD, "log_lines": log_lines({}, *served(), *refused())},
        [("fail", "invoke-permission-missing")],
        "was not read (Lambda GetPolicy failed with AccessDeniedException)",
        UNREAD_PROBLEM,
    ),
    Case(
        "invoke unread, refused once then served",
        permission_checks.check_invoke_permission,
        {**UNREAD, "log_lines": log_lines({}, *refused(seconds=-1), *served())},
        [("skip", None)],
        "Lambda GetPolicy failed with AccessDeniedException",
        UNREAD_PROBLEM,
    ),
    Case(
        "invoke unread, nothing logged",
        permission_checks.check_invoke_permission,
        UNREAD,
        [("skip", None)],
        "resource policy was not read",
        UNREAD_PROBLEM,
    ),
    Case(
        "invoke skip http integration",
        permission_checks.check_invoke_permission,
        {"routes": routes(route("$connect", "HTTP_PROXY"))},
        [("skip", None)],
        "invokes no Lambda function",
    ),
    Case(
        "invoke skip no stage",
        permission_checks.check_invoke_permission,
        {"stage": stage().iloc[0:0]},
        [("skip", None)],
        "no stage was read",
    ),
    skip_case("invoke skip api unread", permission_checks.check_invoke_permission, "api"),
    # connect-iam: only for a $connect route that uses AWS_IAM
    Case(
        "iam pass",
        permission_checks.check_connect_iam,
        {"routes": routes(route("$connect", authorization_type="AWS_IAM"))},
        [("pass", None)],
        "no handshake was refused with 403",
    ),
    Case(
        "iam probe refused",
        permission_checks.check_connect_iam,
        {
            "routes": routes(route("$connect", authorization_type="AWS_IAM")),
            "probe": probe_rows(
                http_status=403, detail='rejected with HTTP 403: {"Message": "User: x is not'
            ),
            "lifecycle": lifecycle({"connect_status": 403}),
        },
        [("fail", "connect-iam-denied")],
        '1 probe handshakes answered 403: rejected with HTTP 403: {"Message": "User: x is not; 1 $connect',
    ),
    Case(
        "iam logs refused",
        permission_checks.check_connect_iam,
        {
            "routes": routes(route("$connect", authorization_type="AWS_IAM")),
            "probe": None,
            "lifecycle": lifecycle({"connect_status": 403}, {"connect_status": 403}),
        },
        [("fail", "connect-iam-denied")],
        "2 $connect requests in the logs answered 403",
    ),
    Case(
        "iam other refusals are not this one",
        permission_checks.check_connect_iam,
        {
            "routes": routes(route("$connect", authorization_type="AWS_IAM")),
            "probe": probe_rows(http_status=500),
            "lifecycle": lifecycle({"connect_status": 401}),
        },
        [("pass", None)],
    ),
    Case(
        "iam not asked for",
        permission_checks.check_connect_iam,
        {"probe": probe_rows(http_status=403)},
        [("pass", None)],
        "AuthorizationType is NONE, not AWS_IAM",
    ),
    Case(
        "iam skip no connect route",
        permission_checks.check_connect_iam,
        {"routes": routes(route("message"))},
        [("skip", None)],
        "no $connect route",
    ),
    Case(  # the probe signs with the kit's own credentials: its passing says nothing of the clients'
        "iam probe passed, logs unread",
        permission_checks.check_connect_iam,
        {"routes": routes(route("$connect", authorization_type="AWS_IAM")), "lifecycle": None},
        [("warn", None)],
        "signed with the kit's own credentials, passed",
    ),
    Case(
        "iam skip nothing seen",
        permission_checks.check_connect_iam,
        {"routes": routes(route("$connect", authorization_type="AWS_IAM")), "probe": None, "lifecycle": None},
        [("skip", None)],
        "no probe ran",
    ),
    skip_case("iam skip api unread", permission_checks.check_connect_iam, "api"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, permission_checks)
