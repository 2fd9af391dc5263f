"""The BROKEN handler: a faithful Python port of the chat app's original WebSocket route handler.

This is the one that produces the reported symptom. Kept only to reproduce it in the lab and in tests; deploy
``app.py`` instead. What it does wrong, on purpose and exactly as the seed does:

- Every error (DynamoDB AccessDenied, ResourceNotFound, ValidationException, an unreachable endpoint, a bad
  event) is caught, logged with ``logger.info``, and answered with 200. Lambda's Python runtime leaves the
  root logger at WARNING unless ``AWS_LAMBDA_LOG_LEVEL`` is set, and this module never sets a level, so those
  lines never reach CloudWatch. API Gateway sees 200, completes the handshake, and the table stays empty.
- ``token`` and ``workspaceId`` are taken from the query string without any check; missing values pass
  through as None and the item is written without them (the JavaScript SDK drops ``undefined`` the same way),
  so a connection without ``workspaceId`` is invisible to the ``workspaceIndex`` GSI. The token (the user's
  e-mail) is stored as ``userId`` unverified.
- ``TABLE_NAME`` silently defaults to ``chatgenius-connections`` when unset.
- Broadcasts read only the first page of the GSI query, post to the sender as well, and never prune stale
  connections on 410 Gone.

Deployed alone its logger is ``seed``, a child of the root; imported from this package it is
``kit.handler.seed``, so a process that runs it must not set a level on ``kit`` or ``kit.handler`` (the fixed
handler logs as ``kit.handler.app`` for that reason), or the hidden lines would show.

It must not be "improved": its value is that it behaves like the deployed code. Like ``app.py`` it imports
only the standard library and boto3, so it can be zipped alone with handler ``seed.handler``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import boto3

logger = logging.getLogger(__name__)

DEFAULT_TABLE_NAME = "chatgenius-connections"


def _ok(message: str) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps({"message": message})}


def _table() -> Any:
    # Built per invocation from the environment, as the seed's route module did on each request.
    return boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", DEFAULT_TABLE_NAME))


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _connect(event: dict[str, Any], connection_id: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    token = query.get("token")
    workspace_id = query.get("workspaceId")
    logger.info("Connection attempt %s for workspace %s", connection_id, workspace_id)
    connection_item = {
        "connectionId": connection_id,
        "workspaceId": workspace_id,
        "userId": token,
        "timestamp": _timestamp(),
        "status": "connected",
    }
    # Like the JavaScript SDK with removeUndefinedValues: absent values are simply not written.
    item = {key: value for key, value in connection_item.items() if value is not None}
    _table().put_item(Item=item)
    logger.info("Stored connection %s", connection_id)
    return _ok("Connected")


def _disconnect(connection_id: Any) -> dict[str, Any]:
    _table().delete_item(Key={"connectionId": connection_id})
    return _ok("Disconnected")


def _broadcast(event: dict[str, Any], route_key: str, connection_id: Any) -> dict[str, Any]:
    request_context = event["requestContext"]
    body = json.loads(event.get("body") or "{}")
    table = _table()
    sender = table.get_item(Key={"connectionId": connection_id}).get("Item", {})
    workspace_id = sender.get("workspaceId")
    # Only the first page of results: the seed never followed LastEvaluatedKey.
    response = table.query(
        IndexName=os.environ.get("INDEX_NAME", "workspaceIndex"),
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": workspace_id},
    )
    # MANAGEMENT_ENDPOINT, else the event's domain. The one departure from the seed's route: when botocore's
    # own AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI is set (the lab sets it), no endpoint_url is passed, so
    # botocore uses that variable instead of a real execute-api host.
    endpoint_url = os.environ.get("MANAGEMENT_ENDPOINT") or (
        None
        if os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
        else f"https://{request_context.get('domainName')}/{request_context.get('stage')}"
    )
    management = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url)
    payload = json.dumps({"type": route_key, "from": sender.get("userId"), **body}).encode()
    for item in response.get("Items", []):
        try:
            management.post_to_connection(ConnectionId=item["connectionId"], Data=payload)
        except Exception as exc:  # the seed's catch-all: stale connections are never pruned
            logger.info("Failed to send to %s: %s", item.get("connectionId"), exc)
    return _ok("Sent")


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point. Always answers 200, whatever happened: that is the bug."""
    try:
        request_context = event.get("requestContext") or {}
        route_key = request_context.get("routeKey")
        connection_id = request_context.get("connectionId")
        if route_key == "$connect":
            return _connect(event, connection_id)
        if route_key == "$disconnect":
            return _disconnect(connection_id)
        if route_key in {"message", "presence", "typing"}:
            return _broadcast(event, route_key, connection_id)
        return _ok("Unknown route")
    except Exception as exc:
        # The seed's "comprehensive logging": at INFO, which Lambda's default WARNING level drops.
        logger.info("Error handling WebSocket event: %s", exc)
        return _ok("OK")
