// Module hooks for cold-start.test.ts: prints every module URL the loader resolves to fd 2.
import { writeSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  writeSync(2, `LOADED ${r.url}\n`);
  return r;
}
