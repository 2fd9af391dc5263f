"""Mirror a deployed stack into the lab: read an account's WebSocket API, functions, roles and tables,
read-only, into an :class:`AccountCopy` the lab builds again (:mod:`kit.lab.mirror_build`).

    read_account(target, function_code=, copy_items=)   every read, through the target's clients only
    function_gaps(configuration) / api_gaps(answers)    what the lab cannot reproduce, each named (pure)
    mask_item(item, salt)                               a copied item, masked as reports mask (pure)
    Manifest                                            what was copied, changed and not reproduced

Reads only: GetApi, GetRoutes, GetIntegrations, GetStages, GetDomainNames, GetApiMappings, GetFunction
(and a GET of its code location), GetPolicy, GetRole, ListRolePolicies, GetRolePolicy,
ListAttachedRolePolicies, GetPolicy(Version), ListTables, DescribeTable, Scan (only with ``copy_items``),
GetCallerIdentity. Nothing here writes to the account; the simulation tier counts it.

Secret-looking environment values (:func:`kit.redact_structure.is_secret_variable`) stay in the copy, in
memory, so the mirror's function runs as the account's does; the manifest names the variable and never holds
its value, and neither does anything else the kit writes.
"""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError

from kit import config, iam, redact
from kit.errors import AwsError, ConfigurationError, error_code
from kit.lab import function_source, lambda_runtimes
from kit.lab.function_source import FunctionSource
from kit.local import state_dir
from kit.redact_structure import is_secret_name, is_secret_variable
from kit.target import Target

CODE_DOWNLOAD_TIMEOUT_S: Final = 60
CODE_LIMIT_BYTES: Final = function_source.UNZIPPED_LIMIT_BYTES  # nothing bigger could be a Lambda package
MASKED: Final = "(masked)"
MANIFEST_NAME: Final = "mirror.json"
_REGION = re.compile(r"^(?:[a-z]{2}(?:-gov)?-[a-z]+-\d)$")
# What the lab does not model yet, named wherever a stack uses it (docs/fidelity.md keeps the full list).
NOT_MODELLED_ROUTE_AUTH: Final = "the mirror does not copy this authorization yet: the mirror's route is open"
NOT_COPIED_IAM_CALLERS: Final = (
    "the route's AWS_IAM is copied and enforced, but not the account's callers or their policies: the "
    "mirror's probe signs as the lab's administrator, whom every policy allows, so a refused handshake "
    "cannot show there"
)
NOT_READABLE_DEPLOYMENT: Final = (
    "AWS has no API that reads a deployment's routes and integrations, so the mirror deploys the account's "
    "current ones: a change made on the account and never deployed is live in the mirror"
)


@dataclass(frozen=True)
class Gap:
    """Something of the account the mirror could not reproduce, and what that means for the mirror."""

    what: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"what": self.what, "why": self.why}


@dataclass(frozen=True)
class FunctionCopy:
    """One function: GetFunction's configuration (its environment's values in memory only) and its code."""

    name: str
    configuration: Mapping[str, Any] = field(repr=False)
    code: bytes = field(repr=False)
    code_from: str  # "its code location" or "--function-code <file or folder name>"
    resource_policy: Mapping[str, Any] | None = None

    @property
    def runtime(self) -> str:
        return str(self.configuration.get("Runtime", ""))

    @property
    def role_arn(self) -> str:
        return str(self.configuration.get("Role", ""))

    @property
    def environment(self) -> dict[str, str]:
        variables = (self.configuration.get("Environment") or {}).get("Variables") or {}
        return {str(name): str(value) for name, value in variables.items()}


@dataclass(frozen=True)
class RoleCopy:
    name: str
    arn: str
    trust: Mapping[str, Any]
    documents: Mapping[str, Any]  # "inline:<name>" / "managed:<arn>" -> document (iam.fetch_role_policies)


@dataclass(frozen=True)
class TableCopy:
    name: str
    region: str
    description: Mapping[str, Any]  # DescribeTable's Table
    items: list[dict[str, Any]] = field(default_factory=list, repr=False)  # masked (mask_item)


