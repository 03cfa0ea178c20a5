/**
 * verifyEvidence: re-hash a bundle and check it against its manifest, custody record, seal,
 * signature and sidecar.
 *
 * @module
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { ZodType } from 'zod';
import { ConfigError } from '../errors.js';
import { sealPayload, toEd25519PublicKey, verifySeal } from './seal.js';
import {
  BUNDLE_FILES,
  type Custody,
  CustodySchema,
  type JournalEntry,
  JournalEntrySchema,
  type Manifest,
  ManifestSchema,
  type Seal,
  SealSchema,
} from './types.js';

/** One finding of {@link verifyEvidence}. */
export interface VerifyProblem {
  /**
   * `modified` (bytes or size differ), `missing`, `unexpected` (file not in the manifest),
   * `invalid` (a bundle file does not parse or is inconsistent), `signature`, `sidecar`,
   * `storage` (the container itself is damaged, e.g. a truncated tar), `metadata` (S3 metadata
   * disagrees with the manifest).
   */
  code: 'modified' | 'missing' | 'unexpected' | 'invalid' | 'signature' | 'sidecar' | 'storage' | 'metadata';
  /** Bundle-relative path, when the problem concerns one file. */
  path?: string;
  /** What is wrong, for humans. */
  message: string;
}

/** What {@link verifyEvidence} found. */
export interface VerifyReport {
  /** What was verified. */
  location: string;
  /** Which reader verified it. */
  kind: 'directory' | 'tar' | 's3' | 'memory';
  /**
   * `valid`: complete and nothing wrong. `incomplete`: no finalized manifest/seal (interrupted
   * acquisition), and nothing wrong with what the journal lists. `invalid`: any problem.
   */
  status: 'valid' | 'incomplete' | 'invalid';
  /** True only for `valid`. */
  ok: boolean;
  /** True when manifest, custody record and seal are all present. */
  complete: boolean;
  /** From the manifest, or from the journal of an incomplete bundle. */
  acquisitionId?: string;
  /** SHA-256 of manifest.json as found. */
  manifestSha256?: string;
  /** SHA-256 of custody.json as found. */
  custodySha256?: string;
  /** SHA-256 of the whole bundle file (tar). */
  bundleSha256?: string;
  /** `valid`/`invalid` with a public key; `unchecked` when signed but no key was given; `absent` when unsigned. */
  signature: 'valid' | 'invalid' | 'unchecked' | 'absent';
  /** External anchors that matched: `signature`, `sidecar`, `expected-manifest-sha256`. None means only internal consistency was checked. */
  anchors: string[];
  /** The abort reason, when the journal records one. */
  aborted?: string;
  /** Number of files re-hashed. */
  checked: number;
  /** Files whose size or SHA-256 differ from the record (and bundle files that fail their checks). */
  modified: string[];
  /** Files the manifest/journal lists that are not there. */
  missing: string[];
  /** Files that are there but not listed. */
  unexpected: string[];
  /** Incomplete bundles: artifacts that were being written when the acquisition stopped (partial files, not tampering). */
  interrupted: string[];
  /** Every finding, with a message. */
  problems: VerifyProblem[];
}

/** Options of {@link verifyEvidence}. */
export interface VerifyOptions {
  /** Ed25519 public key (or PEM) to check the seal signature with. When given, an unsigned bundle is invalid. */
  publicKey?: KeyObject | string;
  /** Fail when the bundle is not signed (needs `publicKey`). */
  requireSignature?: boolean;
  /** The manifest hash the caller kept from finalize; checked when given. */
  expectedManifestSha256?: string;
  /** S3 client for `s3://` locations. */
  s3Client?: import('@aws-sdk/client-s3').S3Client;
}

/** A file inside a bundle as a reader sees it. */
export interface BundleEntry {
  path: string;
  size: number;
}

/**
 * Read access to one stored bundle. The verifier only hashes and reads; readers for each sink
 * live next to the sink.
 *
 * @internal
 */
export interface BundleReader {
  readonly kind: VerifyReport['kind'];
  readonly location: string;
  /** Every file in the bundle, bundle-relative. Problems found while listing go to `problems`. */
  list(problems: VerifyProblem[]): Promise<BundleEntry[]>;
  /** Whole content of a small file (manifest, custody, seal, journal); undefined when absent. */
  read(path: string, maxBytes: number): Promise<Buffer | undefined>;
  /** SHA-256 and size of a file; undefined when absent. */
  hash(path: string): Promise<{ sha256: string; bytes: number } | undefined>;
  /** Lines `hash  name` of the sidecar, keyed by bundle-relative name (e.g. `manifest.json`, or `*` for the whole file). */
  sidecar(): Promise<Map<string, string> | undefined>;
  /** Whole-bundle hash, when the container is one file. */
  bundleSha256?(): Promise<string | undefined>;
  /** Journal kept outside the container while it is being written (tar), when present. */
  outsideJournal?(maxBytes: number): Promise<Buffer | undefined>;
  /** Extra per-artifact checks (S3 metadata). */
  checkArtifact?(path: string, sha256: string, problems: VerifyProblem[]): Promise<void>;
}

