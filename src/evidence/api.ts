/**
 * verifyEvidence entry point and JSON Schemas of the bundle files.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { type BundleSource, SourceReader } from './kit.js';
import { DirectoryReader, type MemoryBundle, MemoryReader, TarReader } from './readers.js';
import { S3Reader } from './s3-reader.js';
import { CustodySchema, JournalEntrySchema, ManifestSchema, SealSchema } from './types.js';
import { readCap, type VerifyOptions, type VerifyReport, verifyWithReader } from './verify.js';

/** Where a bundle is, for {@link eks-forensics!verifyEvidence}. */
export type EvidenceLocation =
  | string
  | {
      /** An S3 bundle. */
      s3: {
        /** Client with read access (GetObject, ListBucket, GetObjectTagging). */
        client: S3Client;
        /** Bucket name. */
        bucket: string;
        /** Key prefix of the bundle, e.g. `cases/IR-7/<acquisitionId>/`. */
        prefix: string;
      };
    }
  | {
      /** A bundle in third-party storage, read through the sink's {@link BundleSource}. */
      source: BundleSource;
    }
  | MemoryBundle;

/**
 * Re-hashes every file of a bundle and checks it against the manifest (or, for an interrupted
 * bundle, the journal), the custody record, the seal, the signature (with `publicKey`) and the
 * sidecar. Never throws for a damaged bundle: the report names every modified, missing and
 * unexpected file. Only `status: 'valid'` (`ok: true`) means intact and complete.
 *
 * `location`: a bundle folder, a `.tar`/`.tar.gz` file, `s3://bucket/prefix/<id>/` (with
 * `options.s3Client`), `{ s3: { client, bucket, prefix } }`, a MemorySink bundle, or
 * `{ source }` for a third-party sink (`eks-forensics/sink-kit`).
 *
 * @throws ConfigError for an unusable location or options (not for a bad bundle).
 * @example
 * const report = await verifyEvidence('/evidence/acq-1', { publicKey });
 * if (!report.ok) console.error(report.status, report.problems);
 */
export async function verifyEvidence(
  location: EvidenceLocation,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  if (typeof location !== 'string') {
    if ('source' in location) return verifyWithReader(new SourceReader(location.source), options);
    if ('s3' in location) {
      return verifyWithReader(
        new S3Reader(location.s3.client, location.s3.bucket, location.s3.prefix),
        options,
      );
    }
    return verifyWithReader(new MemoryReader(location), options);
  }
  const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(location);
  if (m) {
    if (!options.s3Client) throw new ConfigError('verifying an s3:// location needs options.s3Client');
    return verifyWithReader(new S3Reader(options.s3Client, m[1] ?? '', m[2] ?? ''), options);
  }
  const path = resolve(location);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (cause) {
    throw new ConfigError(`evidence location ${path} does not exist`, { cause });
  }
  if (st.isDirectory()) return verifyWithReader(new DirectoryReader(path), options);
  if (st.isFile()) return verifyWithReader(new TarReader(path, readCap(options.maxManifestBytes)), options);
  throw new ConfigError(`evidence location ${path} is neither a folder nor a tar file`);
}

/**
 * JSON Schemas (draft 2020-12, from zod 4 `z.toJSONSchema`) of manifest.json, custody.json,
 * seal.json and one journal.jsonl line, for tools in other languages.
 */
export function evidenceJsonSchemas(): Record<'manifest' | 'custody' | 'seal' | 'journalEntry', unknown> {
  return {
    manifest: z.toJSONSchema(ManifestSchema, { io: 'output' }),
    custody: z.toJSONSchema(CustodySchema, { io: 'output' }),
    seal: z.toJSONSchema(SealSchema, { io: 'output' }),
    journalEntry: z.toJSONSchema(JournalEntrySchema, { io: 'output' }),
  };
}
