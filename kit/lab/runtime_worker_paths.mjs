// Module resolution hooks for the lab's Node.js worker (registered by runtime_worker.mjs, run on Node's
// loader thread): a bare specifier an ES module cannot resolve from its own location is tried again from each
// `node_modules` directory on NODE_PATH, as Lambda's Node.js runtimes let ES modules import the SDK they
// provide. The function's own node_modules always win: this runs only after Node's resolution failed.
//
// Must not: change a resolution that succeeded, or resolve relative and absolute specifiers.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

let directories = [];

export async function initialize(data) {
  directories = data?.directories ?? [];
}

function isBare(specifier) {
  return !/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
    for (const directory of directories) {
      // A parent inside <dir>/.. makes Node look in <dir> itself (its search starts at <parent>/node_modules).
      const parentURL = pathToFileURL(path.join(path.dirname(directory), 'kit-lab-node-path.mjs')).href;
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // not in this directory either
      }
    }
    throw error;
  }
}
