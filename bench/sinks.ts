/**
 * Evidence sink throughput and memory.
 *
 * Streams one large artifact through each local sink (DirectorySink with and without per-artifact
 * fsync, TarSink, TarSink gzip level 1) and compares the time with `openssl dgst -sha256` over
 * the same file in the same run (the hashing ceiling). Each sink run is a child process so its
 * peak RSS is its own; the directory sink also runs at a quarter of the size to show that memory
 * does not grow with the artifact. Each child first writes an untimed 64 MiB warm-up artifact to a
 * bundle of its own, so the timed run is the steady state of a long acquisition, not process start.
 *
 * The tar.gz sink is also compared with `gzip -1 < file > /dev/null` (same bytes, same run), and the
 * size of each archive is reported against the artifact and against gzip -1's output. TarSink
 * also runs at a quarter of the size, to show that its memory does not grow with the artifact.
 *
 * Run alone: `npx tsx bench/sinks.ts [sizeMiB] [runs]` (env `BENCH_SINKS=directory-nofsync,directory`
 * measures only those sinks; `directory-buffered`, DirectorySink without fsync and with
 * `directIo: false`, is measured only when named there).
 *
 * On a VM whose balloon reports free pages to the host (Firecracker, virtio-balloon free page
 * reporting), memory freed more than a couple of seconds earlier is handed back and must be faulted
 * in again: a buffered 1 GiB write then costs 1.4-2.9 s of system time instead of 0.2-0.6 s, and
 * by how much varies run to run. DirectorySink writes artifacts above 8 MiB with O_DIRECT, which
 * does not touch the page cache; the system CPU of every sink is reported so the effect is visible.
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** One sink measured against the openssl ceiling. */
export interface SinkFigure {
  sink: string;
  bytes: number;
  /** Median wall time of the sink runs, ms. */
  medianMs: number;
  /** MiB/s at the median. */
  mibPerSec: number;
  /** opensslMedianMs / medianMs: 1.0 means as fast as `openssl dgst -sha256` on the same bytes. */
  ratioToOpenssl: number;
  /** Largest peak RSS of the child process over the runs, MiB. */
  peakRssMiB: number;
  /** Every run's time, ms. */
  runsMs: number[];
  /** Median system (kernel) CPU time of the sink process, ms: where page-cache faults show up. */
  medianSysCpuMs: number;
  /**
   * opensslMedianCpuMs / median CPU ms of the sink process (all threads): the ratio a dedicated
   * machine would see, less sensitive than wall time to other load on a shared machine.
   */
  cpuRatioToOpenssl: number;
  /** Size of the archive file (tar, tar.gz), bytes. */
  archiveBytes?: number | undefined;
}

/** What {@link benchSinks} returns. */
export interface SinkBenchResult {
  bytes: number;
  runs: number;
  opensslMedianMs: number;
  /** Median CPU time of openssl (user+sys), ms. */
  opensslMedianCpuMs: number;
  /** Median system CPU time of openssl, ms. */
  opensslMedianSysCpuMs: number;
  opensslMiBPerSec: number;
  sinks: SinkFigure[];
  /** Peak RSS of the directory sink for a quarter-size artifact vs the full size (MiB). */
  memory: { smallBytes: number; smallPeakRssMiB: number; largePeakRssMiB: number; growthMiB: number };
  /** DirectorySink (no per-artifact fsync) ratio ≥ 0.8. */
  directoryTargetMet: boolean;
  /** Peak RSS of the tar sink for a quarter-size artifact vs the full size (MiB). */
  tarMemory?: { smallPeakRssMiB: number; largePeakRssMiB: number; growthMiB: number } | undefined;
  /** `gzip -1 < file > /dev/null` in the same rounds (when tar.gz is measured). */
  gzip?:
    | {
        medianMs: number;
        mibPerSec: number;
        medianCpuMs: number;
        runsMs: number[];
        /** Bytes gzip -1 writes for the file (measured once, untimed). */
        outBytes: number;
      }
    | undefined;
  /** gzip -1 median / tar.gz median (≥ 1: the sink is at least as fast); archive sizes. */
  tarGz?:
    | { ratioToGzip: number; cpuRatioToGzip: number; sizeRatioToArtifact: number; sizeRatioToGzip: number }
    | undefined;
  /** Goals of issue 17: tar ≥ 0.7 of openssl, tar.gz ≥ 1.0 of gzip -1, tar memory flat (< 32 MiB growth). */
  goals: {
    tarRatio?: boolean | undefined;
    tarGzVsGzip?: boolean | undefined;
    tarMemoryFlat?: boolean | undefined;
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** Writes `bytes` of deterministic, non-repeating-per-MiB data to `file` without holding it in memory. */
async function generate(file: string, bytes: number): Promise<void> {
  const block = Buffer.allocUnsafe(MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < MiB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  const fh = await open(file, 'w');
  try {
    for (let off = 0, n = 0; off < bytes; off += MiB, n++) {
      block.writeUInt32LE(n, 0); // every MiB differs
      block.writeUInt32LE(Math.imul(n, 2654435761) >>> 0, MiB / 2);
      await fh.write(block, 0, Math.min(MiB, bytes - off));
    }
  } finally {
    await fh.close();
  }
}

/** Runs openssl; returns wall time and CPU time (user+sys of the child, from the shell's `times`). */
async function opensslOnce(
  file: string,
): Promise<{ ms: number; cpuMs: number; sysMs: number; sha256: string }> {
  const t = performance.now();
  const { stdout } = await run('sh', ['-c', 'openssl dgst -sha256 -r "$1"; times', 'sh', file]);
  const ms = performance.now() - t;
  const lines = stdout.trim().split('\n');
  const child = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1] ?? '');
  const userMs = child ? (Number(child[1]) * 60 + Number(child[2])) * 1000 : Number.NaN;
  const sysMs = child ? (Number(child[3]) * 60 + Number(child[4])) * 1000 : Number.NaN;
  return { ms, cpuMs: userMs + sysMs, sysMs, sha256: lines[0]?.split(' ')[0] ?? '' };
}

/** Runs `gzip -1 < file > /dev/null`; wall time and CPU time of the child. */
async function gzipOnce(file: string): Promise<{ ms: number; cpuMs: number }> {
  const t = performance.now();
  const { stdout } = await run('sh', ['-c', 'gzip -1 < "$1" > /dev/null; times', 'sh', file]);
  const ms = performance.now() - t;
  const lines = stdout.trim().split('\n');
  const child = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1] ?? '');
  const cpuMs = child
    ? (Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4])) * 1000
    : Number.NaN;
  return { ms, cpuMs };
}

