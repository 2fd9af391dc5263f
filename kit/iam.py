"""What the $connect function's execution role may do, permission by permission, and which statement decides.

Policies come from a file (the repo's ``iam-policies.json``, a JSON list of documents, or a map of policy name
to document) or from IAM for a role (inline and attached managed policies, every page). They are parsed with
:mod:`kit.policy` without strictness, so a malformed statement is kept, never applied, and named in every
decision it could affect. :func:`permission_frame` evaluates the permissions the handler needs
(:func:`kit.permissions.required_checks`) with the same evaluator the lab enforces, and shows AWS's own policy
simulator beside it when one was asked (a real account; moto has no ``simulate_principal_policy``, so in the
lab the column says ``unavailable`` or stays NA).

Fetch and shape are separate: ``fetch_role_policies``, ``execution_role_of``, ``account_id`` and
``simulate_checks`` call AWS through the target; ``policies_from_documents``, ``simulation_from_answers`` and
``permission_frame`` are pure and take the answers as AWS gives them.

What this module must not do: write to IAM or anywhere else (it only reads policies, the function's
configuration and the caller's identity, and asks the simulator), create boto3 clients (``Target.client``
does), or print a policy's text beyond the statement labels and reasons :mod:`kit.policy` writes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from kit import frames, permissions, policy
from kit.errors import AwsError, ConfigurationError, error_code

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.iam")

# One row per permission the connect handler needs (kit.permissions.REQUIRED_PERMISSIONS, in order).
PERMISSION_COLUMNS: Final[dict[str, str]] = {
    "purpose": "string",
    "action": "string",
    "resource": "string",
    "decision": "string",  # allowed | explicit-deny | implicit-deny (kit.policy, as the lab enforces)
    "allowed": "boolean",
    "statement": "string",  # the deciding statement's label; NA for an implicit deny
    "reason": "string",  # full sentences, notes included
    "notes": "string",  # malformed or skipped statements that matter here; NA when none
    "simulated": "string",  # AWS's simulator: allowed | explicit-deny | implicit-deny | unavailable; NA
    "agrees": "boolean",  # simulated == decision; NA when there is no simulated verdict
    "simulation_note": "string",  # why the simulator is unavailable; NA otherwise
}

_SIMULATOR_VERDICTS: Final[dict[str, policy.Verdict]] = {
    "allowed": "allowed",
    "explicitDeny": "explicit-deny",
    "implicitDeny": "implicit-deny",
}
UNAVAILABLE: Final = "unavailable"


# --------------------------------------------------------------------------------------------------
# Policies from a file or from documents (pure)


def _is_document(value: Mapping[str, Any]) -> bool:
    return "Statement" in value or "Version" in value


def policies_from_documents(
    documents: object, *, name: str = "policy", source: str = ""
) -> list[policy.Policy]:
    """Parse the shapes a policy file may hold (pure; never raises for a malformed policy).

    ``documents`` is one policy document (a dict with ``Statement``/``Version``, or its JSON text), a list
    of documents (``<name>[i]``), a map of policy name to document, or a list of ``get_role_policy``-shaped
    entries (``{"PolicyName": …, "PolicyDocument": …}``). Anything else becomes one policy whose
    ``problems`` say what it is.
    """
    where = source or name
    if isinstance(documents, Mapping) and not _is_document(documents) and "PolicyDocument" in documents:
        return policies_from_documents([documents], name=name, source=source)
    if isinstance(documents, Mapping) and not _is_document(documents):
        return [
            policy.parse_policy(_document_value(doc), str(key), source=f"{where}:{key}", strict=False)
            for key, doc in documents.items()
        ]
    if isinstance(documents, list):
        parsed: list[policy.Policy] = []
        for index, entry in enumerate(documents):
            entry_name, document = f"{name}[{index}]", entry
            if isinstance(entry, Mapping) and "PolicyDocument" in entry:
                entry_name = str(entry.get("PolicyName") or entry_name)
                document = entry["PolicyDocument"]
            parsed.append(
                policy.parse_policy(
                    _document_value(document), entry_name, source=f"{where}[{index}]", strict=False
                )
            )
        return parsed
    return [policy.parse_policy(_document_value(documents), name, source=where, strict=False)]


def _document_value(value: object) -> policy.PolicyDocument:
    """What ``kit.policy.parse_policy`` accepts; other JSON values go through as text so it names them."""
    if isinstance(value, str | Mapping):
        return value
    return json.dumps(value)


def policies_from_file(path: str | os.PathLike[str]) -> list[policy.Policy]:
    """The policies in a JSON file (see :func:`policies_from_documents` for the shapes).

    A missing file or one that is not JSON is a :class:`~kit.errors.ConfigurationError` naming it; a
    malformed policy or statement inside is kept and marked.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"Policy file {file_path} could not be read ({type(exc).__name__}); pass the path of the "
            "repo's iam-policies.json or of a JSON file of policy documents."
        ) from exc
    try:
        documents = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"Policy file {file_path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix it, or export the role's policies with `aws iam get-role-policy`."
        ) from exc
    return policies_from_documents(documents, name=file_path.stem, source=f"file:{file_path.name}")


