/**
 * The `scripted` runtime: every exec'd command is a JS handler. No processes, no privileges.
 *
 * @module
 */
import { basename } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type {
  ContainerRuntime,
  RuntimeContainer,
  RuntimeContainerSpec,
  RuntimeExecExit,
  RuntimeExecProcess,
  RuntimeExecSpec,
} from '../../runtime.js';
import type { ScriptedHandler, ScriptedRuntimeOptions } from '../types.js';
import { execNotFoundMessage, randomContainerId, trackingRuntime } from './common.js';

const STREAM_HWM = 64 * 1024;

function waitEnd(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

class ScriptedContainer implements RuntimeContainer {
  readonly id = randomContainerId();
  readonly runtimeName = 'containerd';
  private stopped = false;
  private readonly procs = new Set<RuntimeExecProcess>();

  constructor(
    private readonly spec: RuntimeContainerSpec<ScriptedRuntimeOptions>,
    private readonly options: ScriptedRuntimeOptions,
  ) {
    if (options.running === false) this.stopped = true;
  }

  running(): boolean {
    return !this.stopped;
  }

  private lookup(argv0: string): ScriptedHandler | undefined {
    const commands = this.options.commands ?? {};
    return commands[argv0] ?? commands[basename(argv0)] ?? this.options.handler;
  }

  exec(spec: RuntimeExecSpec): RuntimeExecProcess {
    const stdout = new PassThrough({ highWaterMark: STREAM_HWM });
    const stderr = new PassThrough({ highWaterMark: STREAM_HWM });
    const stdinStream = new PassThrough({ highWaterMark: STREAM_HWM });
    if (!spec.stdin) stdinStream.end();
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(spec.signal.reason);
    if (spec.signal.aborted) controller.abort(spec.signal.reason);
    else spec.signal.addEventListener('abort', onAbort, { once: true });
    const argv0 = spec.command[0] ?? '';
    const handler = this.lookup(argv0);
    let killed: NodeJS.Signals | undefined;
    const run = async (): Promise<RuntimeExecExit> => {
      if (!handler) return { kind: 'error', message: execNotFoundMessage(argv0) };
      try {
        const code = await handler(spec.command, {
          stdin: stdinStream,
          stdout,
          stderr: spec.tty ? stdout : stderr,
          env: { ...(this.spec.env ?? {}) },
          tty: spec.tty,
          signal: controller.signal,
          container: { namespace: this.spec.pod.namespace, pod: this.spec.pod.name, name: this.spec.name },
        });
        if (code === null) return { kind: 'error', message: execNotFoundMessage(argv0) };
        if (killed) return { kind: 'signaled', signal: killed };
        return { kind: 'exited', exitCode: code };
      } catch (err) {
        if (killed) return { kind: 'signaled', signal: killed };
        return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
      }
    };
    const result = run().then(async (exit) => {
      spec.signal.removeEventListener('abort', onAbort);
      if (!stdout.writableEnded) stdout.end();
      if (!stderr.writableEnded) stderr.end();
      await Promise.all([waitEnd(stdout), waitEnd(stderr)]);
      this.procs.delete(proc);
      return exit;
    });
    const proc: RuntimeExecProcess = {
      stdout,
      stderr,
      stdin: spec.stdin ? stdinStream : null,
      result,
      kill: (signal: NodeJS.Signals = 'SIGKILL') => {
        killed = signal;
        controller.abort(new Error(`killed by ${signal}`));
        stdinStream.destroy();
        stdout.destroy();
        stderr.destroy();
      },
    };
    this.procs.add(proc);
    return proc;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.procs) p.kill();
    await Promise.all([...this.procs].map((p) => p.result));
  }
}

/**
 * Creates the `scripted` runtime. Container options are {@link ScriptedRuntimeOptions}:
 * `commands` (handlers by argv[0] or its basename) and a fallback `handler`; unknown commands fail
 * like a missing binary. FakeCluster creates one itself; use this to share one between clusters.
 *
 * @example
 * await cluster.addPod({ name: 'web', containers: [{ name: 'app', image: 'nginx', options: {
 *   commands: { echo: async (argv, io) => { io.stdout.write(`${argv.slice(1).join(' ')}\n`); return 0; } },
 * } }] });
 */
export function createScriptedRuntime(): ContainerRuntime<ScriptedRuntimeOptions> {
  return trackingRuntime<ScriptedRuntimeOptions>(
    'scripted',
    (spec, options) => new ScriptedContainer(spec, options),
  );
}