interface WorkerOut {
  archiveBytes?: number;
  ms: number;
  cpuMs: number;
  sysMs: number;
  sha256: string;
  maxRssKiB: number;
}

function worker(sink: string, file: string, out: string): Promise<WorkerOut> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, '--worker', sink, file, out], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`bench worker ${sink} exited ${code}`));
      else resolve(JSON.parse(text.trim().split('\n').pop() ?? '{}') as WorkerOut);
    });
  });
}

/** Child-process side: one artifact through one sink. */
async function workerMain(sinkName: string, file: string, out: string): Promise<void> {
  const ev = await import('../src/evidence/index.js');
  const sinks: Record<string, () => import('../src/evidence/index.js').EvidenceSink> = {
    directory: () => new ev.DirectorySink({ root: out }),
    'directory-nofsync': () => new ev.DirectorySink({ root: out, fsyncArtifacts: false }),
    'directory-buffered': () => new ev.DirectorySink({ root: out, fsyncArtifacts: false, directIo: false }),
    tar: () => new ev.TarSink({ root: out }),
    'tar.gz': () => new ev.TarSink({ root: out, gzip: true }),
  };
  // `<sink>+size`: the producer passes the artifact's size as `expectedBytes` (as the collector
  // does for files it has listed), which lets TarSink stream under a guessed header.
  // `+offload`: artifact and archive hashes on worker threads whatever the CPU count (the default
  // uses them only with four or more CPUs), to show what they cost or gain on this machine.
  const [base = '', ...flags] = sinkName.split('+');
  const sized = flags.includes('size');
  if (flags.includes('offload')) (await import('../src/util/index.js')).setHashOffloadDefault(true);
  const make = sinks[base];
  if (make === undefined) throw new Error(`unknown sink ${sinkName}`);
  const size = (await stat(file)).size;
  const sink = make();
  // Warm-up, not timed: a 64 MiB artifact into its own bundle, so that the timed run measures the
  // steady state of a long acquisition (code compiled, staging ring pooled, allocator warm)
  // rather than the start of a fresh process. The exec benchmark warms up the same way.
  const warm = await sink.open({ acquisitionId: 'warm-up' });
  await warm.writeArtifact('warm-up.bin', createReadStream(file, { highWaterMark: MiB, end: 64 * MiB - 1 }), {
    source: { kind: 'bench' },
  });
  await warm.finalize();
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const w = await sink.open({ acquisitionId: 'bench' });
  const rec = await w.writeArtifact('artifact.bin', createReadStream(file, { highWaterMark: MiB }), {
    source: { kind: 'bench' },
    ...(sized ? { expectedBytes: size } : {}),
  });
  const fin = await w.finalize();
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  if (rec.status !== 'complete') throw new Error(`artifact ${rec.status}: ${rec.reason}`);
  process.stdout.write(
    `${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000, sha256: rec.sha256, maxRssKiB: process.resourceUsage().maxRSS, ...(sinkName.startsWith('tar') ? { archiveBytes: (await stat(fin.location)).size } : {}) })}\n`,
  );
}

