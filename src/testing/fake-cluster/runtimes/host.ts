/**
 * The `host` runtime: exec runs argv as a real process on the host (no shell, no isolation).
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import type {
  ContainerRuntime,
  RuntimeContainer,
  RuntimeContainerSpec,
  RuntimeExecExit,
  RuntimeExecProcess,
  RuntimeExecSpec,
} from '../../runtime.js';
import type { HostRuntimeOptions } from '../types.js';
import { execNotFoundMessage, randomContainerId, trackingRuntime } from './common.js';

function streamDone(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

class HostContainer implements RuntimeContainer {
  readonly id = randomContainerId();
  readonly runtimeName = 'containerd';
  private stopped = false;
  private readonly children = new Map<ChildProcess, Promise<RuntimeExecExit>>();

  constructor(
    private readonly spec: RuntimeContainerSpec<HostRuntimeOptions>,
    private readonly options: HostRuntimeOptions,
  ) {}

  running(): boolean {
    return !this.stopped;
  }

  private env(): Record<string, string> {
    const base: Record<string, string> = {};
    if (this.options.inheritEnv) {
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) base[k] = v;
    } else {
      base.PATH = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
      if (process.env.HOME) base.HOME = process.env.HOME;
      base.LANG = process.env.LANG ?? 'C.UTF-8';
    }
    return { ...base, ...(this.spec.env ?? {}), ...(this.options.env ?? {}) };
  }

  exec(spec: RuntimeExecSpec): RuntimeExecProcess {
    const [file = '', ...args] = spec.command;
    const child = spawn(file, args, {
      cwd: this.spec.workingDir ?? this.options.cwd ?? process.cwd(),
      env: this.env(),
      stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
    });
    const childStdout = child.stdout as Readable;
    const childStderr = child.stderr as Readable;
    let stdout: Readable = childStdout;
    let stderr: Readable = childStderr;
    if (spec.tty) {
      const merged = new PassThrough({ highWaterMark: 64 * 1024 });
      childStdout.pipe(merged, { end: false });
      childStderr.pipe(merged, { end: false });
      void Promise.all([streamDone(childStdout), streamDone(childStderr)]).then(() => merged.end());
      stdout = merged;
      const empty = new PassThrough();
      empty.end();
      stderr = empty;
    }
    child.stdin?.on('error', () => {});
    const onAbort = (): void => killTree(child, 'SIGKILL');
    spec.signal.addEventListener('abort', onAbort, { once: true });
    const exited = new Promise<RuntimeExecExit>((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return;
        if (err.code === 'ENOENT') resolve({ kind: 'error', message: execNotFoundMessage(file) });
        else if (err.code === 'EACCES') {
          resolve({
            kind: 'error',
            message: `failed to exec in container: OCI runtime exec failed: exec failed: unable to start container process: exec: "${file}": permission denied: unknown`,
          });
        } else resolve({ kind: 'error', message: err.message });
      });
      child.once('exit', (code, signal) => {
        if (signal) resolve({ kind: 'signaled', signal });
        else resolve({ kind: 'exited', exitCode: code ?? 0 });
      });
    });
    const result = exited.then(async (exit) => {
      await Promise.all([streamDone(stdout), streamDone(stderr)]);
      spec.signal.removeEventListener('abort', onAbort);
      this.children.delete(child);
      return exit;
    });
    this.children.set(child, result);
    return {
      stdout,
      stderr,
      stdin: child.stdin ?? null,
      result,
      kill: (signal: NodeJS.Signals = 'SIGKILL') => killTree(child, signal),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const child of this.children.keys()) killTree(child, 'SIGKILL');
    await Promise.all(this.children.values());
  }
}

/**
 * Creates the `host` runtime. Container options are {@link HostRuntimeOptions}. Exec'd argv runs
 * directly on the host (in its own process group, killed on stop) with a minimal environment;
 * a missing binary fails like containerd's "executable file not found in $PATH".
 */
export function createHostRuntime(): ContainerRuntime<HostRuntimeOptions> {
  return trackingRuntime<HostRuntimeOptions>('host', (spec, options) => new HostContainer(spec, options));
}
