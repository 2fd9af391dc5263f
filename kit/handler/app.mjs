// The fixed WebSocket handler for the chat app, in JavaScript for Node.js functions (nodejs18.x and later):
// the same contract as kit/handler/app.py, for teams whose app is TypeScript/JavaScript. Deploy this file
// alone with handler `app.handler`; it needs only the AWS SDK for JavaScript v3 that Lambda's Node.js
// runtimes provide (@aws-sdk/client-dynamodb, @aws-sdk/client-apigatewaymanagementapi).
//
// One function serves every route (requestContext.routeKey):
//
//   $connect     validate `token` and `workspaceId` from the query string, authenticate, then PutItem
//                {connectionId, workspaceId, userId, timestamp, status} unless the id is already stored
//   $disconnect  DeleteItem by connectionId (absent is fine: $disconnect is best-effort and may repeat)
//   message      body {"action": "message", "message": "<text>"} (a non-empty string, at most 16 KB)
//   presence     body {"action": "presence", "status": "online|away|busy|offline"}
//   typing       body {"action": "typing", "isTyping": true|false}
//
// Broadcasts post {"type", "from", "workspaceId", <the route's field>} to every other connection in the
// sender's workspace (the workspaceIndex GSI, every page); a 410 Gone deletes that stale row.
//
// The seed's handler answered 200 whatever happened. This one never answers 2xx after a failed write, and
// writes one JSON line per event at a level Lambda keeps (console.warn / console.error for failures).
// Status codes: 400 malformed event, parameter or body, unknown route; 401 token rejected; 403 sender not
// stored; 409 connectionId already stored; 500 configuration missing or DynamoDB failed (also anything
// unexpected, logged with its stack); 502 a broadcast reached nobody.
//
// Environment, read on every invocation: TABLE_NAME (required), TABLE_REGION (else AWS_REGION /
// AWS_DEFAULT_REGION), INDEX_NAME (default workspaceIndex), AUTH_MODE (email, signed, or authorizer: a
// $connect Lambda authorizer checked the token and the user is the userId of requestContext.authorizer),
// AUTH_SECRET (required when signed), MANAGEMENT_ENDPOINT (else https://{domainName}/{stage} from the event).
//
// Must not: choose endpoints itself (the SDK honours AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, so the same code runs on AWS and in the lab), or log a token,
// an e-mail address or a secret (users appear as a short hash).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  paginateQuery,
} from '@aws-sdk/client-dynamodb';

const ROUTE_CONNECT = '$connect';
const ROUTE_DISCONNECT = '$disconnect';
const BROADCAST_ROUTES = new Set(['message', 'presence', 'typing']);
const KNOWN_ROUTES = new Set([ROUTE_CONNECT, ROUTE_DISCONNECT, ...BROADCAST_ROUTES]);

const MAX_TOKEN_LENGTH = 2048;
const MAX_WORKSPACE_ID_LENGTH = 128;
// AWS ids are 16 characters; emulators use UUIDs, so allow more but not without bound.
const MAX_CONNECTION_ID_LENGTH = 128;
const MAX_USER_ID_LENGTH = 256;
const MAX_EMAIL_LENGTH = 254;
// API Gateway closes the socket (1009) for messages over 128 KB, so a larger body never comes from AWS.
const MAX_BODY_BYTES = 128 * 1024;
// Each post is one frame, and frames over 32 KB are refused; half of that for the text leaves room for
// the envelope whatever the text's JSON escaping costs.
const MAX_MESSAGE_JSON_BYTES = 16 * 1024;
const MAX_FRAME_BYTES = 32 * 1024;
// A broadcast posts to this many connections at a time (app.py's POST_CONCURRENCY): on AWS each post to
// @connections is a network round trip, so 1,000 recipients one by one take seconds.
const POST_CONCURRENCY = 16;
const PRESENCE_STATUSES = new Set(['online', 'away', 'busy', 'offline']);