/**
 * Measures every local sink against `openssl dgst -sha256`. Default 1 GiB, 3 runs each.
 *
 * @example const r = await benchSinks(); console.table(r.sinks);
 */
export async function benchSinks(
  options: {
    bytes?: number;
    runs?: number;
    /** Only these sinks (default: all but `directory-buffered`, which runs only when named). */
    sinks?: string[];
    log?: (line: string) => void;
  } = {},
): Promise<SinkBenchResult> {
  const bytes = options.bytes ?? 1024 * MiB;
  const runs = Math.max(3, options.runs ?? 3);
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = await mkdtemp(join(tmpdir(), 'eksf-bench-sinks-'));
  try {
    const data = join(dir, 'data.bin');
    const small = join(dir, 'small.bin');
    await generate(data, bytes);
    await generate(small, Math.floor(bytes / 4));
    await opensslOnce(data); // warm the page cache
    const all = [
      'directory-nofsync',
      'directory-nofsync+offload',
      'directory',
      'tar',
      'tar+size',
      'tar+size+offload',
      'tar.gz',
    ];
    const names = options.sinks
      ? [...all, 'directory-buffered'].filter((n) => options.sinks?.includes(n))
      : all;
    const ssl: number[] = [];
    const sslCpu: number[] = [];
    const sslSys: number[] = [];
    const cpus = new Map<string, number[]>(names.map((n) => [n, []]));
    const syss = new Map<string, number[]>(names.map((n) => [n, []]));
    const times = new Map<string, number[]>(names.map((n) => [n, []]));
    const peaks = new Map<string, number>(names.map((n) => [n, 0]));
    const archives = new Map<string, number>();
    const gz: number[] = [];
    const gzCpu: number[] = [];
    const withGzip = names.includes('tar.gz');
    let expected = '';
    // Interleaved (openssl, then every sink, per round) so load changes on a shared machine hit all alike.
    for (let i = 0; i < runs; i++) {
      const r = await opensslOnce(data);
      ssl.push(r.ms);
      sslCpu.push(r.cpuMs);
      sslSys.push(r.sysMs);
      expected = r.sha256;
      if (withGzip) {
        const g = await gzipOnce(data);
        gz.push(g.ms);
        gzCpu.push(g.cpuMs);
        log(`[bench sinks] round ${i + 1}: gzip -1 ${Math.round(g.ms)} ms`);
      }
      for (const name of names) {
        const out = join(dir, `out-${name}-${i}`);
        const w = await worker(name, data, out);
        await rm(out, { recursive: true, force: true });
        if (w.sha256 !== expected)
          throw new Error(`${name}: sha256 ${w.sha256} differs from openssl ${expected}`);
        times.get(name)?.push(w.ms);
        cpus.get(name)?.push(w.cpuMs);
        syss.get(name)?.push(w.sysMs);
        peaks.set(name, Math.max(peaks.get(name) ?? 0, w.maxRssKiB / 1024));
        if (w.archiveBytes !== undefined) archives.set(name, w.archiveBytes);
        log(`[bench sinks] round ${i + 1}: ${name} ${Math.round(w.ms)} ms`);
      }
    }
    const opensslMedianMs = median(ssl);
    log(
      `openssl dgst -sha256: ${(bytes / MiB / (opensslMedianMs / 1000)).toFixed(0)} MiB/s (runs ${ssl.map(Math.round).join(', ')} ms, sys CPU ${Math.round(median(sslSys))} ms)`,
    );
    const sinks: SinkFigure[] = names.map((name) => {
      const ts = times.get(name) ?? [];
      const medianMs = median(ts);
      const fig: SinkFigure = {
        sink: name,
        bytes,
        medianMs: Math.round(medianMs),
        mibPerSec: Math.round(bytes / MiB / (medianMs / 1000)),
        ratioToOpenssl: Number((opensslMedianMs / medianMs).toFixed(3)),
        peakRssMiB: Math.round(peaks.get(name) ?? 0),
        runsMs: ts.map(Math.round),
        cpuRatioToOpenssl: Number((median(sslCpu) / median(cpus.get(name) ?? [])).toFixed(3)),
        medianSysCpuMs: Math.round(median(syss.get(name) ?? [])),
        archiveBytes: archives.get(name),
      };
      log(
        `${name}: ${fig.mibPerSec} MiB/s, ratio ${fig.ratioToOpenssl} (CPU ratio ${fig.cpuRatioToOpenssl}), sys CPU ${fig.medianSysCpuMs} ms, runs ${fig.runsMs.join(', ')} ms, peak RSS ${fig.peakRssMiB} MiB`,
      );
      return fig;
    });
    let smallPeak = 0;
    let tarSmallPeak = 0;
    for (let i = 0; i < runs; i++) {
      const out = join(dir, `out-small-${i}`);
      const r = await worker('directory-nofsync', small, out);
      await rm(out, { recursive: true, force: true });
      smallPeak = Math.max(smallPeak, r.maxRssKiB / 1024);
      if (names.includes('tar')) {
        const t = await worker('tar', small, out);
        await rm(out, { recursive: true, force: true });
        tarSmallPeak = Math.max(tarSmallPeak, t.maxRssKiB / 1024);
      }
    }
    const largePeak = sinks.find((s) => s.sink === 'directory-nofsync')?.peakRssMiB ?? 0;
    const memory = {
      smallBytes: Math.floor(bytes / 4),
      smallPeakRssMiB: Math.round(smallPeak),
      largePeakRssMiB: largePeak,
      growthMiB: Math.round(largePeak - smallPeak),
    };
    log(
      `memory: ${memory.smallPeakRssMiB} MiB at ${memory.smallBytes / MiB} MiB vs ${largePeak} MiB at ${bytes / MiB} MiB`,
    );
    log(
      'note: on VMs that hand free pages back to the host (virtio-balloon free page reporting, e.g. Firecracker), buffered writes fault page-cache memory in again and their system CPU varies from run to run; DirectorySink writes artifacts above 8 MiB with O_DIRECT (option directIo), which avoids it. Compare the runs and sys CPU, not a single figure.',
    );
    const tarFig = sinks.find((s) => s.sink === 'tar');
    /** Goal 3 is judged on the sized run where there is one: the fast path a producer can take. */
    const tarGoalFig = sinks.find((s) => s.sink === 'tar+size') ?? tarFig;
    const tarMemory = tarFig
      ? {
          smallPeakRssMiB: Math.round(tarSmallPeak),
          largePeakRssMiB: tarFig.peakRssMiB,
          growthMiB: Math.round(tarFig.peakRssMiB - tarSmallPeak),
        }
      : undefined;
    let gzip: SinkBenchResult['gzip'];
    let tarGz: SinkBenchResult['tarGz'];
    const tgz = sinks.find((s) => s.sink === 'tar.gz');
    if (withGzip && tgz) {
      const { stdout } = await run('sh', ['-c', 'gzip -1 < "$1" | wc -c', 'sh', data]);
      const outBytes = Number(stdout.trim());
      gzip = {
        medianMs: Math.round(median(gz)),
        mibPerSec: Math.round(bytes / MiB / (median(gz) / 1000)),
        medianCpuMs: Math.round(median(gzCpu)),
        runsMs: gz.map(Math.round),
        outBytes,
      };
      tarGz = {
        ratioToGzip: Number((median(gz) / tgz.medianMs).toFixed(3)),
        cpuRatioToGzip: Number((median(gzCpu) / median(cpus.get('tar.gz') ?? [])).toFixed(3)),
        sizeRatioToArtifact: Number(((tgz.archiveBytes ?? 0) / bytes).toFixed(4)),
        sizeRatioToGzip: Number(((tgz.archiveBytes ?? 0) / outBytes).toFixed(4)),
      };
      log(
        `gzip -1: ${gzip.mibPerSec} MiB/s; tar.gz / gzip -1 speed ratio ${tarGz.ratioToGzip}, size ratio ${tarGz.sizeRatioToGzip}`,
      );
    }
    return {
      tarMemory,
      gzip,
      tarGz,
      goals: {
        tarRatio: tarGoalFig ? tarGoalFig.ratioToOpenssl >= 0.7 : undefined,
        tarGzVsGzip: tarGz ? tarGz.ratioToGzip >= 1 : undefined,
        tarMemoryFlat: tarMemory ? tarMemory.growthMiB < 32 : undefined,
      },
      bytes,
      runs,
      opensslMedianMs: Math.round(opensslMedianMs),
      opensslMedianCpuMs: Math.round(median(sslCpu)),
      opensslMedianSysCpuMs: Math.round(median(sslSys)),
      opensslMiBPerSec: Math.round(bytes / MiB / (opensslMedianMs / 1000)),
      sinks,
      memory,
      directoryTargetMet: (sinks.find((s) => s.sink === 'directory-nofsync')?.ratioToOpenssl ?? 0) >= 0.8,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv[2] === '--worker') {
  await workerMain(process.argv[3] ?? '', process.argv[4] ?? '', process.argv[5] ?? '');
} else if (isMain) {
  const mib = Number(process.argv[2] ?? 1024);
  const only = process.env.BENCH_SINKS?.split(',').filter((x) => x.length > 0);
  const r = await benchSinks({
    bytes: mib * MiB,
    runs: Number(process.argv[3] ?? 3),
    ...(only?.length ? { sinks: only } : {}),
  });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
