/**
 * EBS snapshots of the EC2 node a pod runs on, with optional termination protection, recorded in
 * the evidence bundle. Fargate (and other non-EC2) nodes are recognised and skipped.
 */
import type { EC2Client, EC2ClientConfig, Tag } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { AbortedError, AwsRequestError, ConfigError, EksForensicsError, NotFoundError } from '../errors.js';
import type { ArtifactRecord, TargetRef } from '../evidence/index.js';
import { abortError, type Logger, silentLogger, throwIfAborted } from '../util/index.js';
import { type AwsRetryOptions, callAws } from './aws-call.js';
import {
  type AwsEvidenceWriter,
  type NodeObjectLike,
  type NodeRef,
  type PodObjectLike,
  type PodRef,
  toNodeRef,
  toPodRef,
} from './types.js';

/** Where a node runs. */
export type NodeCompute = 'ec2' | 'fargate' | 'hybrid' | 'unknown';

/** The reason given for Fargate pods. */
export const FARGATE_SKIP_REASON =
  'no host to snapshot on Fargate; acquire from the running pod before it is gone';

const COMPUTE_TYPE_LABEL = 'eks.amazonaws.com/compute-type';
const FARGATE_PROFILE_LABEL = 'eks.amazonaws.com/fargate-profile';

/** An EC2 instance named by a node's `spec.providerID`. */
export interface Ec2ProviderId {
  /** e.g. `i-0abc1234def567890`. */
  instanceId: string;
  /** e.g. `us-east-1a` (empty providerID zone gives undefined). */
  availabilityZone?: string | undefined;
  /** Region derived from the zone, e.g. `us-east-1`. */
  region?: string | undefined;
}

/**
 * Parses `aws:///us-east-1a/i-0abc…` (the form the AWS cloud provider sets on EC2 nodes).
 * Returns undefined for anything else (Fargate, hybrid, non-AWS nodes).
 */
export function parseProviderId(providerID: string | undefined): Ec2ProviderId | undefined {
  if (!providerID) return undefined;
  const m = /^aws:\/\/\/?([a-z0-9-]*)\/(i-[0-9a-f]{8,17})$/.exec(providerID.trim());
  if (!m) return undefined;
  const zone = m[1] || undefined;
  const region = zone ? /^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)/.exec(zone)?.[1] : undefined;
  return { instanceId: m[2] as string, availabilityZone: zone, region };
}

/** Where a node runs, and why we think so. */
export interface NodeComputeInfo {
  /** `ec2`, `fargate`, `hybrid` or `unknown`. */
  compute: NodeCompute;
  /** Why; for non-EC2 nodes, the reason nothing can be snapshotted. */
  reason: string;
  /** The instance, for EC2 nodes. */
  ec2?: Ec2ProviderId | undefined;
}

/**
 * Tells EC2 nodes from Fargate, hybrid and unknown ones: Fargate by node name `fargate-…`, node label
 * `eks.amazonaws.com/compute-type: fargate`, pod label `eks.amazonaws.com/fargate-profile`;
 * EC2 by an `aws:///<zone>/i-…` providerID.
 */
export function classifyNodeCompute(
  node: NodeRef | NodeObjectLike | undefined,
  pod?: PodRef | PodObjectLike,
): NodeComputeInfo {
  const n = toNodeRef(node);
  const p = toPodRef(pod);
  const computeType = n?.labels?.[COMPUTE_TYPE_LABEL];
  if (
    computeType === 'fargate' ||
    n?.name.startsWith('fargate-') ||
    p?.nodeName?.startsWith('fargate-') ||
    p?.labels?.[FARGATE_PROFILE_LABEL] !== undefined ||
    /\/fargate-/.test(n?.providerID ?? '')
  ) {
    return { compute: 'fargate', reason: FARGATE_SKIP_REASON };
  }
  if (computeType === 'hybrid') {
    return {
      compute: 'hybrid',
      reason: 'node is an EKS hybrid node (not an EC2 instance); image its disks with on-premises tooling',
    };
  }
  const ec2 = parseProviderId(n?.providerID);
  if (ec2) return { compute: 'ec2', reason: `EC2 instance ${ec2.instanceId}`, ec2 };
  return {
    compute: 'unknown',
    reason: n
      ? `node ${n.name} has no EC2 instance in spec.providerID (${n.providerID ?? 'empty'}); nothing to snapshot`
      : 'no node given; nothing to snapshot',
  };
}

