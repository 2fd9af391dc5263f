"""kit.diagnose.table_checks offline, one table of cases (pass, fail or warn, skip) on hand-built evidence: the
table's structure, the kit's own write, the items and the index, the tokens stored. The evidence builders
and the case's shape are in diagnose_evidence.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from random import Random

import pytest

from kit import probe_core
from kit.diagnose import table_checks
from kit.diagnose.findings import API_GATEWAY_CONNECTION_ID
from kit.dynamo import direct_write
from kit.lab import gateway_events

from .diagnose_evidence import (
    INDEX,
    MISSING_TABLE,
    PROBE_ITEM,
    PROBLEM,
    TABLE,
    Case,
    assert_case,
    assert_cases_cover,
    coverage,
    differences,
    direct_write_steps,
    failed_step,
    functions,
    healthy,
    items,
    put_failed,
    skip_case,
)

MISSING_INDEX = {
    "kind": "index-missing",
    "severity": "error",
    "subject": INDEX,
    "message": f"{TABLE} has no GSI {INDEX}.",
    "next_step": "Add the index.",
}


BILLING = {"kind": "billing-mode", "severity": "warning", "subject": TABLE, "message": "provisioned"}


EMULATOR_ID = "3f2b6c1e-9a4d-4c1b-8e2f-6a7b8c9d0e1f"


CASES: list[Case] = [
    # table-structure
    Case("table pass", table_checks.check_table, {}, [("pass", None)], "matches"),
    Case(
        "table pass with a warning",
        table_checks.check_table,
        {"schema_differences": differences(BILLING)},
        [("pass", None)],
    ),
    Case(
        "table missing",
        table_checks.check_table,
        {"schema_differences": differences(MISSING_TABLE)},
        [("fail", "table-not-found")],
        "does not exist",
    ),
    Case(
        "table without its index is a schema mismatch",
        table_checks.check_table,
        {"schema_differences": differences(MISSING_INDEX, BILLING)},
        [("fail", "table-schema-mismatch")],
        "has no GSI",
    ),
    skip_case("table skip", table_checks.check_table, "table", schema_differences=None),
    # index-coverage
    Case(
        "coverage pass", table_checks.check_items_and_index, {}, [("pass", None)], "1 items, all in the index"
    ),
    Case(
        "coverage workspace absent",
        table_checks.check_items_and_index,
        {
            "coverage": coverage(
                {},
                {
                    "connection_id": "x1",
                    "in_index": False,
                    "why_not": "attribute-absent",
                    "workspace_id": None,
                },
            )
        },
        [("fail", "workspace-id-missing")],
        "1 of 2 items are not in the index",
    ),
    Case(
        "coverage wrong type",
        table_checks.check_items_and_index,
        {"coverage": coverage({"in_index": False, "why_not": "wrong-type", "workspace_id_type": "N"})},
        [("fail", "workspace-id-missing")],
        "wrong-type",
    ),
    Case(
        "coverage lagging index is not a fault",
        table_checks.check_items_and_index,
        {"coverage": coverage({"in_index": False, "why_not": "not-yet-in-index"})},
        [("pass", None)],
    ),
    skip_case("coverage skip", table_checks.check_items_and_index, "index", coverage=None),
    Case(
        "coverage skip empty table",
        table_checks.check_items_and_index,
        {"coverage": coverage().iloc[0:0]},
        [("skip", None)],
        "holds no item",
    ),
    # email-as-token
    Case("email pass", table_checks.check_email_token, {}, [("pass", None)], "no e-mail"),
    Case(
        "email in items",
        table_checks.check_email_token,
        {"items": items({"userId": "alice@example.com"}, {"userId": "bob"})},
        [("warn", "email-as-token")],
        "1 stored userId values",
    ),
    Case(
        "email auth mode",
        table_checks.check_email_token,
        {"functions": functions({"environment": json.dumps({"AUTH_MODE": "email"})})},
        [("warn", "email-as-token")],
        "AUTH_MODE=email on 1 function(s)",
    ),
    Case(
        "email skip when neither items nor functions were read",
        table_checks.check_email_token,
        {"items": None, "functions": functions().iloc[0:0]},
        [("skip", None)],
        PROBLEM.format("items"),
        {"items": PROBLEM.format("items")},
    ),
    # direct-write
    Case(
        "direct write pass", table_checks.check_direct_write, {}, [("pass", None)], f"PutItem of {PROBE_ITEM}"
    ),
    Case(
        "direct write denied points at the table",
        table_checks.check_direct_write,
        {
            "direct_write": put_failed(
                "AccessDeniedException", "PutItem on t failed with AccessDeniedException"
            )
        },
        [("fail", "table-write-denied")],
        "the execution role plays no part",
    ),
    Case(
        "direct write to a missing table",
        table_checks.check_direct_write,
        {
            "direct_write": put_failed(
                "ResourceNotFoundException", "PutItem failed with ResourceNotFoundException"
            )
        },
        [("fail", "table-not-found")],
        "ResourceNotFoundException",
    ),
    Case(
        "direct write query on a missing index",
        table_checks.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step("ValidationException", "no such index"))},
        [("fail", "table-schema-mismatch")],
        "no such index",
    ),
    Case(
        "direct write query on a missing index, as moto answers it",
        table_checks.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step("ResourceNotFoundException", "no index"))},
        [("fail", "table-schema-mismatch")],
        "no index",
    ),
    Case(
        "direct write another error names its code",
        table_checks.check_direct_write,
        {
            "direct_write": direct_write_steps(
                get=failed_step("ProvisionedThroughputExceededException", "GetItem throttled")
            )
        },
        [("fail", "evidence-unread")],
        "GetItem throttled",
    ),
    Case(
        "direct write a put refused with another error is an item not stored",
        table_checks.check_direct_write,
        {"direct_write": put_failed("InternalServerError", "PutItem failed with InternalServerError")},
        [("fail", "not-stored")],
        "InternalServerError",
    ),
    Case(
        "direct write with the kit's credentials refused",
        table_checks.check_direct_write,
        {"direct_write": direct_write_steps(put=failed_step("ExpiredTokenException", "token expired"))},
        [("fail", "evidence-unread")],
        "token expired",
    ),
    Case(
        "direct write to an endpoint that does not answer",
        table_checks.check_direct_write,
        {"direct_write": put_failed("EndpointConnectionError", "Could not connect to the endpoint URL")},
        [("fail", "target-unreachable")],
        "Could not connect",
    ),
    Case(
        "direct write the index lags",
        table_checks.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step(None, "did not return it in 9 queries"))},
        [("warn", None)],
        "9 queries",
    ),
    Case(
        "direct write left its item",
        table_checks.check_direct_write,
        {"direct_write": direct_write_steps(delete=failed_step("AccessDeniedException", "delete by hand"))},
        [("warn", None)],
        "delete by hand",
    ),
    Case(
        "direct write failure and a leftover",
        table_checks.check_direct_write,
        {
            "direct_write": direct_write_steps(
                query=failed_step("ValidationException", "no such index"),
                delete=failed_step("AccessDeniedException", "delete by hand"),
            )
        },
        [("fail", "table-schema-mismatch"), ("warn", None)],
    ),
    Case(
        "direct write skip read-only",
        table_checks.check_direct_write,
        {"direct_write": direct_write.not_run("target aws us-east-2 is read-only")},
        [("skip", None)],
        "is read-only",
    ),
    skip_case("direct write skip", table_checks.check_direct_write, "direct-write", direct_write=None),
    # connection-id-shape
    Case("id shape pass", table_checks.check_connection_id_shape, {}, [("pass", None)], "1 connectionIds"),
    Case(
        "emulator ids",
        table_checks.check_connection_id_shape,
        {"items": items({}, {"connectionId": EMULATOR_ID})},
        [("warn", "emulator-connection-ids")],
        f"1 of 2 stored connectionIds are not of API Gateway's shape (15 of [A-Za-z0-9_-], then '='): "
        f"'{EMULATOR_ID}'",
    ),
    Case(
        "id shape ignores the kit's own items",
        table_checks.check_connection_id_shape,
        {
            "items": items(
                {},
                {"connectionId": PROBE_ITEM, "workspaceId": PROBE_ITEM},
                {"connectionId": "not-checked", "workspaceId": "kit-probe-1a2b3c4d"},
            )
        },
        [("pass", None)],
        "1 connectionIds",
    ),
    Case(
        "id shape skip when only the kit's items are stored",
        table_checks.check_connection_id_shape,
        {"items": items({"connectionId": PROBE_ITEM, "workspaceId": PROBE_ITEM})},
        [("skip", None)],
        "only the kit's own items",
    ),
    Case(
        "id shape skip empty table",
        table_checks.check_connection_id_shape,
        {"items": items().iloc[0:0]},
        [("skip", None)],
        "holds no item",
    ),
    skip_case("id shape skip", table_checks.check_connection_id_shape, "items", items=None),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, table_checks)


def test_the_lab_gateways_connection_ids_have_api_gateways_shape() -> None:
    rng = Random(7)
    ids = [gateway_events.new_connection_id(rng) for _ in range(500)]
    assert all(re.fullmatch(API_GATEWAY_CONNECTION_ID, value) for value in ids)
    assert re.fullmatch(API_GATEWAY_CONNECTION_ID, "L0SM9cOFvHcCIhw=")
    evidence = replace(healthy(), items=items(*({"connectionId": value} for value in ids[:50])))
    assert [f.verdict for f in table_checks.check_connection_id_shape(evidence)] == ["pass"]


def test_the_kits_items_share_the_probes_prefix() -> None:
    assert direct_write.ITEM_PREFIX == probe_core.WORKSPACE_PREFIX
    assert direct_write.new_connection_id().startswith(probe_core.WORKSPACE_PREFIX)
