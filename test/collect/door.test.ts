/**
 * The door with a scripted cluster (no container): what the exec says decides the record, a
 * receiver that throws cannot hang the storage, frames wait for their exec.
 */
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Budget, DEFAULT_LIMITS } from '../../src/collect/index.js';
import { afterExec, Door, frameVerdict } from '../../src/collect/run/door.js';
import { ReasonList } from '../../src/collect/run/reasons.js';
import { TargetStore } from '../../src/collect/run/store.js';
import { viewOf } from '../../src/collect/run/view.js';
import type { CollectorKube } from '../../src/collect/types.js';
import { MemorySink } from '../../src/evidence/index.js';
import type { ExecSession } from '../../src/kube/index.js';

interface Script {
  out: Buffer[];
  exitCode?: number;
  /** Reject the result with this message instead of exiting. */
  error?: string;
  /** Stall (no output, no end) until aborted. */
  hang?: boolean;
}

function scriptedKube(script: Script, seen: string[][]): CollectorKube {
  return {
    async getPod() {
      throw new Error('not used');
    },
    async exec(o) {
      seen.push(o.command);
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let abort!: (e: unknown) => void;
      const result = new Promise<never>((_, reject) => {
        abort = reject;
      });
      const done = (async () => {
        for (const b of script.out) if (!stdout.write(b)) await new Promise((r) => stdout.once('drain', r));
        if (script.hang) return result;
        stdout.end();
        stderr.end();
        if (script.error) throw new Error(script.error);
        return {
          exitCode: script.exitCode ?? 0,
          status: { status: 'Success' },
          protocol: 'v5.channel.k8s.io',
          stdoutBytes: 0,
          stderrBytes: 0,
        };
      })();
      const session = {
        stdout,
        stderr,
        stdin: null,
        protocol: 'v5.channel.k8s.io',
        canCloseStdin: true,
        result: Promise.race([done, result]),
        abort(e?: unknown) {
          stdout.end();
          stderr.end();
          abort(e ?? new Error('aborted'));
        },
      };
      session.result.catch(() => undefined);
      return session as unknown as ExecSession;
    },
  };
}

async function setup(script: Script, limits = {}) {
  const bundle = await new MemorySink().open({});
  const l = { ...DEFAULT_LIMITS, noProgressMs: 300, ...limits };
  const budget = new Budget('target', l.maxTargetBytes, l.maxEntriesPerTarget);
  const reasons = new ReasonList();
  const store = new TargetStore({
    bundle,
    budget,
    limits: l,
    progress: { index: 0, namespace: 'n', pod: 'p', container: 'c' },
    emit: () => {},
    runBytes: () => 0,
    onIncomplete: (r) => reasons.add(r),
  });
  const seen: string[][] = [];
  const view = viewOf({
    namespace: 'n',
    pod: 'p',
    container: 'c',
    execContainer: 'c',
    fs: { root: '', procBase: '/proc' },
  });
  const door = new Door({
    kube: scriptedKube(script, seen),
    view: () => view,
    shell: () => undefined,
    limits: l,
    signal: new AbortController().signal,
    budget,
    store,
    reasons,
    log: () => {},
  });
  return { door, store, seen, reasons };
}

const meta = { source: { kind: 'exec' } };

describe('the door (scripted exec)', () => {
  it('exit 0 with all bytes: complete', async () => {
    const { door } = await setup({ out: [Buffer.from('hello')] });
    const r = await door.toArtifact({ step: 's', argv: ['x'], path: 'a', meta });
    expect(r.record.status).toBe('complete');
    expect(r.record.bytes).toBe(5);
  });

  it('exit 137 after perfect output: truncated, with the exit code', async () => {
    const { door } = await setup({ out: [Buffer.from('hello')], exitCode: 137 });
    const r = await door.toArtifact({ step: 's', argv: ['x'], path: 'a', meta });
    expect(r.record.status).toBe('truncated');
    expect(r.record.exitCode).toBe(137);
    expect(r.record.reason).toMatch(/exit code 137/);
  });

  it('a lost stream (no status) after output: truncated', async () => {
    const { door } = await setup({ out: [Buffer.from('hello')], error: 'socket closed without a status' });
    const r = await door.toArtifact({ step: 's', argv: ['x'], path: 'a', meta });
    expect(r.record.status).toBe('truncated');
  });

  it('the watchdog with nothing received: failed', async () => {
    const { door } = await setup({ out: [], hang: true });
    const r = await door.toArtifact({ step: 's', argv: ['x'], path: 'a', meta });
    expect(r.record.status).toBe('failed');
    expect(r.verdict.reasons.map((x) => x.code)).toContain('watchdog');
  });

  it('a receiver that throws halfway cannot hang the stored copy', async () => {
    const big = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 1));
    const { door } = await setup({ out: big });
    const r = await door.toArtifact({
      step: 's',
      argv: ['x'],
      path: 'a',
      meta,
      receive: async (s: Readable) => {
        for await (const _ of s) throw new Error('parser gave up');
        return { value: undefined };
      },
    });
    expect(r.record.status).toBe('failed');
    expect(r.verdict.reasons.map((x) => x.code)).toContain('stream-rejected');
  });

  it('the artifact cap cuts and says truncated', async () => {
    const { door } = await setup({ out: [Buffer.alloc(5000, 1)] });
    const r = await door.toArtifact({ step: 's', argv: ['x'], path: 'a', meta, maxBytes: 1000 });
    expect(r.record.status).toBe('truncated');
    expect(r.record.bytes).toBe(1000);
  });

  it('a frame stored while its exec runs waits for the exec: exit 1 makes it not complete', async () => {
    const { door, store } = await setup({ out: [Buffer.from('frame')], exitCode: 1 });
    let rec: Promise<{ status: string }> | undefined;
    await door.stream({ step: 's', argv: ['x'] }, async (s, exec) => {
      for await (const _ of s);
      rec = store.frameFromExec(
        'f',
        'frame',
        meta,
        afterExec(frameVerdict({ rc: 0, closed: true, bytes: 5 }), exec),
      );
      return { value: undefined };
    });
    expect((await rec)?.status).toBe('truncated');
  });

  it('wraps execs in the process-group runner when a shell is known, never the probe', async () => {
    const bundle = await new MemorySink().open({});
    const l = DEFAULT_LIMITS;
    const budget = new Budget('t', l.maxTargetBytes, l.maxEntriesPerTarget);
    const argvs: string[][] = [];
    const view = viewOf({
      namespace: 'n',
      pod: 'p',
      container: 'c',
      execContainer: 'c',
      fs: { root: '', procBase: '/proc' },
    });
    const door = new Door({
      kube: scriptedKube({ out: [] }, argvs),
      view: () => view,
      shell: () => '/bin/sh',
      limits: l,
      signal: new AbortController().signal,
      budget,
      store: new TargetStore({
        bundle,
        budget,
        limits: l,
        progress: { index: 0, namespace: 'n', pod: 'p', container: 'c' },
        emit: () => {},
        runBytes: () => 0,
        onIncomplete: () => {},
      }),
      reasons: new ReasonList(),
      log: () => {},
    });
    await door.capture({ step: 'probe', argv: ['sh', '-c', 'probe'], wrap: false, maxBytes: 10 });
    await door.capture({ step: 'x', argv: ['tar', 'cf', '-'], maxBytes: 10 });
    expect(argvs[0]).toEqual(['sh', '-c', 'probe']);
    expect(argvs[1]?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(argvs[1]?.slice(3)).toEqual(['eksf-run', '/bin/sh', 'tar', 'cf', '-']);
  });
});