/** Options of {@link eks-forensics!snapshotNode}. */
export interface SnapshotNodeOptions {
  /** Bundle the snapshot record goes into. */
  bundle: AwsEvidenceWriter;
  /** The node (name, `spec.providerID`, labels) or a Node object. */
  node: NodeRef | NodeObjectLike;
  /** The pod under investigation (tags, Fargate detection, custody target). */
  pod?: PodRef | PodObjectLike | undefined;
  /** Case id, tagged on the snapshots. */
  caseId?: string | undefined;
  /** Acquisition id, tagged on the snapshots (default: the bundle's). */
  acquisitionId?: string | undefined;
  /** Cluster name, tagged on the snapshots. */
  clusterName?: string | undefined;
  /** EC2 client; otherwise one is made from `region` (default: the node's region) and `credentials`. */
  ec2?: EC2Client | undefined;
  /** Region, when no client is given (default: from the node's zone). */
  region?: string | undefined;
  /** Credentials (identity or provider), when no client is given. Default: the SDK's chain. */
  credentials?: EC2ClientConfig['credentials'];
  /**
   * Also turn on EC2 termination protection (`DisableApiTermination`) for the instance. It changes
   * the instance and is recorded as a change. Default false.
   */
  terminationProtection?: boolean | undefined;
  /**
   * `multi-volume` (default): one crash-consistent CreateSnapshots call for all attached EBS volumes.
   * `per-volume`: one CreateSnapshot per volume.
   */
  mode?: 'multi-volume' | 'per-volume' | undefined;
  /** Leave out the root volume (default false). */
  excludeBootVolume?: boolean | undefined;
  /** Extra tags for the snapshots. */
  tags?: Readonly<Record<string, string>> | undefined;
  /** How long to wait for the snapshots to complete (default 10 minutes; 0: don't wait). */
  waitTimeoutMs?: number | undefined;
  /** Poll interval of DescribeSnapshots while waiting (default 15 s). */
  pollIntervalMs?: number | undefined;
  /** Bundle path of the JSON record (default `aws/node-snapshot/<node>.json`). */
  path?: string | undefined;
  /** Backoff of throttled calls. */
  retry?: AwsRetryOptions | undefined;
  /** Cancels the step (the call then rejects with `AbortedError`; snapshots already started continue in AWS). */
  signal?: AbortSignal | undefined;
  /** Diagnostics logger (silent by default). */
  logger?: Logger | undefined;
}

/** One snapshot made. */
export interface NodeSnapshotInfo {
  /** e.g. `snap-0123…`. */
  snapshotId: string;
  /** The EBS volume snapshotted. */
  volumeId: string;
  /** Device name on the instance, e.g. `/dev/xvda`. */
  deviceName?: string | undefined;
  /** `pending`, `completed`, `error`, … as EC2 reports it. */
  state: string;
  /** e.g. `100%`. */
  progress?: string | undefined;
  /** When EC2 started the snapshot (ISO 8601). */
  startTime?: string | undefined;
  /** Size of the volume. */
  volumeSizeGiB?: number | undefined;
  /** Whether the snapshot is encrypted (it is when the volume is). */
  encrypted?: boolean | undefined;
  /** KMS key of an encrypted snapshot: analysts need access to it. */
  kmsKeyId?: string | undefined;
  /** EC2's message for a snapshot in state `error`. */
  stateMessage?: string | undefined;
}

