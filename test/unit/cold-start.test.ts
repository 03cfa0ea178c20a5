/**
 * Importing `eks-forensics` must stay cheap: no AWS SDK client, credential provider, signer,
 * YAML parser or tar codec and nothing of `./testing` may load until something uses it (see
 * docs/benchmarks.md, cold start). This checks which modules a fresh process loads, not how long
 * it takes, so it cannot be flaky on a busy machine.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./cold-start-child.mjs', import.meta.url));
const src = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const distCjs = fileURLToPath(new URL('../../dist/index.cjs', import.meta.url));

/** Module paths/URLs loaded by a fresh node process that imports `entry`. */
async function loaded(entry: string, tsx: boolean): Promise<string[]> {
  const { stderr } = await run(process.execPath, [...(tsx ? ['--import', 'tsx'] : []), child, entry], {
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(stderr).toContain('DONE');
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice(7));
}

const HEAVY = [
  /node_modules\/@aws-sdk\//, // every client, lib-storage, credential providers
  /node_modules\/@smithy\//, // the SigV4 signer and the SDK core
  /node_modules\/yaml\//,
  /node_modules\/tar-stream\//,
  /node_modules\/ws\//,
  /node_modules\/@peculiar\//, // FakeCluster's PKI
  /node_modules\/reflect-metadata\//,
  /\/src\/testing\//,
  /\/dist\/testing\//,
];

function offenders(mods: string[]): string[] {
  return mods.filter((m) => HEAVY.some((re) => re.test(m)));
}

describe('importing the package entry', () => {
  it('loads no AWS client, signer, yaml, tar codec or testing module (source)', async () => {
    const mods = await loaded(src, true);
    // the check itself sees the modules it must see
    expect(mods.some((m) => m.includes('/src/evidence/tar.ts'))).toBe(true);
    expect(mods.some((m) => m.includes('node_modules/zod/'))).toBe(true);
    expect(offenders(mods)).toEqual([]);
  });

  it('the check fails when a heavy module is loaded', async () => {
    const mods = await loaded(fileURLToPath(new URL('../../src/testing/index.ts', import.meta.url)), true);
    expect(offenders(mods).length).toBeGreaterThan(0);
  });

  it.skipIf(!existsSync(dist) || !existsSync(distCjs))(
    'built ESM and CJS entries load none either',
    async () => {
      for (const entry of [dist, distCjs]) {
        const mods = await loaded(entry, false);
        expect(mods.length).toBeGreaterThan(0);
        expect(offenders(mods)).toEqual([]);
      }
    },
  );
});
