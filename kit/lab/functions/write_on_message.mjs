// Lab-only, for the scenario write-on-message: the fixed handler (app.mjs) except where connections are
// stored. $connect answers 200 and stores nothing; the connection is stored only when the client's "join"
// message arrives ({"action": "join", "workspaceId", "token"} on the join route), as apps that register
// on join do. A client that never sends it, or whose join fails, is connected and never stored; until the
// join, broadcasts cannot find the connection. Every other route is app.mjs's.
//
// Not for deployment: kit/handler/app.mjs is the handler to deploy.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { handler as fixed } from './app.mjs';

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const answer = (statusCode, message) => ({ statusCode, body: JSON.stringify({ message }) });

export const handler = async (event, context) => {
  const { routeKey, connectionId } = event?.requestContext ?? {};
  if (routeKey === '$connect') {
    console.log(`Connection attempt ${connectionId}, waiting for its join`);
    return answer(200, 'Connected');
  }
  if (routeKey !== 'join') return fixed(event, context);
  let join;
  try {
    join = JSON.parse(event.body ?? '{}');
  } catch {
    return answer(400, 'The join is not JSON.');
  }
  try {
    await documents.send(
      new PutCommand({
        TableName: process.env.TABLE_NAME,
        Item: {
          connectionId,
          workspaceId: join.workspaceId,
          userId: join.token,
          timestamp: new Date().toISOString(),
          status: 'connected',
        },
      }),
    );
  } catch (error) {
    console.error(`Error handling WebSocket event: ${error}`);
    return answer(500, 'Join failed.');
  }
  console.log(`Stored connection ${connectionId}`);
  return answer(200, 'Joined');
};