@dataclass(frozen=True)
class AccountCopy:
    """Everything the mirror needs, read from the account; nothing here has been written anywhere."""

    region: str
    account_id: str
    api: config.ApiAnswers
    stage: str | None  # the stage the target names (the gateway serves it); every stage is copied
    functions: list[FunctionCopy]
    roles: list[RoleCopy]
    tables: list[TableCopy]
    table: str  # the target's connections table
    gaps: list[Gap] = field(default_factory=list)
    read_from: str = ""  # the target, in words (no secret)
    # route key -> its GetRouteResponses items (read for routes with a RouteResponseSelectionExpression)
    route_responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def function(self, name: str) -> FunctionCopy | None:
        return next((f for f in self.functions if f.name == name), None)


@dataclass
class Manifest:
    """What the mirror copied, what it changed (endpoints, ids, the account) and what it could not
    reproduce: written to ``mirror.json`` beside the lab file; never a secret value."""

    source: dict[str, str]
    copied: list[dict[str, str]] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)
    not_reproduced: list[dict[str, str]] = field(default_factory=list)

    def copy(self, kind: str, name: str, detail: str = "") -> None:
        self.copied.append({"kind": kind, "name": name, "detail": detail})

    def change(self, what: str, account: str, lab: str) -> None:
        self.changed.append({"what": what, "account": account, "lab": lab})

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "copied": self.copied,
            "changed": self.changed,
            "not_reproduced": self.not_reproduced,
        }

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"mirrored {len(self.copied)} resources from {self.source.get('region', '?')}; "
            f"{len(self.changed)} changed for the lab, {len(self.not_reproduced)} not reproduced"
        )


def manifest_file() -> Path:
    """Where the last mirror's manifest is: ``mirror.json`` beside the lab file (kept after the lab stops)."""
    return state_dir() / MANIFEST_NAME


def write_manifest(manifest: Manifest) -> Path:
    path = manifest_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest.as_dict(), indent=2) + "\n")
    return path


# --------------------------------------------------------------------------------------------------------
# Pure: what the lab cannot reproduce, masking


def function_gaps(name: str, configuration: Mapping[str, Any]) -> list[Gap]:
    """What of a function's configuration the lab does not reproduce (pure)."""
    gaps = []
    if configuration.get("Layers"):
        layers = ", ".join(str(layer.get("Arn", "")).rsplit(":", 2)[-2] for layer in configuration["Layers"])
        gaps.append(
            Gap(f"function {name}: layers {layers}", "layers are not copied; bundle what they provide")
        )
    if (configuration.get("VpcConfig") or {}).get("SubnetIds"):
        gaps.append(Gap(f"function {name}: VPC", "the lab's function reaches the lab's services directly"))
    if configuration.get("FileSystemConfigs"):
        gaps.append(Gap(f"function {name}: EFS file systems", "not mounted in the lab"))
    if "arm64" in (configuration.get("Architectures") or []):
        gaps.append(Gap(f"function {name}: arm64", "the lab runs it on this machine's architecture"))
    if (configuration.get("TracingConfig") or {}).get("Mode") == "Active":
        gaps.append(Gap(f"function {name}: X-Ray tracing", "the lab does not trace"))
    if configuration.get("PackageType") == "Image":
        gaps.append(
            Gap(
                f"function {name}: container image",
                "the lab runs the code given with --function-code as a zip",
            )
        )
    if (configuration.get("DeadLetterConfig") or {}).get("TargetArn"):
        gaps.append(
            Gap(f"function {name}: dead-letter queue", "not reproduced (API Gateway invokes it sync)")
        )
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    for variable in sorted(k for k, v in variables.items() if config.EXECUTE_API_URL.match(str(v))):
        gaps.append(
            Gap(
                f"function {name}: {variable} names an execute-api endpoint",
                "the mirror cannot reach the account's API, so the function's posts to it fail there whether "
                "the endpoint is right or not (unset, the kit's handlers build it from the event)",
            )
        )
    return gaps


def authorizer_functions(answers: config.ApiAnswers) -> list[str]:
    """The functions of the Lambda authorizers the API's routes name (pure): the mirror copies them too."""
    named = {str(r.get("AuthorizerId")) for r in answers.routes if r.get("AuthorizationType") == "CUSTOM"}
    found = [
        config.function_of_uri(str(a.get("AuthorizerUri") or ""))
        for a in answers.authorizers
        if str(a.get("AuthorizerId")) in named
    ]
    return [function[0] for function in found if function is not None]


