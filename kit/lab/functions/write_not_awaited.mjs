// Lab-only, for the scenario write-not-awaited: the fixed handler (app.mjs) with one bug, the one this
// scenario is about. On $connect the connection is stored by a helper that is called and not awaited, so the
// handler answers 200 while the write is still pending. Lambda freezes the environment once the answer is
// sent: the write resumes when the environment next runs (another connection's invocation, a message, the
// $disconnect), so the row appears an invocation late, after its own $disconnect (a ghost row), or never
// when the environment is not used again. Every other route is app.mjs's.
//
// Not for deployment: kit/handler/app.mjs is the handler to deploy.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { handler as fixed } from './app.mjs';

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));

// Looks reasonable on its own: skip ids already stored, then store. Every await in it outlives the handler.
async function storeConnection(item) {
  try {
    const existing = await documents.send(
      new GetCommand({ TableName: process.env.TABLE_NAME, Key: { connectionId: item.connectionId } }),
    );
    if (existing.Item) return;
    await documents.send(new PutCommand({ TableName: process.env.TABLE_NAME, Item: item }));
    console.log(`Stored connection ${item.connectionId}`);
  } catch (error) {
    console.error(`Error handling WebSocket event: ${error}`);
  }
}

export const handler = async (event, context) => {
  const { routeKey, connectionId } = event?.requestContext ?? {};
  if (routeKey !== '$connect') return fixed(event, context);
  const { token, workspaceId } = event.queryStringParameters ?? {};
  console.log(`Connection attempt ${connectionId} for workspace ${workspaceId}`);
  // The bug: no await.
  storeConnection({ connectionId, workspaceId, userId: token, timestamp: new Date().toISOString(), status: 'connected' });
  return { statusCode: 200, body: JSON.stringify({ message: 'Connected' }) };
};
