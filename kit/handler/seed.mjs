// The BROKEN handler, as the chat app's team wrote it: the seed's WebSocket route handler in JavaScript on
// the AWS SDK for JavaScript v3 (document client), the twin of kit/handler/seed.py. Kept only to reproduce
// the reported symptom in the lab (scenarios seed-*, `--runtime nodejs20.x`); deploy app.mjs instead.
//
// What it does wrong, on purpose and exactly as the seed does:
// - Every error (AccessDenied, ResourceNotFound, ValidationException, an unreachable endpoint, a bad event)
//   is caught, logged with console.log, and answered with 200. API Gateway sees 200 and completes the
//   handshake; the table stays empty. On Node.js the line does reach CloudWatch (console.log is INFO, and
//   Lambda keeps every level unless the function's log level says otherwise): the evidence is there for
//   whoever reads the logs, unlike with the Python port, whose logger.info is dropped.
// - `token` and `workspaceId` come from the query string unchecked; absent values are dropped by the
//   document client (removeUndefinedValues), so a connection without workspaceId is invisible to the
//   workspaceIndex GSI. The token (the user's e-mail) is stored as userId unverified.
// - TABLE_NAME silently defaults to chatgenius-connections.
// - Broadcasts read only the first page of the GSI query, post to the sender as well, and never prune stale
//   connections on 410 Gone.
//
// Its log lines use seed.py's words ("Connection attempt …", "Stored connection …", "Error handling
// WebSocket event: …"), so the same log reading finds them in either runtime.
//
// It must not be "improved": its value is that it behaves like the deployed code.

import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});

const ok = (message) => ({ statusCode: 200, body: JSON.stringify({ message }) });
const tableName = () => process.env.TABLE_NAME ?? 'chatgenius-connections';

async function connect(event, connectionId) {
  const query = event.queryStringParameters ?? {};
  const token = query.token;
  const workspaceId = query.workspaceId;
  console.log(`Connection attempt ${connectionId} for workspace ${workspaceId}`);
  await documents.send(
    new PutCommand({
      TableName: tableName(),
      Item: { connectionId, workspaceId, userId: token, timestamp: new Date().toISOString(), status: 'connected' },
    }),
  );
  console.log(`Stored connection ${connectionId}`);
  return ok('Connected');
}

async function disconnect(connectionId) {
  await documents.send(new DeleteCommand({ TableName: tableName(), Key: { connectionId } }));
  return ok('Disconnected');
}

async function broadcast(event, routeKey, connectionId) {
  const { domainName, stage } = event.requestContext;
  const body = JSON.parse(event.body || '{}');
  const sender = (await documents.send(new GetCommand({ TableName: tableName(), Key: { connectionId } }))).Item ?? {};
  // Only the first page of results: the seed never followed LastEvaluatedKey.
  const members = await documents.send(
    new QueryCommand({
      TableName: tableName(),
      IndexName: process.env.INDEX_NAME ?? 'workspaceIndex',
      KeyConditionExpression: 'workspaceId = :w',
      ExpressionAttributeValues: { ':w': sender.workspaceId },
    }),
  );
  // MANAGEMENT_ENDPOINT, else the event's domain. The one departure from the seed's route: when the SDK's
  // own AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI is set (the lab sets it), no endpoint is passed, so the SDK
  // uses that variable instead of a real execute-api host.
  const endpoint =
    process.env.MANAGEMENT_ENDPOINT ||
    (process.env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI ? undefined : `https://${domainName}/${stage}`);
  const management = new ApiGatewayManagementApiClient(endpoint ? { endpoint } : {});
  const payload = JSON.stringify({ type: routeKey, from: sender.userId, ...body });
  for (const item of members.Items ?? []) {
    try {
      await management.send(new PostToConnectionCommand({ ConnectionId: item.connectionId, Data: payload }));
    } catch (error) {
      // The seed's catch-all: stale connections are never pruned.
      console.log(`Failed to send to ${item.connectionId}: ${error}`);
    }
  }
  return ok('Sent');
}

// Lambda entry point. Always answers 200, whatever happened: that is the bug.
export const handler = async (event) => {
  try {
    const { routeKey, connectionId } = event.requestContext ?? {};
    if (routeKey === '$connect') return await connect(event, connectionId);
    if (routeKey === '$disconnect') return await disconnect(connectionId);
    if (['message', 'presence', 'typing'].includes(routeKey)) return await broadcast(event, routeKey, connectionId);
    return ok('Unknown route');
  } catch (error) {
    // The seed's "comprehensive logging".
    console.log('Error handling WebSocket event:', error);
    return ok('OK');
  }
};
