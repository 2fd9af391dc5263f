// Handlers the Node.js runtime tests invoke in a lab worker (code_path = this folder, handler "probe.<name>").
// Module state lives as long as the worker, so a warm start sees the previous count.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';

const state = { invocations: 0 };
const importedAt = Date.now();
console.log('module imported');

export const counter = async () => {
  state.invocations += 1;
  return { invocations: state.invocations, pid: process.pid, importedAt };
};

export const environment = async () => ({ environ: { ...process.env }, cwd: process.cwd(), argv: process.execArgv });

export const contextFields = async (event, context) => {
  const first = context.getRemainingTimeInMillis();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    remaining: [first, context.getRemainingTimeInMillis()],
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  };
};

export const fail = async (event) => {
  console.log('about to fail');
  const error = new TypeError(event.message ?? 'boom');
  error.code = 'E_PROBE';
  throw error;
};

export const failWithString = async () => {
  throw 'plain words';
};

export const logs = async () => {
  console.trace('at trace');
  console.debug('at debug');
  console.info('at info %s', 'formatted');
  console.log('two\nlines', { nested: { value: 1 } });
  console.warn('at warn');
  console.error('at error', new Error('logged error'));
  console.fatal('at fatal');
  process.stdout.write('raw stdout line\n');
  return 'logged';
};

// Callback handlers (non-async, three parameters).
export function callbackWaits(event, context, callback) {
  setTimeout(() => console.log('timer before the answer'), 100);
  callback(null, { answered: true });
}

export function callbackNoWait(event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log('timer left behind'), 100);
  // Answering later lets the event loop run (and overdue timers fire) before the answer.
  setTimeout(() => callback(null, { answered: true }), event.answer_after_ms ?? 0);
}

export function callbackError(event, context, callback) {
  callback(new RangeError('from the callback'));
}

export function succeedAtOnce(event, context) {
  setTimeout(() => console.log('timer after succeed'), 100);
  context.succeed({ succeeded: true });
  context.fail(new Error('ignored: only the first completion counts'));
}

export function failWithoutError(event, context) {
  context.fail();
}

export function returnsNothing() {
  setTimeout(() => console.log('last timer'), 50);
}

export const neverSettles = async () => new Promise(() => {});

export const rejectsUnhandled = async () => {
  Promise.reject(new Error('HelloError'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  return 'not reached';
};

export const throwsLater = async () => {
  setTimeout(() => {
    throw new Error('thrown from a timer');
  }, 10);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return 'not reached';
};

export const exitProcess = async () => {
  console.log('exiting now');
  process.exit(3);
};

export const loopForever = async () => {
  console.log('looping');
  for (;;) {
    // a handler that never yields: only the lab's timeout ends it
  }
};

export const circular = async () => {
  const value = {};
  value.self = value;
  return value;
};

// Work that is not awaited: a timer that logs (and writes a file in TMPDIR) after `ms`.
export const leak = async (event) => {
  setTimeout(() => console.log(`leaked work from ${event.tag}`), event.ms ?? 100);
  return 'returned before the leak';
};

export const wait = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.ms ?? 300));
  return 'waited';
};

export const lookup = async (event) => {
  try {
    await fetch(`https://${event.host}/`);
    return 'reached';
  } catch (error) {
    return String(error.cause?.message ?? error.message);
  }
};

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));

export const putAndGet = async (event) => {
  const table = process.env.TABLE_NAME;
  await documents.send(new PutCommand({ TableName: table, Item: { connectionId: event.id, source: 'node' } }));
  const read = await documents.send(new GetCommand({ TableName: table, Key: { connectionId: event.id } }));
  return read.Item;
};

export const nested = { deeper: { handler: async () => 'nested property' } };
export const notAFunction = 42;
