"""Provision the seed's infrastructure in the lab, through AWS APIs only.

Everything the lab later acts on is created here with the same boto3 calls one would make against a real
account: the connections table and its GSI (DynamoDB Local), the execution role and its policy from
``iam-policies.json``, the Lambda function, the WebSocket API with its routes, integrations, a deployment
of them and the ``prod`` stage serving it (moto and the lab's own AWS layer), and the log groups. Nothing
here is read back by a hidden channel: the gateway and the runtime read this configuration through the same
APIs, so a change made later with any boto3 call takes effect (a route or integration once deployed).

This module must not start servers or know about scenarios.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kit.config import lambda_integration_uri
from kit.dynamo import schema
from kit.lab import function_source
from kit.lab.function_source import FunctionSource
from kit.local import PROJECT_ROOT

ACCOUNT_ID = "123456789012"  # moto's default account
FUNCTION_NAME = "chatgenius-websocket"
ROLE_NAME = "chatgenius-websocket-handler"
POLICY_NAME = "chatgenius-websocket-access"
API_NAME = "chatgenius-websocket"
STAGE = "prod"
ROUTE_KEYS = ("$connect", "$disconnect", "message", "presence", "typing")
ACCESS_LOG_GROUP = "/aws/apigateway/chatgenius-websocket-access"
HANDLER_DIR = Path(__file__).resolve().parents[1] / "handler"
# The kit's handlers in both languages: the same handler strings (app.handler, seed.handler) reach the
# .py files on a Python runtime and the .mjs files on a Node.js one.
HANDLER_FILES = ("app.py", "seed.py", "app.mjs", "seed.mjs")
# Lab-only variants of the fixed handler, each with the one bug a scenario is about (never for deployment).
LAB_FUNCTION_DIR = Path(__file__).resolve().parent / "functions"
LAB_FUNCTION_FILES = ("write_not_awaited.mjs", "write_on_message.mjs", "authorizers.py")


def package_files() -> list[tuple[Path, str]]:
    """Every file of the lab's deployment package, with its name at the package's top level."""
    return [(HANDLER_DIR / name, name) for name in HANDLER_FILES] + [
        (LAB_FUNCTION_DIR / name, name) for name in LAB_FUNCTION_FILES
    ]


POLICY_FILE = PROJECT_ROOT / "iam-policies.json"
DEFAULT_RUNTIME = "python3.11"  # the lab's function, unless `kit lab up --runtime` says otherwise
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

# The access-log format the lab's stage is created with: the $context variables that tell the causes apart.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "connectionId": "$context.connectionId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "integrationStatus": "$context.integration.status",
        "integrationError": "$context.integration.error",
        "integrationRequestId": "$context.integration.requestId",
        "error": "$context.error.message",
        "responseType": "$context.error.responseType",
        "requestTimeEpoch": "$context.requestTimeEpoch",
        "connectedAt": "$context.connectedAt",
        "sourceIp": "$context.identity.sourceIp",
        "integrationLatency": "$context.integrationLatency",
    },
    separators=(",", ":"),
)


class ClientFactory(Protocol):
    def client(self, service: str) -> Any: ...


@dataclass(frozen=True)
class LabResources:
    """What provisioning created: names and ARNs, nothing that isn't also readable through AWS APIs."""

    region: str
    account_id: str
    table: str
    index: str
    api_id: str
    stage: str
    role_name: str
    role_arn: str
    function_name: str
    function_arn: str
    functions: dict[str, str] = field(default_factory=dict)  # route key -> function name
    code_dir: str = ""
    code_sha256: str = ""  # CreateFunction's CodeSha256 of the code unpacked in code_dir
    log_groups: dict[str, str] = field(default_factory=dict)  # lambda / execution / access -> group
    loaded: str = ""  # the user's function, in a line (function_source.describe); empty for the kit's own

    @property
    def execute_api_arn(self) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}"