def api_gaps(answers: config.ApiAnswers) -> list[Gap]:
    """What of the API the lab does not reproduce (pure): a CUSTOM route whose authorizer the API does not
    list, AWS_IAM's callers, API keys, mTLS."""
    gaps = []
    copied = {str(a.get("AuthorizerId")) for a in answers.authorizers}
    for route in answers.routes:
        key = route.get("RouteKey", "")
        authorization = str(route.get("AuthorizationType", "NONE"))
        if authorization == "CUSTOM" and str(route.get("AuthorizerId")) in copied:
            pass  # a Lambda authorizer: copied with its function (lab/mirror_build.py)
        elif authorization == "AWS_IAM":  # copied and enforced, but not who the account's clients are
            gaps.append(Gap(f"route {key}: authorization AWS_IAM", NOT_COPIED_IAM_CALLERS))
        elif authorization not in ("NONE", ""):
            gaps.append(
                Gap(f"route {key}: authorization {route['AuthorizationType']}", NOT_MODELLED_ROUTE_AUTH)
            )
        if route.get("ApiKeyRequired"):
            gaps.append(Gap(f"route {key}: API key required", "the lab does not check API keys"))
    for stage in answers.stages:
        name = stage.get("StageName", "")
        if stage.get("ClientCertificateId"):
            gaps.append(Gap(f"stage {name}: client certificate", "the lab calls integrations without one"))
        if stage.get("DeploymentId") and not stage.get("AutoDeploy"):
            gaps.append(Gap(f"stage {name}: deployment {stage['DeploymentId']}", NOT_READABLE_DEPLOYMENT))
    for integration in answers.integrations:
        if integration.get("ConnectionType") == "VPC_LINK":
            gaps.append(
                Gap(
                    f"integration {integration.get('IntegrationId', '')}: VPC link",
                    "the lab calls its stand-in directly",
                )
            )
    return gaps


