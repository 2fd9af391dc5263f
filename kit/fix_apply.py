"""A fix applied, undone and verified, through the target's clients only (I/O).

    apply(target, fix) -> Applied           each change read, then written; what undoes it, recorded
    undo(target, applied)                   the recorded undo, in reverse order
    verify(target, fix, read, diagnose)     apply, diagnose again from then on: "fixed" or "not enough"
    journal(applied, folder) / read_journal  what was applied, kept so that ``kit fix --undo`` can undo it

The changes come from :func:`kit.fix.plan`; the calls are the ones :mod:`kit.fix_commands` shows. What this
module must not do: change a real account unless the target is writable
(:meth:`kit.target.Target.require_writes`), record a variable's value other than the ones it sets, or apply
anything the fix did not show.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.config import lambda_integration_uri
from kit.diagnose.findings import CONNECT, Diagnosis, Evidence
from kit.errors import ConfigurationError, error_code
from kit.fix import Change, Fix, handler_package
from kit.fix_commands import (
    CONNECT_SETTINGS,
    PERMISSION_ID,
    ApiCall,
    arn_parts,
    limits,
    permission_call,
    source_arn,
)
from kit.mirror import download_code

if TYPE_CHECKING:
    from kit.target import Target


@dataclass
class Applied:
    """What applying a fix did: every call made (as shown to the user), and the changes that undo it."""

    calls: list[str] = field(default_factory=list)
    undo: list[Change] = field(default_factory=list)  # run in reverse order
    saved: dict[str, bytes] = field(default_factory=dict)  # code packages the undo puts back, by key
    target: str = ""  # where it was applied (Target.label and API): an undo goes there, nowhere else

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "undo": [
                {"operation": c.operation, "summary": c.summary, "params": dict(c.params)} for c in self.undo
            ],
        }


def _call(target: Target, applied: Applied, service: str, operation: str, **params: Any) -> Any:
    shown = {k: ("<zip>" if k == "ZipFile" else v) for k, v in params.items()}
    applied.calls.append(f"{service}.{operation}({', '.join(f'{k}={v!r}' for k, v in shown.items())})")
    return getattr(target.client(service), operation)(**params)


def _apply_one(target: Target, change: Change, applied: Applied) -> None:  # noqa: PLR0915
    p = change.params
    op = change.operation
    if op == "put_role_policy":
        try:
            before = target.client("iam").get_role_policy(RoleName=p["RoleName"], PolicyName=p["PolicyName"])
            document = before["PolicyDocument"]
            undo = Change(
                "put_role_policy",
                f"Put policy {p['PolicyName']} back as it was.",
                {**p, "PolicyDocument": document if isinstance(document, str) else json.dumps(document)},
            )
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            undo = Change(
                "delete_role_policy",
                f"Delete policy {p['PolicyName']}.",
                {"RoleName": p["RoleName"], "PolicyName": p["PolicyName"]},
            )
        _call(target, applied, "iam", "put_role_policy", **p)
        applied.undo.append(undo)
    elif op == "delete_role_policy":
        _call(target, applied, "iam", "delete_role_policy", **p)
    elif op == "patch_environment":
        lam = target.client("lambda")
        current = dict(
            (lam.get_function_configuration(FunctionName=p["FunctionName"]).get("Environment") or {}).get(
                "Variables"
            )
            or {}
        )
        touched = [*p["Set"], *p["Remove"]]
        undo = Change(
            "patch_environment",
            "Put the variables back as they were.",
            {
                "FunctionName": p["FunctionName"],
                "Set": {k: current[k] for k in touched if k in current},
                "Remove": [k for k in touched if k not in current],
            },
        )
        variables = {k: v for k, v in current.items() if k not in p["Remove"]} | dict(p["Set"])
        edits = [f"{k}={v}" for k, v in p["Set"].items()] + [f"without {k}" for k in p["Remove"]]
        applied.calls.append(
            f"lambda.update_function_configuration(FunctionName={p['FunctionName']!r}, "
            f"Environment=<its variables, {', '.join(edits)}>)"
        )
        lam.update_function_configuration(
            FunctionName=p["FunctionName"], Environment={"Variables": variables}
        )
        applied.undo.append(undo)
    elif op == "connect_route":
        integration = p["IntegrationId"]
        _, region, account = arn_parts(p["FunctionArn"])
        if not integration:
            uri = lambda_integration_uri(region, p["FunctionArn"])
            made = _call(
                target,
                applied,
                "apigatewayv2",
                "create_integration",
                ApiId=p["ApiId"],
                IntegrationType="AWS_PROXY",
                IntegrationMethod="POST",
                IntegrationUri=uri,
            )
            integration = str(made["IntegrationId"])
            applied.undo.append(
                Change(
                    "delete_integration",
                    "Delete the integration the fix created.",
                    {"ApiId": p["ApiId"], "IntegrationId": integration},
                )
            )
        route_key = p.get("RouteKey", CONNECT)
        route = _call(
            target,
            applied,
            "apigatewayv2",
            "create_route",
            ApiId=p["ApiId"],
            RouteKey=route_key,
            Target=f"integrations/{integration}",
        )
        applied.undo.append(
            Change(
                "delete_route",
                f"Delete the {route_key} route the fix created.",
                {"ApiId": p["ApiId"], "RouteId": str(route["RouteId"])},
            )
        )
        _add_permission(
            target,
            applied,
            permission_call(p["FunctionArn"], PERMISSION_ID, source_arn(region, account, p["ApiId"])),
        )
        if p.get("Stage"):
            _deploy_stage_now(target, applied, p["ApiId"], p["Stage"])
    elif op == "add_invoke_permission":
        _add_permission(target, applied, permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"]))
    elif op == "deploy_stage":
        _deploy_stage_now(target, applied, p["ApiId"], p["StageName"])
    elif op == "point_stage":  # the undo of a deployment: the stage serves what it served before
        _call(
            target,
            applied,
            "apigatewayv2",
            "update_stage",
            ApiId=p["ApiId"],
            StageName=p["StageName"],
            DeploymentId=p["DeploymentId"],
        )
        _call(
            target, applied, "apigatewayv2", "delete_deployment", ApiId=p["ApiId"], DeploymentId=p["Created"]
        )
    elif op == "stage_throttling":
        _raise_throttling(target, applied, p)
    elif op == "stage_settings":  # the undo of stage_throttling: the settings as they were
        _call(target, applied, "apigatewayv2", "update_stage", **p)
    elif op in ("delete_route", "delete_integration"):
        _call(target, applied, "apigatewayv2", op, **p)
    elif op == "remove_permission":
        _call(target, applied, "lambda", "remove_permission", **p)
    elif op == "update_integration":
        before = target.client("apigatewayv2").get_integration(
            ApiId=p["ApiId"], IntegrationId=p["IntegrationId"]
        )
        previous = dict(before.get("RequestParameters") or {})
        added = [k for k in p["RequestParameters"] if k not in previous]
        # API Gateway v2 merges RequestParameters; an empty value removes a key it added.
        undo_params = {**previous, **dict.fromkeys(added, "")}
        _call(target, applied, "apigatewayv2", "update_integration", **p)
        applied.undo.append(
            Change(
                "update_integration",
                "Put the request parameters back.",
                {**p, "RequestParameters": undo_params},
            )
        )
    elif op == "update_api":
        before = target.client("apigatewayv2").get_api(ApiId=p["ApiId"])
        _call(target, applied, "apigatewayv2", "update_api", **p)
        applied.undo.append(
            Change(
                "update_api",
                "Put the route selection expression back.",
                {"ApiId": p["ApiId"], "RouteSelectionExpression": str(before["RouteSelectionExpression"])},
            )
        )
    elif op == "deploy_fixed_handler":
        lam = target.client("lambda")
        current = lam.get_function(FunctionName=p["FunctionName"])
        previous_handler = str(current["Configuration"].get("Handler") or "")
        key = f"code-{p['FunctionName']}"
        applied.saved[key] = download_code(
            p["FunctionName"],
            current["Code"]["Location"],
            "the fix keeps the code it replaces to undo the change, so it stops here; retry",
        )
        _deploy(target, applied, p["FunctionName"], handler_package(str(p["Runtime"])), "app.handler")
        applied.undo.append(
            Change(
                "restore_code",
                f"Put {p['FunctionName']}'s own code and Handler back.",
                {"FunctionName": p["FunctionName"], "Handler": previous_handler, "Saved": key},
            )
        )
    elif op == "restore_code":
        _deploy(target, applied, p["FunctionName"], applied.saved[p["Saved"]], p["Handler"])
    else:
        raise ConfigurationError(f"The fix has no operation {op!r}; this is a defect of the kit.")


def _raise_throttling(target: Target, applied: Applied, p: Mapping[str, Any]) -> None:
    """The stage's settings named in ``p["Settings"]`` with the new limits, their other fields as read now;
    the undo puts each settings object back as it was."""
    names = {"ApiId": p["ApiId"], "StageName": p["StageName"]}
    before = target.client("apigatewayv2").get_stage(**names)
    defaults = dict(before.get("DefaultRouteSettings") or {})
    routes = {key: dict(value) for key, value in (before.get("RouteSettings") or {}).items()}
    update: dict[str, Any] = {}
    if "DefaultRouteSettings" in p["Settings"]:
        update["DefaultRouteSettings"] = defaults | limits(p)
    if CONNECT_SETTINGS in p["Settings"]:
        update["RouteSettings"] = routes | {CONNECT: routes.get(CONNECT, {}) | limits(p)}
    _call(target, applied, "apigatewayv2", "update_stage", **names, **update)
    previous = {"DefaultRouteSettings": defaults, "RouteSettings": routes}
    applied.undo.append(
        Change(
            "stage_settings",
            f"Put stage {p['StageName']}'s route settings back as they were.",
            {**names, **{name: previous[name] for name in update}},
        )
    )


def _add_permission(target: Target, applied: Applied, call: ApiCall) -> None:
    """The statement added, and its removal recorded; the same statement already there is left alone
    (nothing to add, nothing to undo). A statement of that id granting another source is a one-line error:
    the fix would change nothing, and verifying it would fail without saying why."""
    service, operation, params = call
    try:
        _call(target, applied, service, operation, **params)
    except Exception as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
        found = _statement_source(target, str(params["FunctionName"]), str(params["StatementId"]))
        if found != params["SourceArn"]:
            raise ConfigurationError(
                f"Function {params['FunctionName']} already has a statement {params['StatementId']} that "
                f"lets API Gateway invoke it for {found or 'another source'}, not {params['SourceArn']}; "
                f"remove it (aws lambda remove-permission --function-name {params['FunctionName']} "
                f"--statement-id {params['StatementId']}) and run the fix again."
            ) from exc
        return
    applied.undo.append(
        Change(
            "remove_permission",
            "Remove the invoke permission the fix added.",
            {"FunctionName": params["FunctionName"], "StatementId": params["StatementId"]},
        )
    )


def _statement_source(target: Target, function: str, statement_id: str) -> str | None:
    """The ``AWS:SourceArn`` of the function's resource-policy statement ``statement_id`` (None: none)."""
    document = json.loads(target.client("lambda").get_policy(FunctionName=function)["Policy"])
    for statement in document.get("Statement", []):
        if statement.get("Sid") == statement_id:
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            return str(source) if source is not None else None
    return None


