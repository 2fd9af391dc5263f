"""kit.diagnose.permission_checks offline, one table of cases (pass, fail or warn, skip) on hand-built
evidence: the execution role's PutItem, Query on the index, and the rest. The evidence builders and the
case's shape are in diagnose_evidence.py.
"""

from __future__ import annotations

import pytest

from kit.diagnose import permission_checks

from .diagnose_evidence import (
    Case,
    assert_case,
    assert_cases_cover,
    permissions,
    skip_case,
)

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
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, permission_checks)
