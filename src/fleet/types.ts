/**
 * Wire and storage formats of a fleet sweep: the target message on the queue, the sweep manifest,
 * the per-attempt records and the commit marker in S3. Everything read back is parsed with zod:
 * queue bodies and S3 objects are inputs, not trusted state.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors.js';

/** Format version of every fleet record. */
export const FLEET_SCHEMA_VERSION = 1;

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const name = z.string().min(1).max(253);
const iso = z.string().max(40);

/** A sweep id: letters, digits, `-`, `_`, `.`; 1-63 characters, starting with a letter or digit. */
export const SweepIdSchema = z
  .string()
  .regex(SAFE_ID, 'a sweep id is 1-63 of [A-Za-z0-9_.-], starting alphanumeric');

/** The cluster part of a target message: what a worker needs to reach the API server. */
export const SweepClusterSchema = z.object({
  /** Cluster name. */
  name,
  /** Cluster ARN. */
  arn: z.string().max(2048),
  /** Account id. */
  accountId: z.string().max(32),
  /** Region. */
  region: z.string().max(32),
  /** AWS partition. */
  partition: z.string().max(32).optional(),
  /** API server URL as discovered. */
  endpoint: z.string().max(2048).optional(),
  /** Base64 PEM CA bundle as discovered. */
  certificateAuthority: z.string().max(65_536).optional(),
  /** EKS cluster id (Outposts local clusters). */
  id: z.string().max(128).optional(),
  /** Role the cluster was discovered with. */
  roleArn: z.string().max(2048).optional(),
  /** Whether only the private endpoint is on. */
  privateOnly: z.boolean().optional(),
});
/** The cluster part of a target message. */
export type SweepCluster = z.infer<typeof SweepClusterSchema>;

/** One target on the queue. */
export const SweepTargetSchema = z.object({
  /** Format version. */
  schemaVersion: z.literal(FLEET_SCHEMA_VERSION),
  /** Type tag. */
  kind: z.literal('eks-forensics.fleet.target'),
  /** Sweep this target belongs to. */
  sweepId: SweepIdSchema,
  /** Deterministic acquisition id: {@link acquisitionIdFor}(sweepId, key). */
  acquisitionId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/),
  /** Identity of the target: `account/region/cluster/namespace/pod/container`. */
  key: z.string().min(1).max(1200),
  /** Case id recorded in the bundle. */
  caseId: z.string().max(256).optional(),
  /** The cluster. */
  cluster: SweepClusterSchema,
  /** Pod namespace. */
  namespace: name,
  /** Pod name. */
  pod: name,
  /** Pod UID at planning time (informational; the worker records what it finds). */
  podUid: z.string().max(64).optional(),
  /** Container name. */
  container: name,
  /** Pod labels at planning time (only the keys the selector matched on are needed; capped). */
  labels: z.record(z.string().max(317), z.string().max(63)).optional(),
});
/** One target on the queue. */
export type SweepTarget = z.infer<typeof SweepTargetSchema>;

/** `sweeps/<sweepId>/sweep.json`: what was planned. */
export const SweepManifestSchema = z.object({
  /** Format version. */
  schemaVersion: z.literal(FLEET_SCHEMA_VERSION),
  /** Type tag. */
  kind: z.literal('eks-forensics.fleet.sweep'),
  /** Sweep id. */
  sweepId: SweepIdSchema,
  /** Case id. */
  caseId: z.string().optional(),
  /** When it was planned (UTC ISO). */
  createdAt: iso,
  /** Queue the targets were sent to. */
  queueUrl: z.string().optional(),
  /** Every planned target (acquisition id, key and where). */
  targets: z.array(
    z.object({
      /** Deterministic acquisition id. */
      acquisitionId: z.string(),
      /** Target identity. */
      key: z.string(),
      /** Cluster ARN. */
      clusterArn: z.string(),
      /** Region. */
      region: z.string(),
      /** Namespace. */
      namespace: z.string(),
      /** Pod. */
      pod: z.string(),
      /** Container. */
      container: z.string(),
    }),
  ),
  /** What the plan could not see (regions, accounts, clusters that failed). */
  problems: z.array(z.object({ where: z.string(), message: z.string() })),
});
/** Parsed sweep manifest. */
export type SweepManifest = z.infer<typeof SweepManifestSchema>;

/** State of one attempt. */
export const AttemptStateSchema = z.enum([
  'running',
  'finalized',
  'failed',
  'interrupted',
  'lease-lost',
  'superseded',
]);
/** State of one attempt. */
export type AttemptState = z.infer<typeof AttemptStateSchema>;