def _deploy_stage_now(target: Target, applied: Applied, api_id: str, stage: str) -> None:
    """A new deployment the stage serves; its undo points the stage back at the one it served (none to undo
    for a stage that deploys itself: its DeploymentId cannot be chosen)."""
    before = target.client("apigatewayv2").get_stage(ApiId=api_id, StageName=stage)
    made = _call(target, applied, "apigatewayv2", "create_deployment", ApiId=api_id, StageName=stage)
    previous = before.get("DeploymentId")
    if previous and not before.get("AutoDeploy"):
        applied.undo.append(
            Change(
                "point_stage",
                f"Point stage {stage} back at deployment {previous}, and delete the fix's deployment.",
                {
                    "ApiId": api_id,
                    "StageName": stage,
                    "DeploymentId": str(previous),
                    "Created": str(made["DeploymentId"]),
                },
            )
        )


def _deploy(target: Target, applied: Applied, name: str, package: bytes, handler: str) -> None:
    """New code, then its Handler, each once Lambda has finished the update before it."""
    lam = target.client("lambda")
    _call(target, applied, "lambda", "update_function_code", FunctionName=name, ZipFile=package)
    _wait_updated(lam, name)
    _call(target, applied, "lambda", "update_function_configuration", FunctionName=name, Handler=handler)
    _wait_updated(lam, name)


