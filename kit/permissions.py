"""The resource ARNs IAM decides on, and the permissions the connect handler needs (pure, no I/O).

``REQUIRED_PERMISSIONS`` is the handler's list, one per AWS call it makes (store, read, remove, query the GSI,
post to @connections, write its logs), each with the ARN template AWS authorizes the call against;
:func:`required_checks` fills the templates for one account, region, table, API and function, ready for
:func:`kit.policy.evaluate`. The ARN builders name resources as AWS does in a denial (a GSI is its own ARN,
a log stream sits inside its group's), so the lab, the diagnosis and the fix all say the same resource.
"""

from __future__ import annotations

from typing import Final, NamedTuple


def dynamodb_table_arn(region: str, account: str, table: str, *, partition: str = "aws") -> str:
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{table}"


def dynamodb_index_arn(region: str, account: str, table: str, index: str, *, partition: str = "aws") -> str:
    """The ARN a Query on a GSI is authorized against; a grant on the table ARN alone does not cover it."""
    return f"{dynamodb_table_arn(region, account, table, partition=partition)}/index/{index}"


def execute_api_route_arn(
    region: str, account: str, api_id: str, stage: str, route_key: str, *, partition: str = "aws"
) -> str:
    """A WebSocket route's ARN: the ``AWS:SourceArn`` API Gateway presents when it invokes the route's
    Lambda function, and the resource ``AWS_IAM`` authorizes ``execute-api:Invoke`` on
    (``…/prod/$connect``)."""
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/{route_key}"


def execute_api_connections_arn(  # noqa: PLR0917 - the ARN's own field order
    region: str,
    account: str,
    api_id: str,
    stage: str,
    method: str,
    connection_id: str,
    *,
    partition: str = "aws",
) -> str:
    """The @connections ARN for ManageConnections; ``method`` is POST (send), GET (info) or DELETE."""
    return (
        f"arn:{partition}:execute-api:{region}:{account}:"
        f"{api_id}/{stage}/{method}/@connections/{connection_id}"
    )


def log_group_arn(region: str, account: str, log_group: str, *, partition: str = "aws") -> str:
    """The log group's ARN without the ``:*`` that DescribeLogGroups appends."""
    return f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}"


def log_stream_arn(
    region: str, account: str, log_group: str, log_stream: str, *, partition: str = "aws"
) -> str:
    """The ARN AWS names when CreateLogStream or PutLogEvents is denied (stream inside the group)."""
    group = log_group_arn(region, account, log_group, partition=partition)
    return f"{group}:log-stream:{log_stream}"


class RequiredPermission(NamedTuple):
    """One permission the connect handler needs; the template takes the fields of :func:`required_checks`."""

    purpose: str
    action: str
    resource_template: str


class PermissionCheck(NamedTuple):
    purpose: str
    action: str
    resource: str


# Stand-ins for ids only known at run time; any id matches a grant that is right for every connection.
EXAMPLE_CONNECTION_ID: Final = "AbCdEfGhIjKlMn0="
EXAMPLE_LOG_STREAM: Final = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"

_TABLE: Final = "arn:{partition}:dynamodb:{region}:{account}:table/{table}"
_INDEX: Final = _TABLE + "/index/{index}"
_CONNECTIONS: Final = (
    "arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/POST/@connections/{connection_id}"
)
_LOG_STREAM: Final = (
    "arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}:log-stream:{log_stream}"
)

REQUIRED_PERMISSIONS: Final[tuple[RequiredPermission, ...]] = (
    RequiredPermission("store the connection on $connect", "dynamodb:PutItem", _TABLE),
    RequiredPermission("read the sender's connection on a broadcast", "dynamodb:GetItem", _TABLE),
    RequiredPermission(
        "remove the connection on $disconnect and prune gone connections",
        "dynamodb:DeleteItem",
        _TABLE,
    ),
    RequiredPermission("find a workspace's connections through the GSI", "dynamodb:Query", _INDEX),
    RequiredPermission(
        "send to connected clients through @connections",
        "execute-api:ManageConnections",
        _CONNECTIONS,
    ),
    RequiredPermission("create the function's log stream", "logs:CreateLogStream", _LOG_STREAM),
    RequiredPermission("write the function's log events", "logs:PutLogEvents", _LOG_STREAM),
)


def required_checks(  # noqa: PLR0917 - one value per template field; callers pass keywords
    region: str,
    account: str,
    table: str,
    index: str,
    api_id: str,
    stage: str,
    function_name: str,
    *,
    partition: str = "aws",
    connection_id: str = EXAMPLE_CONNECTION_ID,
    log_stream: str = EXAMPLE_LOG_STREAM,
) -> list[PermissionCheck]:
    """:data:`REQUIRED_PERMISSIONS` with concrete ARNs, in order, ready for :func:`kit.policy.evaluate`."""
    fields = {
        "partition": partition,
        "region": region,
        "account": account,
        "table": table,
        "index": index,
        "api_id": api_id,
        "stage": stage,
        "function_name": function_name,
        "connection_id": connection_id,
        "log_stream": log_stream,
    }
    return [
        PermissionCheck(p.purpose, p.action, p.resource_template.format(**fields))
        for p in REQUIRED_PERMISSIONS
    ]
