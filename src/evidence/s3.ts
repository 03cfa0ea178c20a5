/**
 * S3Sink: a bundle as objects under `s3://bucket/prefix/<acquisitionId>/`.
 *
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { ConfigError, EvidenceError } from '../errors.js';
import { redactSecrets } from '../util/index.js';
import { type ArtifactStore, type BundleBackend, type FailedStore, StreamingBundleWriter } from './bundle.js';
import { closeStream, createExclusive, writeTo } from './fsutil.js';
import {
  type ArtifactMeta,
  type ArtifactRecord,
  BUNDLE_FILES,
  type BundleInit,
  type BundleWriter,
  type EvidenceSink,
} from './types.js';

/** The S3 commands, loaded when a bundle first talks to S3 (not when the package is imported). */
const s3sdk = () => import('@aws-sdk/client-s3');

/** Minimum S3 multipart part size (5 MiB). */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;

/** SSE-S3 (AES256) encryption. */
export interface S3EncryptionS3 {
  /** SSE-S3. */
  type: 'AES256';
}

/** SSE-KMS encryption. */
export interface S3EncryptionKms {
  /** SSE-KMS. */
  type: 'aws:kms';
  /** KMS key id or ARN; the bucket/account default key when omitted. */
  kmsKeyId?: string;
  /** Use an S3 Bucket Key to cut KMS calls. */
  bucketKeyEnabled?: boolean;
}

/** Server-side encryption for every object of a bundle. */
export type S3Encryption = S3EncryptionS3 | S3EncryptionKms;

/** Object Lock (WORM) settings applied to every object of a bundle. The bucket must have Object Lock enabled. */
export interface S3ObjectLock {
  /** `GOVERNANCE` or `COMPLIANCE` retention; omit for legal hold only. */
  mode?: 'GOVERNANCE' | 'COMPLIANCE';
  /** Retain until this date, or for this many days from the upload. */
  retainUntil?: Date;
  /** Alternative to `retainUntil`. */
  retainDays?: number;
  /** Put a legal hold on every object. */
  legalHold?: boolean;
}

/** Options of {@link S3Sink}. */
export interface S3SinkOptions {
  /** The S3 client to use (region, credentials, endpoint are the caller's). */
  client: S3Client;
  /** Bucket name. */
  bucket: string;
  /** Key prefix; bundles go to `<prefix><acquisitionId>/`. A trailing `/` is added when missing. */
  prefix?: string;
  /** Multipart part size in bytes (≥ 5 MiB). Default 8 MiB. Memory per artifact ≈ partSize × (queueSize + 1). */
  partSize?: number;
  /** Parts uploaded in parallel per artifact. Default 4. */
  queueSize?: number;
  /** Server-side encryption for every object. Default: the bucket's default encryption. */
  encryption?: S3Encryption;
  /** Object Lock (WORM) for every object; the bucket must have Object Lock enabled. */
  objectLock?: S3ObjectLock;
  /** Send S3 SHA-256 checksums (full-object for single PUTs, per part for multipart). Default true. */
  checksums?: boolean;
}

type ResolvedS3Options = S3SinkOptions & { partSize: number; queueSize: number; checksums: boolean };

/** The innermost error of a chain of causes / AggregateErrors. */
function rootCause(e: unknown): unknown {
  let cur = e;
  for (let i = 0; i < 8; i++) {
    if (cur instanceof AggregateError && cur.errors.length > 0) cur = cur.errors[0];
    else if (cur instanceof Error && cur.name === 'AbortError' && cur.cause !== undefined) cur = cur.cause;
    else break;
  }
  return cur;
}

const errText = (e: unknown) => redactSecrets(e instanceof Error ? `${e.name}: ${e.message}` : String(e));

class S3Backend implements BundleBackend {
  readonly kind = 's3';
  readonly location: string;
  readonly #o: ResolvedS3Options;
  readonly #base: string;
  readonly #sidecarKey: string;
  readonly #tmp: string;
  readonly #journal: Buffer[] = [];
  readonly #journalHash: Hash = createHash('sha256');
  #journalBytes = 0;
  readonly #log: WriteStream;
  readonly #logHash: Hash = createHash('sha256');
  #logBytes = 0;
  #auxClosed = false;

  constructor(o: ResolvedS3Options, base: string, tmp: string, log: WriteStream) {
    this.#o = o;
    this.#base = base;
    this.#sidecarKey = `${base.replace(/\/$/, '')}.sha256`;
    this.location = `s3://${o.bucket}/${base}`;
    this.#tmp = tmp;
    this.#log = log;
  }

