/**
 * The package as a user gets it: `npm pack`, then a fresh project that already depends on its own
 * `@aws-sdk/client-eks` and `zod` installs the tarball. Checks that those are deduplicated (one copy
 * each: the runtime dependencies are ranges), that README.md's links resolve inside the package,
 * that the ESM and CJS entries run the README example shape against FakeCluster with error classes
 * keeping their names, and that the README's FakeCluster snippet and the testing recipe run and
 * type-check as written against the shipped types.
 *
 * Needs the npm registry (or a warm npm cache: installs use --prefer-offline). Builds `dist/` first
 * when it is missing or older than `src/`.
 */
import { type ExecFileSyncOptions, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const HERE = join(ROOT, 'test/package/consumer');
const work = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'eksf-consumer-'));
const app = join(work, 'app');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

function run(cmd: string, args: string[], options: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, {
    cwd: app,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: work, NODE_OPTIONS: '' },
    maxBuffer: 64 << 20,
    ...options,
  }) as string;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Every installed copy of `name` under `dir` (node_modules trees, nested ones too). */
function copiesOf(dir: string, name: string): string[] {
  const found: string[] = [];
  const walk = (nm: string): void => {
    if (!existsSync(nm)) return;
    if (existsSync(join(nm, name, 'package.json'))) found.push(join(nm, name));
    for (const e of readdirSync(nm, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const pkgs = e.name.startsWith('@')
        ? readdirSync(join(nm, e.name)).map((n) => join(nm, e.name, n))
        : [join(nm, e.name)];
      for (const p of pkgs) walk(join(p, 'node_modules'));
    }
  };
  walk(join(dir, 'node_modules'));
  return found;
}

/** The fenced block of `page` whose text contains `marker`. */
function block(page: string, marker: string): string {
  const text = readFileSync(join(ROOT, page), 'utf8');
  const blocks = [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  const found = blocks.find((b) => b.includes(marker));
  if (!found) throw new Error(`no ts block with ${marker} in ${page}`);
  return found;
}

let tarball = '';
let packed: string[] = [];

beforeAll(() => {
  const dist = join(ROOT, 'dist/index.cjs');
  if (!existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    run('npm', ['run', 'build'], { cwd: ROOT });
  }
  const out = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT })) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarball = join(work, out[0]?.filename ?? '');
  packed = (out[0]?.files ?? []).map((f) => f.path);
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
  );
  // The consumer's own versions first (whatever is current), then the package.
  run('npm', ['install', '@aws-sdk/client-eks', 'zod', ...NPM_FLAGS]);
  run('npm', ['install', tarball, ...NPM_FLAGS]);
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Each subpath entry resolves and exports runtime names (`types` is types only). */
function expectSubpaths(subpaths: Record<string, number>): void {
  for (const p of ['errors', 'schemas', 'iam', 'auth', 'ephemeral', 'codecs', 'sink-kit', 'testing', 'fleet'])
    expect(subpaths[p], p).toBeGreaterThan(0);
  expect(subpaths.types).toBe(0);
}

describe('the packed package in a fresh consumer project', () => {
  it('ships LICENSE, docs and both builds, and every relative README/docs link resolves inside it', () => {
    for (const f of [
      'LICENSE',
      'README.md',
      'CHANGELOG.md',
      'package.json',
      'dist/index.js',
      'dist/index.cjs',
    ]) {
      expect(packed).toContain(f);
    }
    expect(packed).toContain('dist/testing/index.d.cts');
    const dead: string[] = [];
    for (const page of packed.filter((p) => p.endsWith('.md'))) {
      const text = readFileSync(join(app, 'node_modules/eks-forensics', page), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = (m[1] ?? '').split('#')[0] ?? '';
        if (target === '' || /^[a-z]+:/i.test(target)) continue;
        const path = join(dirname(page), target).replace(/\/$/, '');
        if (!packed.some((p) => p === path || p.startsWith(`${path}/`))) dead.push(`${page}: ${m[1]}`);
      }
    }
    expect(dead).toEqual([]);
    const pkg = JSON.parse(
      readFileSync(join(app, 'node_modules/eks-forensics/package.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(pkg.license).toBe('Apache-2.0');
    expect(pkg.repository).toBeTruthy();
    expect(readFileSync(join(app, 'node_modules/eks-forensics/LICENSE'), 'utf8')).toContain('Apache License');
  });

  it("shares the consumer's @aws-sdk/client-eks and zod (one copy each) and npm ls is clean", () => {
    for (const name of ['@aws-sdk/client-eks', 'zod', 'ws']) {
      expect(copiesOf(app, name), name).toHaveLength(1);
    }
    run('npm', ['ls', '--all', '--omit=dev']);
  });

  it('ESM: the README example shape runs against FakeCluster and verifies; error classes keep their names', () => {
    writeFileSync(join(app, 'esm.mjs'), readFileSync(join(HERE, 'esm.mjs')));
    const r = JSON.parse(run(process.execPath, ['esm.mjs'])) as {
      targets: Array<{ status: string; verify?: string }>;
      errorClasses: Array<[string, string, string]>;
      subpaths: Record<string, number>;
    };
    expectSubpaths(r.subpaths);
    expect(r.targets).toHaveLength(1);
    expect(['complete', 'partial']).toContain(r.targets[0]?.status);
    expect(r.targets[0]?.verify).toBe('valid');
    expect(r.errorClasses.length).toBeGreaterThanOrEqual(20);
    for (const [exported, name, instance] of r.errorClasses)
      expect([name, instance]).toEqual([exported, exported]);
  }, 120_000);

  it('CJS: require() works, exec through FakeCluster, error classes keep their names', () => {
    writeFileSync(join(app, 'cjs.cjs'), readFileSync(join(HERE, 'cjs.cjs')));
    const r = JSON.parse(run(process.execPath, ['cjs.cjs'])) as {
      stdout: string;
      exitCode: number;
      notFound?: { name: string; code: string; branded: boolean };
      errorClasses: Array<[string, string, string]>;
      subpaths: Record<string, number>;
    };
    expectSubpaths(r.subpaths);
    expect(r.stdout).toBe('hello cjs\n');
    expect(r.exitCode).toBe(0);
    expect(r.notFound).toEqual({ name: 'NotFoundError', code: 'EKSF_NOT_FOUND', branded: true });
    expect(r.errorClasses.length).toBeGreaterThanOrEqual(20);
    for (const [exported, name, instance] of r.errorClasses)
      expect([name, instance]).toEqual([exported, exported]);
  }, 120_000);

  it("the README's FakeCluster snippet and the testing recipe run and type-check as written", () => {
    const readme = block('README.md', 'FakeCluster.start');
    const recipe = `${block('docs/testing.md', "runtime: 'scripted'")}\nawait cluster.close();\n`;
    writeFileSync(join(app, 'readme.mjs'), readme);
    writeFileSync(join(app, 'recipe.mjs'), recipe);
    run(process.execPath, ['readme.mjs']);
    run(process.execPath, ['recipe.mjs']);
    writeFileSync(join(app, 'readme.mts'), `${readme}\nexport {};\n`);
    writeFileSync(join(app, 'recipe.mts'), `${recipe}\nexport {};\n`);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noEmit: true,
          // The AWS SDK's declarations are large; the package's own are checked by attw and publint.
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['readme.mts', 'recipe.mts'],
      }),
    );
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.']);
  }, 120_000);
});