def _wait_updated(lam: Any, name: str, timeout_s: float = 60) -> None:
    """Until the function's last update is done (Lambda refuses a second update while one is in progress)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus", "Successful")
        if status != "InProgress":
            return
        time.sleep(0.5)


def where(target: Target) -> str:
    """The target a journal is bound to: its label and API (an undo elsewhere is refused)."""
    return f"{target.label} api {target.api_id or '-'}"


def apply(target: Target, fix: Fix, into: Applied | None = None) -> Applied:
    """Make the fix's changes on ``target`` (writable targets only), recording each call and its undo in
    ``into`` (a new record by default).

    A change that fails stops the rest; what was already done stays recorded in ``into``, so the caller can
    journal it and :func:`undo` can take it back."""
    target.require_writes(f"apply the fix for {fix.cause}")
    applied = into if into is not None else Applied()
    applied.target = where(target)
    from botocore.exceptions import BotoCoreError, ClientError

    from kit.errors import AwsError

    for change in fix.changes:
        try:
            _apply_one(target, change, applied)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "fix",
                change.operation,
                change.summary,
                otherwise="nothing after it was applied; `kit fix --undo` takes back what was",
            ) from exc
    return applied


def undo(target: Target, applied: Applied) -> Applied:
    """Run the recorded undo changes, last first; returns the calls made."""
    target.require_writes("undo the fix")
    if applied.target and applied.target != where(target):
        raise ConfigurationError(
            f"The last fix was applied to {applied.target}, not {where(target)}; undo it with the same "
            "--target, --profile, --region and API."
        )
    done = Applied(saved=applied.saved)
    for change in reversed(applied.undo):
        _apply_one(target, change, done)
    return done


# --------------------------------------------------------------------------------------------------
# Verifying: the fix applied, then the diagnosis again from that moment


@dataclass(frozen=True)
class Verdict:
    fixed: bool
    text: str
    before: str
    after: str


def verdict(fix: Fix, after: Diagnosis) -> Verdict:
    """ "fixed" only when nothing is wrong any more and the storage test passes (pure)."""
    root = str(after.root_cause["id"])
    verdicts = {str(r["check"]): str(r["verdict"]) for _, r in after.findings.iterrows()}
    stored = verdicts.get("probe") == "pass" or verdicts.get("direct-write") == "pass"
    if root == "none" and stored:
        return Verdict(True, "fixed: the root cause is gone and the storage test passes", fix.cause, root)
    if root == "none":
        return Verdict(
            False, "not enough: nothing fails, but no storage test ran (run with a probe)", fix.cause, root
        )
    summary = str(after.root_cause.get("summary", ""))
    return Verdict(False, f"not enough: the next cause is {root} ({summary})", fix.cause, root)


def verify(
    target: Target,
    fix: Fix,
    read: Callable[[Any, Mapping[str, bool]], Evidence],
    diagnose: Callable[[Evidence], Diagnosis],
    into: Applied | None = None,
) -> tuple[Verdict, Applied]:
    """Apply ``fix`` on ``target`` (the lab or a mirror), read the evidence again from then on with the fixed
    client (``read(since, client_settings)``), and judge. The fix stays applied; the undo is in ``into``."""
    from datetime import UTC, datetime

    since = datetime.now(UTC)
    applied = apply(target, fix, into)
    after = diagnose(read(since, fix.client))
    return verdict(fix, after), applied


def journal(applied: Applied, folder: Path) -> Path:
    """Write what undoes a fix under ``folder`` (the state dir's ``fixes/``): the undo changes as JSON and the
    code packages it puts back. No variable's value but the ones the fix set or restores."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}.json"
    for key, data in applied.saved.items():
        (folder / f"{stamp}-{key}.zip").write_bytes(data)
    record = applied.as_dict() | {
        "saved": {key: f"{stamp}-{key}.zip" for key in applied.saved},
        "target": applied.target,
    }
    path.write_text(json.dumps(record, indent=2))
    (folder / "last").write_text(path.name)
    return path


def read_journal(folder: Path) -> Applied:
    """The last fix's undo, as :func:`journal` wrote it."""
    try:
        name = (folder / "last").read_text().strip()
        record = json.loads((folder / name).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"No applied fix is recorded in {folder}; nothing to undo.") from exc
    saved = {key: (folder / file).read_bytes() for key, file in record.get("saved", {}).items()}
    changes = [Change(c["operation"], c["summary"], c["params"]) for c in record.get("undo", [])]
    return Applied(
        calls=list(record.get("calls", [])), undo=changes, saved=saved, target=str(record.get("target", ""))
    )
