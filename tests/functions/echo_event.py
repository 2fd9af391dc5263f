"""Handlers the lab's gateway tests point the function at, to see exactly what API Gateway sends it.

The lab's workers have the project root on ``PYTHONPATH``, so the function's Handler can be
``tests.functions.echo_event.<name>`` while its code directory still holds only the deployed package.
Each handler prints one line the tests find in ``/aws/lambda/<function>`` and answers 200.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

EVENT_MARKER = "EVENT "
POST_TO_SELF_MARKER = "POST_TO_SELF "
POST_TO_SELF_MESSAGE_MARKER = "POST_TO_SELF_MESSAGE "


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Print the event as one JSON line; on CONNECT echo a requested subprotocol, as AWS's docs show."""
    print(EVENT_MARKER + json.dumps(event, sort_keys=True))
    response: dict[str, Any] = {"statusCode": 200}
    requested = (event.get("headers") or {}).get("Sec-WebSocket-Protocol")
    if event.get("requestContext", {}).get("eventType") == "CONNECT" and requested:
        response["headers"] = {"Sec-WebSocket-Protocol": requested.split(",")[0].strip()}
    return response


def post_to_self(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """On $connect, post to the connection being set up and print what @connections answered.

    ``SIGNING_REGION`` in the environment hard-wires the client's region, as a handler written for another
    region would; without it the client signs for the function's region.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    request_context = event["requestContext"]
    if request_context["eventType"] == "CONNECT":
        # The lab sets AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, as a real function would set its endpoint.
        client = boto3.client(
            "apigatewaymanagementapi",
            region_name=os.environ.get("SIGNING_REGION") or os.environ.get("AWS_REGION"),
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        try:
            client.post_to_connection(ConnectionId=request_context["connectionId"], Data=b"too early")
            outcome = "200"
        except ClientError as exc:
            outcome = f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']['Code']}"
            print(POST_TO_SELF_MESSAGE_MARKER + json.dumps(exc.response["Error"]["Message"]))
        print(POST_TO_SELF_MARKER + outcome)
    return {"statusCode": 200}


def hang(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Outlive any timeout the tests give the function (as a handler stuck on an unreachable endpoint)."""
    time.sleep(60)
    return {"statusCode": 200}