const FINALS = new Set<string>([BUNDLE_FILES.manifest, BUNDLE_FILES.custody, BUNDLE_FILES.seal]);
const MAX_META_BYTES = 256 << 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function parseJson<T>(
  schema: ZodType<T>,
  data: Buffer,
  path: string,
  problems: VerifyProblem[],
): T | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch (e) {
    problems.push({ code: 'invalid', path, message: `${path} is not valid JSON: ${(e as Error).message}` });
    return undefined;
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    problems.push({
      code: 'invalid',
      path,
      message: `${path} does not match its schema: ${r.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    });
    return undefined;
  }
  return r.data;
}

/** Parses journal.jsonl; a torn last line (crash mid-append) is tolerated, other bad lines are problems. */
export function parseJournal(data: Buffer, problems: VerifyProblem[]): JournalEntry[] {
  const text = data.toString('utf8');
  const lines = text.split('\n');
  const torn = !text.endsWith('\n');
  const out: JournalEntry[] = [];
  lines.forEach((line, i) => {
    if (line === '') return;
    const last = i === lines.length - 1;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      if (!(last && torn)) {
        problems.push({
          code: 'invalid',
          path: BUNDLE_FILES.journal,
          message: `journal line ${i + 1} is not JSON`,
        });
      }
      return;
    }
    const r = JournalEntrySchema.safeParse(v);
    if (r.success) out.push(r.data);
    else
      problems.push({
        code: 'invalid',
        path: BUNDLE_FILES.journal,
        message: `journal line ${i + 1} is invalid`,
      });
  });
  return out;
}

/** Runs the checks over any reader. */
export async function verifyWithReader(
  reader: BundleReader,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const modified = new Set<string>();
  const missing = new Set<string>();
  const unexpected = new Set<string>();
  const interrupted = new Set<string>();
  const anchors: string[] = [];
  let signature: VerifyReport['signature'] = 'absent';
  let checked = 0;
  const publicKey = options.publicKey === undefined ? undefined : toEd25519PublicKey(options.publicKey);
  if (options.requireSignature && !publicKey) {
    throw new ConfigError(
      'requireSignature needs publicKey: pass the Ed25519 public key the bundle was signed with',
    );
  }

  const entries = await reader.list(problems);
  for (const p of problems) if (p.code === 'unexpected' && p.path) unexpected.add(p.path);
  const present = new Map(entries.map((e) => [e.path, e]));
  const bundleSha256 = reader.bundleSha256 ? await reader.bundleSha256() : undefined;

  const mBytes = present.has(BUNDLE_FILES.manifest)
    ? await reader.read(BUNDLE_FILES.manifest, MAX_META_BYTES)
    : undefined;
  const cBytes = present.has(BUNDLE_FILES.custody)
    ? await reader.read(BUNDLE_FILES.custody, MAX_META_BYTES)
    : undefined;
  const sBytes = present.has(BUNDLE_FILES.seal)
    ? await reader.read(BUNDLE_FILES.seal, MAX_META_BYTES)
    : undefined;
  const complete = mBytes !== undefined && cBytes !== undefined && sBytes !== undefined;
  const sidecar = await reader.sidecar();

  // expected: path -> { sha256, bytes }
  const expected = new Map<string, { sha256: string; bytes: number }>();
  const known = new Set<string>([BUNDLE_FILES.journal, BUNDLE_FILES.log]);
  let acquisitionId: string | undefined;
  let manifestSha256: string | undefined;
  let custodySha256: string | undefined;
  let aborted: string | undefined;

  const addExpected = (path: string, sha256: string | undefined, bytes: number, stored: boolean) => {
    if (!stored || sha256 === undefined) return;
    if (expected.has(path)) {
      problems.push({ code: 'invalid', path, message: `${path} is listed twice` });
      return;
    }
    expected.set(path, { sha256, bytes });
  };

  if (complete) {
    known.add(BUNDLE_FILES.manifest).add(BUNDLE_FILES.custody).add(BUNDLE_FILES.seal);
    manifestSha256 = sha(mBytes);
    custodySha256 = sha(cBytes);
    const manifest: Manifest | undefined = parseJson(ManifestSchema, mBytes, BUNDLE_FILES.manifest, problems);
    const custody: Custody | undefined = parseJson(CustodySchema, cBytes, BUNDLE_FILES.custody, problems);
    const seal: Seal | undefined = parseJson(SealSchema, sBytes, BUNDLE_FILES.seal, problems);
    if (manifest === undefined) modified.add(BUNDLE_FILES.manifest);
    if (custody === undefined) modified.add(BUNDLE_FILES.custody);
    if (seal === undefined) modified.add(BUNDLE_FILES.seal);
    acquisitionId = manifest?.acquisitionId ?? custody?.acquisitionId ?? seal?.acquisitionId;
    const ids = [manifest?.acquisitionId, custody?.acquisitionId, seal?.acquisitionId].filter(
      (x) => x !== undefined,
    );
    if (new Set(ids).size > 1) {
      problems.push({
        code: 'invalid',
        message: `acquisitionId differs between manifest, custody and seal: ${ids.join(', ')}`,
      });
    }
    if (seal) {
      if (seal.manifestSha256 !== manifestSha256) {
        modified.add(BUNDLE_FILES.manifest);
        problems.push({
          code: 'modified',
          path: BUNDLE_FILES.manifest,
          message: 'manifest.json does not match the hash in seal.json',
        });
      }
      if (seal.custodySha256 !== custodySha256) {
        modified.add(BUNDLE_FILES.custody);
        problems.push({
          code: 'modified',
          path: BUNDLE_FILES.custody,
          message: 'custody.json does not match the hash in seal.json',
        });
      }
      if (seal.signature) {
        if (publicKey) {
          const ok = verifySeal(
            publicKey,
            sealPayload(seal.acquisitionId, manifestSha256, custodySha256),
            seal.signature.value,
          );
          signature = ok ? 'valid' : 'invalid';
          if (ok) anchors.push('signature');
          else
            problems.push({
              code: 'signature',
              path: BUNDLE_FILES.seal,
              message:
                'the Ed25519 signature does not verify with the given public key (manifest, custody or seal changed, or a different key)',
            });
        } else signature = 'unchecked';
      } else if (publicKey) {
        signature = 'invalid';
        problems.push({
          code: 'signature',
          path: BUNDLE_FILES.seal,
          message: 'a public key was given but the bundle is not signed',
        });
      }
    }
    if (custody && custody.manifestSha256 !== manifestSha256) {
      modified.add(BUNDLE_FILES.manifest);
      problems.push({
        code: 'modified',
        path: BUNDLE_FILES.manifest,
        message: 'manifest.json does not match manifestSha256 in custody.json',
      });
    }
    if (manifest) {
      for (const a of manifest.artifacts) {
        known.add(a.path);
        addExpected(a.path, a.sha256, a.bytes, a.stored);
      }
      for (const f of manifest.bundleFiles) addExpected(f.path, f.sha256, f.bytes, true);
      const counted = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
      for (const a of manifest.artifacts) counted[a.status]++;
      if (JSON.stringify(counted) !== JSON.stringify(manifest.counts)) {
        problems.push({
          code: 'invalid',
          path: BUNDLE_FILES.manifest,
          message: 'manifest counts do not match its artifact list',
        });
      }
    }
  } else {
    for (const f of [BUNDLE_FILES.manifest, BUNDLE_FILES.custody, BUNDLE_FILES.seal]) known.add(f);
    let jBytes = present.has(BUNDLE_FILES.journal)
      ? await reader.read(BUNDLE_FILES.journal, MAX_META_BYTES)
      : undefined;
    if (jBytes === undefined && reader.outsideJournal) jBytes = await reader.outsideJournal(MAX_META_BYTES);
    if (jBytes === undefined) {
      problems.push({
        code: 'missing',
        path: BUNDLE_FILES.manifest,
        message: 'no manifest, seal or journal: this is not an eks-forensics bundle or it was emptied',
      });
      missing.add(BUNDLE_FILES.manifest);
    } else {
      const journal = parseJournal(jBytes, problems);
      const opened = new Set<string>();
      for (const e of journal) {
        if (e.type === 'begin') acquisitionId = e.acquisitionId;
        else if (e.type === 'open') opened.add(e.path);
        else if (e.type === 'artifact') {
          opened.delete(e.record.path);
          known.add(e.record.path);
          addExpected(e.record.path, e.record.sha256, e.record.bytes, e.record.stored);
        } else if (e.type === 'abort') aborted = e.reason;
      }
      for (const p of opened) {
        known.add(p);
        interrupted.add(p);
      }
      // A finalized bundle that lost manifest/custody/seal must not pass as merely incomplete.
      if (journal.some((e) => e.type === 'finalize') || sidecar !== undefined) {
        for (const f of FINALS) {
          if (!present.has(f)) {
            missing.add(f);
            problems.push({
              code: 'missing',
              path: f,
              message: `${f} is missing although the ${sidecar ? 'sidecar' : 'journal'} shows the bundle was finalized`,
            });
          }
        }
      }
      if (journal[0]?.type !== 'begin') {
        problems.push({
          code: 'invalid',
          path: BUNDLE_FILES.journal,
          message: 'journal does not start with a begin entry',
        });
      }
    }
  }

  if (options.expectedManifestSha256 !== undefined) {
    if (manifestSha256 === options.expectedManifestSha256.toLowerCase())
      anchors.push('expected-manifest-sha256');
    else {
      modified.add(BUNDLE_FILES.manifest);
      problems.push({
        code: 'modified',
        path: BUNDLE_FILES.manifest,
        message: `manifest hash ${manifestSha256 ?? '(none)'} is not the expected ${options.expectedManifestSha256}`,
      });
    }
  }

  if (sidecar && complete) {
    let matched = true;
    for (const [name, want] of sidecar) {
      const got =
        name === '*'
          ? bundleSha256
          : name === BUNDLE_FILES.manifest
            ? manifestSha256
            : name === BUNDLE_FILES.custody
              ? custodySha256
              : undefined;
      if (got !== want) {
        matched = false;
        if (name !== '*') modified.add(name);
        problems.push({
          code: 'sidecar',
          path: name === '*' ? undefined : name,
          message: `${name === '*' ? 'bundle file' : name} does not match the sidecar hash`,
        } as VerifyProblem);
      }
    }
    if (matched && sidecar.size > 0) anchors.push('sidecar');
  }

  for (const [path, want] of expected) {
    const entry = present.get(path);
    if (!entry) {
      missing.add(path);
      problems.push({
        code: 'missing',
        path,
        message: `${path} is listed with ${want.bytes} bytes but is not in the bundle`,
      });
      continue;
    }
    const got = await reader.hash(path);
    checked++;
    if (!got) {
      missing.add(path);
      problems.push({ code: 'missing', path, message: `${path} could not be read` });
    } else if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
      modified.add(path);
      problems.push({
        code: 'modified',
        path,
        message:
          got.bytes !== want.bytes
            ? `${path} has ${got.bytes} bytes, the manifest says ${want.bytes}`
            : `${path} content does not match its SHA-256`,
      });
    } else if (reader.checkArtifact) {
      await reader.checkArtifact(path, want.sha256, problems);
    }
  }
  for (const e of entries) {
    if (!expected.has(e.path) && !known.has(e.path)) {
      unexpected.add(e.path);
      problems.push({
        code: 'unexpected',
        path: e.path,
        message: `${e.path} is in the bundle but not in the ${complete ? 'manifest' : 'journal'}`,
      });
    } else if (!expected.has(e.path) && known.has(e.path) && complete && !FINALS.has(e.path)) {
      // A listed artifact that has no stored bytes (failed/skipped) must not have a file.
      unexpected.add(e.path);
      problems.push({
        code: 'unexpected',
        path: e.path,
        message: `${e.path} exists but the manifest records no stored bytes for it`,
      });
    }
  }
  for (const p of problems) {
    if (p.code === 'metadata' && p.path) modified.add(p.path);
  }

  const status: VerifyReport['status'] = problems.length > 0 ? 'invalid' : complete ? 'valid' : 'incomplete';
  return {
    location: reader.location,
    kind: reader.kind,
    status,
    ok: status === 'valid',
    complete,
    ...(acquisitionId === undefined ? {} : { acquisitionId }),
    ...(manifestSha256 === undefined ? {} : { manifestSha256 }),
    ...(custodySha256 === undefined ? {} : { custodySha256 }),
    ...(bundleSha256 === undefined ? {} : { bundleSha256 }),
    signature,
    anchors,
    ...(aborted === undefined ? {} : { aborted }),
    checked,
    modified: [...modified].sort(),
    missing: [...missing].sort(),
    unexpected: [...unexpected].sort(),
    interrupted: [...interrupted].sort(),
    problems,
  };
}

/** Parses sha256sum-format text into name → hash. */
export function parseSidecar(text: string, stripPrefix?: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (!m?.[1] || !m[2]) continue;
    let name = m[2];
    if (stripPrefix && name.startsWith(stripPrefix)) name = name.slice(stripPrefix.length);
    out.set(name, m[1]);
  }
  return out;
}
