/**
 * Test support for the AWS-side evidence tests: a real `moto_server` on 127.0.0.1 (random port,
 * killed after), and a small in-memory writer implementing the bundle interface.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ArtifactBody, ArtifactMeta, ArtifactRecord, TargetChange } from '../../src/evidence/index.js';
import type { AwsEvidenceWriter } from '../../src/index.js';

/** Why moto_server cannot run here, or undefined when it can. */
export function motoMissing(): string | undefined {
  const r = spawnSync('moto_server', ['--help'], { stdio: 'ignore', timeout: 30_000 });
  if (r.error)
    return `moto_server not runnable (${r.error.message}); install with pip install 'moto[server]'`;
  return r.status === 0 ? undefined : `moto_server --help exited ${r.status}`;
}

/** A running moto_server. */
export interface Moto {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts moto_server on 127.0.0.1 with a random port and waits until it listens. `env` is added to
 * the server's environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT` to turn IAM enforcement on).
 */
export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`moto_server did not start: ${text}`)), 30_000);
    const onData = (b: Buffer) => {
      text += b.toString();
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moto_server exited ${code}: ${text}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    endpoint,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
      }),
  };
}

/** Client config for moto. */
export function motoConfig(endpoint: string, region = 'us-east-1') {
  return {
    endpoint,
    region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  };
}

/** One artifact as the in-test writer stored it. */
export interface StoredArtifact {
  record: ArtifactRecord;
  body: Buffer;
}

/** An in-memory {@link AwsEvidenceWriter} that keeps everything for assertions. */
export class TestWriter implements AwsEvidenceWriter {
  readonly acquisitionId = 'acq-test-1';
  readonly artifacts = new Map<string, StoredArtifact>();
  readonly changes: TargetChange[] = [];
  readonly logs: Record<string, unknown>[] = [];
  /** Largest chunk seen, to check that exports stream in pages. */
  maxChunk = 0;
  chunks = 0;

  async writeArtifact(path: string, body: ArtifactBody, meta: ArtifactMeta): Promise<ArtifactRecord> {
    const startedAt = new Date().toISOString();
    const parts: Buffer[] = [];
    let status: ArtifactRecord['status'] = meta.status ?? 'complete';
    let reason = meta.reason;
    let details = meta.details;
    try {
      const src =
        typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
      for await (const chunk of src as AsyncIterable<Uint8Array>) {
        const b = Buffer.from(chunk);
        this.chunks++;
        this.maxChunk = Math.max(this.maxChunk, b.length);
        parts.push(b);
      }
      if (meta.finish) {
        const u = await meta.finish();
        if (u.status) status = u.status;
        if (u.reason) reason = u.reason;
        if (u.details) details = { ...details, ...u.details };
      }
    } catch (err) {
      status = 'failed';
      reason = err instanceof Error ? err.message : String(err);
    }
    const buf = Buffer.concat(parts);
    const record: ArtifactRecord = {
      path,
      requestedPath: path,
      status,
      ...(reason !== undefined ? { reason } : {}),
      stored: true,
      sha256: createHash('sha256').update(buf).digest('hex'),
      bytes: buf.length,
      source: meta.source,
      startedAt,
      finishedAt: new Date().toISOString(),
      ...(details ? { details } : {}),
      ...(meta.target ? { target: meta.target } : {}),
    };
    this.artifacts.set(path, { record, body: buf });
    return record;
  }

  async recordArtifact(
    path: string,
    meta: Parameters<AwsEvidenceWriter['recordArtifact']>[1],
  ): Promise<ArtifactRecord> {
    const now = new Date().toISOString();
    const record: ArtifactRecord = {
      path,
      requestedPath: path,
      status: meta.status,
      reason: meta.reason,
      stored: false,
      bytes: 0,
      source: meta.source,
      startedAt: now,
      finishedAt: now,
      ...(meta.details ? { details: meta.details } : {}),
    };
    this.artifacts.set(path, { record, body: Buffer.alloc(0) });
    return record;
  }

  log(event: Record<string, unknown>): void {
    this.logs.push(event);
  }

  recordChange(change: TargetChange): void {
    this.changes.push(change);
  }

  /** The JSON lines of an artifact. */
  lines(path: string): Array<Record<string, unknown>> {
    const a = this.artifacts.get(path);
    if (!a) throw new Error(`no artifact ${path}; have ${[...this.artifacts.keys()].join(', ')}`);
    return a.body
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
