/**
 * Reads an S3Sink bundle for verification, and the S3 Object Lock state of its final files.
 * The S3 client module is loaded on first use.
 *
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  type BundleEntry,
  type BundleReader,
  nameInLocation,
  type ObjectLockFinding,
  parseSidecar,
  TOO_LARGE,
  type VerifyProblem,
} from './verify.js';

type S3Module = typeof import('@aws-sdk/client-s3');
let s3Module: Promise<S3Module> | undefined;
const loadS3 = (): Promise<S3Module> => {
  s3Module ??= import('@aws-sdk/client-s3');
  return s3Module;
};

function normPrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

const errName = (e: unknown) => (e as { name?: string } | undefined)?.name ?? '';

/** Reads a bundle from S3 for verification. */
export class S3Reader implements BundleReader {
  readonly kind = 's3';
  readonly location: string;
  readonly placeName: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #base: string;
  readonly #meta = new Map<string, { metadata?: Record<string, string>; versionId?: string }>();

  constructor(client: S3Client, bucket: string, prefix: string) {
    this.#client = client;
    this.#bucket = bucket;
    this.#base = normPrefix(prefix);
    this.location = `s3://${bucket}/${this.#base}`;
    this.placeName = nameInLocation(this.#base);
  }

  async list(_problems: VerifyProblem[]): Promise<BundleEntry[]> {
    const { ListObjectsV2Command } = await loadS3();
    const out: BundleEntry[] = [];
    let token: string | undefined;
    do {
      const r = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#base, ContinuationToken: token }),
      );
      for (const o of r.Contents ?? []) {
        if (o.Key) out.push({ path: o.Key.slice(this.#base.length), size: o.Size ?? 0 });
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async #get(path: string): Promise<Readable | undefined> {
    const { GetObjectCommand } = await loadS3();
    try {
      const r = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#base + path }),
      );
      this.#meta.set(path, {
        ...(r.Metadata ? { metadata: r.Metadata } : {}),
        ...(r.VersionId ? { versionId: r.VersionId } : {}),
      });
      return r.Body as Readable;
    } catch (e) {
      if (errName(e) === 'NoSuchKey') return undefined;
      throw e;
    }
  }

  async read(path: string, max: number): Promise<Buffer | typeof TOO_LARGE | undefined> {
    const body = await this.#get(path);
    if (!body) return undefined;
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > max) {
        body.destroy();
        return TOO_LARGE;
      }
      parts.push(c as Buffer);
    }
    return Buffer.concat(parts);
  }

  async hash(path: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const body = await this.#get(path);
    if (!body) return undefined;
    const h = createHash('sha256');
    let bytes = 0;
    for await (const c of body) {
      h.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
    return { sha256: h.digest('hex'), bytes };
  }

  async sidecar(): Promise<string | undefined> {
    const { GetObjectCommand } = await loadS3();
    const key = `${this.#base.replace(/\/$/, '')}.sha256`;
    try {
      const r = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      if ((r.ContentLength ?? 0) > 1 << 20) {
        (r.Body as Readable | undefined)?.destroy();
        return 'too large';
      }
      return await r.Body?.transformToString('utf8');
    } catch {
      return undefined;
    }
  }

  sidecarEntries(text: string): Map<string, string> {
    return parseSidecar(text, `${this.placeName}/`);
  }

  async checkArtifact(path: string, sha256: string, problems: VerifyProblem[]): Promise<void> {
    const m = this.#meta.get(path);
    const declared = m?.metadata?.sha256;
    if (declared !== undefined && declared !== sha256) {
      problems.push({
        code: 'metadata',
        path,
        message: `${path}: x-amz-meta-sha256 is ${declared}, the content hashes to ${sha256}`,
      });
    }
    if (m?.metadata?.['sha256-in'] === 'tag') {
      const { GetObjectTaggingCommand } = await loadS3();
      const t = await this.#client.send(
        new GetObjectTaggingCommand({
          Bucket: this.#bucket,
          Key: this.#base + path,
          ...(m.versionId ? { VersionId: m.versionId } : {}),
        }),
      );
      const tag = t.TagSet?.find((x) => x.Key === 'sha256')?.Value;
      if (tag !== sha256) {
        problems.push({
          code: 'metadata',
          path,
          message: `${path}: object tag sha256 is ${tag ?? '(missing)'}, the content hashes to ${sha256}`,
        });
      }
    }
  }

  /**
   * Object Lock protects object versions, not keys: a new version can always be put on top. So a
   * final file counts as locked only when it has exactly one version (no overwrite, no delete
   * marker), that version is the one verified, and it has retention in force or a legal hold.
   */
  async objectLock(finals: readonly string[]): Promise<ObjectLockFinding> {
    const { ListObjectVersionsCommand, HeadObjectCommand } = await loadS3();
    const files: ObjectLockFinding['files'] = {};
    const reasons: string[] = [];
    const now = Date.now();
    for (const name of finals) {
      const key = this.#base + name;
      let versions: string[] = [];
      let lastModified: string | undefined;
      let markers = 0;
      try {
        const r = await this.#client.send(
          new ListObjectVersionsCommand({ Bucket: this.#bucket, Prefix: key, MaxKeys: 50 }),
        );
        const mine = (r.Versions ?? []).filter((v) => v.Key === key);
        versions = mine.map((v) => v.VersionId ?? 'null');
        const lm = mine[0]?.LastModified;
        if (lm) lastModified = new Date(lm).toISOString();
        markers = (r.DeleteMarkers ?? []).filter((d) => d.Key === key).length;
      } catch (e) {
        reasons.push(`${name}: versions cannot be listed (${errName(e) || 'error'})`);
        continue;
      }
      const versionId = versions[0];
      const read = this.#meta.get(name)?.versionId;
      if (versions.length !== 1 || markers > 0 || versionId === undefined || versionId === 'null') {
        reasons.push(
          `${name} has ${versions.length} version(s) and ${markers} delete marker(s); exactly one locked version is needed`,
        );
        continue;
      }
      if (read !== undefined && read !== versionId) {
        reasons.push(`${name}: the version verified (${read}) is not the only stored version (${versionId})`);
        continue;
      }
      const info: ObjectLockFinding['files'][string] = {
        versionId,
        ...(lastModified ? { lastModified } : {}),
      };
      try {
        // HeadObject carries the version's lock state (needs s3:GetObjectRetention / GetObjectLegalHold).
        const h = await this.#client.send(
          new HeadObjectCommand({ Bucket: this.#bucket, Key: key, VersionId: versionId }),
        );
        if (h.ObjectLockMode) info.mode = h.ObjectLockMode;
        if (h.ObjectLockRetainUntilDate)
          info.retainUntil = new Date(h.ObjectLockRetainUntilDate).toISOString();
        info.legalHold = h.ObjectLockLegalHoldStatus === 'ON';
      } catch (e) {
        reasons.push(`${name}: the lock state cannot be read (${errName(e) || 'error'})`);
        continue;
      }
      files[name] = info;
      const retained =
        info.mode !== undefined && info.retainUntil !== undefined && Date.parse(info.retainUntil) > now;
      if (!retained && !info.legalHold) reasons.push(`${name} has no retention in force and no legal hold`);
    }
    return reasons.length === 0
      ? { locked: true, files }
      : { locked: false, reason: reasons.join('; '), files };
  }
}