# --------------------------------------------------------------------------------------------------
# Policies from IAM (fetch)


def role_name(role_name_or_arn: str) -> str:
    """``arn:aws:iam::123456789012:role/service-role/x`` → ``x``; a plain name is returned as is."""
    if role_name_or_arn.startswith("arn:"):
        return role_name_or_arn.rsplit("/", 1)[-1]
    return role_name_or_arn


def _role_hints(operation: str) -> dict[str, str]:
    """Next steps for a failed IAM read of a role, by error code."""
    return {
        "NoSuchEntity": (
            "check the role name against the function's configuration (Role), and that the kit reads the "
            "account the function runs in"
        ),
        "AccessDenied": f"grant the kit's identity iam:{operation} (read-only) or use a file of the policies",
    }


def fetch_role_policies(target: Target, role_name_or_arn: str) -> dict[str, policy.PolicyDocument]:
    """The role's policy documents keyed ``inline:<name>`` and ``managed:<policy ARN>`` (every page)."""
    iam = target.client("iam")
    name = role_name(role_name_or_arn)
    documents: dict[str, policy.PolicyDocument] = {}
    operation = "ListRolePolicies"
    try:
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy_name in page.get("PolicyNames", []):
                operation = "GetRolePolicy"
                answer = iam.get_role_policy(RoleName=name, PolicyName=policy_name)
                documents[f"inline:{policy_name}"] = answer["PolicyDocument"]
        operation = "ListAttachedRolePolicies"
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page.get("AttachedPolicies", []):
                arn = attached["PolicyArn"]
                operation = "GetPolicy"
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                operation = "GetPolicyVersion"
                answer = iam.get_policy_version(PolicyArn=arn, VersionId=version)
                documents[f"managed:{arn}"] = answer["PolicyVersion"]["Document"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc, "iam", operation, name, resource_type="role", hints=_role_hints(operation)
        ) from exc
    return documents


def policies_from_role(target: Target, role_name_or_arn: str) -> list[policy.Policy]:
    """The role's inline and attached managed policies, parsed (malformed statements kept and marked)."""
    return policy.parse_policies(fetch_role_policies(target, role_name_or_arn), strict=False)


def execution_role_of(target: Target, function_name: str) -> str:
    """The ARN of the function's execution role (``get_function_configuration``'s ``Role``)."""
    try:
        answer = target.client("lambda").get_function_configuration(FunctionName=function_name)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc,
            "lambda",
            "GetFunctionConfiguration",
            function_name,
            resource_type="function",
            region=target.region,
            otherwise="check the function name (the API's integrations name it) and the region",
        ) from exc
    return str(answer["Role"])


def account_id(target: Target) -> str:
    """The account the target's credentials belong to (``sts get_caller_identity``)."""
    try:
        return str(target.client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc,
            "sts",
            "GetCallerIdentity",
            target.label,
            resource_type="target",
            otherwise="the credentials are missing, expired or for another partition (run `aws sts "
            "get-caller-identity`)",
        ) from exc