  #common(meta?: Pick<ArtifactMeta, 'contentType'>): Partial<PutObjectCommandInput> {
    const o = this.#o;
    const p: Partial<PutObjectCommandInput> = {};
    if (meta?.contentType) p.ContentType = meta.contentType;
    if (o.encryption?.type === 'AES256') p.ServerSideEncryption = 'AES256';
    else if (o.encryption?.type === 'aws:kms') {
      p.ServerSideEncryption = 'aws:kms';
      if (o.encryption.kmsKeyId) p.SSEKMSKeyId = o.encryption.kmsKeyId;
      if (o.encryption.bucketKeyEnabled !== undefined) p.BucketKeyEnabled = o.encryption.bucketKeyEnabled;
    }
    const lock = o.objectLock;
    if (lock?.mode) {
      p.ObjectLockMode = lock.mode;
      const until = lock.retainUntil ?? new Date(Date.now() + (lock.retainDays ?? 1) * 86_400_000);
      // Whole seconds: some S3 implementations drop a retain-until date with milliseconds.
      p.ObjectLockRetainUntilDate = new Date(Math.ceil(until.getTime() / 1000) * 1000);
    }
    if (lock?.legalHold) p.ObjectLockLegalHoldStatus = 'ON';
    return p;
  }

  async #put(
    key: string,
    body: Buffer,
    contentType?: string,
  ): Promise<{ versionId?: string; etag?: string; checksum?: string }> {
    const { PutObjectCommand } = await s3sdk();
    const hex = createHash('sha256').update(body).digest();
    const out = await this.#o.client.send(
      new PutObjectCommand({
        Bucket: this.#o.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        Metadata: { sha256: hex.toString('hex') },
        ...(this.#o.checksums
          ? { ChecksumAlgorithm: 'SHA256' as const, ChecksumSHA256: hex.toString('base64') }
          : { ContentMD5: createHash('md5').update(body).digest('base64') }),
        ...this.#common(contentType ? { contentType } : undefined),
      }),
    );
    return {
      ...(out.VersionId ? { versionId: out.VersionId } : {}),
      ...(out.ETag ? { etag: out.ETag } : {}),
      ...(out.ChecksumSHA256 ? { checksum: out.ChecksumSHA256 } : {}),
    };
  }

  /**
   * Re-applies Object Lock to a completed multipart object. S3 honours the lock headers of
   * CreateMultipartUpload; some S3-compatible stores do not, so the lock is set again explicitly.
   */
  async #relock(key: string, versionId: string | undefined): Promise<void> {
    const lock = this.#o.objectLock;
    if (!lock) return;
    const { PutObjectLegalHoldCommand, PutObjectRetentionCommand } = await s3sdk();
    const c = this.#common();
    const v = versionId ? { VersionId: versionId } : {};
    if (c.ObjectLockMode && c.ObjectLockRetainUntilDate) {
      await this.#o.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.#o.bucket,
          Key: key,
          ...v,
          Retention: { Mode: c.ObjectLockMode, RetainUntilDate: c.ObjectLockRetainUntilDate },
        }),
      );
    }
    if (lock.legalHold) {
      await this.#o.client.send(
        new PutObjectLegalHoldCommand({
          Bucket: this.#o.bucket,
          Key: key,
          ...v,
          LegalHold: { Status: 'ON' },
        }),
      );
    }
  }

  /** Aborts every multipart upload left for `key` (ours; the key is unique to this bundle). */
  async #abortAll(key: string, uploadId: string | undefined): Promise<void> {
    const { client, bucket } = this.#o;
    const { AbortMultipartUploadCommand, ListMultipartUploadsCommand } = await s3sdk();
    if (uploadId) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch(() => {});
    }
    const list = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    for (const u of list.Uploads ?? []) {
      if (u.Key === key && u.UploadId) {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }),
        );
      }
    }
  }

  async openArtifact(path: string, meta: ArtifactMeta): Promise<ArtifactStore> {
    const [{ PutObjectTaggingCommand }, { Upload }] = await Promise.all([
      s3sdk(),
      import('@aws-sdk/lib-storage'),
    ]);
    const key = this.#base + path;
    const o = this.#o;
    const chunks: Buffer[] = [];
    let buffered = 0;
    let body: PassThrough | undefined;
    let upload: Upload | undefined;
    let done: Promise<unknown> | undefined;
    let uploadError: unknown;
    const start = (): Promise<void> | undefined => {
      body = new PassThrough({ highWaterMark: 1 << 20 });
      upload = new Upload({
        client: o.client,
        partSize: o.partSize,
        queueSize: o.queueSize,
        leavePartsOnError: true, // we abort explicitly (and check) below
        params: {
          Bucket: o.bucket,
          Key: key,
          Body: body,
          Metadata: { 'sha256-in': 'tag' },
          ...(o.checksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
          ...this.#common(meta),
        },
      });
      done = upload.done().catch((e: unknown) => {
        uploadError ??= e;
        body?.destroy(e instanceof Error ? e : new Error(String(e)));
        throw e;
      });
      done.catch(() => {});
      return writeTo(body, Buffer.concat(chunks.splice(0)));
    };
    const finishMultipart = async (sha256: string): Promise<NonNullable<ArtifactRecord['storage']>> => {
      body?.end();
      const res = (await done) as { VersionId?: string; ETag?: string; ChecksumSHA256?: string };
      await this.#relock(key, res.VersionId);
      await o.client.send(
        new PutObjectTaggingCommand({
          Bucket: o.bucket,
          Key: key,
          ...(res.VersionId ? { VersionId: res.VersionId } : {}),
          Tagging: { TagSet: [{ Key: 'sha256', Value: sha256 }] },
        }),
      );
      return {
        s3: {
          bucket: o.bucket,
          key,
          multipart: true,
          ...(res.VersionId ? { versionId: res.VersionId } : {}),
          ...(res.ETag ? { etag: res.ETag } : {}),
          ...(res.ChecksumSHA256 ? { checksumSha256: res.ChecksumSHA256 } : {}),
        },
      };
    };
    const finishSingle = async (): Promise<NonNullable<ArtifactRecord['storage']>> => {
      const r = await this.#put(key, Buffer.concat(chunks), meta.contentType);
      return {
        s3: {
          bucket: o.bucket,
          key,
          multipart: false,
          ...(r.versionId ? { versionId: r.versionId } : {}),
          ...(r.etag ? { etag: r.etag } : {}),
          ...(r.checksum ? { checksumSha256: r.checksum } : {}),
        },
      };
    };
    return {
      write(chunk: Buffer): Promise<void> | undefined {
        if (uploadError !== undefined) return Promise.reject(uploadError);
        if (!body) {
          chunks.push(chunk);
          buffered += chunk.length;
          return buffered > o.partSize ? start() : undefined;
        }
        return writeTo(body, chunk);
      },
      async end(sha256: string) {
        return { storage: body ? await finishMultipart(sha256) : await finishSingle() };
      },
      fail: async (_e: unknown, sha256: string, bytes: number, producer: boolean): Promise<FailedStore> => {
        if (producer && uploadError === undefined) {
          try {
            if (body) await finishMultipart(sha256);
            else await finishSingle();
            return { kept: true, sha256, bytes };
          } catch {
            // fall through to abort
          }
        }
        if (upload && !producer) {
          // lib-storage may tear down the body stream just before done() rejects with the real cause.
          await Promise.race([done?.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        }
        const cause = uploadError ?? _e;
        if (upload) {
          body?.destroy();
          await upload.abort().catch(() => {});
          await done?.catch(() => {});
          await this.#abortAll(key, upload.uploadId);
        }
        return {
          kept: false,
          reason: `S3 upload of ${key} failed and was aborted: ${errText(rootCause(cause))}`,
        };
      },
    };
  }

  async appendJournal(line: string): Promise<void> {
    const buf = Buffer.from(line, 'utf8');
    this.#journal.push(buf);
    this.#journalHash.update(buf);
    this.#journalBytes += buf.length;
    await this.#put(this.#base + BUNDLE_FILES.journal, Buffer.concat(this.#journal), 'application/x-ndjson');
  }

  appendLog(line: string): void {
    if (this.#auxClosed) return;
    const buf = Buffer.from(line, 'utf8');
    this.#logHash.update(buf);
    this.#logBytes += buf.length;
    this.#log.write(buf);
  }

  async #uploadLog(): Promise<void> {
    await closeStream(this.#log);
    const file = join(this.#tmp, BUNDLE_FILES.log);
    const size = (await stat(file)).size;
    const key = this.#base + BUNDLE_FILES.log;
    if (size <= this.#o.partSize) {
      await this.#put(key, await readFile(file), 'application/x-ndjson');
      return;
    }
    const { Upload } = await import('@aws-sdk/lib-storage');
    const up = new Upload({
      client: this.#o.client,
      partSize: this.#o.partSize,
      queueSize: this.#o.queueSize,
      leavePartsOnError: true,
      params: {
        Bucket: this.#o.bucket,
        Key: key,
        Body: createReadStream(file) as Readable,
        ...(this.#o.checksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
        ...this.#common({ contentType: 'application/x-ndjson' }),
      },
    });
    try {
      const res = await up.done();
      await this.#relock(key, res.VersionId);
    } catch (e) {
      await this.#abortAll(key, up.uploadId).catch(() => {});
      throw e;
    }
  }

  async closeAux() {
    this.#auxClosed = true;
    await this.#uploadLog();
    return {
      journal: { sha256: this.#journalHash.digest('hex'), bytes: this.#journalBytes },
      log: { sha256: this.#logHash.digest('hex'), bytes: this.#logBytes },
    };
  }

  async putFinal(name: string, data: Buffer): Promise<void> {
    await this.#put(this.#base + name, data, 'application/json');
  }

  async complete(final: { manifestSha256: string; custodySha256: string }) {
    await this.#put(
      this.#sidecarKey,
      Buffer.from(
        `${final.manifestSha256}  ${BUNDLE_FILES.manifest}\n${final.custodySha256}  ${BUNDLE_FILES.custody}\n`,
      ),
      'text/plain',
    );
    await rm(this.#tmp, { recursive: true, force: true });
    return { sidecar: `s3://${this.#o.bucket}/${this.#sidecarKey}` };
  }

  async abandon(): Promise<void> {
    if (!this.#auxClosed) {
      this.#auxClosed = true;
      await this.#uploadLog().catch(() => {});
    }
    await rm(this.#tmp, { recursive: true, force: true });
  }
}

function normPrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  const p = prefix.replace(/^\/+/, '');
  return p.endsWith('/') ? p : `${p}/`;
}

/**
 * Writes each bundle as objects under `s3://<bucket>/<prefix><acquisitionId>/`. Artifacts stream
 * straight to S3: up to one part is buffered; an artifact that fits is one PUT with its SHA-256 in
 * `x-amz-meta-sha256` and S3's full-object `x-amz-checksum-sha256` check; larger ones go through a
 * multipart upload (`@aws-sdk/lib-storage`) with per-part SHA-256 checksums and the whole-object
 * SHA-256 put in the object tag `sha256` once known. A failed upload is aborted explicitly
 * (AbortMultipartUpload, then ListMultipartUploads to make sure none is left) and recorded as a
 * failed artifact; the rest of the bundle goes on. journal.jsonl is re-PUT after every entry. The
 * sidecar `<prefix><acquisitionId>.sha256` holds the manifest and custody hashes.
 */
export class S3Sink implements EvidenceSink {
  /** Always `s3`. */
  readonly kind = 's3';
  readonly #o: ResolvedS3Options;

  constructor(options: S3SinkOptions) {
    const partSize = options.partSize ?? 8 * 1024 * 1024;
    if (partSize < S3_MIN_PART_SIZE)
      throw new ConfigError(`partSize must be at least ${S3_MIN_PART_SIZE} bytes (S3's minimum)`);
    const queueSize = options.queueSize ?? 4;
    if (!Number.isInteger(queueSize) || queueSize < 1)
      throw new ConfigError('queueSize must be a positive integer');
    if (!options.bucket) throw new ConfigError('bucket is required');
    const lock = options.objectLock;
    if (lock?.mode && !lock.retainUntil && !lock.retainDays) {
      throw new ConfigError('objectLock.mode needs retainUntil or retainDays');
    }
    this.#o = {
      ...options,
      prefix: normPrefix(options.prefix),
      partSize,
      queueSize,
      checksums: options.checksums ?? true,
    };
  }

  /** Opens a bundle; rejects with EvidenceError when objects exist under its prefix already. */
  async open(init: BundleInit = {}): Promise<BundleWriter> {
    const { acquisitionId, name } = StreamingBundleWriter.prepare(init);
    const base = `${this.#o.prefix ?? ''}${name}/`;
    let existing: number;
    const { ListObjectsV2Command } = await s3sdk();
    try {
      const r = await this.#o.client.send(
        new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: base, MaxKeys: 1 }),
      );
      existing = r.KeyCount ?? r.Contents?.length ?? 0;
    } catch (cause) {
      throw new EvidenceError(
        `cannot list s3://${this.#o.bucket}/${base}: ${errText(cause)}; check the bucket and permissions`,
        {
          cause,
        },
      );
    }
    if (existing > 0) {
      throw new EvidenceError(
        `s3://${this.#o.bucket}/${base} already holds objects; use a new acquisitionId`,
      );
    }
    const tmp = await mkdtemp(join(tmpdir(), 'eksf-s3-'));
    const log = await createExclusive(join(tmp, BUNDLE_FILES.log), 64 * 1024);
    log.on('error', () => {});
    try {
      return await StreamingBundleWriter.start(new S3Backend(this.#o, base, tmp, log), acquisitionId, init);
    } catch (cause) {
      log.destroy();
      await rm(tmp, { recursive: true, force: true });
      throw new EvidenceError(
        `cannot start bundle s3://${this.#o.bucket}/${base}: ${errText(cause)}; check bucket permissions, Object Lock and encryption settings`,
        { cause },
      );
    }
  }
}
