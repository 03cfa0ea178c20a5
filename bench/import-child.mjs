// Child of bench/coldstart.ts: imports argv[2] (a package name, a built .js, or a .cjs through
// require; `-` imports nothing) and prints one JSON line: the import's wall time, the RSS before
// and after, and how many modules of node_modules/@aws-sdk it loaded.
import { createRequire } from 'node:module';

const spec = process.argv[2] ?? '-';
const require = createRequire(import.meta.url);
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
if (spec.endsWith('.cjs')) require(spec);
else if (spec !== '-') await import(spec);
const ms = performance.now() - t0;
const rss = process.memoryUsage().rss;
const awsModules = Object.keys(require.cache).filter((k) => k.includes('/node_modules/@aws-sdk/')).length;
process.stdout.write(`${JSON.stringify({ ms, rss0, rss, awsModules })}\n`);
