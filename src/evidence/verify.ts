/**
 * verifyEvidence: re-hash a bundle and check it against its manifest, journal, custody record,
 * seal, and the external anchors the caller supplies (pinned key, expected manifest hash, a
 * sidecar kept elsewhere, S3 Object Lock, an RFC 3161 timestamp).
 *
 * @module
 */
import { createHash, type KeyObject } from 'node:crypto';
import { type ZodType, z } from 'zod';
import { ConfigError } from '../errors.js';
import { collisionKey, sanitizeBundlePath } from './paths.js';
import { publicKeyFingerprint, sealPayload, toEd25519PublicKey, verifySeal } from './seal.js';
import { TIMESTAMP_FILE, type TimestampCheck, timestampImprint, verifyTimestampToken } from './tsa.js';
import {
  type ArtifactRecord,
  ArtifactRecordSchema,
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

/** One finding of {@link eks-forensics!verifyEvidence}. */
export interface VerifyProblem {
  /**
   * `modified` (bytes or size differ), `missing`, `unexpected` (file not in the manifest),
   * `invalid` (a bundle file does not parse or is inconsistent), `signature`, `sidecar`,
   * `storage` (the container itself is damaged, e.g. a truncated tar), `metadata` (S3 metadata
   * disagrees with the manifest), `identity` (the acquisition id does not match the place the
   * bundle is in, or its recorded sink location), `journal` (the journal of a finalized bundle
   * disagrees with its manifest), `path` (a path the writer could never have produced),
   * `too-large` (a bundle file exceeds the verifier's size bound), `timestamp` (the RFC 3161
   * token does not verify), `object-lock` (S3 Object Lock was required and is not in force).
   */
  code:
    | 'modified'
    | 'missing'
    | 'unexpected'
    | 'invalid'
    | 'signature'
    | 'sidecar'
    | 'storage'
    | 'metadata'
    | 'identity'
    | 'journal'
    | 'path'
    | 'too-large'
    | 'timestamp'
    | 'object-lock';
  /** Bundle-relative path, when the problem concerns one file. */
  path?: string;
  /** What is wrong, for humans. */
  message: string;
}

/**
 * Something outside the bundle's reach that the verdict rests on:
 * `signature` (Ed25519 seal signature by a key the caller pinned), `expected-manifest-sha256`
 * (the manifest hash the caller kept from the acquisition report), `sidecar` (a sidecar the caller
 * supplied from elsewhere), `object-lock` (S3 Object Lock retention or legal hold on the single
 * version of manifest.json, custody.json and seal.json, read from the service), `rfc3161`
 * (a timestamp token over the manifest hash, signed by the TSA certificate the caller pinned).
 */
export type VerifyAnchor = 'signature' | 'expected-manifest-sha256' | 'sidecar' | 'object-lock' | 'rfc3161';

/** What {@link eks-forensics!verifyEvidence} found. */
export interface VerifyReport {
  /** What was verified. */
  location: string;
  /** Which reader verified it. */
  kind: 'directory' | 'tar' | 's3' | 'memory' | 'custom';
  /**
   * `valid`: complete, nothing wrong, and at least one external anchor matched (or the caller
   * passed `acceptUnanchored`). `unanchored`: complete and internally consistent, but nothing
   * outside the bundle vouches for it, so whoever could write the bundle could have rewritten it
   * consistently. `incomplete`: no finalized manifest/seal (interrupted acquisition), and nothing
   * wrong with what the journal lists. `invalid`: any problem.
   */
  status: 'valid' | 'unanchored' | 'incomplete' | 'invalid';
  /** True only for `valid`. */
  ok: boolean;
  /** True when at least one external anchor matched; see {@link VerifyReport.anchors}. */
  anchored: boolean;
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
  /** External anchors that matched. Empty means only internal consistency was checked. */
  anchors: VerifyAnchor[];
  /**
   * Internal consistency checks that passed (not anchors): `seal`, `custody`, `journal`,
   * `location` (id bound to the place), `sidecar-beside-bundle`, `s3-metadata`.
   */
  consistency: string[];
  /** The RFC 3161 timestamp, when the bundle carries one and it was checked against a pinned TSA certificate. */
  timestamp?: TimestampCheck;
  /** S3: the Object Lock state of manifest.json, custody.json and seal.json as read from the service. */
  objectLock?: ObjectLockFinding;
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

/** Options of {@link eks-forensics!verifyEvidence}. */
export interface VerifyOptions {
  /**
   * Ed25519 public key(s) (KeyObject or PEM) to check the seal signature with: one key or a key
   * set (the signature must verify with one of them). When given, an unsigned bundle is invalid.
   */
  publicKey?: KeyObject | string | ReadonlyArray<KeyObject | string>;
  /** Fail when the bundle is not signed (needs `publicKey`). */
  requireSignature?: boolean;
  /** The manifest hash the caller kept from finalize; checked when given. */
  expectedManifestSha256?: string;
  /**
   * Text of a sidecar (sha256sum format, as the sink wrote it) that the caller kept somewhere the
   * bundle's writer cannot reach; an anchor when it matches. A sidecar found beside the bundle is
   * only a consistency check.
   */
  sidecar?: string;
  /**
   * TSA certificate(s) (PEM) to check the bundle's RFC 3161 timestamp token with: the TSA's own
   * certificate or the CA that issued it. When given, a bundle without a valid token is invalid.
   */
  tsaCertificate?: string | readonly string[];
  /**
   * S3 only: require S3 Object Lock (retention in force or a legal hold) on the single version of
   * manifest.json, custody.json and seal.json. Without it, Object Lock is still reported as an
   * anchor when found.
   */
  requireObjectLock?: boolean;
  /**
   * Report an intact bundle with no external anchor as `valid` (with `anchored: false`) instead of
   * `unanchored`. Only for callers that check `anchored` themselves.
   */
  acceptUnanchored?: boolean;
  /** Largest manifest.json accepted, in bytes (peak memory is about 100 MiB + 7× this). Default 16 MiB (about 40 000 artifacts). */
  maxManifestBytes?: number;
  /** S3 client for `s3://` locations. */
  s3Client?: import('@aws-sdk/client-s3').S3Client;
}

/** A file inside a bundle as a reader sees it. */
export interface BundleEntry {
  path: string;
  size: number;
}

/** What {@link BundleReader.read} returns for a file larger than asked. */
export const TOO_LARGE = Symbol('too-large');

/** Object Lock facts read from S3 for the final files. */
export interface ObjectLockFinding {
  /** True when every final file has one version and that version is locked now. */
  locked: boolean;
  /** Why not, when not. */
  reason?: string;
  /**
   * Per final file: version id, when it was stored, retention mode (`GOVERNANCE` can be lifted by a
   * principal with s3:BypassGovernanceRetention; `COMPLIANCE` by nobody), retain-until, legal hold.
   */
  files: Record<
    string,
    { versionId?: string; lastModified?: string; mode?: string; retainUntil?: string; legalHold?: boolean }
  >;
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
  /** The bundle name the place implies: folder name, tar top folder, last component of the S3 prefix. */
  readonly placeName: string;
  /** Every file in the bundle, bundle-relative (not yet validated). Problems found while listing go to `problems`. */
  list(problems: VerifyProblem[]): Promise<BundleEntry[]>;
  /** Whole content of a small file; `TOO_LARGE` when over `maxBytes`; undefined when absent or unreadable. */
  read(path: string, maxBytes: number): Promise<Buffer | typeof TOO_LARGE | undefined>;
  /** SHA-256 and size of a file; undefined when absent. */
  hash(path: string): Promise<{ sha256: string; bytes: number } | undefined>;
  /** Text of the sidecar found beside the bundle, if any. */
  sidecar(): Promise<string | undefined>;
  /** Interprets sidecar text: bundle-relative name → hash (`*` for the whole bundle file). */
  sidecarEntries(text: string): Map<string, string>;
  /** Whole-bundle hash, when the container is one file. */
  bundleSha256?(): Promise<string | undefined>;
  /** Journal kept outside the container while it is being written (tar), when present. */
  outsideJournal?(maxBytes: number): Promise<Buffer | typeof TOO_LARGE | undefined>;
  /** Extra per-artifact checks (S3 metadata). */
  checkArtifact?(path: string, sha256: string, problems: VerifyProblem[]): Promise<void>;
  /** Object Lock state of the final files, read from the storage service. */
  objectLock?(finals: readonly string[]): Promise<ObjectLockFinding>;
}

const FINALS = [BUNDLE_FILES.manifest, BUNDLE_FILES.custody, BUNDLE_FILES.seal] as const;
const FINAL_SET = new Set<string>(FINALS);
const TOP_FILES = new Set<string>([...Object.values(BUNDLE_FILES), TIMESTAMP_FILE]);
const MAX_CUSTODY_BYTES = 16 << 20;
const MAX_SEAL_BYTES = 64 << 10;
const MAX_TOKEN_BYTES = 256 << 10;
const DEFAULT_MAX_MANIFEST = 16 << 20;
/** The journal may be this much larger than the manifest (it also holds `open` lines). */
export const journalLimit = (maxManifest: number): number => maxManifest * 2;
/** The size bound of each of the bundle's own files, for readers that must buffer them (tar). */
export const readCap =
  (maxManifest: number | undefined) =>
  (name: string): number => {
    const m = maxManifest ?? DEFAULT_MAX_MANIFEST;
    if (name === BUNDLE_FILES.manifest) return m;
    if (name === BUNDLE_FILES.journal) return journalLimit(m);
    if (name === BUNDLE_FILES.custody) return MAX_CUSTODY_BYTES;
    if (name === BUNDLE_FILES.seal) return MAX_SEAL_BYTES;
    return MAX_TOKEN_BYTES;
  };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * True when `path` is exactly what the writer produces: sanitized (no `..`, no leading `/`, no
 * empty components, no control or invisible characters, NFC) or one of the bundle's own files.
 */
export function isBundlePath(path: string): boolean {
  if (TOP_FILES.has(path)) return true;
  try {
    return sanitizeBundlePath(path) === path;
  } catch {
    return false;
  }
}

/** The bundle name inside a location string (`…/<name>`, `…/<name>.tar.gz`, `s3://b/p/<name>/`, `memory://<name>`). */
export function nameInLocation(location: string): string {
  const parts = location.split(/[\\/]+/).filter((p) => p !== '');
  const last = parts[parts.length - 1] ?? '';
  return last.replace(/\.(tar\.gz|tgz|tar)$/, '');
}

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

/**
 * Parses journal.jsonl line by line. A torn last line (crash mid-append) is tolerated unless
 * `strict` (a finalized journal was closed cleanly); other bad lines are problems.
 */
export function parseJournal(data: Buffer, problems: VerifyProblem[], strict = false): JournalEntry[] {
  const out: JournalEntry[] = [];
  forEachJournalEntry(data, problems, strict, (e) => {
    out.push(e);
  });
  return out;
}

function forEachJournalEntry(
  data: Buffer,
  problems: VerifyProblem[],
  strict: boolean,
  visit: (e: JournalEntry, line: number) => void,
): void {
  let start = 0;
  let line = 0;
  let bad = 0;
  while (start < data.length) {
    let end = data.indexOf(0x0a, start);
    const torn = end < 0;
    if (torn) end = data.length;
    line++;
    const text = data.toString('utf8', start, end);
    start = end + 1;
    if (text === '') {
      if (strict) {
        problems.push({
          code: 'journal',
          path: BUNDLE_FILES.journal,
          message: `journal line ${line} is empty`,
        });
      }
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      if (!torn || strict) {
        if (bad++ < 20)
          problems.push({
            code: 'journal',
            path: BUNDLE_FILES.journal,
            message: `journal line ${line} is not JSON${torn ? ' (torn last line in a finalized journal)' : ''}`,
          });
      }
      continue;
    }
    const r = JournalEntrySchema.safeParse(v);
    if (r.success) visit(r.data, line);
    else if (bad++ < 20)
      problems.push({
        code: 'journal',
        path: BUNDLE_FILES.journal,
        message: `journal line ${line} is invalid`,
      });
  }
}

/** What the verifier keeps of each artifact record. */
type CompactArtifact = Pick<ArtifactRecord, 'path' | 'status' | 'stored' | 'sha256' | 'bytes'>;
type CompactManifest = Omit<Manifest, 'artifacts'> & { artifacts: CompactArtifact[] };
const ManifestHeadSchema = ManifestSchema.extend({ artifacts: z.array(z.unknown()) });

/**
 * Parses manifest.json keeping only what verification needs of each artifact, validating and
 * releasing the records one by one, so peak memory stays a small multiple of the file size.
 */
function parseManifest(data: Buffer, problems: VerifyProblem[]): CompactManifest | undefined {
  const path = BUNDLE_FILES.manifest;
  const head = parseJson(ManifestHeadSchema, data, path, problems);
  if (!head) return undefined;
  const raw = head.artifacts;
  const artifacts: CompactArtifact[] = new Array(raw.length);
  let bad = 0;
  for (let i = 0; i < raw.length; i++) {
    const r = ArtifactRecordSchema.safeParse(raw[i]);
    raw[i] = undefined;
    if (!r.success) {
      if (bad++ < 5) {
        problems.push({
          code: 'invalid',
          path,
          message: `manifest.json artifacts.${i} does not match its schema: ${r.error.issues
            .slice(0, 3)
            .map((x) => `${x.path.join('.') || '(root)'}: ${x.message}`)
            .join('; ')}`,
        });
      }
      continue;
    }
    const a = r.data;
    artifacts[i] = {
      path: a.path,
      status: a.status,
      stored: a.stored,
      bytes: a.bytes,
      ...(a.sha256 === undefined ? {} : { sha256: a.sha256 }),
    };
  }
  if (bad > 0) return undefined;
  return { ...head, artifacts };
}

const outcomeKey = (r: Pick<ArtifactRecord, 'status' | 'stored' | 'bytes' | 'sha256'>) =>
  `${r.status} stored=${r.stored} bytes=${r.bytes} sha256=${r.sha256 ?? '-'}`;

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
  const anchors: VerifyAnchor[] = [];
  const consistency: string[] = [];
  let signature: VerifyReport['signature'] = 'absent';
  let timestamp: TimestampCheck | undefined;
  let checked = 0;
  const keyList =
    options.publicKey === undefined
      ? []
      : Array.isArray(options.publicKey)
        ? (options.publicKey as ReadonlyArray<KeyObject | string>)
        : [options.publicKey as KeyObject | string];
  const publicKeys = keyList.map((k) => toEd25519PublicKey(k));
  if (options.requireSignature && publicKeys.length === 0) {
    throw new ConfigError(
      'requireSignature needs publicKey: pass the Ed25519 public key the bundle was signed with',
    );
  }
  const tsaCerts =
    options.tsaCertificate === undefined
      ? []
      : typeof options.tsaCertificate === 'string'
        ? [options.tsaCertificate]
        : [...options.tsaCertificate];
  const maxManifest = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
  if (!Number.isSafeInteger(maxManifest) || maxManifest < 1024) {
    throw new ConfigError('maxManifestBytes must be an integer of at least 1024');
  }
  const maxJournal = journalLimit(maxManifest);
  let externalSidecar: Map<string, string> | undefined;
  if (options.sidecar !== undefined) {
    externalSidecar = reader.sidecarEntries(options.sidecar);
    if (externalSidecar.size === 0) {
      throw new ConfigError('options.sidecar holds no "<sha256>  <name>" line; pass the sidecar file text');
    }
  }

  const place = reader.placeName;
  const listed = await reader.list(problems);
  for (const p of problems)
    if ((p.code === 'unexpected' || p.code === 'path') && p.path) unexpected.add(p.path);
  const entries: BundleEntry[] = [];
  for (const e of listed) {
    if (isBundlePath(e.path)) entries.push(e);
    else {
      unexpected.add(e.path);
      problems.push({
        code: 'path',
        path: e.path,
        message: `${JSON.stringify(e.path)} is not a path the writer produces (outside the bundle, absolute, empty component, unnormalized or control characters)`,
      });
    }
  }
  const present = new Map(entries.map((e) => [e.path, e]));
  {
    const seenKeys = new Map<string, string>();
    for (const e of entries) {
      const k = collisionKey(e.path);
      const other = seenKeys.get(k);
      if (other !== undefined && other !== e.path) {
        unexpected.add(e.path);
        problems.push({
          code: 'path',
          path: e.path,
          message: `${e.path} and ${other} differ only by case or Unicode form; the writer never produces both`,
        });
      } else seenKeys.set(k, e.path);
    }
  }
  const bundleSha256 = reader.bundleSha256 ? await reader.bundleSha256() : undefined;

  const readBounded = async (path: string, max: number): Promise<Buffer | undefined> => {
    const b = await reader.read(path, max);
    if (b === TOO_LARGE) {
      modified.add(path);
      problems.push({
        code: 'too-large',
        path,
        message: `${path} exceeds ${max} bytes; it was not parsed (raise maxManifestBytes only for a bundle you expect to be that large)`,
      });
      return undefined;
    }
    if (b === undefined) {
      missing.add(path);
      problems.push({
        code: 'missing',
        path,
        message: `${path} is listed in the bundle but could not be read`,
      });
    }
    return b;
  };

  const finalsPresent = FINALS.filter((f) => present.has(f));
  const complete = finalsPresent.length === FINALS.length;
  // Completeness is decided by what is present, not by what could be read: an unreadable or
  // oversize final file is a problem, never "absent".
  let mBytes = present.has(BUNDLE_FILES.manifest)
    ? await readBounded(BUNDLE_FILES.manifest, maxManifest)
    : undefined;
  const cBytes = present.has(BUNDLE_FILES.custody)
    ? await readBounded(BUNDLE_FILES.custody, MAX_CUSTODY_BYTES)
    : undefined;
  const sBytes = present.has(BUNDLE_FILES.seal)
    ? await readBounded(BUNDLE_FILES.seal, MAX_SEAL_BYTES)
    : undefined;
  const besideText = await reader.sidecar();
  const beside = besideText === undefined ? undefined : reader.sidecarEntries(besideText);

  const expected = new Map<string, { sha256: string; bytes: number }>();
  const known = new Set<string>([BUNDLE_FILES.journal, BUNDLE_FILES.log]);
  let acquisitionId: string | undefined;
  let manifestSha256: string | undefined;
  let custodySha256: string | undefined;
  let aborted: string | undefined;
  let manifestParsed = false;

  const badPath = (path: string, where: string): boolean => {
    if (isBundlePath(path) && !TOP_FILES.has(path)) return false;
    problems.push({
      code: 'path',
      path,
      message: `${where} lists ${JSON.stringify(path)}, which is not a path the writer produces`,
    });
    return true;
  };

  const addExpected = (path: string, sha256: string | undefined, bytes: number, stored: boolean) => {
    if (!stored || sha256 === undefined) return;
    expected.set(path, { sha256, bytes });
  };

  const bindIdentity = (id: string, what: string, sinkLocation: string | undefined) => {
    let ok = true;
    if (id !== place) {
      ok = false;
      problems.push({
        code: 'identity',
        message: `${what} names acquisition ${JSON.stringify(id)} but the bundle is at ${reader.location} (name ${JSON.stringify(place)}): a bundle copied to another acquisition's place`,
      });
    }
    if (sinkLocation !== undefined && nameInLocation(sinkLocation) !== id) {
      ok = false;
      problems.push({
        code: 'identity',
        message: `${what} records sink location ${JSON.stringify(sinkLocation)}, which is not the place of acquisition ${JSON.stringify(id)}`,
      });
    }
    return ok;
  };

  if (!complete && finalsPresent.length > 0) {
    for (const f of FINALS) {
      if (!present.has(f)) {
        missing.add(f);
        problems.push({
          code: 'missing',
          path: f,
          message: `${f} is missing while ${finalsPresent.join(', ')} ${finalsPresent.length === 1 ? 'is' : 'are'} present: finalize was cut short or files were removed`,
        });
      }
    }
  }

  if (complete) {
    for (const f of FINALS) known.add(f);
    if (mBytes) manifestSha256 = sha(mBytes);
    if (cBytes) custodySha256 = sha(cBytes);
    let manifest: CompactManifest | undefined = mBytes ? parseManifest(mBytes, problems) : undefined;
    const manifestUnreadable = mBytes !== undefined && manifest === undefined;
    mBytes = undefined; // the parsed form is all that is needed from here on
    const custody: Custody | undefined = cBytes
      ? parseJson(CustodySchema, cBytes, BUNDLE_FILES.custody, problems)
      : undefined;
    const seal: Seal | undefined = sBytes
      ? parseJson(SealSchema, sBytes, BUNDLE_FILES.seal, problems)
      : undefined;
    if (manifestUnreadable) modified.add(BUNDLE_FILES.manifest);
    if (cBytes && custody === undefined) modified.add(BUNDLE_FILES.custody);
    if (sBytes && seal === undefined) modified.add(BUNDLE_FILES.seal);
    acquisitionId = manifest?.acquisitionId ?? custody?.acquisitionId ?? seal?.acquisitionId;
    const ids = [manifest?.acquisitionId, custody?.acquisitionId, seal?.acquisitionId].filter(
      (x) => x !== undefined,
    );
    if (new Set(ids).size > 1) {
      problems.push({
        code: 'identity',
        message: `acquisitionId differs between manifest, custody and seal: ${ids.join(', ')}`,
      });
    }
    let boundOk = acquisitionId !== undefined;
    for (const id of new Set(ids)) {
      if (!bindIdentity(id, 'the bundle', custody?.sink.location)) boundOk = false;
    }
    let sealOk = seal !== undefined && manifestSha256 !== undefined && custodySha256 !== undefined;
    if (seal) {
      if (manifestSha256 !== undefined && seal.manifestSha256 !== manifestSha256) {
        sealOk = false;
        modified.add(BUNDLE_FILES.manifest);
        problems.push({
          code: 'modified',
          path: BUNDLE_FILES.manifest,
          message: 'manifest.json does not match the hash in seal.json',
        });
      }
      if (custodySha256 !== undefined && seal.custodySha256 !== custodySha256) {
        sealOk = false;
        modified.add(BUNDLE_FILES.custody);
        problems.push({
          code: 'modified',
          path: BUNDLE_FILES.custody,
          message: 'custody.json does not match the hash in seal.json',
        });
      }
      if (seal.signature) {
        if (publicKeys.length > 0) {
          const payload = sealPayload(seal.acquisitionId, seal.manifestSha256, seal.custodySha256);
          const ok = sealOk && publicKeys.some((k) => verifySeal(k, payload, seal.signature?.value ?? ''));
          signature = ok ? 'valid' : 'invalid';
          if (ok) anchors.push('signature');
          else {
            const known = publicKeys.some((k) => publicKeyFingerprint(k) === seal.signature?.publicKeySha256);
            problems.push({
              code: 'signature',
              path: BUNDLE_FILES.seal,
              message: known
                ? 'the Ed25519 signature does not verify with the pinned public key (manifest, custody or seal changed)'
                : 'the seal is signed by a key that is not among the pinned public keys (or manifest, custody or seal changed)',
            });
          }
        } else signature = 'unchecked';
      } else if (publicKeys.length > 0) {
        signature = 'invalid';
        problems.push({
          code: 'signature',
          path: BUNDLE_FILES.seal,
          message: 'a public key was given but the bundle is not signed',
        });
      }
    }
    if (sealOk) consistency.push('seal');
    if (custody && manifestSha256 !== undefined) {
      if (custody.manifestSha256 !== manifestSha256) {
        modified.add(BUNDLE_FILES.manifest);
        problems.push({
          code: 'modified',
          path: BUNDLE_FILES.manifest,
          message: 'manifest.json does not match manifestSha256 in custody.json',
        });
      } else consistency.push('custody');
    }
    if (manifest) {
      manifestParsed = true;
      const byPath = new Map<string, string>();
      const keys = new Map<string, string>();
      const dirs = new Set<string>();
      let pathProblems = 0;
      for (const a of manifest.artifacts) {
        if (badPath(a.path, 'manifest.json')) {
          pathProblems++;
          continue;
        }
        if (byPath.has(a.path)) {
          pathProblems++;
          problems.push({
            code: 'path',
            path: a.path,
            message: `${a.path} is listed twice in manifest.json`,
          });
          continue;
        }
        const k = collisionKey(a.path);
        const other = keys.get(k);
        if (other !== undefined) {
          pathProblems++;
          problems.push({
            code: 'path',
            path: a.path,
            message: `${a.path} and ${other} differ only by case or Unicode form; the writer never produces both`,
          });
          continue;
        }
        keys.set(k, a.path);
        const segs = k.split('/');
        for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
        byPath.set(a.path, outcomeKey(a));
        known.add(a.path);
        addExpected(a.path, a.sha256, a.bytes, a.stored);
        if (a.stored && a.sha256 === undefined) {
          problems.push({ code: 'invalid', path: a.path, message: `${a.path} is stored but has no sha256` });
        }
      }
      for (const k of keys.keys()) {
        if (dirs.has(k)) {
          pathProblems++;
          problems.push({
            code: 'path',
            path: keys.get(k),
            message: `${keys.get(k)} is listed both as a file and as a folder of other artifacts`,
          });
        }
      }
      const auxSeen = new Set<string>();
      for (const f of manifest.bundleFiles) {
        if ((f.path !== BUNDLE_FILES.journal && f.path !== BUNDLE_FILES.log) || auxSeen.has(f.path)) {
          problems.push({
            code: 'path',
            path: f.path,
            message: `manifest bundleFiles lists ${JSON.stringify(f.path)}; only one journal.jsonl and one acquisition.log belong there`,
          });
          continue;
        }
        auxSeen.add(f.path);
        addExpected(f.path, f.sha256, f.bytes, true);
      }
      for (const f of [BUNDLE_FILES.journal, BUNDLE_FILES.log]) {
        if (!auxSeen.has(f)) {
          problems.push({
            code: 'invalid',
            path: BUNDLE_FILES.manifest,
            message: `manifest bundleFiles does not list ${f}`,
          });
        }
      }
      const counted = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
      for (const a of manifest.artifacts) counted[a.status]++;
      if (JSON.stringify(counted) !== JSON.stringify(manifest.counts)) {
        problems.push({
          code: 'invalid',
          path: BUNDLE_FILES.manifest,
          message: 'manifest counts do not match its artifact list',
        });
      }
      const artifactCount = manifest.artifacts.length;
      manifest = undefined; // let the parsed manifest go before the journal is read
      const journalOk = await crossCheckJournal(
        byPath,
        artifactCount,
        custody,
        acquisitionId,
        pathProblems > 0,
      );
      if (journalOk) consistency.push('journal');
    }
    if (boundOk && problems.every((p) => p.code !== 'identity')) consistency.push('location');

    // RFC 3161 token over the manifest hash.
    if (present.has(TIMESTAMP_FILE) || tsaCerts.length > 0) {
      known.add(TIMESTAMP_FILE);
      const tokenBytes = present.has(TIMESTAMP_FILE)
        ? await readBounded(TIMESTAMP_FILE, MAX_TOKEN_BYTES)
        : undefined;
      if (tsaCerts.length === 0 && tokenBytes !== undefined && manifestSha256 !== undefined) {
        // Not an anchor without a pinned TSA certificate, but a token over another hash is wrong.
        let imprint: string;
        try {
          imprint = timestampImprint(tokenBytes);
        } catch (e) {
          imprint = `(unreadable: ${(e as Error).message})`;
        }
        if (imprint === manifestSha256) consistency.push('timestamp-imprint');
        else {
          modified.add(TIMESTAMP_FILE);
          problems.push({
            code: 'timestamp',
            path: TIMESTAMP_FILE,
            message: `timestamp.tsr is over ${imprint}, not this manifest (${manifestSha256})`,
          });
        }
      }
      if (tsaCerts.length > 0) {
        if (tokenBytes === undefined) {
          if (!present.has(TIMESTAMP_FILE)) {
            missing.add(TIMESTAMP_FILE);
            problems.push({
              code: 'timestamp',
              path: TIMESTAMP_FILE,
              message: 'a TSA certificate was pinned but the bundle has no timestamp.tsr',
            });
          }
        } else if (manifestSha256 !== undefined) {
          const r = verifyTimestampToken(tokenBytes, manifestSha256, tsaCerts);
          if (r.ok) {
            timestamp = r.check;
            anchors.push('rfc3161');
          } else {
            modified.add(TIMESTAMP_FILE);
            problems.push({ code: 'timestamp', path: TIMESTAMP_FILE, message: r.reason });
          }
        }
      }
    }
  } else {
    for (const f of FINALS) known.add(f);
    let jBytes: Buffer | undefined;
    if (present.has(BUNDLE_FILES.journal)) jBytes = await readBounded(BUNDLE_FILES.journal, maxJournal);
    else if (reader.outsideJournal) {
      const o = await reader.outsideJournal(maxJournal);
      if (o === TOO_LARGE) {
        problems.push({
          code: 'too-large',
          path: BUNDLE_FILES.journal,
          message: `the journal beside the tar exceeds ${maxJournal} bytes; it was not parsed`,
        });
      } else jBytes = o;
    }
    if (jBytes === undefined) {
      if (!problems.some((p) => p.path === BUNDLE_FILES.journal)) {
        problems.push({
          code: 'missing',
          path: BUNDLE_FILES.manifest,
          message: 'no manifest, seal or journal: this is not an eks-forensics bundle or it was emptied',
        });
        missing.add(BUNDLE_FILES.manifest);
      }
    } else {
      const opened = new Set<string>();
      const recorded = new Set<string>();
      let first = true;
      let finalized = false;
      let begins = 0;
      forEachJournalEntry(jBytes, problems, false, (e) => {
        if (first && e.type !== 'begin') {
          problems.push({
            code: 'journal',
            path: BUNDLE_FILES.journal,
            message: 'journal does not start with a begin entry',
          });
        }
        first = false;
        if (e.type === 'begin') {
          begins++;
          if (begins > 1) {
            problems.push({
              code: 'journal',
              path: BUNDLE_FILES.journal,
              message: 'journal has more than one begin entry',
            });
          }
          acquisitionId = e.acquisitionId;
          bindIdentity(e.acquisitionId, 'the journal', e.sink.location);
        } else if (e.type === 'open') {
          if (!badPath(e.path, 'journal.jsonl')) opened.add(e.path);
        } else if (e.type === 'artifact') {
          const p = e.record.path;
          if (badPath(p, 'journal.jsonl')) return;
          if (recorded.has(p)) {
            problems.push({ code: 'journal', path: p, message: `${p} is recorded twice in the journal` });
            return;
          }
          recorded.add(p);
          opened.delete(p);
          known.add(p);
          addExpected(p, e.record.sha256, e.record.bytes, e.record.stored);
        } else if (e.type === 'abort') aborted = e.reason;
        else if (e.type === 'finalize') finalized = true;
      });
      if (first) {
        problems.push({ code: 'journal', path: BUNDLE_FILES.journal, message: 'journal is empty' });
      }
      for (const p of opened) {
        known.add(p);
        interrupted.add(p);
      }
      // A finalized bundle that lost manifest/custody/seal must not pass as merely incomplete.
      if ((finalized || beside !== undefined) && finalsPresent.length === 0) {
        for (const f of FINALS) {
          missing.add(f);
          problems.push({
            code: 'missing',
            path: f,
            message: `${f} is missing although the ${finalized ? 'journal' : 'sidecar'} shows the bundle was finalized`,
          });
        }
      }
    }
  }

  if (options.expectedManifestSha256 !== undefined) {
    if (manifestSha256 !== undefined && manifestSha256 === options.expectedManifestSha256.toLowerCase())
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

  const compareSidecar = (entries: Map<string, string>, what: string): boolean => {
    let matched = true;
    for (const [name, want] of entries) {
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
        if (name !== '*' && FINAL_SET.has(name)) modified.add(name);
        problems.push({
          code: 'sidecar',
          ...(name === '*' ? {} : { path: name }),
          message: `${name === '*' ? 'the bundle file' : name} does not match the ${what}`,
        });
      }
    }
    return matched && (entries.has(BUNDLE_FILES.manifest) || entries.has('*'));
  };
  if (beside && complete && beside.size === 0) {
    problems.push({
      code: 'sidecar',
      message: 'the sidecar beside the bundle holds no "<sha256>  <name>" line',
    });
  } else if (beside && complete) {
    if (compareSidecar(beside, 'sidecar beside the bundle')) consistency.push('sidecar-beside-bundle');
  }
  if (externalSidecar) {
    if (!complete) {
      problems.push({ code: 'sidecar', message: 'a sidecar was supplied but the bundle is not finalized' });
    } else if (compareSidecar(externalSidecar, 'sidecar you supplied')) anchors.push('sidecar');
    else if (!problems.some((p) => p.code === 'sidecar')) {
      problems.push({
        code: 'sidecar',
        message: 'the sidecar you supplied names neither manifest.json nor this bundle file',
      });
    }
  }

  let objectLock: ObjectLockFinding | undefined;
  if (complete && reader.objectLock) {
    const lock = await reader.objectLock(FINALS);
    objectLock = lock;
    if (lock.locked) anchors.push('object-lock');
    else if (options.requireObjectLock) {
      problems.push({
        code: 'object-lock',
        message: `S3 Object Lock is not in force: ${lock.reason ?? 'unknown'}`,
      });
    }
  } else if (options.requireObjectLock) {
    problems.push({
      code: 'object-lock',
      message: complete
        ? `requireObjectLock applies to S3 bundles; ${reader.kind} storage has no Object Lock`
        : 'requireObjectLock: the bundle is not finalized',
    });
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
            ? `${path} has ${got.bytes} bytes, the record says ${want.bytes}`
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
    } else if (
      !expected.has(e.path) &&
      known.has(e.path) &&
      complete &&
      manifestParsed &&
      !FINAL_SET.has(e.path) &&
      e.path !== TIMESTAMP_FILE
    ) {
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
  if (reader.checkArtifact && !problems.some((p) => p.code === 'metadata')) consistency.push('s3-metadata');

  const anchored = anchors.length > 0;
  const status: VerifyReport['status'] =
    problems.length > 0
      ? 'invalid'
      : !complete
        ? 'incomplete'
        : anchored || options.acceptUnanchored
          ? 'valid'
          : 'unanchored';
  return {
    location: reader.location,
    kind: reader.kind,
    status,
    ok: status === 'valid',
    anchored,
    complete,
    ...(acquisitionId === undefined ? {} : { acquisitionId }),
    ...(manifestSha256 === undefined ? {} : { manifestSha256 }),
    ...(custodySha256 === undefined ? {} : { custodySha256 }),
    ...(bundleSha256 === undefined ? {} : { bundleSha256 }),
    signature,
    anchors,
    consistency,
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(objectLock === undefined ? {} : { objectLock }),
    ...(aborted === undefined ? {} : { aborted }),
    checked,
    modified: [...modified].sort(),
    missing: [...missing].sort(),
    unexpected: [...unexpected].sort(),
    interrupted: [...interrupted].sort(),
    problems,
  };

  /** The journal of a finalized bundle must tell the same story as its manifest. */
  async function crossCheckJournal(
    byPath: Map<string, string>,
    artifactCount: number,
    custody: Custody | undefined,
    id: string | undefined,
    pathsAlreadyBad: boolean,
  ): Promise<boolean> {
    if (!present.has(BUNDLE_FILES.journal)) return false; // reported as missing by the manifest check
    const before = problems.length;
    const j = await readBounded(BUNDLE_FILES.journal, maxJournal);
    if (j === undefined) return false;
    const journalProblem = (message: string, path?: string) => {
      if (problems.length - before < 50)
        problems.push({ code: 'journal', ...(path ? { path } : {}), message });
    };
    const seen = new Set<string>();
    const opened = new Set<string>();
    const changes: string[] = [];
    let line = 0;
    let finalizeAt = -1;
    let count = 0;
    forEachJournalEntry(j, problems, true, (e, n) => {
      line++;
      if (line === 1 && e.type !== 'begin') journalProblem('the journal does not start with a begin entry');
      if (finalizeAt > 0) journalProblem(`journal line ${n} comes after the finalize entry`);
      switch (e.type) {
        case 'begin':
          if (line !== 1) journalProblem(`journal line ${n} is a second begin entry`);
          if (e.acquisitionId !== id) {
            journalProblem(
              `the journal begins acquisition ${JSON.stringify(e.acquisitionId)}, the manifest is ${JSON.stringify(id)}`,
            );
          }
          if (nameInLocation(e.sink.location) !== id) {
            journalProblem(
              `the journal records sink location ${JSON.stringify(e.sink.location)}, not the place of ${JSON.stringify(id)}`,
            );
          }
          break;
        case 'open':
          opened.add(e.path);
          break;
        case 'artifact': {
          const p = e.record.path;
          count++;
          opened.delete(p);
          if (seen.has(p)) {
            journalProblem(`${p} is recorded twice in the journal`, p);
            break;
          }
          seen.add(p);
          const want = byPath.get(p);
          if (want === undefined) {
            if (!pathsAlreadyBad) journalProblem(`the journal records ${p}, which manifest.json omits`, p);
          } else if (want !== outcomeKey(e.record)) {
            journalProblem(
              `${p}: the journal recorded ${outcomeKey(e.record)}, manifest.json says ${want}`,
              p,
            );
          }
          break;
        }
        case 'change':
          changes.push(JSON.stringify(e.change));
          break;
        case 'abort':
          journalProblem('the journal of a finalized bundle records an abort');
          break;
        case 'finalize':
          if (finalizeAt > 0) journalProblem('the journal has more than one finalize entry');
          finalizeAt = n;
          break;
      }
    });
    if (line === 0) journalProblem('the journal of a finalized bundle is empty');
    else if (finalizeAt < 0) journalProblem('the journal of a finalized bundle has no finalize entry');
    for (const p of opened) journalProblem(`the journal opened ${p} but never recorded its outcome`, p);
    if (!pathsAlreadyBad) {
      for (const p of byPath.keys()) {
        if (!seen.has(p)) journalProblem(`manifest.json lists ${p}, which the journal never recorded`, p);
      }
      if (count !== artifactCount && seen.size === count) {
        journalProblem(`the journal records ${count} artifacts, manifest.json ${artifactCount}`);
      }
    }
    if (custody) {
      const want = custody.changes.map((c) => JSON.stringify(c));
      if (want.length !== changes.length || want.some((c, i) => c !== changes[i])) {
        journalProblem(
          `custody.json lists ${want.length} change(s) to the target, the journal ${changes.length}, or they differ`,
        );
      }
    }
    return problems.length === before;
  }
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
