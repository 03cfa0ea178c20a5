/**
 * The built package, as users load it: `ensureDist()` builds `src/` with tsup (no type
 * declarations) into `.bench-tmp/dist/` once per process and returns that folder. Inside the
 * repository, so the built files resolve their dependencies from its node_modules.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
let built: string | undefined;

/** Builds once; returns the folder holding `index.js` and `index.cjs`. */
export function ensureDist(): string {
  if (built) return built;
  const out = join(repo, '.bench-tmp', 'dist');
  execFileSync(
    process.execPath,
    [join(repo, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--no-dts', '--out-dir', out],
    {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  if (!existsSync(join(out, 'index.js')) || !existsSync(join(out, 'index.cjs'))) {
    throw new Error(`tsup did not write ${out}/index.js and index.cjs`);
  }
  built = out;
  return out;
}