/** Result of {@link eks-forensics!snapshotNode}. */
export interface NodeSnapshotResult {
  /**
   * `completed`: every snapshot completed. `pending`: created, not complete when the wait bound was
   * reached (they continue in AWS). `partial`: snapshots exist but one failed, or termination
   * protection failed. `skipped`: not an EC2 node (`reason` says why). `failed`: no snapshot made.
   */
  status: 'completed' | 'pending' | 'partial' | 'skipped' | 'failed';
  /** Why the status is not `completed`. */
  reason?: string | undefined;
  /** Where the node runs. */
  compute: NodeCompute;
  /** The node. */
  nodeName: string;
  /** The EC2 instance behind the node. */
  instanceId?: string | undefined;
  /** Its availability zone. */
  availabilityZone?: string | undefined;
  /** Region of the EC2 calls. */
  region?: string | undefined;
  /** EBS volumes attached to the instance. */
  volumes: Array<{
    /** Volume id. */
    volumeId: string;
    /** Device name on the instance. */
    deviceName?: string | undefined;
    /** True for the root volume. */
    boot: boolean;
  }>;
  /** Snapshots made, with their last known state. */
  snapshots: NodeSnapshotInfo[];
  /** Tags put on every snapshot. */
  tags: Record<string, string>;
  /** Outcome of the termination protection step, when asked for. */
  terminationProtection?:
    | {
        /** The setting before (undefined when it could not be read). */
        previous?: boolean | undefined;
        /** On now. */
        enabled: boolean;
        /** True when this call turned it on (recorded as a custody change). */
        changed: boolean;
        /** Why it could not be enabled. */
        error?: EksForensicsError | undefined;
      }
    | undefined;
  /** Remarks for the report (Spot instance, instance state, polling problems). */
  notes: string[];
  /** The bundle's record of the JSON artifact. */
  record?: ArtifactRecord | undefined;
  /** Why it failed, when it did: an {@link AwsRequestError} names the IAM action that was denied. */
  error?: EksForensicsError | undefined;
}

const instanceSchema = z.looseObject({
  InstanceId: z.string(),
  InstanceLifecycle: z.string().optional(),
  RootDeviceName: z.string().optional(),
  Placement: z.looseObject({ AvailabilityZone: z.string().optional() }).optional(),
  State: z.looseObject({ Name: z.string().optional() }).optional(),
  BlockDeviceMappings: z
    .array(
      z.looseObject({
        DeviceName: z.string().optional(),
        Ebs: z.looseObject({ VolumeId: z.string().optional() }).optional(),
      }),
    )
    .optional(),
});

const TAG_PREFIX = 'eks-forensics:';

function tagValue(v: string): string {
  return v.length > 256 ? v.slice(0, 256) : v;
}