def mask_item(item: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """A DynamoDB item (wire format) with e-mail addresses masked and secret-named attributes blanked, as a
    report shows them (pure). Masking is deterministic within a salt, so keys that were equal stay equal."""

    def value(name: str, typed: Any) -> Any:
        if not isinstance(typed, Mapping) or len(typed) != 1:
            return typed
        ((kind, raw),) = typed.items()
        if kind == "S" and isinstance(raw, str):
            return {"S": MASKED if is_secret_name(name) else redact.mask_emails(raw, salt)}
        if kind == "M" and isinstance(raw, Mapping):
            return {"M": {str(k): value(str(k), v) for k, v in raw.items()}}
        if kind == "L" and isinstance(raw, list):
            return {"L": [value(name, v) for v in raw]}
        if kind == "SS" and isinstance(raw, list):
            return {"SS": sorted({redact.mask_emails(str(v), salt) for v in raw})}
        return dict(typed)

    return {str(name): value(str(name), typed) for name, typed in item.items()}


def environment_record(variables: Mapping[str, str]) -> dict[str, str]:
    """What the manifest says of a function's environment: each name, its value only when not secret."""
    return {
        name: function_source.SECRET_PLACEHOLDER if is_secret_variable(name) else value
        for name, value in sorted(variables.items())
    }


def parse_function_code(pairs: Iterable[str]) -> dict[str, Path]:
    """``NAME=PATH`` pairs (``--function-code``) → {function name: path}; anything else is one line."""
    chosen: dict[str, Path] = {}
    for pair in pairs:
        name, equals, path = pair.partition("=")
        if not equals or not name or not path:
            raise ConfigurationError(
                f"--function-code {pair[:60]!r} is not NAME=PATH; write it as --function-code fn=fn.zip."
            )
        chosen[name] = Path(path).expanduser()
    return chosen


# --------------------------------------------------------------------------------------------------------
# Reading the account (I/O, read-only)


def read_account(
    target: Target,
    *,
    function_code: Mapping[str, Path] | None = None,
    copy_items: int = 0,
    salt: str = "",
) -> AccountCopy:
    """Read, read-only, what the mirror needs. A resource that cannot be read is one :class:`KitError` naming
    it and the next step; nothing has been written anywhere when it is raised."""
    function_code = dict(function_code or {})
    account_id = iam.account_id(target)
    answers = config.fetch_api(target)
    stage, _why = answers.settled(target.api_id, target.stage)
    stage = stage or next((str(s.get("StageName")) for s in answers.stages), None)
    gaps = api_gaps(answers) + _custom_domains(target, answers.api_id)
    route_responses, unread = _read_route_responses(target, answers)
    gaps += unread

    names = list(dict.fromkeys([*config.functions_for_api(target, answers), *authorizer_functions(answers)]))
    unknown = sorted(set(function_code) - set(names))
    if unknown:
        raise ConfigurationError(
            f"--function-code {unknown[0]}: API {answers.api_id} invokes no function of that name "
            f"(it invokes {', '.join(names) or 'none'}); name one of those."
        )
    functions = [_read_function(target, name, function_code.get(name)) for name in names]
    for function in functions:
        gaps += function_gaps(function.name, function.configuration)

    roles: dict[str, RoleCopy] = {}
    for function in functions:
        if function.role_arn and function.role_arn not in roles:
            roles[function.role_arn] = _read_role(target, function.role_arn)

    tables = _read_tables(target, functions, copy_items=copy_items, salt=salt)
    return AccountCopy(
        region=target.region,
        account_id=account_id,
        api=answers,
        stage=stage,
        functions=functions,
        roles=list(roles.values()),
        tables=tables,
        table=target.table,
        gaps=gaps,
        read_from=target.label,
        route_responses=route_responses,
    )


def _read_route_responses(
    target: Target, answers: config.ApiAnswers
) -> tuple[dict[str, list[dict[str, Any]]], list[Gap]]:
    """Each two-way route's route responses (GetRouteResponses), and a gap for each route whose could not be
    read: without them the route is one-way in the mirror."""
    client = target.client("apigatewayv2")
    found: dict[str, list[dict[str, Any]]] = {}
    gaps: list[Gap] = []
    for route in answers.routes:
        if not route.get("RouteResponseSelectionExpression") or not route.get("RouteId"):
            continue
        key = str(route.get("RouteKey", ""))
        try:
            items = client.get_route_responses(ApiId=answers.api_id, RouteId=str(route["RouteId"]))
        except (ClientError, BotoCoreError) as exc:
            why = f"could not be read ({error_code(exc)}): the route is one-way in the mirror"
            gaps.append(Gap(f"route {key}: route responses", why))
            continue
        found[key] = [dict(item) for item in items.get("Items", [])]
    return found, gaps


def _custom_domains(target: Target, api_id: str) -> list[Gap]:
    """Custom domain names mapped to the API: named, never reproduced (the mirror has its own URL)."""
    client = target.client("apigatewayv2")
    try:
        domains = [
            str(d["DomainName"])
            for page in client.get_paginator("get_domain_names").paginate()
            for d in page.get("Items", [])
        ]
        mapped = []
        for domain in domains:
            mappings = client.get_api_mappings(DomainName=domain).get("Items", [])
            mapped += [
                f"{domain}/{m.get('ApiMappingKey') or ''}".rstrip("/")
                for m in mappings
                if m.get("ApiId") == api_id
            ]
    except (ClientError, BotoCoreError) as exc:
        return [Gap("custom domain names", f"could not be read ({error_code(exc)}); none is reproduced")]
    return [Gap(f"custom domain {name}", "the mirror answers on the lab's own URL") for name in mapped]


def _read_function(target: Target, name: str, code_path: Path | None) -> FunctionCopy:
    client = target.client("lambda")
    try:
        answer = client.get_function(FunctionName=name)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc,
            "lambda",
            "GetFunction",
            name,
            resource_type="function",
            region=target.region,
            otherwise="the kit needs lambda:GetFunction to copy a function; grant it, or give the code with "
            f"--function-code {name}=PATH",
        ) from exc
    configuration = config.strip_metadata(answer.get("Configuration") or {})
    runtime = str(configuration.get("Runtime") or "")
    if configuration.get("PackageType") == "Image" and code_path is None:
        raise ConfigurationError(
            f"function {name} is a container image, which the lab does not run; give its code with "
            f"--function-code {name}=PATH (a folder or .zip) and its runtime is read from the files."
        )
    problem = lambda_runtimes.refusal(name, runtime) if runtime else None
    if problem is not None:
        raise ConfigurationError(problem)
    if code_path is not None:
        code, code_from, source = _code_from_path(name, code_path, runtime)
        if not runtime:  # a container image: the lab runs the given code as a zip function
            configuration = {
                **configuration,
                "Runtime": source.runtime,
                "Handler": configuration.get("Handler") or source.handler,
            }
    else:
        code, code_from = download_code(name, (answer.get("Code") or {}).get("Location")), "its code location"
    try:
        policy_text = client.get_policy(FunctionName=name)["Policy"]
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise AwsError.from_botocore(
                exc, "lambda", "GetPolicy", name, resource_type="function", region=target.region
            ) from exc
        policy_text = None
    resource_policy = json.loads(policy_text) if policy_text else None
    return FunctionCopy(name, configuration, code, code_from, resource_policy)


