/**
 * Helpers for sandbox runtime tests: why the machine cannot run it, run an exec to completion,
 * count what the runtime leaves behind.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { RuntimeContainer, RuntimeExecExit } from '../../src/testing/runtime.js';

/** Why sandbox tests cannot run here, or null. */
export function sandboxMissing(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (sandbox containers need root)';
  const inPath = (cmd: string): boolean =>
    (process.env.PATH ?? '/usr/bin:/bin')
      .split(':')
      .concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])
      .some((d) => existsSync(`${d}/${cmd}`));
  if (!inPath('bwrap')) return 'bwrap not installed (apt-get install bubblewrap)';
  if (!inPath('busybox')) return 'busybox not installed (apt-get install busybox-static)';
  if (!inPath('nsenter')) return 'nsenter not installed (util-linux)';
  return null;
}

/** Output and exit of one exec. */
export interface ExecOutcome {
  exit: RuntimeExecExit;
  stdout: Buffer;
  stderr: string;
}

/** Runs argv in a container, feeding `input` to stdin, capturing at most `max` bytes of stdout. */
export async function execIn(
  c: RuntimeContainer,
  command: readonly string[],
  opts: { input?: string | Buffer; max?: number; timeoutMs?: number; tty?: boolean } = {},
): Promise<ExecOutcome> {
  const p = c.exec({
    command,
    stdin: opts.input !== undefined,
    tty: opts.tty ?? false,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
  });
  const max = opts.max ?? 16 * 1024 * 1024;
  const out: Buffer[] = [];
  let n = 0;
  let err = '';
  p.stdout.on('data', (d: Buffer) => {
    if (n < max) out.push(d);
    n += d.length;
    if (n >= max) p.kill('SIGKILL');
  });
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  if (opts.input !== undefined) p.stdin?.end(opts.input);
  const exit = await p.result;
  return { exit, stdout: Buffer.concat(out).subarray(0, max), stderr: err };
}

/** stdout as text. */
export async function sh(c: RuntimeContainer, script: string): Promise<string> {
  const r = await execIn(c, ['sh', '-c', script]);
  if (r.exit.kind !== 'exited' || r.exit.exitCode !== 0) {
    throw new Error(`sh -c ${script} failed: ${JSON.stringify(r.exit)} ${r.stderr}`);
  }
  return r.stdout.toString('utf8');
}

/** Host processes whose command line mentions `needle`. */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(needle)) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

/** Child processes of this process that are bwrap or nsenter (zombies included). */
export function sandboxToolProcesses(): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (Number(fields[1]) === process.pid && (comm === 'bwrap' || comm === 'nsenter'))
        found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

/** Entries of the temp dir created by sandbox runtimes of this process. */
export function ourTempDirs(parent = tmpdir()): string[] {
  return readdirSync(parent).filter((n) => n.startsWith(`eksf-sandbox-${process.pid}-`));
}
