/**
 * Sandbox runtime start/exec/close cost: N containers (half of them two-container pods, a third
 * distroless) started in batches of 10, one exec each (`true`; the distroless ones get the
 * "executable file not found" answer), then `close()`; compared with the same
 * number of execs on the `host` runtime's way of running a process (a bare `spawn`) in the same run.
 *
 * Run alone: `npx tsx bench/sandbox.ts [containers] [runs]`.
 */
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { RuntimeContainer } from '../src/testing/runtime.js';
import { createSandboxRuntime } from '../src/testing/sandbox/index.js';

/** What {@link benchSandbox} returns (times in ms, medians over `runs`). */
export interface SandboxBenchResult {
  containers: number;
  runs: number;
  /** Start of all containers. */
  startMedianMs: number;
  /** One exec (`true`) in every container, all in parallel. */
  execMedianMs: number;
  /** `close()`. */
  closeMedianMs: number;
  /** Start + exec + close. */
  totalMedianMs: number;
  /** The same number of bare host `spawn`s of `true`, in parallel. */
  hostSpawnMedianMs: number;
  /** execMedianMs / hostSpawnMedianMs: the cost of entering namespaces. */
  execOverHostSpawn: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function execTrue(c: RuntimeContainer): Promise<void> {
  const p = c.exec({
    command: ['/app/server-or-true'],
    stdin: false,
    tty: false,
    signal: AbortSignal.timeout(10_000),
  });
  p.stdout.resume();
  p.stderr.resume();
  return p.result.then(() => undefined);
}

/** Measures the sandbox runtime with `containers` containers, `runs` times. Needs root + bwrap. */
export async function benchSandbox(
  opts: { containers?: number; runs?: number } = {},
): Promise<SandboxBenchResult> {
  const n = opts.containers ?? 50;
  const runs = opts.runs ?? 3;
  const start: number[] = [];
  const exec: number[] = [];
  const close: number[] = [];
  const total: number[] = [];
  const host: number[] = [];
  for (let r = 0; r < runs; r++) {
    const rt = await createSandboxRuntime({ skipProbe: true });
    const t0 = performance.now();
    const cs: RuntimeContainer[] = [];
    for (let i = 0; i < n; i += 10) {
      const batch = Array.from({ length: Math.min(10, n - i) }, (_, j) => i + j);
      cs.push(
        ...(await Promise.all(
          batch.map((k) =>
            rt.start({
              pod: { namespace: 'bench', name: `p${Math.floor(k / 2)}`, uid: `u${r}-${Math.floor(k / 2)}` },
              name: `c${k % 2}`,
              image: 'busybox',
              options: {
                preset: k % 3 === 0 ? 'none' : 'busybox',
                files: {
                  '/app/server-or-true': {
                    type: 'symlink',
                    target: k % 3 === 0 ? '/nonexistent' : '/bin/true',
                  },
                },
              },
            }),
          ),
        )),
      );
    }
    const t1 = performance.now();
    await Promise.all(cs.map(execTrue));
    const t2 = performance.now();
    await rt.close();
    const t3 = performance.now();
    start.push(t1 - t0);
    exec.push(t2 - t1);
    close.push(t3 - t2);
    total.push(t3 - t0);
    const h0 = performance.now();
    await Promise.all(
      Array.from(
        { length: n },
        () => new Promise<void>((res) => spawn('true', { stdio: 'ignore' }).once('close', () => res())),
      ),
    );
    host.push(performance.now() - h0);
  }
  const execMedianMs = median(exec);
  const hostSpawnMedianMs = median(host);
  return {
    containers: n,
    runs,
    startMedianMs: Math.round(median(start)),
    execMedianMs: Math.round(execMedianMs),
    closeMedianMs: Math.round(median(close)),
    totalMedianMs: Math.round(median(total)),
    hostSpawnMedianMs: Math.round(hostSpawnMedianMs),
    execOverHostSpawn: Math.round((execMedianMs / Math.max(hostSpawnMedianMs, 0.001)) * 10) / 10,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [containers, runs] = process.argv.slice(2).map(Number);
  benchSandbox({ containers: containers || undefined, runs: runs || undefined }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
