import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** A running `moto_server` (Python moto) on 127.0.0.1. */
export interface MotoServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`; use it as the endpoint of every AWS service. */
  readonly endpoint: string;
  /** Stops the server and waits for it to exit. */
  close(): Promise<void>;
}

/** Options of {@link startMotoServer}. */
export interface StartMotoOptions {
  /** Executable. Default `moto_server` from PATH. */
  command?: string | undefined;
  /** How long to wait for the server to listen. Default 30 s. */
  timeoutMs?: number | undefined;
}

/** Why `moto_server` cannot be started here, or undefined when it can (for test skips). */
export function motoServerMissing(command = 'moto_server'): string | undefined {
  const r = spawnSync(command, ['--help'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `${command} not runnable: ${r.error.message}`;
  if (r.status !== 0) return `${command} --help exited ${r.status}: ${(r.stderr ?? '').trim().slice(0, 200)}`;
  return undefined;
}

/**
 * Starts `moto_server` on 127.0.0.1 with a random port. The server stops by itself when this
 * process exits (a shell watchdog ends it when its stdin closes), so a crashed test run leaves
 * nothing behind.
 *
 * @throws {Error} when it does not start listening within `timeoutMs`.
 */
export async function startMotoServer(options: StartMotoOptions = {}): Promise<MotoServer> {
  const command = options.command ?? 'moto_server';
  // The shell is the leader of its own process group; when its stdin closes (close() or this
  // process dying) it signals the whole group, so launchers that fork (pyenv shims) leave nothing.
  const script =
    '"$0" -H 127.0.0.1 -p 0 2>&1 & trap \'trap - TERM; kill -TERM 0 2>/dev/null\' EXIT INT TERM; read _x; exit 0';
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn('sh', ['-c', script, command], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(
        new Error(`moto_server did not start within ${options.timeoutMs ?? 30_000} ms: ${log.slice(-500)}`),
      );
    }, options.timeoutMs ?? 30_000);
    const onData = (d: Buffer) => {
      log = (log + d.toString('utf8')).slice(-4000);
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m?.[1]) {
        cleanup();
        resolve(m[1]);
      }
    };
    const onExit = () => fail(new Error(`moto_server exited before listening: ${log.slice(-500)}`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    const fail = (e: Error) => {
      cleanup();
      child.stdin.end();
      reject(e);
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  // keep draining output so the server never blocks on a full pipe
  child.stdout.resume();
  child.stderr.resume();
  return {
    endpoint,
    close: async () => {
      child.stdin.end();
      const timer = setTimeout(() => {
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
