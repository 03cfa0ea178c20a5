/**
 * Cost of the coverage items on one sandbox container through FakeCluster: installed-file
 * integrity (package database read, listing, pull and hash of N files), compared in the same run
 * with `md5sum -c` run inside the container over the same files (what an in-target check costs,
 * though its answer could not be trusted); executable hashes; and one process core.
 *
 * Run alone: `npx tsx bench/coverage.ts [files] [KiB per file] [runs]` (needs root + bwrap).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  type CoverageExec,
  checkIntegrity,
  hashExecutables,
  planProcessMemory,
  streamProcessCore,
} from '../src/collect/coverage/index.js';
import { KubeClient } from '../src/kube/index.js';
import { FakeCluster } from '../src/testing/index.js';
import { createSandboxRuntime, type SandboxEntry } from '../src/testing/sandbox/index.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function drain(exec: CoverageExec, argv: string[]): Promise<number> {
  const s = await exec(argv, { stdin: false });
  let n = 0;
  for await (const c of s.stdout) n += c.length;
  await s.result;
  return n;
}

/** What {@link benchCoverage} returns (ms are medians over `runs`). */
export interface CoverageBenchResult {
  files: number;
  bytesPerFile: number;
  runs: number;
  integrityMs: number;
  integrityMiBps: number;
  inTargetMd5sumMs: number;
  integrityOverMd5sum: number;
  exeHashMs: number;
  exeObjects: number;
  coreMs: number;
  coreBytes: number;
}

/** Measures the coverage items on one sandbox container. */
export async function benchCoverage(files = 300, kib = 256, runs = 3): Promise<CoverageBenchResult> {
  const sandbox = await createSandboxRuntime();
  const cluster = await FakeCluster.start({ runtimes: { sandbox } });
  try {
    const map: Record<string, SandboxEntry> = {};
    const sums: string[] = [];
    for (let i = 0; i < files; i++) {
      const content = randomBytes(kib * 1024);
      map[`/usr/lib/bench/lib${i}.so`] = { content, mode: 0o755 };
      sums.push(`${createHash('md5').update(content).digest('hex')}  usr/lib/bench/lib${i}.so`);
    }
    map['/var/lib/dpkg/status'] = { content: 'Package: bench\nStatus: install ok installed\nVersion: 1\n' };
    map['/var/lib/dpkg/info/bench.md5sums'] = { content: `${sums.join('\n')}\n` };
    await cluster.addPod({
      name: 'bench',
      containers: [
        { name: 'app', image: 'busybox', runtime: 'sandbox', options: { preset: 'busybox', files: map } },
      ],
    });
    const kube = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
      timeoutMs: 120_000,
    });
    const exec: CoverageExec = (command, o) =>
      kube.exec({
        namespace: 'default',
        pod: 'bench',
        container: 'app',
        command,
        stdin: o.stdin,
        timeoutMs: 300_000,
      });
    const integ: number[] = [];
    const md5: number[] = [];
    const exe: number[] = [];
    const core: number[] = [];
    let exeObjects = 0;
    let coreBytes = 0;
    const dir = await mkdtemp(join(tmpdir(), 'eksf-bench-core-'));
    for (let r = 0; r < runs; r++) {
      let t = performance.now();
      const res = await checkIntegrity({ exec, shell: 'sh', dirs: ['/usr/lib/bench'] });
      integ.push(performance.now() - t);
      if (res.report.counts.ok !== files)
        throw new Error(`integrity bench: ${JSON.stringify(res.report.counts)}`);
      t = performance.now();
      await drain(exec, ['sh', '-c', 'cd / && md5sum -c /var/lib/dpkg/info/bench.md5sums >/dev/null']);
      md5.push(performance.now() - t);
      t = performance.now();
      const h = await hashExecutables({ exec, shell: 'sh' });
      exe.push(performance.now() - t);
      exeObjects = h.hashes.length;
      t = performance.now();
      const planned = await planProcessMemory({ exec, shell: 'sh', pid: 1 });
      const s = streamProcessCore({ exec, shell: 'sh', pid: 1 }, planned);
      await pipeline(Readable.from(s.core), createWriteStream(join(dir, 'core')));
      core.push(performance.now() - t);
      coreBytes = s.index().coreBytes;
    }
    rmSync(dir, { recursive: true, force: true });
    const integrityMs = median(integ);
    const inTargetMd5sumMs = median(md5);
    return {
      files,
      bytesPerFile: kib * 1024,
      runs,
      integrityMs,
      integrityMiBps: (files * kib) / 1024 / (integrityMs / 1000),
      inTargetMd5sumMs,
      integrityOverMd5sum: integrityMs / inTargetMd5sumMs,
      exeHashMs: median(exe),
      exeObjects,
      coreMs: median(core),
      coreBytes,
    };
  } finally {
    await cluster.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [f, k, r] = process.argv.slice(2).map(Number);
  benchCoverage(f || 300, k || 256, r || 3).then(
    (x) => process.stdout.write(`${JSON.stringify(x, null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