def _code_from_path(name: str, path: Path, runtime: str) -> tuple[bytes, str, FunctionSource]:
    """``--function-code NAME=PATH``: the package's bytes, how the manifest names it, and the checked source
    (its runtime and the console's default handler, for a container image's configuration, which has none)."""
    source = function_source.function_source(
        str(path),
        runtime=runtime or None,
        names={"function": f"--function-code {name}=", "handler": "--handler", "runtime": "--runtime"},
    )
    return function_source.package(source, source.path), f"--function-code {source.name}", source


def download_code(name: str, location: object, next_step: str = "") -> bytes:
    """The function's deployment package from GetFunction's ``Code.Location`` (a presigned URL), or a one-line
    ConfigurationError naming the function and ``--function-code``.

    The opener is built per call, so it honours the proxy settings of the moment (urlopen's would keep the
    first call's for the life of the process)."""
    next_step = (
        next_step or f"give its code with --function-code {name}=PATH (a folder or the deployment .zip)"
    )
    if not isinstance(location, str) or not location.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"function {name}: GetFunction gave no code location to download; {next_step}."
        )
    try:
        opener = urllib.request.build_opener()
        with opener.open(location, timeout=CODE_DOWNLOAD_TIMEOUT_S) as answer:
            data = bytes(answer.read(CODE_LIMIT_BYTES + 1))
    except urllib.error.HTTPError as exc:
        raise ConfigurationError(
            f"function {name}: its code could not be downloaded from GetFunction's code location "
            f"(HTTP {exc.code}); {next_step}."
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigurationError(
            f"function {name}: its code could not be downloaded ({type(exc).__name__}: {str(reason)[:80]}); "
            f"{next_step}."
        ) from None
    if len(data) > CODE_LIMIT_BYTES or not zipfile.is_zipfile(io.BytesIO(data)):
        raise ConfigurationError(
            f"function {name}: what its code location gave is not a deployment package; {next_step}."
        )
    return data


def _read_role(target: Target, role_arn: str) -> RoleCopy:
    name = iam.role_name(role_arn)
    try:
        role = target.client("iam").get_role(RoleName=name)["Role"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc,
            "iam",
            "GetRole",
            name,
            resource_type="role",
            otherwise="the mirror needs iam:GetRole and the policy reads (iam:GetRolePolicy, "
            "iam:ListAttachedRolePolicies, iam:GetPolicyVersion) on the function's role",
        ) from exc
    trust = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):
        trust = json.loads(unquote(trust))
    documents = iam.fetch_role_policies(target, name)
    return RoleCopy(name, str(role.get("Arn", role_arn)), trust, documents)


def _read_tables(
    target: Target, functions: list[FunctionCopy], *, copy_items: int, salt: str
) -> list[TableCopy]:
    """The target's table, and every table a function's environment names, in the target's region and in
    every region a function's environment names (a same-named table elsewhere is a classic fault)."""
    values = {value for function in functions for value in function.environment.values()}
    regions = [target.region, *sorted(v for v in values if _REGION.match(v) and v != target.region)]
    copies = []
    for region in regions:
        client = (target if region == target.region else replace(target, region=region)).client("dynamodb")
        try:
            existing = {
                str(name)
                for page in client.get_paginator("list_tables").paginate()
                for name in page.get("TableNames", [])
            }
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "dynamodb",
                "ListTables",
                None,
                region=region,
                otherwise="the mirror needs dynamodb:ListTables and dynamodb:DescribeTable",
            ) from exc
        wanted = ({target.table} | values) & existing
        for name in sorted(wanted):
            try:
                table = client.describe_table(TableName=name)["Table"]
                items = _items(client, name, copy_items, salt) if copy_items > 0 else []
            except (ClientError, BotoCoreError) as exc:
                raise AwsError.from_botocore(
                    exc, "dynamodb", "DescribeTable", name, resource_type="table", region=region
                ) from exc
            copies.append(TableCopy(name, region, config.strip_metadata(table), items))
    return copies


def _items(client: Any, table: str, limit: int, salt: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(
        TableName=table, PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 1000)}
    ):
        items += [mask_item(item, salt) for item in page.get("Items", [])]
    return items[:limit]
