/**
 * Cold start: how long `import('eks-forensics')` takes in a fresh node process and how much RSS
 * it adds, for the built ESM entry and the CommonJS one, against importing
 * `@aws-sdk/client-eks` alone (the peer) and a bare node process (the RSS baseline). Each run
 * starts one process per case, in an order rotated per run; medians over the runs.
 *
 * The import time is measured inside the child (`performance.now()` around the import); the
 * process time (spawn to exit, node's own start included) is measured by the parent.
 *
 * Run alone: `npx tsx bench/coldstart.ts [runs]`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureDist } from './dist.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const MiB = 2 ** 20;

/** One case's medians. */
export interface ColdStartFigure {
  name: string;
  /** Median wall time of the import inside the process, ms. */
  importMs: number;
  /** Median RSS after the import minus the median RSS of a bare node process, MiB. */
  rssOverBareMiB: number;
  /** Median time from spawn to exit of the whole process, ms. */
  processMs: number;
  /** Modules of `node_modules/@aws-sdk` in `require.cache` after the import (max over runs). */
  awsModules: number;
  runsMs: number[];
}

/** What {@link benchColdStart} returns. */
export interface ColdStartResult {
  runs: number;
  bare: { rssMiB: number; processMs: number };
  esm: ColdStartFigure;
  cjs: ColdStartFigure;
  clientEks: ColdStartFigure;
  /** Goal: ESM and CJS import median < 150 ms and < +30 MiB over bare node. */
  goals: { importUnder150ms: boolean; rssUnder30MiB: boolean };
}

interface ChildOut {
  ms: number;
  rss0: number;
  rss: number;
  awsModules: number;
  processMs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function child(spec: string): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [join(here, 'import-child.mjs'), spec], {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('error', reject);
    p.once('close', (code) => {
      const processMs = performance.now() - t0;
      if (code !== 0) reject(new Error(`import of ${spec} exited ${code}`));
      else resolve({ ...(JSON.parse(out.trim()) as Omit<ChildOut, 'processMs'>), processMs });
    });
  });
}

/** Measures the cold start of the built package (builds it first, see bench/dist.ts). */
export async function benchColdStart(
  opts: { runs?: number; log?: (l: string) => void } = {},
): Promise<ColdStartResult> {
  const runs = Math.max(3, opts.runs ?? 15);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dist = ensureDist();
  const cases: Array<[string, string]> = [
    ['bare', '-'],
    ['esm', pathToFileURL(join(dist, 'index.js')).href],
    ['cjs', join(dist, 'index.cjs')],
    ['clientEks', '@aws-sdk/client-eks'],
  ];
  const got = new Map<string, ChildOut[]>(cases.map(([n]) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < cases.length; k++) {
      const [name, spec] = cases[(k + i) % cases.length] as [string, string];
      got.get(name)?.push(await child(spec));
    }
  }
  const bareRss = median((got.get('bare') ?? []).map((o) => o.rss));
  const fig = (name: string, label: string): ColdStartFigure => {
    const xs = got.get(name) ?? [];
    return {
      name: label,
      importMs: Number(median(xs.map((o) => o.ms)).toFixed(1)),
      rssOverBareMiB: Number(((median(xs.map((o) => o.rss)) - bareRss) / MiB).toFixed(1)),
      processMs: Math.round(median(xs.map((o) => o.processMs))),
      awsModules: Math.max(0, ...xs.map((o) => o.awsModules)),
      runsMs: xs.map((o) => Math.round(o.ms)),
    };
  };
  const esm = fig('esm', "import('eks-forensics') (dist/index.js)");
  const cjs = fig('cjs', "require('eks-forensics') (dist/index.cjs)");
  const clientEks = fig('clientEks', "import('@aws-sdk/client-eks') alone");
  for (const f of [esm, cjs, clientEks]) {
    log(
      `${f.name}: import ${f.importMs} ms, +${f.rssOverBareMiB} MiB over bare node, process ${f.processMs} ms, AWS SDK modules ${f.awsModules}`,
    );
  }
  return {
    runs,
    bare: {
      rssMiB: Number((bareRss / MiB).toFixed(1)),
      processMs: Math.round(median((got.get('bare') ?? []).map((o) => o.processMs))),
    },
    esm,
    cjs,
    clientEks,
    goals: {
      importUnder150ms: esm.importMs < 150 && cjs.importMs < 150,
      rssUnder30MiB: esm.rssOverBareMiB < 30 && cjs.rssOverBareMiB < 30,
    },
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const r = await benchColdStart({ runs: Number(process.argv[2] ?? 15) });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
