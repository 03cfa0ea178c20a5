// Child for cold-start.test.ts: imports the package entry named in argv[2] (a .ts source through
// tsx, or a built .js/.cjs file) and reports every module loaded, ESM (through a resolve hook) and
// CommonJS (require.cache).
import { createRequire, register } from 'node:module';

register(new URL('./cold-start-hooks.mjs', import.meta.url));
const entry = process.argv[2];
const require = createRequire(import.meta.url);
if (entry.endsWith('.cjs')) require(entry);
else await import(entry);
// let anything scheduled at import (there should be nothing) run
await new Promise((r) => setTimeout(r, 50));
for (const k of Object.keys(require.cache)) process.stderr.write(`LOADED ${k}\n`);
process.stderr.write('DONE\n');