function toEksfError(err: unknown, what: string): EksForensicsError {
  if (err instanceof EksForensicsError) return err;
  return new EksForensicsError(`${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    throwIfAborted(signal, 'snapshot wait');
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal, 'snapshot wait'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function errorText(e: EksForensicsError | undefined): Record<string, unknown> | undefined {
  if (!e) return undefined;
  return {
    code: e.code,
    message: e.message,
    ...(e instanceof AwsRequestError ? { awsCode: e.awsCode, operation: e.operation } : {}),
  };
}

/**
 * Snapshots the EBS volumes of the EC2 instance behind a node (from `spec.providerID`), tags them
 * with case id, acquisition id, cluster, namespace and pod, optionally enables termination
 * protection, records every snapshot (and the protection change) in the bundle's custody changes,
 * writes a JSON record `aws/node-snapshot/<node>.json`, and waits for completion up to a bound.
 *
 * Fargate pods and non-EC2 nodes are skipped with the reason (`status: 'skipped'`). AWS failures are
 * returned in the result, not thrown: an {@link AwsRequestError} with `failure: 'access-denied'`
 * names the IAM action in `operation` (e.g. `ec2:CreateSnapshots`).
 *
 * @throws A {@link eks-forensics/errors!ConfigError} for invalid options (e.g. an EC2 client for another region than the
 *   node's); {@link AbortedError} when `signal` fires.
 * @example
 * const r = await snapshotNode({ bundle, node, pod, caseId: 'IR-42', clusterName: 'prod',
 *   terminationProtection: true });
 * console.log(r.status, r.snapshots.map((s) => s.snapshotId));
 */
export async function snapshotNode(options: SnapshotNodeOptions): Promise<NodeSnapshotResult> {
  const { bundle } = options;
  const node = toNodeRef(options.node);
  if (!node) throw new ConfigError('node needs a name (NodeRef.name or metadata.name)');
  const pod = toPodRef(options.pod);
  const logger = options.logger ?? silentLogger;
  const path = options.path ?? `aws/node-snapshot/${node.name}.json`;
  const target: TargetRef | undefined = pod
    ? { namespace: pod.namespace, pod: pod.name, podUid: pod.uid }
    : undefined;
  const source = { kind: 'aws-ec2', profile: 'eks-node-snapshot', item: 'ebs-snapshots' };
  const step = 'aws.node-snapshot';
  const waitTimeoutMs = options.waitTimeoutMs ?? 10 * 60_000;
  const pollIntervalMs = Math.max(1, options.pollIntervalMs ?? 15_000);
  if (!Number.isFinite(waitTimeoutMs) || waitTimeoutMs < 0)
    throw new ConfigError('waitTimeoutMs must be >= 0');

  const info = classifyNodeCompute(node, pod);
  const result: NodeSnapshotResult = {
    status: 'failed',
    compute: info.compute,
    nodeName: node.name,
    volumes: [],
    snapshots: [],
    tags: {},
    notes: [],
  };
  bundle.log({ step, event: 'start', node: node.name, providerID: node.providerID, compute: info.compute });

  if (!info.ec2) {
    result.status = 'skipped';
    result.reason = info.reason;
    result.record = await bundle.recordArtifact(path, {
      source,
      status: 'skipped',
      reason: info.reason,
      ...(target ? { target } : {}),
      details: { node: node.name, providerID: node.providerID, compute: info.compute },
    });
    bundle.log({ step, event: 'skipped', node: node.name, reason: info.reason });
    return result;
  }

  const { instanceId } = info.ec2;
  result.instanceId = instanceId;
  result.availabilityZone = info.ec2.availabilityZone;
  const nodeRegion = info.ec2.region;
  if (!options.ec2 && !options.region && !nodeRegion) {
    throw new ConfigError(`give an EC2 client or a region: providerID ${node.providerID} names no zone`);
  }
  const {
    CreateSnapshotCommand,
    CreateSnapshotsCommand,
    DescribeInstanceAttributeCommand,
    DescribeInstancesCommand,
    DescribeSnapshotsCommand,
    EC2Client,
    ModifyInstanceAttributeCommand,
  } = await import('@aws-sdk/client-ec2');
  const ownClient = !options.ec2;
  const ec2 =
    options.ec2 ?? new EC2Client({ region: options.region ?? nodeRegion, credentials: options.credentials });
  let region: string | undefined;
  try {
    region = await ec2.config.region();
  } catch {
    region = options.region ?? nodeRegion;
  }
  if (nodeRegion && region && nodeRegion !== region) {
    throw new ConfigError(
      `node ${node.name} is in ${nodeRegion} (providerID ${node.providerID}) but the EC2 client is for ${region}; ` +
        `pass an EC2Client for ${nodeRegion}`,
    );
  }
  result.region = region;
  const retry = options.retry;
  const signal = options.signal;
  const onRetry = (i: { action: string; attempt: number; delayMs: number; awsCode: string }) => {
    logger.warn({ ...i }, 'AWS throttled, backing off');
    bundle.log({ step, event: 'throttled', ...i });
  };
  const ctx = (action: string, resource: string) => ({ action, resource, region, retry, signal, onRetry });

  const writeRecord = async (): Promise<void> => {
    const doc = {
      kind: 'eks-forensics.node-snapshot',
      node: { name: node.name, providerID: node.providerID, compute: result.compute },
      pod: pod ? { namespace: pod.namespace, name: pod.name, uid: pod.uid } : undefined,
      instanceId,
      availabilityZone: result.availabilityZone,
      region,
      status: result.status,
      reason: result.reason,
      volumes: result.volumes,
      snapshots: result.snapshots,
      tags: result.tags,
      terminationProtection: result.terminationProtection
        ? { ...result.terminationProtection, error: errorText(result.terminationProtection.error) }
        : undefined,
      notes: result.notes,
      error: errorText(result.error),
      recordedAt: new Date().toISOString(),
    };
    result.record = await bundle.writeArtifact(path, `${JSON.stringify(doc, null, 2)}\n`, {
      source,
      contentType: 'application/json',
      ...(target ? { target } : {}),
      details: { instanceId, snapshotIds: result.snapshots.map((s) => s.snapshotId), status: result.status },
    });
  };

  try {
    // 1. The instance and its volumes.
    let instance: z.infer<typeof instanceSchema>;
    try {
      const out = await callAws(ctx('ec2:DescribeInstances', `instance ${instanceId}`), (s) =>
        ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: s }),
      );
      const raw = out.Reservations?.flatMap((r) => r.Instances ?? []).find(
        (i) => i.InstanceId === instanceId,
      );
      if (!raw)
        throw new NotFoundError(`EC2 instance ${instanceId} (node ${node.name}) was not found in ${region}`);
      const parsed = instanceSchema.safeParse(raw);
      if (!parsed.success)
        throw new NotFoundError(`EC2 instance ${instanceId}: unexpected DescribeInstances answer`);
      instance = parsed.data;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      result.error = toEksfError(err, 'DescribeInstances');
      result.reason = result.error.message;
      await writeRecord();
      return result;
    }
    result.availabilityZone = instance.Placement?.AvailabilityZone ?? result.availabilityZone;
    for (const m of instance.BlockDeviceMappings ?? []) {
      const volumeId = m.Ebs?.VolumeId;
      if (!volumeId) continue;
      result.volumes.push({
        volumeId,
        deviceName: m.DeviceName,
        boot: m.DeviceName === instance.RootDeviceName,
      });
    }
    const state = instance.State?.Name;
    if (state && state !== 'running' && state !== 'stopped' && state !== 'stopping') {
      result.notes.push(`instance ${instanceId} is ${state}`);
    }

    // 2. Termination protection first, so the instance is not terminated while we snapshot it.
    if (options.terminationProtection) {
      const tp: NonNullable<NodeSnapshotResult['terminationProtection']> = { enabled: false, changed: false };
      result.terminationProtection = tp;
      if (instance.InstanceLifecycle === 'spot') {
        result.notes.push(
          'Spot instance: termination protection does not prevent Spot interruptions; snapshot now.',
        );
      }
      try {
        const attr = await callAws(ctx('ec2:DescribeInstanceAttribute', `instance ${instanceId}`), (s) =>
          ec2.send(
            new DescribeInstanceAttributeCommand({
              InstanceId: instanceId,
              Attribute: 'disableApiTermination',
            }),
            {
              abortSignal: s,
            },
          ),
        );
        tp.previous = attr.DisableApiTermination?.Value === true;
        if (tp.previous) {
          tp.enabled = true;
        } else {
          await callAws(ctx('ec2:ModifyInstanceAttribute', `instance ${instanceId}`), (s) =>
            ec2.send(
              new ModifyInstanceAttributeCommand({
                InstanceId: instanceId,
                DisableApiTermination: { Value: true },
              }),
              { abortSignal: s },
            ),
          );
          tp.enabled = true;
          tp.changed = true;
          bundle.recordChange({
            kind: 'ec2-termination-protection-enabled',
            ...(target ? { target } : {}),
            description:
              `Enabled EC2 termination protection (DisableApiTermination=true) on instance ${instanceId} ` +
              `(node ${node.name}); it was off. Turn it off again when the investigation allows.`,
            details: { instanceId, node: node.name, region, previous: false },
          });
        }
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        tp.error = toEksfError(err, 'termination protection');
        result.notes.push(`termination protection: ${tp.error.message}`);
      }
      bundle.log({ step, event: 'termination-protection', instanceId, ...tp, error: errorText(tp.error) });
    }

    // 3. Snapshots.
    const acquisitionId = options.acquisitionId ?? bundle.acquisitionId;
    const tags: Record<string, string> = {
      Name: tagValue(`eks-forensics ${options.caseId ?? acquisitionId} ${node.name}`),
      [`${TAG_PREFIX}acquisition-id`]: tagValue(acquisitionId),
      [`${TAG_PREFIX}node`]: tagValue(node.name),
      [`${TAG_PREFIX}instance-id`]: instanceId,
    };
    if (options.caseId) tags[`${TAG_PREFIX}case-id`] = tagValue(options.caseId);
    if (options.clusterName) tags[`${TAG_PREFIX}cluster`] = tagValue(options.clusterName);
    if (pod) {
      tags[`${TAG_PREFIX}namespace`] = tagValue(pod.namespace);
      tags[`${TAG_PREFIX}pod`] = tagValue(pod.name);
      if (pod.uid) tags[`${TAG_PREFIX}pod-uid`] = tagValue(pod.uid);
    }
    for (const [k, v] of Object.entries(options.tags ?? {})) tags[k.slice(0, 128)] = tagValue(v);
    result.tags = tags;
    const tagList: Tag[] = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    const description =
      `eks-forensics ${options.caseId ? `case ${options.caseId} ` : ''}acquisition ${acquisitionId} node ${node.name}${
        pod ? ` pod ${pod.namespace}/${pod.name}` : ''
      }`.slice(0, 255);
    const deviceOf = new Map(result.volumes.map((v) => [v.volumeId, v.deviceName]));
    const wanted = result.volumes.filter((v) => !(options.excludeBootVolume && v.boot));
    if (wanted.length === 0) {
      result.reason = `instance ${instanceId} has no EBS volumes to snapshot`;
      result.status = 'failed';
      await writeRecord();
      return result;
    }
    const record = (s: NodeSnapshotInfo): void => {
      result.snapshots.push(s);
      bundle.recordChange({
        kind: 'aws-ebs-snapshot-created',
        ...(target ? { target } : {}),
        description: `Created EBS snapshot ${s.snapshotId} of volume ${s.volumeId}${
          s.deviceName ? ` (${s.deviceName})` : ''
        } attached to instance ${instanceId} (node ${node.name})`,
        details: {
          snapshotId: s.snapshotId,
          volumeId: s.volumeId,
          deviceName: s.deviceName,
          instanceId,
          region,
          tags,
        },
      });
    };
    const snapshotErrors: EksForensicsError[] = [];
    if ((options.mode ?? 'multi-volume') === 'multi-volume') {
      try {
        const out = await callAws(ctx('ec2:CreateSnapshots', `instance ${instanceId}`), (s) =>
          ec2.send(
            new CreateSnapshotsCommand({
              InstanceSpecification: {
                InstanceId: instanceId,
                ExcludeBootVolume: options.excludeBootVolume ?? false,
              },
              Description: description,
              TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList }],
            }),
            { abortSignal: s },
          ),
        );
        for (const s of out.Snapshots ?? []) {
          if (!s.SnapshotId || !s.VolumeId) continue;
          record({
            snapshotId: s.SnapshotId,
            volumeId: s.VolumeId,
            deviceName: deviceOf.get(s.VolumeId),
            state: s.State ?? 'pending',
            progress: s.Progress,
            startTime: s.StartTime?.toISOString(),
            volumeSizeGiB: s.VolumeSize,
            encrypted: s.Encrypted,
          });
        }
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        snapshotErrors.push(toEksfError(err, 'CreateSnapshots'));
      }
    } else {
      for (const v of wanted) {
        try {
          const s = await callAws(ctx('ec2:CreateSnapshot', `volume ${v.volumeId}`), (sig) =>
            ec2.send(
              new CreateSnapshotCommand({
                VolumeId: v.volumeId,
                Description: description,
                TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList }],
              }),
              { abortSignal: sig },
            ),
          );
          if (!s.SnapshotId)
            throw new EksForensicsError(`CreateSnapshot for ${v.volumeId} returned no SnapshotId`);
          record({
            snapshotId: s.SnapshotId,
            volumeId: v.volumeId,
            deviceName: v.deviceName,
            state: s.State ?? 'pending',
            progress: s.Progress,
            startTime: s.StartTime?.toISOString(),
            volumeSizeGiB: s.VolumeSize,
            encrypted: s.Encrypted,
            kmsKeyId: s.KmsKeyId,
          });
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          snapshotErrors.push(toEksfError(err, `CreateSnapshot ${v.volumeId}`));
        }
      }
    }
    bundle.log({
      step,
      event: 'snapshots-created',
      instanceId,
      snapshotIds: result.snapshots.map((s) => s.snapshotId),
      errors: snapshotErrors.map(errorText),
    });

    // 4. Wait for completion, bounded.
    const done = (s: NodeSnapshotInfo) => s.state === 'completed' || s.state === 'error';
    if (result.snapshots.length > 0 && waitTimeoutMs > 0) {
      const deadline = Date.now() + waitTimeoutMs;
      for (;;) {
        try {
          const out = await callAws(ctx('ec2:DescribeSnapshots', `snapshots of ${instanceId}`), (s) =>
            ec2.send(
              new DescribeSnapshotsCommand({ SnapshotIds: result.snapshots.map((x) => x.snapshotId) }),
              {
                abortSignal: s,
              },
            ),
          );
          for (const d of out.Snapshots ?? []) {
            const mine = result.snapshots.find((x) => x.snapshotId === d.SnapshotId);
            if (!mine) continue;
            mine.state = d.State ?? mine.state;
            mine.progress = d.Progress ?? mine.progress;
            mine.startTime = d.StartTime?.toISOString() ?? mine.startTime;
            mine.volumeSizeGiB = d.VolumeSize ?? mine.volumeSizeGiB;
            mine.encrypted = d.Encrypted ?? mine.encrypted;
            mine.kmsKeyId = d.KmsKeyId ?? mine.kmsKeyId;
            mine.stateMessage = d.StateMessage ?? mine.stateMessage;
          }
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          result.notes.push(
            `could not poll snapshot state: ${toEksfError(err, 'DescribeSnapshots').message}`,
          );
          break;
        }
        if (result.snapshots.every(done)) break;
        const left = deadline - Date.now();
        if (left <= 0) break;
        await sleep(Math.min(pollIntervalMs, left), signal);
      }
    }

    // 5. Outcome.
    const failedSnaps = result.snapshots.filter((s) => s.state === 'error');
    if (result.snapshots.length === 0) {
      result.status = 'failed';
      result.error = snapshotErrors[0];
      result.reason = snapshotErrors[0]?.message ?? 'no snapshot was created';
    } else if (snapshotErrors.length > 0 || failedSnaps.length > 0 || result.terminationProtection?.error) {
      result.status = 'partial';
      result.error = snapshotErrors[0] ?? result.terminationProtection?.error;
      result.reason = [
        ...snapshotErrors.map((e) => e.message),
        ...failedSnaps.map(
          (s) => `snapshot ${s.snapshotId} is in state error${s.stateMessage ? `: ${s.stateMessage}` : ''}`,
        ),
        ...(result.terminationProtection?.error
          ? [`termination protection: ${result.terminationProtection.error.message}`]
          : []),
      ].join('; ');
    } else if (result.snapshots.every((s) => s.state === 'completed')) {
      result.status = 'completed';
    } else {
      result.status = 'pending';
      result.reason =
        waitTimeoutMs > 0
          ? `snapshots still pending after ${waitTimeoutMs} ms; they continue in AWS (check with DescribeSnapshots)`
          : 'not waited for; snapshots continue in AWS (check with DescribeSnapshots)';
    }
    await writeRecord();
    bundle.log({ step, event: 'done', status: result.status, reason: result.reason });
    return result;
  } finally {
    if (ownClient) ec2.destroy();
  }
}
