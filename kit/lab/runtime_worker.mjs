// One Lambda execution environment for a Node.js function: the process in which the lab runs its code.
//
// `kit.lab.runtime` starts it as `node <Lambda's flags> runtime_worker.mjs --requests FD --events FD
// --parent-pid PID` with the function's environment and nothing of the lab's. It plays the part of Lambda's
// Node.js runtime interface client (RIC v3, `/var/runtime/index.mjs` on nodejs18.x-22.x): it patches `console`
// as that runtime does, resolves `_HANDLER` and loads the module once (init), then calls the handler once per
// request with Lambda's context and callback, keeping module state warm, and reports failures with the
// runtime's error types, messages and log lines.
//
// Protocol: the same JSON lines as the Python worker (`kit/lab/runtime_worker.py`), on two pipes the function
// never sees (their descriptors are not 0, 1 or 2):
//
// * requests, lab -> worker: {"request_id", "event", "deadline_ms", "invoked_function_arn"}; EOF: exit 0.
// * events, worker -> lab, in the order things happened: {"kind": "log", "ts_ms", "stream": "app", "level",
//   "message"} for every console call (one CloudWatch event each, newlines kept, as the runtime writes them
//   to its telemetry descriptor); {"kind": "ready"} or {"kind": "init-error", "error"} once; then per request
//   {"kind": "received"} before the handler runs, then {"kind": "result", "payload"} or {"kind": "error",
//   "error"}, both with duration_ms and max_rss_kb.
//
// Descriptors 1 and 2 are a third pipe the lab reads as raw output (process.stdout.write, child processes).
// A timeout is enforced by the lab killing this process, not from inside.
//
// How completion works, as in the RIC: a returned promise settles the invocation when it settles; a callback
// `callback(null, result)` answers only once the event loop is empty (Node's `beforeExit`) unless
// `context.callbackWaitsForEmptyEventLoop` is false; `context.done/succeed/fail` answer at once; only the
// first completion counts. The next request is read with a blocking read, so nothing the function left
// running (a timer, a promise not awaited) runs between invocations: it resumes in the next one, as after
// Lambda's freeze (the lab also SIGSTOPs idle environments).
//
// Must not: import anything but Node's own modules, write to descriptors 1 and 2 itself, or read the lab's
// configuration.

import fs from 'node:fs';
import dns from 'node:dns';
import module from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import util from 'node:util';

const require = module.createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------------------
// The event pipe
// ---------------------------------------------------------------------------------------------------------

let eventsFd = -1;

function send(message) {
  const data = Buffer.from(JSON.stringify(message) + '\n', 'utf8');
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += fs.writeSync(eventsFd, data, offset, data.length - offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

function maxRssKb() {
  return process.resourceUsage().maxRSS;
}

// ---------------------------------------------------------------------------------------------------------
// Errors, as the runtime names and serialises them
// ---------------------------------------------------------------------------------------------------------

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by ' +
        'a Promise that was never settled. For more information, see ' +
        'https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const errorClass of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  // Set before any instance exists, so each stack's first line says `Runtime.<Name>: ...` as on Lambda.
  errorClass.prototype.name = `Runtime.${errorClass.name}`;
}

function looksLikeError(value) {
  return (
    value &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string' &&
    value.name &&
    value.message &&
    value.stack
  );
}

// The error document the caller gets (and API Gateway logs as the endpoint's response body).
function errorResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its ' +
        'message, name, and stack',
    };
  }
}

function intoError(value) {
  return value instanceof Error ? value : new Error(value);
}

// `\t{json}`: the second argument of the Text format's `Invoke Error` / `Uncaught Exception` line.
function formattedError(error) {
  const withProperties = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const document = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') document.stack = value.stack.split('\n');
    return document;
  };
  try {
    return '\t' + JSON.stringify(error, withProperties);
  } catch {
    return '\t' + JSON.stringify(errorResponse(error));
  }
}

// ---------------------------------------------------------------------------------------------------------
// console, patched as the runtime patches it
// ---------------------------------------------------------------------------------------------------------

const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

// One record per call, newlines kept: the managed runtime writes each call as one framed record on its
// telemetry descriptor, so one CloudWatch event may span lines. Text records end with "\n"; JSON ones don't.
function textRecord(level, message, params) {
  const time = new Date().toISOString();
  return `${time}\t${globalThis[REQUEST_ID]}\t${level}\t${util.format(message, ...params)}\n`;
}

function jsonErrorFields(value) {
  return Object.assign(
    {
      errorType: value?.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    },
    value,
  );
}