def role_arn(target: Target, role_name_or_arn: str) -> str:
    """The role's ARN: as given when it is one, else from ``iam get_role``."""
    if role_name_or_arn.startswith("arn:"):
        return role_name_or_arn
    try:
        return str(target.client("iam").get_role(RoleName=role_name_or_arn)["Role"]["Arn"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc, "iam", "GetRole", role_name_or_arn, resource_type="role", hints=_role_hints("GetRole")
        ) from exc


# --------------------------------------------------------------------------------------------------
# AWS's policy simulator


@dataclass(frozen=True)
class Simulation:
    """What ``simulate_principal_policy`` said: a verdict per (action, resource), or why it could not."""

    decisions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    note: str | None = None  # set when the simulator was unavailable

    @property
    def available(self) -> bool:
        return self.note is None


def simulation_from_answers(answers: Iterable[Mapping[str, Any]]) -> Simulation:
    """Pages of ``simulate_principal_policy`` → a :class:`Simulation` (pure)."""
    decisions: dict[tuple[str, str], str] = {}
    for answer in answers:
        for result in answer.get("EvaluationResults", []) or []:
            if not isinstance(result, Mapping):
                continue
            action = str(result.get("EvalActionName", ""))
            resource = str(result.get("EvalResourceName", "*"))
            raw = str(result.get("EvalDecision", ""))
            decisions[(action.lower(), resource)] = _SIMULATOR_VERDICTS.get(raw, raw)
    return Simulation(decisions)


def simulate_checks(
    target: Target, principal_arn: str, checks: Iterable[permissions.PermissionCheck]
) -> Simulation:
    """Ask AWS's simulator about each check for ``principal_arn``; never raises.

    Any failure (moto answers 500 / NotImplemented, the kit's identity lacks iam:SimulatePrincipalPolicy,
    the network) gives a Simulation whose ``note`` says why, and every row shows ``unavailable``.
    """
    answers: list[Mapping[str, Any]] = []
    try:
        paginator = target.client("iam").get_paginator("simulate_principal_policy")
        for check in checks:
            answers.extend(
                paginator.paginate(
                    PolicySourceArn=principal_arn, ActionNames=[check.action], ResourceArns=[check.resource]
                )
            )
    except ClientError as exc:
        return Simulation(
            note=f"simulate_principal_policy failed with {error_code(exc)}; only the kit's verdict is shown."
        )
    except (BotoCoreError, ResponseParserError, NotImplementedError) as exc:
        # moto's server answers an HTML 500 here, which botocore cannot parse.
        return Simulation(
            note=(
                f"simulate_principal_policy is not available on this endpoint ({type(exc).__name__}); only "
                "the kit's verdict is shown."
            )
        )
    return simulation_from_answers(answers)


# --------------------------------------------------------------------------------------------------
# The frame


def permission_frame(
    policies: Iterable[policy.Policy],
    checks: Iterable[permissions.PermissionCheck | tuple[str, str, str]],
    *,
    simulation: Simulation | None = None,
) -> pd.DataFrame:
    """One row per required permission: the verdict of ``kit.policy.evaluate`` and the deciding statement.

    ``checks`` are :func:`kit.permissions.required_checks` (or ``(purpose, action, resource)`` tuples).
    ``simulation`` (from :func:`simulate_checks`) fills ``simulated``/``agrees``; None leaves them NA.
    Pure. :data:`PERMISSION_COLUMNS`.
    """
    policies = tuple(policies)
    rows: list[dict[str, Any]] = []
    for purpose, action, resource in checks:
        decision = policy.evaluate(policies, action, resource)
        simulated: str | None = None
        if simulation is not None:
            simulated = (
                simulation.decisions.get((action.lower(), resource), UNAVAILABLE)
                if simulation.available
                else UNAVAILABLE
            )
        rows.append(
            {
                "purpose": purpose,
                "action": action,
                "resource": resource,
                "decision": decision.verdict,
                "allowed": decision.allowed,
                "statement": decision.statement.label if decision.statement else None,
                "reason": decision.reason,
                "notes": " ".join(decision.notes) or None,
                "simulated": simulated,
                "agrees": (simulated == decision.verdict if simulated not in (None, UNAVAILABLE) else None),
                "simulation_note": simulation.note if simulation is not None else None,
            }
        )
    return frames.from_rows(rows, PERMISSION_COLUMNS)


def function_name_of(function: str) -> str:
    """``arn:aws:lambda:us-east-2:123:function:name[:alias]`` → ``name``; a plain name is returned as is."""
    if function.startswith("arn:"):
        parts = function.split(":")
        return parts[6] if len(parts) > 6 else function
    return function


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if arn.startswith("arn:") and len(parts) > 1 and parts[1] else "aws"


def checks_for(
    target: Target, account: str, function_name: str, *, partition: str = "aws"
) -> list[permissions.PermissionCheck]:
    """:func:`kit.permissions.required_checks` for the target's region, table, index, API and stage."""
    if not target.api_id or not target.stage:
        raise ConfigurationError(
            f"Target {target.label} has no API id or stage, so the @connections permission cannot be "
            "checked; give the WebSocket URL (--websocket-url or NEXT_PUBLIC_WEBSOCKET_URL in the env file)."
        )
    return permissions.required_checks(
        region=target.region,
        account=account,
        table=target.table,
        index=target.index,
        api_id=target.api_id,
        stage=target.stage,
        function_name=function_name_of(function_name),
        partition=partition,
    )


def role_permissions(
    target: Target,
    function_name: str,
    *,
    role: str | None = None,
    simulate: bool | None = None,
) -> pd.DataFrame:
    """The permission frame for the function's execution role, read from IAM.

    ``role`` (a name or ARN) overrides the function's configured role. ``simulate`` None asks AWS's simulator
    on a real account only (``target.kind == "aws"``); True asks anyway (in the lab: ``unavailable``).
    """
    principal = role_arn(target, role) if role else execution_role_of(target, function_name)
    policies = policies_from_role(target, principal)
    account = account_id(target)
    checks = checks_for(target, account, function_name, partition=_partition(principal))
    wanted = target.kind == "aws" if simulate is None else simulate
    simulation = simulate_checks(target, principal, checks) if wanted else None
    return permission_frame(policies, checks, simulation=simulation)
