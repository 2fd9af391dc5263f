"""Your own function in the lab (`kit lab up --function PATH`, `Lab(function=...)`): a Node.js function given
by folder serves $connect, messages and $disconnect; one that cannot load answers the handshake 502 with the
error in its log group, as on Lambda. Its lines read through kit.logparse as the kit's handlers' do.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import websocket

from kit.lab import function_source
from kit.lab.lab import Lab
from kit.logparse import connection_lifecycle, events_frame, invocations, parse

from .labclient import (
    EmptyDynamoDB,
    info,
    lambda_group,
    log_messages,
    open_socket,
    query,
    table_items,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("node") is None, reason="no `node` on PATH: the Node.js runtime cannot run"
    ),
]

# A user's handler: its own variable names, its own log lines, the SDK the runtime provides.
OWN_HANDLER = """
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));

export const handler = async (event) => {
  const { routeKey, connectionId } = event.requestContext;
  const TableName = process.env.CONNECTIONS_TABLE;
  if (routeKey === '$connect') {
    const { token, workspaceId } = event.queryStringParameters ?? {};
    await db.send(new PutCommand({ TableName, Item: { connectionId, workspaceId, userId: token } }));
    console.log(JSON.stringify({ route: routeKey, connection_id: connectionId, outcome: 'stored' }));
  } else if (routeKey === 'message') {
    console.log(JSON.stringify({ route: routeKey, connection_id: connectionId, outcome: 'read' }));
  } else if (routeKey === '$disconnect') {
    await db.send(new DeleteCommand({ TableName, Key: { connectionId } }));
    console.log(JSON.stringify({ route: routeKey, connection_id: connectionId, outcome: 'deleted' }));
  }
  return { statusCode: 200, body: 'ok' };
};
"""


def test_your_node_function_serves_the_lab(tmp_path: Path, empty_dynamodb: EmptyDynamoDB) -> None:
    code = tmp_path / "chat-connect"
    code.mkdir()
    (code / "index.mjs").write_text(textwrap.dedent(OWN_HANDLER))
    source = function_source.function_source(
        str(code), environment=["CONNECTIONS_TABLE=chatgenius-connections", "SIGNING_SECRET=hunter2"]
    )
    with Lab(function=source, write_lab_file=False, dynamodb=empty_dynamodb()) as lab:
        assert lab.resources is not None
        assert lab.resources.loaded.startswith("your function from chat-connect: 1 files (")
        recorded = json.dumps(info(lab).as_dict())
        assert "hunter2" not in recorded and str(tmp_path) not in recorded
        assert info(lab).runtime == "nodejs20.x" and info(lab).function["handler"] == "index.handler"

        ws = open_socket(lab, query("ada@example.com", "ws-own"))
        stored = wait_until(lambda: table_items(lab))
        assert [(item["userId"], item["workspaceId"]) for item in stored] == [("ada@example.com", "ws-own")]
        ws.send(json.dumps({"action": "message", "message": "hello"}))
        group = lambda_group(lab)
        wait_until(lambda: any('"route":"message"' in m for m in log_messages(lab, group)))
        ws.close()
        wait_until(lambda: table_items(lab) == [])

        lines = wait_until(
            lambda: (
                [m for m in log_messages(lab, group) if '"outcome":"deleted"' in m]
                and log_messages(lab, group)
            )
        )
    frame = parse(events_frame([{"timestamp": 0, "message": m} for m in lines], log_group=group))
    calls = invocations(frame)
    assert {str(r) for r in calls["route_key"].dropna()} == {"$connect", "message", "$disconnect"}
    assert set(calls["status"]) == {"success"}
    lifecycle = connection_lifecycle(frame)
    assert list(lifecycle["app_outcome"].dropna()) == ["stored"]


def test_a_function_that_cannot_load_answers_502_and_logs_why(
    tmp_path: Path, empty_dynamodb: EmptyDynamoDB
) -> None:
    code = tmp_path / "broken"
    code.mkdir()
    (code / "index.mjs").write_text("export const handler = async () => { return { statusCode: 200 ;\n")
    with Lab(function=str(code), write_lab_file=False, dynamodb=empty_dynamodb()) as lab:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_socket(lab, query("ada@example.com", "ws-own"))
        assert refused.value.status_code == 502
        lines = wait_until(
            lambda: [m for m in log_messages(lab, lambda_group(lab)) if "Uncaught Exception" in m]
        )
        assert '"errorType":"Runtime.UserCodeSyntaxError"' in lines[0]
        assert table_items(lab) == []