function jsonRecord(level, message, params) {
  const record = { timestamp: new Date().toISOString(), level, requestId: globalThis[REQUEST_ID] };
  if (params.length === 0) {
    record.message = message;
    try {
      return JSON.stringify(record, (_key, value) => (value instanceof Error ? jsonErrorFields(value) : value));
    } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  const all = [message, ...params];
  record.message = util.format(...all);
  const error = all.find((value) => value instanceof Error);
  if (error !== undefined) {
    record.errorType = error?.constructor?.name ?? 'UnknownError';
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}

let logError = () => {};

function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const format = json ? jsonRecord : textRecord;
  // Unset or unknown: TRACE, everything is written (the level applies in Text format too).
  const threshold = Math.max(0, LEVELS.indexOf(process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase() ?? 'TRACE'));
  const writer = (level) => (message, ...params) => {
    send({ kind: 'log', ts_ms: Date.now(), stream: 'app', level, message: format(level, message, params) });
  };
  const nothing = () => {};
  for (const [index, level] of LEVELS.entries()) {
    const method = level === 'WARN' ? 'warn' : level.toLowerCase();
    // console.fatal is added and never filtered, as in the runtime.
    console[method] = level === 'FATAL' || index >= threshold ? writer(level) : nothing;
  }
  console.log = console.info;
  logError = json
    ? (_prefix, error) => console.error(intoError(error))
    : (prefix, error) => console.error(prefix, formattedError(intoError(error)));
}

// ---------------------------------------------------------------------------------------------------------
// Loading the handler (the runtime's UserFunction)
// ---------------------------------------------------------------------------------------------------------

function hasTypeModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const packageJson = path.join(folder, 'package.json');
  if (fs.existsSync(packageJson)) {
    try {
      const parsed = JSON.parse(fs.readFileSync(packageJson));
      if (parsed) return parsed.type === 'module';
    } catch (err) {
      console.warn(`${packageJson} cannot be read, it will be ignored for ES module detection purposes.`, err);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasTypeModule(path.resolve(folder, '..'));
}

function requireIfPresent(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfPresent(file) {
  return fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined;
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = requireIfPresent(base);
  if (extensionless) return extensionless;
  const typeModule = fs.existsSync(base + '.js') && hasTypeModule(path.dirname(base + '.js'));
  if (!typeModule) {
    const commonJs = requireIfPresent(base + '.js');
    if (commonJs) return commonJs;
  }
  const loaded =
    (typeModule && (await importIfPresent(base + '.js'))) ||
    (await importIfPresent(base + '.mjs')) ||
    requireIfPresent(base + '.cjs');
  if (loaded) return loaded;
  // Node's own resolution from the task root and the module root: `lib/handler.run` can load a package.
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories ` +
        'in handler names.',
    );
  }
  const moduleAndPath = path.basename(handlerString);
  const moduleRoot = handlerString.substring(0, handlerString.indexOf(moduleAndPath));
  const match = moduleAndPath.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, propertyPath] = match;
  let userModule;
  try {
    userModule = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(err);
    if (err?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(err);
    throw err;
  }
  const handler = propertyPath.split('.').reduce((value, key) => value && value[key], userModule);
  if (!handler) throw new HandlerNotFound(`${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${handlerString} is not a function`);
  return handler;
}

// ---------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------

let requestsFd = -1;
let pending = Buffer.alloc(0);

// Blocking on purpose: while the environment waits for work nothing else in it runs (Lambda's freeze).
function nextRequest() {
  const chunk = Buffer.alloc(65536);
  for (;;) {
    const newline = pending.indexOf(10);
    if (newline >= 0) {
      const line = pending.subarray(0, newline).toString('utf8');
      pending = pending.subarray(newline + 1);
      return JSON.parse(line);
    }
    let read;
    try {
      read = fs.readSync(requestsFd, chunk, 0, chunk.length, null);
    } catch (err) {
      if (err.code === 'EAGAIN') continue;
      throw err;
    }
    if (read === 0) return null;
    pending = Buffer.concat([pending, chunk.subarray(0, read)]);
  }
}

let beforeExit = () => {};
// What an uncaught exception or unhandled rejection does: before the first request, an init error.
let onFatal = (error, exitCode) => {
  send({ kind: 'init-error', error: errorResponse(error), max_rss_kb: maxRssKb() });
  process.exit(exitCode);
};

function isAsyncFunction(handler) {
  try {
    return handler?.constructor?.name === 'AsyncFunction';
  } catch {
    return false;
  }
}

function serialise(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch {
    throw new Error('Unable to stringify response body');
  }
}

function invokeOnce(handler, handlerIsAsync) {
  const request = nextRequest();
  if (request === null) process.exit(0);
  send({ kind: 'received', request_id: request.request_id });
  const requestId = String(request.request_id);
  globalThis[REQUEST_ID] = requestId;
  const started = performance.now();
  let answered = false;
  const answer = (message) => {
    answered = true;
    send({
      ...message,
      request_id: requestId,
      duration_ms: performance.now() - started,
      max_rss_kb: maxRssKb(),
    });
  };
  const next = () => setImmediate(() => invokeOnce(handler, handlerIsAsync));
  const postError = (error) => {
    logError('Invoke Error', error);
    answer({ kind: 'error', error: errorResponse(error) });
    next();
  };
  let completed = false;
  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    answer({ kind: 'result', payload: serialise(result) });
    next();
  };
  let waitsForEmptyEventLoop = true;
  const callback = (error, result) => {
    beforeExit = () => {};
    if (error !== undefined && error !== null) {
      postError(error);
    } else if (!waitsForEmptyEventLoop) {
      complete(result);
    } else {
      beforeExit = () => setImmediate(() => complete(result));
    }
  };
  const done = (error, result) => {
    beforeExit = () => {};
    if (error !== undefined && error !== null) postError(error);
    else complete(result);
  };
  // Only the first of callback, done, succeed and fail counts.
  let finished = false;
  const firstOnly =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitsForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitsForEmptyEventLoop = value;
    },
    succeed: firstOnly((result) => done(null, result)),
    fail: firstOnly((error) => (error === undefined || error === null ? done('handled') : done(error, null))),
    done: firstOnly(done),
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    invokedFunctionArn: request.invoked_function_arn,
    awsRequestId: requestId,
    tenantId: undefined,
    getRemainingTimeInMillis: () => request.deadline_ms - Date.now(),
  };
  onFatal = (error, exitCode) => {
    // Posted for the request that is current when it happens, even one that started after the leak.
    if (!answered) answer({ kind: 'error', error: errorResponse(error) });
    process.exit(exitCode);
  };
  // The loop drained without an answer: a plain handler answered null; an async one never settled.
  beforeExit = () => {
    completed = true;
    if (handlerIsAsync) {
      const error = new NodeJsExit();
      logError('Invoke Error', error);
      answer({ kind: 'error', error: errorResponse(error) });
    } else {
      answer({ kind: 'result', payload: 'null' });
    }
    next();
  };
  try {
    const result = handler(request.event, context, firstOnly(callback));
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (error) {
    firstOnly(callback)(error);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------------------

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

// Every name lookup outside loopback fails, as on a machine with no network: a function that builds a real
// endpoint itself (https://{domainName}/{stage}) fails quickly and visibly, and no packet leaves 127.0.0.1.
function confineToLoopback() {
  const outside = (hostname) =>
    typeof hostname === 'string' && !LOOPBACK_NAMES.has(hostname) && !hostname.startsWith('127.');
  const refusal = (hostname) => {
    const error = new Error(`getaddrinfo ENOTFOUND ${hostname} (outside the kit lab: only 127.0.0.1 answers)`);
    error.code = 'ENOTFOUND';
    error.errno = -3008;
    error.syscall = 'getaddrinfo';
    error.hostname = hostname;
    return error;
  };
  const lookup = dns.lookup;
  dns.lookup = function (hostname, options, callback) {
    if (outside(hostname)) {
      const done = typeof options === 'function' ? options : callback;
      process.nextTick(() => done(refusal(hostname)));
      return {};
    }
    return lookup.call(this, hostname, options, callback);
  };
  const promisesLookup = dns.promises.lookup;
  dns.promises.lookup = function (hostname, options) {
    if (outside(hostname)) return Promise.reject(refusal(hostname));
    return promisesLookup.call(this, hostname, options);
  };
}

// ES modules do not read NODE_PATH; Lambda's runtime lets them resolve through it (how a function's
// `import ... from "@aws-sdk/client-dynamodb"` finds the SDK the runtime provides).
function resolveEsModulesThroughNodePath() {
  const directories = (process.env.NODE_PATH ?? '').split(':').filter((entry) => entry.endsWith('/node_modules'));
  if (directories.length === 0 || typeof module.register !== 'function') return;
  module.register('./runtime_worker_paths.mjs', import.meta.url, { data: { directories } });
}

function option(argv, name) {
  const index = argv.indexOf(name);
  if (index < 0 || index + 1 >= argv.length) {
    throw new Error(`usage: node runtime_worker.mjs --requests FD --events FD --parent-pid PID (missing ${name})`);
  }
  return Number.parseInt(argv[index + 1], 10);
}

async function main() {
  const argv = process.argv.slice(2);
  requestsFd = option(argv, '--requests');
  eventsFd = option(argv, '--events');
  // The lab set PR_SET_PDEATHSIG before exec; if it died before that, we were already re-parented.
  if (process.ppid !== option(argv, '--parent-pid')) process.exit(1);
  confineToLoopback();
  resolveEsModulesThroughNodePath();
  patchConsole();
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    onFatal(error, 129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', error);
    onFatal(error, 128);
  });
  process.on('beforeExit', () => beforeExit());
  // A failure to load is thrown from here and reaches the uncaughtException listener, as in the runtime.
  const handler = await loadHandler(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), process.env._HANDLER ?? '');
  const handlerIsAsync = isAsyncFunction(handler);
  if (
    process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined &&
    handler.length === 3 &&
    !handlerIsAsync
  ) {
    console.warn(
      'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. ' +
        'You will need to update this function to use an async handler to use Node.js 24 or later. For more ' +
        'information and to provide feedback on this change, see ' +
        'https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this ' +
        'warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
    );
  }
  send({ kind: 'ready', max_rss_kb: maxRssKb() });
  setImmediate(() => invokeOnce(handler, handlerIsAsync));
}

main().catch((error) => {
  logError('Uncaught Exception', error);
  onFatal(error, 129);
});