const WORKSPACE_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
// Printable ASCII without space: a token travels in a URL query string and never needs anything else.
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;
const CONNECTION_ID_PATTERN = /^[\x21-\x7e]+$/;
const EMAIL_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const EMAIL_PATTERN = new RegExp(
  `^[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]{1,64}@${EMAIL_LABEL}(?:\\.${EMAIL_LABEL})+$`,
);
const DOMAIN_NAME_PATTERN = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/;
const STAGE_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const EXECUTE_API_HOST_PATTERN =
  /^[a-z0-9]+\.execute-api\.(?<region>[a-z]{2}(?:-[a-z]+)+-[0-9])\.amazonaws\.com(?:\.cn)?$/;

const DEFAULT_INDEX_NAME = 'workspaceIndex';
const AUTH_MODES = new Set(['email', 'signed', 'authorizer']);

// Short timeouts and one retry, so a dead or unreachable DynamoDB is a 500 in seconds, well inside API
// Gateway's 29 s integration timeout.
const CLIENT_OPTIONS = { maxAttempts: 2, requestHandler: { connectionTimeout: 2000, requestTimeout: 5000 } };

// ---------------------------------------------------------------------------------------------------------
// Errors and results

class HandlerError extends Error {
  constructor(status, code, message, { outcome = 'rejected', details = {} } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.outcome = outcome;
    this.details = details;
  }
}

class TokenError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

const INFO = 'info';
const WARNING = 'warn';
const ERROR = 'error';

function proxyResponse(status, message, fields = {}) {
  return { statusCode: status, body: JSON.stringify({ message, ...fields }) };
}

// 4xx: the caller's fault, so a "reason"; 5xx: ours, so an "error".
function errorBody(status, code) {
  return status < 500 ? { reason: code } : { error: code };
}

export function userHash(userId) {
  return createHash('sha256').update(userId, 'utf8').digest('hex').slice(0, 12);
}

// Event values for log lines: strings cut to `limit`, other types named, so odd events stay short.
function loggable(value, limit = 128) {
  if (value === null || value === undefined || typeof value === 'boolean' || Number.isInteger(value)) {
    return value ?? null;
  }
  if (typeof value === 'string') return value.slice(0, limit);
  return `<${Array.isArray(value) ? 'list' : typeof value}>`;
}

// ---------------------------------------------------------------------------------------------------------
// Signed tokens (AUTH_MODE=signed): b64url(payload).b64url(hmac-sha256), as app.py's sign_token

function b64url(buffer) {
  return Buffer.from(buffer).toString('base64url');
}

function signature(payloadPart, secret) {
  return b64url(createHmac('sha256', secret).update(payloadPart, 'ascii').digest());
}

function secretBytes(secret) {
  if (!secret) throw new Error('The token secret is empty; set AUTH_SECRET.');
  return Buffer.from(secret, 'utf8');
}

export function signToken(userId, secret, expiresAtEpoch) {
  if (typeof userId !== 'string' || !TOKEN_PATTERN.test(userId)) {
    throw new Error('userId must be printable ASCII without whitespace.');
  }
  if (userId.length > MAX_USER_ID_LENGTH) throw new Error(`userId is longer than ${MAX_USER_ID_LENGTH}.`);
  if (!Number.isInteger(expiresAtEpoch)) throw new Error('expiresAtEpoch must be an integer.');
  // The same bytes as Python's json.dumps(..., separators=(",", ":"), sort_keys=True).
  const payloadPart = b64url(JSON.stringify({ exp: expiresAtEpoch, sub: userId }));
  return `${payloadPart}.${signature(payloadPart, secretBytes(secret))}`;
}