/** `sweeps/<sweepId>/targets/<acquisitionId>/attempt-<n>.json`. */
export const AttemptRecordSchema = z.object({
  /** Format version. */
  schemaVersion: z.literal(FLEET_SCHEMA_VERSION),
  /** Type tag. */
  kind: z.literal('eks-forensics.fleet.attempt'),
  /** Sweep id. */
  sweepId: SweepIdSchema,
  /** Target acquisition id. */
  acquisitionId: z.string(),
  /** Attempt number, from 1. */
  attempt: z.number().int().min(1),
  /** Bundle id of this attempt: `<acquisitionId>.a<attempt>`. */
  bundleId: z.string(),
  /** Where the bundle of this attempt is. */
  location: z.string(),
  /** State. */
  state: AttemptStateSchema,
  /** Worker that ran it. */
  worker: z.string(),
  /** SQS ApproximateReceiveCount of the delivery. */
  receiveCount: z.number().int().min(0),
  /** When it started. */
  startedAt: iso,
  /** Until when the worker holds the target (refreshed by heartbeats). */
  leaseUntil: iso,
  /** When it ended. */
  finishedAt: iso.optional(),
  /** Collector status of the bundle (finalized attempts). */
  status: z.enum(['complete', 'partial', 'failed']).optional(),
  /** Why it is not complete or why it failed. */
  reasons: z.array(z.string()).optional(),
  /** Bytes stored. */
  bytes: z.number().int().min(0).optional(),
  /** SHA-256 of manifest.json (finalized attempts). */
  manifestSha256: z.string().optional(),
  /** Earlier attempts this one follows (bundle ids with their state). */
  previous: z.array(z.object({ bundleId: z.string(), location: z.string(), state: AttemptStateSchema })),
});
/** Parsed attempt record. */
export type AttemptRecord = z.infer<typeof AttemptRecordSchema>;

/** `sweeps/<sweepId>/targets/<acquisitionId>/final.json`: written once (conditional create). */
export const FinalRecordSchema = z.object({
  /** Format version. */
  schemaVersion: z.literal(FLEET_SCHEMA_VERSION),
  /** Type tag. */
  kind: z.literal('eks-forensics.fleet.final'),
  /** Target acquisition id. */
  acquisitionId: z.string(),
  /** The attempt whose bundle is the evidence. */
  attempt: z.number().int().min(1),
  /** Its bundle id. */
  bundleId: z.string(),
  /** Its location. */
  location: z.string(),
  /** SHA-256 of its manifest.json. */
  manifestSha256: z.string(),
  /** Collector status. */
  status: z.enum(['complete', 'partial', 'failed']),
  /** Bytes stored. */
  bytes: z.number().int().min(0),
  /** When it was committed. */
  at: iso,
  /** True when found finalized after its worker died and committed by another worker. */
  recovered: z.boolean().optional(),
  /** What the recovered bundle's verification rested on (`signature` with a signing key; none: unanchored). */
  recoveredAnchors: z.array(z.string()).optional(),
});
/** Parsed commit marker. */
export type FinalRecord = z.infer<typeof FinalRecordSchema>;

/** `sweeps/<sweepId>/targets/<acquisitionId>/dead-letter.json`: why a target was given up. */
export const DeadLetterRecordSchema = z.object({
  /** Format version. */
  schemaVersion: z.literal(FLEET_SCHEMA_VERSION),
  /** Type tag. */
  kind: z.literal('eks-forensics.fleet.dead-letter'),
  /** Target acquisition id. */
  acquisitionId: z.string(),
  /** Receives when it was given up. */
  receiveCount: z.number().int().min(0),
  /** Why. */
  reason: z.string(),
  /** When. */
  at: iso,
});
/** Parsed dead-letter record. */
export type DeadLetterRecord = z.infer<typeof DeadLetterRecordSchema>;

/** The identity string of a target (stable across re-plans: names, not UIDs). */
export function targetKey(t: {
  accountId: string;
  region: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
}): string {
  return [t.accountId, t.region, t.cluster, t.namespace, t.pod, t.container].join('/');
}

/**
 * The deterministic acquisition id of a target in a sweep: `<sweepId>-<20 hex of SHA-256(sweepId, key)>`.
 * The same sweep and target always give the same id, so a re-plan or a redelivered message maps
 * onto the same evidence.
 */
export function acquisitionIdFor(sweepId: string, key: string): string {
  const parsed = SweepIdSchema.safeParse(sweepId);
  if (!parsed.success)
    throw new ValidationError(`sweep id ${JSON.stringify(sweepId)}: ${parsed.error.issues[0]?.message}`);
  const h = createHash('sha256').update(sweepId).update('\0').update(key).digest('hex');
  return `${sweepId}-${h.slice(0, 20)}`;
}

/** Bundle id of attempt `n` of a target. */
export function bundleIdFor(acquisitionId: string, attempt: number): string {
  return `${acquisitionId}.a${attempt}`;
}
