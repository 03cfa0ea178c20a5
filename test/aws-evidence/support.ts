/**
 * Test support for the AWS-side evidence tests: a real `moto_server` on 127.0.0.1 (random port,
 * killed after), and a small in-memory writer implementing the bundle interface.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { AwsEvidenceWriter } from '../../src/entries/types.js';
import {
  type ArtifactBody,
  type ArtifactMeta,
  type ArtifactRecord,
  type BundleWriter,
  MemorySink,
  type TargetChange,
} from '../../src/evidence/index.js';

/** Why moto_server cannot run here, or undefined when it can. */
/**
 * An hour-aligned time `hoursAgo` hours before now. CloudWatch Logs (and moto) refuse events older
 * than 14 days or more than 2 hours ahead, so log fixtures must never use a fixed date.
 */
export function recentHour(hoursAgo = 3): number {
  return Math.floor(Date.now() / 3_600_000) * 3_600_000 - hoursAgo * 3_600_000;
}

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
  // If the worker dies without afterAll, do not leave the server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
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

/** One artifact as the bundle stored it. */
export interface StoredArtifact {
  record: ArtifactRecord;
  body: Buffer;
}

/**
 * A real {@link MemorySink} bundle writer, with copies of what went through it for assertions:
 * artifact records by requested path, changes, log events, and the chunk sizes of streamed bodies.
 */
export class TestWriter implements AwsEvidenceWriter {
  readonly sink: MemorySink;
  readonly writer: BundleWriter;
  readonly records = new Map<string, ArtifactRecord>();
  readonly changes: TargetChange[] = [];
  readonly logs: Record<string, unknown>[] = [];
  /** Largest chunk seen, to check that exports stream in pages. */
  maxChunk = 0;
  chunks = 0;

  private constructor(sink: MemorySink, writer: BundleWriter) {
    this.sink = sink;
    this.writer = writer;
  }

  /** Opens a fresh bundle (acquisition id `acq-test-1`) on its own MemorySink. */
  static async open(): Promise<TestWriter> {
    const sink = new MemorySink();
    return new TestWriter(sink, await sink.open({ acquisitionId: 'acq-test-1', caseId: 'IR-TEST' }));
  }

  get acquisitionId(): string {
    return this.writer.acquisitionId;
  }

  async writeArtifact(path: string, body: ArtifactBody, meta: ArtifactMeta): Promise<ArtifactRecord> {
    let counted: ArtifactBody = body;
    if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
      const src = body as AsyncIterable<Uint8Array>;
      const self = this;
      counted = (async function* () {
        for await (const chunk of src) {
          self.chunks++;
          self.maxChunk = Math.max(self.maxChunk, chunk.length);
          yield chunk;
        }
      })();
    }
    const record = await this.writer.writeArtifact(path, counted, meta);
    this.records.set(path, record);
    return record;
  }

  async recordArtifact(
    path: string,
    meta: Parameters<AwsEvidenceWriter['recordArtifact']>[1],
  ): Promise<ArtifactRecord> {
    const record = await this.writer.recordArtifact(path, meta);
    this.records.set(path, record);
    return record;
  }

  log(event: Record<string, unknown>): void {
    this.logs.push(event);
    this.writer.log(event);
  }

  recordChange(change: TargetChange): void {
    this.changes.push(change);
    this.writer.recordChange(change);
  }

  /** The record and stored bytes of the artifact requested at `path`. */
  artifact(path: string): StoredArtifact | undefined {
    const record = this.records.get(path);
    if (!record) return undefined;
    const files = this.sink.bundles.get(this.writer.acquisitionId)?.files;
    return { record, body: files?.get(record.path) ?? Buffer.alloc(0) };
  }

  /** The JSON lines of an artifact. */
  lines(path: string): Array<Record<string, unknown>> {
    const a = this.artifact(path);
    if (!a) throw new Error(`no artifact ${path}; have ${[...this.records.keys()].join(', ')}`);
    return a.body
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