export function verifyToken(token, secret, nowSeconds) {
  const key = secretBytes(secret);
  if (typeof token !== 'string' || !/^[\x00-\x7f]*$/.test(token) || token.split('.').length !== 2) {
    throw new TokenError('InvalidToken', 'The token is not two base64url parts joined by a dot.');
  }
  const [payloadPart, signaturePart] = token.split('.');
  const expected = Buffer.from(signature(payloadPart, key));
  const given = Buffer.from(signaturePart);
  // Compare before decoding anything, so the payload of an unsigned token is never parsed.
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new TokenError('InvalidToken', "The token's signature does not match.");
  }
  let claims;
  try {
    if (!/^[A-Za-z0-9_-]*$/.test(payloadPart)) throw new Error('not base64url');
    claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError('InvalidToken', "The token's payload is not base64url JSON.");
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new TokenError('InvalidToken', "The token's payload is not a JSON object.");
  }
  const { sub: subject, exp: expires } = claims;
  if (typeof subject !== 'string' || !subject || subject.length > MAX_USER_ID_LENGTH) {
    throw new TokenError('InvalidToken', 'The token has no usable subject.');
  }
  if (!TOKEN_PATTERN.test(subject)) {
    throw new TokenError('InvalidToken', "The token's subject is not printable ASCII.");
  }
  if (!Number.isInteger(expires)) throw new TokenError('InvalidToken', 'The token has no integer expiry.');
  if (nowSeconds >= expires) throw new TokenError('TokenExpired', 'The token has expired.');
  return subject;
}

export function isEmail(token) {
  return token.length <= MAX_EMAIL_LENGTH && EMAIL_PATTERN.test(token);
}

// ---------------------------------------------------------------------------------------------------------
// Configuration and clients

function settings(env = process.env) {
  return {
    tableName: env.TABLE_NAME || null,
    tableRegion: env.TABLE_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || null,
    indexName: env.INDEX_NAME || DEFAULT_INDEX_NAME,
    authMode: (env.AUTH_MODE || 'email').trim().toLowerCase(),
    authSecret: env.AUTH_SECRET || null,
    managementEndpoint: env.MANAGEMENT_ENDPOINT || null,
  };
}

function requireTable(config) {
  if (config.tableName === null) {
    throw new HandlerError(
      500,
      'MissingTableName',
      "TABLE_NAME is not set in the function's environment, so there is no table to write to.",
      { outcome: 'config_error' },
    );
  }
  return config.tableName;
}

// One client per region and endpoint: built once per execution environment, reused while warm.
const clients = new Map();

function cached(key, build) {
  if (!clients.has(key)) clients.set(key, build());
  return clients.get(key);
}

function dynamodb(config) {
  return cached(`dynamodb ${config.tableRegion}`, () =>
    new DynamoDBClient({ ...CLIENT_OPTIONS, ...(config.tableRegion ? { region: config.tableRegion } : {}) }),
  );
}

function management(region, endpoint) {
  return cached(`management ${region} ${endpoint}`, () =>
    new ApiGatewayManagementApiClient({
      ...CLIENT_OPTIONS,
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint } : {}),
    }),
  );
}

// Where DynamoDB requests go, as the SDK chooses it: "the write went elsewhere" shows up here.
function dynamodbEndpoint(config) {
  const configured = process.env.AWS_ENDPOINT_URL_DYNAMODB || process.env.AWS_ENDPOINT_URL;
  if (configured) return configured;
  return config.tableRegion ? `https://dynamodb.${config.tableRegion}.amazonaws.com` : null;
}

// An SDK error's code (its name), or what failed underneath (ECONNREFUSED, TimeoutError...).
function errorCode(error) {
  if (error?.name && error.name !== 'Error') return error.name;
  return error?.code ?? 'Error';
}

