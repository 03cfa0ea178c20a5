/**
 * Evidence bundle types: the sink/writer interfaces and the zod schemas of the files a bundle
 * holds (manifest, custody record, seal, journal lines).
 *
 * @module
 */
import type { KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../util/index.js';
import type { TimestampAuthority } from './tsa.js';

/** Version of the manifest, custody, seal and journal formats written by this library. */
export const EVIDENCE_SCHEMA_VERSION = 1;

/** Name and version of this tool as recorded in manifests and custody records (kept equal to package.json by a test). */
export const EVIDENCE_TOOL: Readonly<{
  /** Tool name. */
  name: string;
  /** Tool version. */
  version: string;
}> = Object.freeze({
  name: 'eks-forensics',
  version: '0.1.0',
});

/** Fixed file names at the top of every bundle. */
export const BUNDLE_FILES = Object.freeze({
  /** `manifest.json` */
  manifest: 'manifest.json',
  /** `custody.json` */
  custody: 'custody.json',
  /** `seal.json` */
  seal: 'seal.json',
  /** `journal.jsonl` */
  journal: 'journal.jsonl',
  /** `acquisition.log` */
  log: 'acquisition.log',
});

const iso = z.string().datetime({ offset: false, message: 'expected an ISO 8601 UTC timestamp (…Z)' });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters');

/** Outcome of one artifact. `complete` is the only status that claims all bytes were captured. */
export const ArtifactStatusSchema = z.enum(['complete', 'truncated', 'failed', 'skipped']);
/** Outcome of one artifact: `complete`, `truncated`, `failed` or `skipped`. */
export type ArtifactStatus = z.infer<typeof ArtifactStatusSchema>;

/** Which target (pod/container) an artifact or change concerns. */
export const TargetRefSchema = z.object({
  /** Kubernetes namespace. */
  namespace: z.string().optional(),
  /** Pod (name, or name/uid/ip object). */
  pod: z.string().optional(),
  /** Pod UID. */
  podUid: z.string().optional(),
  /** Container name. */
  container: z.string().optional(),
});
/** Which target (pod/container) an artifact or change concerns. */
export type TargetRef = z.infer<typeof TargetRefSchema>;

/** Where an artifact came from. */
export const ArtifactSourceSchema = z.object({
  /** e.g. `exec`, `api`, `logs`, `events`. */
  kind: z.string(),
  /** Profile id that produced the artifact. */
  profile: z.string().optional(),
  /** Item id inside the profile. */
  item: z.string().optional(),
});
/** Where an artifact came from (kind, profile, item). */
export type ArtifactSource = z.infer<typeof ArtifactSourceSchema>;

/** Where the sink put the bytes (S3 only for now). */
export const ArtifactStorageSchema = z.object({
  /** S3 location of the object. */
  s3: z
    .object({
      /** S3 bucket. */
      bucket: z.string(),
      /** S3 object key. */
      key: z.string(),
      /** S3 version id of the object. */
      versionId: z.string().optional(),
      /** S3 ETag. */
      etag: z.string().optional(),
      /** S3's own checksum of the object (full-object for single PUT, composite `…-N` for multipart). */
      checksumSha256: z.string().optional(),
      /** True when uploaded with a multipart upload. */
      multipart: z.boolean().optional(),
    })
    .optional(),
});

/** One artifact in the manifest/journal. */
export const ArtifactRecordSchema = z.object({
  /** Path inside the bundle after sanitization and de-duplication (`/`-separated, relative). */
  path: z.string(),
  /** The path the caller asked for, before sanitization. */
  requestedPath: z.string(),
  /** Outcome of the artifact. */
  status: ArtifactStatusSchema,
  /** Why the artifact is not complete (required unless status is `complete`). */
  reason: z.string().optional(),
  /** True when bytes were kept in the bundle (a failed artifact may keep the partial bytes). */
  stored: z.boolean(),
  /** SHA-256 of the stored bytes, computed by the receiving side while streaming. */
  sha256: sha256.optional(),
  /** Number of stored bytes. */
  bytes: z.number().int().nonnegative(),
  /** Where the artifact came from. */
  source: ArtifactSourceSchema,
  /** Exact argv sent to exec. */
  argv: z.array(z.string()).optional(),
  /** Exit code of the command (null when unknown). */
  exitCode: z.number().int().nullable().optional(),
  /** Pod/container the item concerns. */
  target: TargetRefSchema.optional(),
  /** MIME type. */
  contentType: z.string().optional(),
  /** Start time (UTC ISO 8601). */
  startedAt: iso,
  /** End time (UTC ISO 8601). */
  finishedAt: iso,
  /** Free-form extra facts (bytes seen by the producer, stderr excerpt, limits hit…). */
  details: z.record(z.string(), z.unknown()).optional(),
  /** Where the sink stored the bytes. */
  storage: ArtifactStorageSchema.optional(),
});
/** One artifact as recorded in the manifest and journal. */
export type ArtifactRecord = z.infer<typeof ArtifactRecordSchema>;

/** A change made to the target during acquisition (e.g. an ephemeral container added). */
export const TargetChangeSchema = z.object({
  /** When it happened (UTC). Defaults to the time {@link BundleWriter.recordChange} was called. */
  at: iso.optional(),
  /** e.g. `ephemeral-container-added`. */
  kind: z.string(),
  /** Pod/container the item concerns. */
  target: TargetRefSchema.optional(),
  /** Human-readable description. */
  description: z.string(),
  /** Free-form extra facts. */
  details: z.record(z.string(), z.unknown()).optional(),
});
/** A change made to the target during acquisition (e.g. an ephemeral container added). */
export type TargetChange = z.infer<typeof TargetChangeSchema>;

/** A {@link TargetChange} as recorded, with its time filled in. */
export const RecordedChangeSchema = TargetChangeSchema.extend({
  /** When it happened (UTC ISO 8601). */
  at: iso,
});

/** A bundle file that is not an artifact (acquisition.log, journal.jsonl) with its hash. */
export const BundleFileSchema = z.object({
  /** Bundle-relative path. */
  path: z.string(),
  /** SHA-256 (hex). */
  sha256,
  /** Size in bytes. */
  bytes: z.number().int().nonnegative(),
});

/** `manifest.json`: every artifact with its hash. Only written by a successful finalize. */
export const ManifestSchema = z.object({
  /** Format version of this file. */
  schemaVersion: z.literal(EVIDENCE_SCHEMA_VERSION),
  /** Type tag of the record or event. */
  kind: z.literal('eks-forensics.manifest'),
  /** Acquisition id (the bundle name). */
  acquisitionId: z.string(),
  /** Case / incident id. */
  caseId: z.string().optional(),
  /** Always true in a manifest: interrupted bundles have no manifest, only a journal. */
  complete: z.literal(true),
  /** Hash algorithm of every hash in the bundle. */
  hashAlgorithm: z.literal('sha256'),
  /** Tool that wrote the bundle. */
  tool: z.object({
    /** Name. */
    name: z.string(),
    /** Version. */
    version: z.string(),
  }),
  /** Start time (UTC ISO 8601). */
  startedAt: iso,
  /** End time (UTC ISO 8601). */
  finishedAt: iso,
  /** Every artifact, sorted by path. */
  artifacts: z.array(ArtifactRecordSchema),
  /** acquisition.log and journal.jsonl with their hashes. */
  bundleFiles: z.array(BundleFileSchema),
  /** Number of artifacts per status. */
  counts: z.object({
    /** Artifacts complete. */
    complete: z.number().int(),
    /** Artifacts truncated. */
    truncated: z.number().int(),
    /** Artifacts failed. */
    failed: z.number().int(),
    /** Artifacts skipped. */
    skipped: z.number().int(),
  }),
});
/** Parsed `manifest.json`. */
export type Manifest = z.infer<typeof ManifestSchema>;

const ContainerSchema = z.object({
  /** Name. */
  name: z.string(),
  /** Runtime-prefixed container ID, e.g. `containerd://…`. */
  containerId: z.string().optional(),
  /** Image reference as in the pod spec. */
  image: z.string().optional(),
  /** `imageID` from the container status, e.g. `docker.io/library/nginx@sha256:…`. */
  imageDigest: z.string().optional(),
  /** Restart count at capture. */
  restartCount: z.number().int().optional(),
});

/** One pod (and some or all of its containers) covered by a bundle. */
export const CustodyTargetSchema = z.object({
  /** Kubernetes namespace. */
  namespace: z.string(),
  /** Pod (name, or name/uid/ip object). */
  pod: z.object({
    /** Name. */
    name: z.string(),
    /** Pod UID. */
    uid: z.string().optional(),
    /** Pod IP. */
    ip: z.string().optional(),
  }),
  /** Containers covered (some or all of the pod's). */
  containers: z.array(ContainerSchema).default([]),
  /** Node the pod ran on. */
  node: z
    .object({
      /** Name. */
      name: z.string(),
      /** Node spec.providerID. */
      providerId: z.string().optional(),
      /** EC2 instance id. */
      instanceId: z.string().optional(),
    })
    .optional(),
});
/** One pod (and some or all of its containers) covered by a bundle. */
export type CustodyTarget = z.infer<typeof CustodyTargetSchema>;

/** `custody.json`: the chain-of-custody record. */
export const CustodySchema = z.object({
  /** Format version of this file. */
  schemaVersion: z.literal(EVIDENCE_SCHEMA_VERSION),
  /** Type tag of the record or event. */
  kind: z.literal('eks-forensics.custody'),
  /** Case / incident id. */
  caseId: z.string().optional(),
  /** Acquisition id (the bundle name). */
  acquisitionId: z.string(),
  /** Exhibit number assigned by the examiner. */
  exhibitNumber: z.string().optional(),
  /** Who acquired the evidence. */
  examiner: z.object({
    /** AWS principal ARN from STS GetCallerIdentity. */
    callerArn: z.string().optional(),
    /** Operator-supplied examiner name. */
    name: z.string().optional(),
    /** Kubernetes identity from SelfSubjectReview. */
    kubernetesUser: z
      .object({
        /** Kubernetes username. */
        username: z.string(),
        /** Kubernetes groups. */
        groups: z.array(z.string()).optional(),
      })
      .optional(),
  }),
  /** Tool that wrote the bundle. */
  tool: z.object({
    /** Name. */
    name: z.string(),
    /** Version. */
    version: z.string(),
  }),
  /** Machine that ran the acquisition. */
  host: z.object({
    /** Host name. */
    hostname: z.string(),
    /** OS platform. */
    platform: z.string().optional(),
    /** OS user running the SDK. */
    user: z.string().optional(),
  }),
  /** Start time (UTC ISO 8601). */
  startedAt: iso,
  /** End time (UTC ISO 8601). */
  finishedAt: iso,
  /** EKS cluster acquired from. */
  cluster: z
    .object({
      /** Cluster ARN. */
      arn: z.string().optional(),
      /** Name. */
      name: z.string().optional(),
      /** AWS region. */
      region: z.string().optional(),
      /** AWS account id. */
      accountId: z.string().optional(),
    })
    .optional(),
  /** Pods/containers this bundle covers. */
  targets: z.array(CustodyTargetSchema),
  /** Where the bundle was written. */
  sink: z.object({
    /** Type tag of the record or event. */
    kind: z.string(),
    /** Bundle location. */
    location: z.string(),
  }),
  /** Every change made to the target, in order. */
  changes: z.array(RecordedChangeSchema),
  /** SHA-256 of the exact bytes of manifest.json. */
  manifestSha256: sha256,
  /** Free-form notes. */
  notes: z.string().optional(),
});
/** Parsed `custody.json`. */
export type Custody = z.infer<typeof CustodySchema>;

/** `seal.json`: binds manifest.json and custody.json, optionally signed (Ed25519). */
export const SealSchema = z.object({
  /** Format version of this file. */
  schemaVersion: z.literal(EVIDENCE_SCHEMA_VERSION),
  /** Type tag of the record or event. */
  kind: z.literal('eks-forensics.seal'),
  /** Acquisition id (the bundle name). */
  acquisitionId: z.string(),
  /** SHA-256 of manifest.json. */
  manifestSha256: sha256,
  /** SHA-256 of custody.json. */
  custodySha256: sha256,
  /** Ed25519 signature over the seal payload. */
  signature: z
    .object({
      /** Signature algorithm. */
      algorithm: z.literal('Ed25519'),
      /** SHA-256 of the signer's public key (SPKI DER), to tell which key signed. */
      publicKeySha256: sha256,
      /** Base64 signature over {@link sealPayload}. */
      value: z.string(),
    })
    .optional(),
});
/** Parsed `seal.json`. */
export type Seal = z.infer<typeof SealSchema>;

/** One line of `journal.jsonl`, appended (and flushed) as the acquisition goes. */
export const JournalEntrySchema = z.discriminatedUnion('type', [
  z.object({
    /** Entry type. */
    type: z.literal('begin'),
    /** Format version of this file. */
    schemaVersion: z.literal(EVIDENCE_SCHEMA_VERSION),
    /** Acquisition id (the bundle name). */
    acquisitionId: z.string(),
    /** Case / incident id. */
    caseId: z.string().optional(),
    /** When (UTC ISO 8601). */
    at: iso,
    /** Where the bundle was written. */
    sink: z.object({
      /** Type tag of the record or event. */
      kind: z.string(),
      /** Bundle location. */
      location: z.string(),
    }),
    /** Tool that wrote the bundle. */
    tool: z.object({
      /** Name. */
      name: z.string(),
      /** Version. */
      version: z.string(),
    }),
  }),
  /** An artifact is about to be stored at `path` (so a crash mid-artifact leaves an explained partial file). */
  z.object({
    /** Entry type. */
    type: z.literal('open'),
    /** When (UTC). */
    at: iso,
    /** Bundle path being written. */
    path: z.string(),
  }),
  z.object({
    /** Entry type. */
    type: z.literal('artifact'),
    /** When (UTC). */
    at: iso,
    /** The finished artifact's record. */
    record: ArtifactRecordSchema,
  }),
  z.object({
    /** Entry type. */
    type: z.literal('change'),
    /** When (UTC). */
    at: iso,
    /** The change made to the target. */
    change: RecordedChangeSchema,
  }),
  z.object({
    /** Entry type. */
    type: z.literal('abort'),
    /** When (UTC). */
    at: iso,
    /** Why the acquisition stopped. */
    reason: z.string(),
  }),
  z.object({
    /** Entry type. */
    type: z.literal('finalize'),
    /** When (UTC). */
    at: iso,
  }),
]);
/** One line of `journal.jsonl`. */
export type JournalEntry = z.infer<typeof JournalEntrySchema>;

/** Metadata the caller gives with an artifact. */
export interface ArtifactMeta {
  /** Where the bytes come from. */
  source: ArtifactSource;
  /** Exact argv sent to exec, when the artifact came from a command. */
  argv?: readonly string[];
  /** Exit code of that command, when known up front. */
  exitCode?: number | null;
  /** When production started (defaults to when writeArtifact was called). */
  startedAt?: Date | string;
  /** When production finished (defaults to when the body ended). */
  finishedAt?: Date | string;
  /** Pass `truncated` with a `reason` when the producer stopped at a limit. */
  status?: 'complete' | 'truncated';
  /** Why the artifact is truncated. */
  reason?: string;
  /** Target the artifact belongs to. */
  target?: TargetRef;
  /** MIME type, stored with S3 objects. */
  contentType?: string;
  /** Extra facts to keep in the manifest. */
  details?: Record<string, unknown>;
  /**
   * How many bytes the body is expected to have (e.g. a file's size from `stat`): a hint that
   * lets large artifacts start on the fast path (hashing on a worker thread, streaming straight
   * into a tar). It is never recorded and never trusted: a wrong value costs speed, not
   * correctness.
   */
  expectedBytes?: number;
  /**
   * Called once after the body has been fully consumed and stored; its result is merged into
   * the record (e.g. the exit code from `session.result`, or `status: 'truncated'` when a limit
   * was hit). A rejection marks the artifact `failed` with the error's message (bytes are kept).
   */
  finish?: () => Promise<ArtifactMetaUpdate> | ArtifactMetaUpdate;
}

/** Fields {@link ArtifactMeta.finish} may update once the body has ended. */
export interface ArtifactMetaUpdate {
  /** Exit code of the command (null when unknown). */
  exitCode?: number | null;
  /** Outcome of the artifact. */
  status?: 'complete' | 'truncated' | 'failed';
  /** Why. */
  reason?: string;
  /** End time (UTC ISO 8601). */
  finishedAt?: Date | string;
  /** Free-form extra facts. */
  details?: Record<string, unknown>;
}

/** Metadata for {@link BundleWriter.recordArtifact}: an artifact without bytes, with its status and reason. */
export type RecordArtifactMeta = Omit<ArtifactMeta, 'status' | 'reason' | 'finish'> & {
  /** Outcome of the artifact. */
  status: 'failed' | 'truncated' | 'skipped';
  /** Why. */
  reason: string;
};

/** Body accepted by {@link BundleWriter.writeArtifact}. */
export type ArtifactBody = Readable | AsyncIterable<Uint8Array> | Uint8Array | string;

/** Options for opening a bundle. */
export interface BundleInit {
  /** Unique id of this acquisition; becomes the bundle name. Default: a random UUID. */
  acquisitionId?: string;
  /** Case / incident id. */
  caseId?: string;
  /** When the acquisition started. Default: now. */
  startedAt?: Date;
  /**
   * Ed25519 private key (KeyObject or PEM) to sign the seal with. The public key is needed
   * to verify: `verifyEvidence(location, { publicKey })`.
   */
  signingKey?: KeyObject | string;
  /**
   * RFC 3161 timestamp authority: at finalize the manifest hash is timestamped and the reply is
   * stored as `timestamp.tsr` beside manifest.json. Verify with `verifyEvidence(location,
   * { tsaCertificate })`, or with `openssl ts -verify`.
   */
  timestamp?: TimestampAuthority;
  /** Diagnostics (never bytes or secrets). */
  logger?: Logger;
}

/** What the caller supplies to {@link BundleWriter.finalize}. Times, tool, host, sink, changes and the manifest hash are filled in. */
export interface CustodyInput {
  /** Case / incident id. */
  caseId?: string;
  /** Exhibit number assigned by the examiner. */
  exhibitNumber?: string;
  /** Who acquired the evidence. */
  examiner?: Custody['examiner'];
  /** EKS cluster acquired from. */
  cluster?: Custody['cluster'];
  /** The pods/containers this bundle covers (one or more). */
  targets?: z.input<typeof CustodyTargetSchema>[];
  /** Override the tool name/version. */
  tool?: {
    /** Tool name. */
    name: string;
    /** Tool version. */
    version: string;
  };
  /** Override host facts (default: os.hostname(), platform, user). */
  host?: Custody['host'];
  /** Default: now. */
  finishedAt?: Date;
  /** Free-form notes. */
  notes?: string;
}

/** Result of a successful {@link BundleWriter.finalize}. */
export interface FinalizeResult {
  /** Where the bundle is. */
  location: string;
  /** Acquisition id (the bundle name). */
  acquisitionId: string;
  /** SHA-256 of manifest.json (also in custody.json, seal.json and the sidecar). */
  manifestSha256: string;
  /** SHA-256 of custody.json. */
  custodySha256: string;
  /** SHA-256 of the whole bundle file (tar sinks only). */
  bundleSha256?: string;
  /** Where the sidecar hash file was written, when the sink writes one. */
  sidecar?: string;
  /** Every artifact, sorted by path. */
  artifacts: ArtifactRecord[];
  /** `manifest.json` */
  manifest: Manifest;
  /** `custody.json` */
  custody: Custody;
  /** True when seal.json carries an Ed25519 signature. */
  signed: boolean;
  /** With {@link BundleInit.timestamp}: the RFC 3161 timestamp stored, or why there is none. */
  timestamp?: { stored: true; file: string; genTime: string } | { stored: false; error: string };
}

/** Writes one bundle. All methods are safe to call concurrently. */
export interface BundleWriter {
  /** Where the bundle is (directory path, tar path, `s3://bucket/prefix`, `memory://id`). */
  readonly location: string;
  /** The acquisition id (bundle name). */
  readonly acquisitionId: string;
  /**
   * Streams `body` into the bundle at `path` (sanitized, de-duplicated), hashing on the way with
   * backpressure to the producer. Never rejects because the body or the storage of this one
   * artifact failed: it resolves with a record whose `status` is `failed` and whose `reason`
   * says why (partial bytes are kept where the sink can). Rejects with `EvidenceError` when the
   * writer is already finalized/aborted and `ConfigError` for an unusable path.
   */
  writeArtifact(path: string, body: ArtifactBody, meta: ArtifactMeta): Promise<ArtifactRecord>;
  /** Records an artifact with no bytes (failed, truncated or skipped) and its reason. */
  recordArtifact(path: string, meta: RecordArtifactMeta): Promise<ArtifactRecord>;
  /** Appends one JSON line to acquisition.log (a `ts` field is added when missing). */
  log(event: Record<string, unknown>): void;
  /** Records a change made to the target; it goes to the journal now and to custody.json at finalize. */
  recordChange(change: TargetChange): void;
  /**
   * Waits for in-flight artifacts, then writes manifest.json, custody.json and seal.json (in that
   * order) and the sidecar. Rejects with `EvidenceError` if the bundle cannot be completed (it
   * then stays incomplete).
   */
  finalize(custody?: CustodyInput): Promise<FinalizeResult>;
  /** Stops the acquisition: waits for in-flight artifacts, journals the reason; no manifest is written. */
  abort(reason: string): Promise<void>;
}

/** A place bundles are written to. */
export interface EvidenceSink {
  /** `directory`, `tar`, `s3` or `memory`. */
  readonly kind: string;
  /** Opens a new bundle; rejects with `EvidenceError` when it already exists or cannot be created. */
  open(init?: BundleInit): Promise<BundleWriter>;
}