def handler_zip() -> bytes:
    """The deployment package: the handler files at the top level, as they would be uploaded to AWS."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in package_files():
            archive.write(path, arcname=name)
    return buffer.getvalue()


def install_code(code_dir: Path) -> Path:
    """Unpack the deployment package where the lab's runtime looks for it (Lambda's /var/task)."""
    code_dir.mkdir(parents=True, exist_ok=True)
    for path, name in package_files():
        shutil.copyfile(path, code_dir / name)
    return code_dir


def load_policy(path: Path = POLICY_FILE) -> str:
    return path.read_text()


INVOKE_STATEMENT_ID = "apigateway-invoke"


def allow_invoke_from_api(
    lambda_client: Any, function_name: str, *, region: str, api_id: str, source: str = "*"
) -> None:
    """Let API Gateway invoke the function (its resource policy): for every stage and route of the API, or
    for ``source`` under it (``authorizers/*``: as the API's authorizer, the way CDK scopes it)."""
    lambda_client.add_permission(
        FunctionName=function_name,
        StatementId=INVOKE_STATEMENT_ID,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{api_id}/{source}",
    )


def provision_control_plane(
    aws: ClientFactory,
    *,
    region: str,
    code_dir: Path,
    table: str = schema.EXPECTED.name,
    handler: str = "app.handler",
    runtime: str = DEFAULT_RUNTIME,
    policy_document: str | None = None,
    function: FunctionSource | None = None,
) -> LabResources:
    """Create the seed's stack but its table through AWS APIs (IAM, Lambda, API Gateway, the log groups) and
    return what was created (the table named ``table`` too).

    It needs no DynamoDB: the lab runs it while DynamoDB Local's JVM is still starting, and creates the table
    (``kit.dynamo.schema.create_table``) once the engine answers. ``function``: the user's own code instead of
    the kit's handlers (its handler, runtime and variables).
    """
    iam = aws.client("iam")
    role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    role_arn = role["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName=POLICY_NAME, PolicyDocument=policy_document or load_policy()
    )

    variables = {"TABLE_NAME": table, "AUTH_MODE": "email"}
    loaded = ""
    if function is None:
        install_code(code_dir)
        code = handler_zip()
    else:
        installed = function_source.install(function, code_dir)
        code = function_source.package(function, code_dir)
        handler, runtime = function.handler, function.runtime
        variables |= dict(function.environment)
        loaded = function_source.describe(function, installed)
    lambda_client = aws.client("lambda")
    created = lambda_client.create_function(
        FunctionName=FUNCTION_NAME,
        Runtime=runtime,
        Role=role_arn,
        Handler=handler,
        Code={"ZipFile": code},
        Timeout=6,
        MemorySize=256,
        Environment={"Variables": variables},
        Description="WebSocket $connect/$disconnect/message handler (kit lab)",
    )
    function_arn = created["FunctionArn"]

    logs = aws.client("logs")
    lambda_group = f"/aws/lambda/{FUNCTION_NAME}"

    apigw = aws.client("apigatewayv2")
    api = apigw.create_api(
        Name=API_NAME, ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action"
    )
    api_id = api["ApiId"]
    execution_group = f"API-Gateway-Execution-Logs_{api_id}/{STAGE}"
    for group in (lambda_group, execution_group, ACCESS_LOG_GROUP):
        logs.create_log_group(logGroupName=group)
    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=lambda_integration_uri(region, function_arn),
    )
    for route_key in ROUTE_KEYS:
        apigw.create_route(
            ApiId=api_id, RouteKey=route_key, Target=f"integrations/{integration['IntegrationId']}"
        )
    # As SAM and the console do: a deployment of the routes above, and the stage serving it.
    deployment = apigw.create_deployment(ApiId=api_id, Description="kit lab: the provisioned routes")
    apigw.create_stage(
        ApiId=api_id,
        StageName=STAGE,
        DeploymentId=deployment["DeploymentId"],
        AccessLogSettings={
            "DestinationArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{ACCESS_LOG_GROUP}",
            "Format": ACCESS_LOG_FORMAT,
        },
        DefaultRouteSettings={"LoggingLevel": "INFO", "DataTraceEnabled": False},
    )
    allow_invoke_from_api(lambda_client, FUNCTION_NAME, region=region, api_id=api_id)
    return LabResources(
        region=region,
        account_id=ACCOUNT_ID,
        table=table,
        index=schema.EXPECTED.indexes[0].name,
        api_id=api_id,
        stage=STAGE,
        role_name=ROLE_NAME,
        role_arn=role_arn,
        function_name=FUNCTION_NAME,
        function_arn=function_arn,
        functions=dict.fromkeys(ROUTE_KEYS, FUNCTION_NAME),
        code_dir=str(code_dir),
        code_sha256=str(created.get("CodeSha256", "")),
        log_groups={"lambda": lambda_group, "execution": execution_group, "access": ACCESS_LOG_GROUP},
        loaded=loaded,
    )