function storageError(error, operation, config) {
  const code = errorCode(error);
  return new HandlerError(500, code, `DynamoDB ${operation} on table ${config.tableName} failed with ${code}.`, {
    outcome: 'error',
    details: {
      operation,
      table: config.tableName,
      region: config.tableRegion,
      dynamodb_endpoint: dynamodbEndpoint(config),
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Events

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseRequest(event) {
  if (!isObject(event)) throw new HandlerError(400, 'MalformedEvent', 'The event is not a JSON object.');
  const requestContext = event.requestContext;
  if (!isObject(requestContext)) {
    throw new HandlerError(400, 'MissingRequestContext', 'The event has no requestContext object.');
  }
  const routeKey = requestContext.routeKey;
  if (typeof routeKey !== 'string' || !routeKey) {
    throw new HandlerError(400, 'MissingRouteKey', 'requestContext.routeKey is missing or not a string.');
  }
  if (!KNOWN_ROUTES.has(routeKey)) {
    throw new HandlerError(
      400,
      'UnknownRoute',
      `No handler for route '${routeKey.slice(0, 64)}'; known routes: ${[...KNOWN_ROUTES].sort().join(', ')}.`,
    );
  }
  const connectionId = requestContext.connectionId;
  if (typeof connectionId !== 'string' || !connectionId) {
    throw new HandlerError(400, 'MissingConnectionId', 'requestContext.connectionId is missing or not a string.');
  }
  if (connectionId.length > MAX_CONNECTION_ID_LENGTH || !CONNECTION_ID_PATTERN.test(connectionId)) {
    throw new HandlerError(400, 'InvalidConnectionId', 'requestContext.connectionId is malformed.');
  }
  return { routeKey, connectionId, requestContext };
}

function queryParameter(query, name, maxLength, pattern) {
  const value = query[name];
  const details = { parameter: name };
  if (value === undefined || value === null) {
    throw new HandlerError(400, 'MissingParameter', `Query parameter ${name} is missing.`, { details });
  }
  if (typeof value !== 'string') {
    throw new HandlerError(400, 'InvalidParameter', `Query parameter ${name} is not a string.`, { details });
  }
  if (!value) throw new HandlerError(400, 'EmptyParameter', `Query parameter ${name} is empty.`, { details });
  if (value.length > maxLength) {
    throw new HandlerError(400, 'ParameterTooLong', `Query parameter ${name} is longer than ${maxLength} characters.`, {
      details,
    });
  }
  if (!pattern.test(value)) {
    throw new HandlerError(400, 'InvalidParameter', `Query parameter ${name} has characters it may not have.`, {
      details,
    });
  }
  return value;
}

function connectParameters(event) {
  // The key is absent when the URL had no query string, and null in old captures.
  const query = event.queryStringParameters ?? {};
  if (!isObject(query)) throw new HandlerError(400, 'MalformedQueryString', 'queryStringParameters is not an object.');
  return [
    queryParameter(query, 'token', MAX_TOKEN_LENGTH, TOKEN_PATTERN),
    queryParameter(query, 'workspaceId', MAX_WORKSPACE_ID_LENGTH, WORKSPACE_ID_PATTERN),
  ];
}

function parseBody(event, routeKey) {
  if (event.isBase64Encoded === true) {
    throw new HandlerError(400, 'BinaryBody', 'Binary frames are not accepted; send a JSON text frame.');
  }
  const body = event.body;
  if (typeof body !== 'string' || !body) throw new HandlerError(400, 'MissingBody', 'The message has no body.');
  if (body.length > MAX_BODY_BYTES || Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) {
    throw new HandlerError(400, 'BodyTooLarge', `The body is larger than ${MAX_BODY_BYTES} bytes.`);
  }
  let message;
  try {
    message = JSON.parse(body);
  } catch {
    throw new HandlerError(400, 'BodyNotJson', 'The body is not valid JSON.');
  }
  if (!isObject(message)) throw new HandlerError(400, 'BodyNotObject', 'The body is JSON but not an object.');
  if (message.action !== routeKey) {
    throw new HandlerError(400, 'ActionMismatch', `The body's action does not match the route '${routeKey}'.`, {
      details: { action: loggable(message.action, 64) },
    });
  }
  return message;
}

// A lone surrogate (which JSON.parse lets through from "\ud800") is not text that can be sent.
function wellFormed(text) {
  return typeof text.isWellFormed === 'function' ? text.isWellFormed() : !/\p{Surrogate}/u.test(text);
}

const BROADCAST_FIELDS = {
  message(body) {
    const text = body.message;
    if (typeof text !== 'string' || !text.trim()) {
      throw new HandlerError(400, 'MissingMessage', "The body needs a non-empty string field 'message'.");
    }
    if (!wellFormed(text)) throw new HandlerError(400, 'InvalidMessage', "The field 'message' is not valid Unicode text.");
    if (Buffer.byteLength(JSON.stringify(text), 'utf8') > MAX_MESSAGE_JSON_BYTES) {
      throw new HandlerError(400, 'MessageTooLarge', `The field 'message' is larger than ${MAX_MESSAGE_JSON_BYTES} bytes.`);
    }
    return { message: text };
  },
  presence(body) {
    if (typeof body.status !== 'string' || !PRESENCE_STATUSES.has(body.status)) {
      throw new HandlerError(400, 'InvalidStatus', `The field 'status' must be one of ${[...PRESENCE_STATUSES].sort().join(', ')}.`);
    }
    return { status: body.status };
  },
  typing(body) {
    if (typeof body.isTyping !== 'boolean') {
      throw new HandlerError(400, 'InvalidIsTyping', "The field 'isTyping' must be true or false.");
    }
    return { isTyping: body.isTyping };
  },
};

// MANAGEMENT_ENDPOINT, else none when the SDK has its own override, else https://{domainName}/{stage}.
function managementEndpoint(config, requestContext) {
  if (config.managementEndpoint) return config.managementEndpoint;
  if (process.env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI) return null;
  const { domainName, stage } = requestContext;
  if (typeof domainName !== 'string' || !DOMAIN_NAME_PATTERN.test(domainName)) {
    throw new HandlerError(400, 'MissingDomainName', 'requestContext.domainName is missing or malformed; cannot reply.');
  }
  if (typeof stage !== 'string' || !STAGE_PATTERN.test(stage)) {
    throw new HandlerError(400, 'MissingStage', 'requestContext.stage is missing or malformed; cannot reply.');
  }
  return `https://${domainName}/${stage}`;
}

// The API's region from its execute-api host, else the function's own (custom domains, the lab).
function managementRegion(requestContext) {
  const match = typeof requestContext.domainName === 'string' && EXECUTE_API_HOST_PATTERN.exec(requestContext.domainName);
  if (match) return match.groups.region;
  return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || null;
}

// ---------------------------------------------------------------------------------------------------------
// Routes

// The user a $connect Lambda authorizer allowed; a 500 when its context carries none (as app.py).
function authorizerUser(requestContext) {
  const context = requestContext?.authorizer;
  const carried = isObject(context);
  const userId = carried ? context.userId : undefined;
  if (typeof userId !== 'string' || userId === '' || userId.length > MAX_TOKEN_LENGTH) {
    throw new HandlerError(
      500,
      'MissingAuthorizerContext',
      'AUTH_MODE=authorizer but requestContext.authorizer carries no userId: the $connect authorizer must return the user in its context.',
      { outcome: 'config_error', details: { authorizer_keys: carried ? Object.keys(context).sort() : [] } },
    );
  }
  return [userId, { auth_mode: 'authorizer' }];
}

function authenticate(token, config, requestContext) {
  if (!AUTH_MODES.has(config.authMode)) {
    throw new HandlerError(500, 'InvalidAuthMode', `AUTH_MODE must be one of ${[...AUTH_MODES].sort().join(', ')}.`, {
      outcome: 'config_error',
    });
  }
  if (config.authMode === 'authorizer') return authorizerUser(requestContext);
  if (config.authMode === 'email') {
    if (!isEmail(token)) throw new HandlerError(401, 'InvalidToken', 'The token is not an e-mail address.');
    return [
      token,
      {
        auth_mode: 'email',
        insecure_auth:
          "AUTH_MODE=email trusts the token as the user's e-mail: anyone can claim any user. Set " +
          'AUTH_MODE=signed and AUTH_SECRET.',
      },
    ];
  }
  if (config.authSecret === null) {
    throw new HandlerError(500, 'MissingAuthSecret', 'AUTH_MODE=signed but AUTH_SECRET is not set, so no token can be verified.', {
      outcome: 'config_error',
    });
  }
  try {
    return [verifyToken(token, config.authSecret, Date.now() / 1000), { auth_mode: 'signed' }];
  } catch (error) {
    if (error instanceof TokenError) throw new HandlerError(401, error.reason, error.message);
    throw error;
  }
}

async function connect(request, event, config) {
  const [token, workspaceId] = connectParameters(event);
  const tableName = requireTable(config);
  const [userId, authFields] = authenticate(token, config, request.requestContext);
  const logFields = { workspace_id: workspaceId, user_hash: userHash(userId), table: tableName, ...authFields };
  try {
    await dynamodb(config).send(
      new PutItemCommand({
        TableName: tableName,
        Item: {
          connectionId: { S: request.connectionId },
          workspaceId: { S: workspaceId },
          userId: { S: userId },
          timestamp: { S: new Date().toISOString() },
          status: { S: 'connected' },
        },
        // A reused id means the event was replayed or ids collide; never overwrite another connection.
        ConditionExpression: 'attribute_not_exists(connectionId)',
      }),
    );
  } catch (error) {
    if (error?.name === 'ConditionalCheckFailedException') {
      throw new HandlerError(409, 'ConnectionExists', 'A connection with this connectionId is already stored; it was left unchanged.', {
        outcome: 'conflict',
        details: logFields,
      });
    }
    throw storageError(error, 'PutItem', config);
  }
  logFields.dynamodb_endpoint = dynamodbEndpoint(config);
  // Email mode works but is insecure: say so on every connect, at a level nobody's default hides.
  const level = authFields.auth_mode === 'email' ? WARNING : INFO;
  return { status: 200, outcome: 'stored', message: 'Connected.', logFields, level };
}

async function disconnect(request, event, config) {
  const tableName = requireTable(config);
  let response;
  try {
    response = await dynamodb(config).send(
      new DeleteItemCommand({
        TableName: tableName,
        Key: { connectionId: { S: request.connectionId } },
        ReturnValues: 'ALL_OLD',
      }),
    );
  } catch (error) {
    throw storageError(error, 'DeleteItem', config);
  }
  const existed = Boolean(response.Attributes && Object.keys(response.Attributes).length);
  return {
    status: 200,
    outcome: existed ? 'deleted' : 'absent',
    message: 'Disconnected.',
    logFields: { table: tableName, disconnect_status_code: loggable(request.requestContext.disconnectStatusCode) },
  };
}

async function sender(request, config, tableName) {
  let response;
  try {
    response = await dynamodb(config).send(
      new GetItemCommand({ TableName: tableName, Key: { connectionId: { S: request.connectionId } }, ConsistentRead: true }),
    );
  } catch (error) {
    throw storageError(error, 'GetItem', config);
  }
  const item = response.Item ?? {};
  const workspaceId = item.workspaceId?.S;
  if (!workspaceId) {
    throw new HandlerError(403, 'SenderNotRegistered', "The sender's connection is not stored with a workspaceId, so there is no one to send to.");
  }
  return [workspaceId, item.userId?.S ?? null];
}

// A GSI query is paged at 1 MB; without following every page a large workspace silently loses recipients.
async function workspaceConnections(config, tableName, workspaceId) {
  const found = new Set();
  const pages = paginateQuery(
    { client: dynamodb(config) },
    {
      TableName: tableName,
      IndexName: config.indexName,
      KeyConditionExpression: 'workspaceId = :workspace_id',
      ExpressionAttributeValues: { ':workspace_id': { S: workspaceId } },
      ProjectionExpression: 'connectionId',
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      if (item.connectionId?.S) found.add(item.connectionId.S);
    }
  }
  return [...found].sort();
}

// One frame: "delivered", "pruned" (410 Gone, item deleted), or the failing error code.
async function post(client, connectionId, data, config, tableName) {
  try {
    await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
  } catch (error) {
    if (error instanceof GoneException || error?.name === 'GoneException') {
      try {
        await dynamodb(config).send(new DeleteItemCommand({ TableName: tableName, Key: { connectionId: { S: connectionId } } }));
      } catch (pruneError) {
        return `PruneFailed:${errorCode(pruneError)}`;
      }
      return 'pruned';
    }
    return errorCode(error);
  }
  return 'delivered';
}

async function broadcast(request, event, config) {
  const fields = BROADCAST_FIELDS[request.routeKey](parseBody(event, request.routeKey));
  const tableName = requireTable(config);
  const endpoint = managementEndpoint(config, request.requestContext);
  const [workspaceId, userId] = await sender(request, config, tableName);
  const data = Buffer.from(JSON.stringify({ type: request.routeKey, from: userId, workspaceId, ...fields }), 'utf8');
  if (data.length > MAX_FRAME_BYTES) {
    throw new HandlerError(400, 'MessageTooLarge', `The frame would be larger than ${MAX_FRAME_BYTES} bytes.`);
  }
  let recipients;
  try {
    recipients = await workspaceConnections(config, tableName, workspaceId);
  } catch (error) {
    throw storageError(error, 'Query', config);
  }
  recipients = recipients.filter((connectionId) => connectionId !== request.connectionId);
  const counts = { delivered: 0, pruned: 0, failed: 0 };
  const failures = {};
  if (recipients.length) {
    const client = management(managementRegion(request.requestContext), endpoint);
    // POST_CONCURRENCY posts in flight at a time, as app.py: on AWS each is a network round trip.
    const outcomes = new Array(recipients.length);
    let next = 0;
    const poster = async () => {
      while (next < recipients.length) {
        const index = next++;
        outcomes[index] = await post(client, recipients[index], data, config, tableName);
      }
    };
    await Promise.all(Array.from({ length: Math.min(POST_CONCURRENCY, recipients.length) }, poster));
    for (const outcome of outcomes) {
      if (outcome in counts) {
        counts[outcome] += 1;
      } else {
        counts.failed += 1;
        failures[outcome] = (failures[outcome] ?? 0) + 1;
      }
    }
  }
  const logFields = {
    workspace_id: workspaceId,
    user_hash: userId ? userHash(userId) : null,
    recipients: recipients.length,
    ...counts,
    failures,
    management_endpoint: endpoint,
  };
  if (counts.failed && !counts.delivered) {
    // Nobody got it: as silent a failure as the seed's, so make it visible to API Gateway too.
    return {
      status: 502,
      outcome: 'error',
      message: 'The message reached nobody: every post to @connections failed.',
      errorCode: 'BroadcastFailed',
      body: { ...errorBody(502, 'BroadcastFailed'), ...counts },
      logFields,
      level: ERROR,
    };
  }
  return {
    status: 200,
    outcome: counts.failed ? 'partial' : 'broadcast',
    message: 'Sent.',
    body: { ...counts },
    logFields,
    level: counts.failed ? WARNING : INFO,
  };
}

const ROUTES = { [ROUTE_CONNECT]: connect, [ROUTE_DISCONNECT]: disconnect, message: broadcast, presence: broadcast, typing: broadcast };

// ---------------------------------------------------------------------------------------------------------
// Entry point

function failureResult(error) {
  // Every failure at WARNING or above: Lambda keeps those whatever the function's log level.
  const body = errorBody(error.status, error.code);
  if ('parameter' in error.details) body.parameter = error.details.parameter;
  return {
    status: error.status,
    outcome: error.outcome,
    message: error.message,
    errorCode: error.code,
    body,
    logFields: { ...error.details },
    level: error.status >= 500 ? ERROR : WARNING,
  };
}

// Lambda entry point for every route; always answers a proxy response, never throws.
export const handler = async (event, context) => {
  const requestContext = isObject(event) && isObject(event.requestContext) ? event.requestContext : {};
  const line = {
    route: loggable(requestContext.routeKey, 64),
    connection_id: loggable(requestContext.connectionId, 64),
    request_id: context?.awsRequestId ?? null,
    apigw_request_id: loggable(requestContext.requestId, 64),
  };
  let result;
  let unexpected = null;
  try {
    const request = parseRequest(event);
    result = await ROUTES[request.routeKey](request, event, settings());
  } catch (error) {
    if (error instanceof HandlerError) {
      result = failureResult(error);
    } else {
      // The last line of defence: answer 500 and log the stack, which says more than the 502 a throw gives.
      unexpected = error;
      result = {
        status: 500,
        outcome: 'error',
        message: 'Unexpected error.',
        errorCode: error?.name ?? typeof error,
        body: errorBody(500, 'InternalError'),
        logFields: {},
        level: ERROR,
      };
    }
  }
  Object.assign(line, {
    outcome: result.outcome,
    status: result.status,
    error_code: result.errorCode ?? null,
    detail: result.status >= 300 ? result.message : null,
    ...result.logFields,
  });
  const level = result.level ?? INFO;
  if (unexpected) console[level](JSON.stringify(line), unexpected);
  else console[level](JSON.stringify(line));
  return proxyResponse(result.status, result.message, result.body ?? {});
};
