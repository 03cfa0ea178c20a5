/**
 * The sweep's records in S3, beside its bundles:
 *
 * ```
 * <prefix>sweeps/<sweepId>/sweep.json                        what was planned
 * <prefix>sweeps/<sweepId>/enqueue.json                      what reached the queue
 * <prefix>sweeps/<sweepId>/targets/<acqId>/attempt-<n>.json  one per attempt (running → end state)
 * <prefix>sweeps/<sweepId>/targets/<acqId>/final.json        the committed attempt (create-once)
 * <prefix>sweeps/<sweepId>/targets/<acqId>/dead-letter.json  why the target was given up
 * <prefix>sweeps/<sweepId>/bundles/<acqId>.a<n>/…            the S3Sink bundles
 * ```
 *
 * @module
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { EvidenceError, ValidationError } from '../errors.js';

/** Where a sweep keeps its records and bundles. */
export interface SweepStore {
  /** S3 client (region, credentials, endpoint are the caller's). */
  client: S3Client;
  /** Bucket. */
  bucket: string;
  /** Key prefix (a trailing `/` is added). Default none. */
  prefix?: string | undefined;
}

type S3Module = typeof import('@aws-sdk/client-s3');
let s3mod: Promise<S3Module> | undefined;
/** @internal */
export const loadS3 = (): Promise<S3Module> => {
  s3mod ??= import('@aws-sdk/client-s3');
  return s3mod;
};

/** Most bytes read back from one record (the sweep manifest may be larger). */
const MAX_RECORD_BYTES = 1024 * 1024;
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

function normPrefix(p: string | undefined): string {
  if (!p) return '';
  const s = p.replace(/^\/+/, '');
  return s.endsWith('/') ? s : `${s}/`;
}

const errName = (e: unknown): string => (e as { name?: string })?.name ?? '';
const status = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** Key layout and typed record access for one sweep. @internal */
export class SweepKeys {
  readonly root: string;
  constructor(
    readonly store: SweepStore,
    readonly sweepId: string,
  ) {
    this.root = `${normPrefix(store.prefix)}sweeps/${sweepId}/`;
  }
  get manifest(): string {
    return `${this.root}sweep.json`;
  }
  get enqueue(): string {
    return `${this.root}enqueue.json`;
  }
  get targets(): string {
    return `${this.root}targets/`;
  }
  get bundles(): string {
    return `${this.root}bundles/`;
  }
  target(acqId: string): string {
    return `${this.targets}${acqId}/`;
  }
  attempt(acqId: string, n: number): string {
    return `${this.target(acqId)}attempt-${n}.json`;
  }
  final(acqId: string): string {
    return `${this.target(acqId)}final.json`;
  }
  deadLetter(acqId: string): string {
    return `${this.target(acqId)}dead-letter.json`;
  }
  bundlePrefix(bundleId: string): string {
    return `${this.bundles}${bundleId}/`;
  }
  bundleLocation(bundleId: string): string {
    return `s3://${this.store.bucket}/${this.bundlePrefix(bundleId)}`;
  }
}

/**
 * PUTs a JSON record. With `create`, only when the key does not exist yet (S3 conditional write,
 * `If-None-Match: *`): resolves `false` when it does. @internal
 */
export async function putJson(
  store: SweepStore,
  key: string,
  value: unknown,
  options: { create?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<boolean> {
  const { PutObjectCommand } = await loadS3();
  const body = Buffer.from(`${JSON.stringify(value, null, 1)}\n`, 'utf8');
  try {
    await store.client.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: 'application/json',
        ...(options.create ? { IfNoneMatch: '*' } : {}),
      }),
      options.signal ? { abortSignal: options.signal } : {},
    );
    return true;
  } catch (e) {
    if (options.create && (errName(e) === 'PreconditionFailed' || status(e) === 412)) return false;
    // 409 ConditionalRequestConflict: a concurrent conditional write is in progress; the other wins
    if (options.create && status(e) === 409) return false;
    throw new EvidenceError(
      `cannot write s3://${store.bucket}/${key}: ${(e as Error)?.message ?? String(e)}`,
      {
        cause: e,
      },
    );
  }
}

async function readBounded(body: Readable, max: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      return undefined;
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/**
 * Reads and validates a JSON record: `undefined` when absent.
 *
 * @throws {ValidationError} when it is too large, not JSON or not of the schema.
 * @internal
 */
export async function getJson<S extends z.ZodType>(
  store: SweepStore,
  key: string,
  schema: S,
  options: { manifest?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<z.infer<S> | undefined> {
  const { GetObjectCommand } = await loadS3();
  let body: Readable;
  try {
    const r = await store.client.send(
      new GetObjectCommand({ Bucket: store.bucket, Key: key }),
      options.signal ? { abortSignal: options.signal } : {},
    );
    body = r.Body as Readable;
  } catch (e) {
    if (errName(e) === 'NoSuchKey' || status(e) === 404) return undefined;
    throw new EvidenceError(
      `cannot read s3://${store.bucket}/${key}: ${(e as Error)?.message ?? String(e)}`,
      {
        cause: e,
      },
    );
  }
  const max = options.manifest ? MAX_MANIFEST_BYTES : MAX_RECORD_BYTES;
  const buf = await readBounded(body, max);
  if (!buf)
    throw new ValidationError(`s3://${store.bucket}/${key} is larger than ${max} bytes; not a fleet record`);
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8'));
  } catch (cause) {
    throw new ValidationError(`s3://${store.bucket}/${key} is not JSON`, { cause });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError(`s3://${store.bucket}/${key} is not a valid fleet record`, {
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return parsed.data;
}

/** True when an object exists. @internal */
export async function exists(store: SweepStore, key: string, signal?: AbortSignal): Promise<boolean> {
  const { HeadObjectCommand } = await loadS3();
  try {
    await store.client.send(
      new HeadObjectCommand({ Bucket: store.bucket, Key: key }),
      signal ? { abortSignal: signal } : {},
    );
    return true;
  } catch (e) {
    if (errName(e) === 'NotFound' || errName(e) === 'NoSuchKey' || status(e) === 404) return false;
    throw new EvidenceError(
      `cannot read s3://${store.bucket}/${key}: ${(e as Error)?.message ?? String(e)}`,
      {
        cause: e,
      },
    );
  }
}

/** Every key under a prefix (paginated). @internal */
export async function listKeys(store: SweepStore, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const { ListObjectsV2Command } = await loadS3();
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await store.client.send(
      new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix, ContinuationToken: token }),
      signal ? { abortSignal: signal } : {},
    );
    for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}
