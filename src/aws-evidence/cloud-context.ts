/**
 * The cloud-side context of one pod, written into the evidence bundle: its Kubernetes identity
 * document, the EC2 context of its node, the CloudTrail activity of its IAM roles and the node's
 * role, and the GuardDuty findings about it. Each part is one hashed JSON artifact; every change
 * made in the account (scale-in protection) is a custody entry.
 */

import type { CredentialsInput } from '../aws/index.js';
import type { PodIdentityContext } from '../catalog/index.js';
import { AbortedError, ConfigError } from '../errors.js';
import type { ArtifactRecord, TargetRef } from '../evidence/index.js';
import type { AwsRetryOptions } from './aws-call.js';
import { type CloudTrailActivity, cloudTrailActivity, type KnownSources } from './cloudtrail.js';
import { type GuardDutyFindingsResult, guardDutyFindings } from './guardduty.js';
import { type NodeContextResult, nodeContext } from './node-context.js';
import {
  type AwsEvidenceWriter,
  type NodeObjectLike,
  type NodeRef,
  type PodObjectLike,
  type PodRef,
  toPodRef,
} from './types.js';

/** Options of {@link collectCloudContext}. */
export interface CollectCloudContextOptions {
  /** Bundle the artifacts and custody entries go into. */
  bundle: AwsEvidenceWriter;
  /** The pod. */
  pod: PodRef | PodObjectLike;
  /** Its node (for the EC2 context, the node role's CloudTrail activity, node findings). */
  node?: NodeRef | NodeObjectLike | undefined;
  /** The pod's identity document from `podIdentityContext()` (its AWS roles are looked up). */
  identity?: PodIdentityContext | undefined;
  /** EKS cluster name (GuardDuty cluster findings). */
  clusterName?: string | undefined;
  /** Region of the cluster. */
  region: string;
  /** AWS credentials for every client. */
  credentials?: CredentialsInput | undefined;
  /** Endpoint overrides per service (tests: FakeAws for CloudTrail/GuardDuty, moto for the rest). */
  endpoints?: { cloudtrail?: string; guardduty?: string; ec2?: string } | undefined;
  /** Window of the CloudTrail lookups and GuardDuty findings. */
  window: { from: Date; to: Date };
  /** Extra addresses that count as the cluster's own (added to the VPC CIDRs, NAT and node IPs found). */
  knownSources?: KnownSources | undefined;
  /** Node context options; `false` skips it. */
  nodeContext?: false | { setScaleInProtection?: boolean | undefined } | undefined;
  /** CloudTrail bounds; `false` skips it. */
  cloudTrail?: false | { maxEvents?: number; maxSessions?: number; maxPagesPerLookup?: number } | undefined;
  /** GuardDuty bounds; `false` skips it. */
  guardDuty?: false | { maxFindings?: number } | undefined;
  /** Backoff on throttling, for every service. */
  retry?: AwsRetryOptions | undefined;
  /** Cancels everything. */
  signal?: AbortSignal | undefined;
}

/** What {@link collectCloudContext} produced. */
export interface CloudContextResult {
  /** The node's EC2 context. */
  node?: NodeContextResult | undefined;
  /** CloudTrail activity. */
  cloudTrail?: CloudTrailActivity | undefined;
  /** GuardDuty findings. */
  guardDuty?: GuardDutyFindingsResult | undefined;
  /** Bundle records, by artifact path. */
  records: Record<string, ArtifactRecord>;
}

/** Bundle paths of the cloud-context artifacts. */
export const CLOUD_CONTEXT_PATHS = {
  identity: 'cloud-context/pod-identity.json',
  node: 'cloud-context/node.json',
  cloudTrail: 'cloud-context/cloudtrail.json',
  guardDuty: 'cloud-context/guardduty.json',
} as const;

/**
 * Collects the cloud-side context of a pod into the bundle. Read-only unless
 * `nodeContext.setScaleInProtection` is set (then the change is in custody). Parts that AWS
 * refuses are written with their failure (status `failed`/`truncated` and the reason), never
 * dropped; only an abort throws.
 *
 * @throws {@link AbortedError} when `signal` fires; {@link eks-forensics/errors!ConfigError} for a bad window.
 */
export async function collectCloudContext(options: CollectCloudContextOptions): Promise<CloudContextResult> {
  const { bundle, region, signal } = options;
  if (!(options.window.from.getTime() <= options.window.to.getTime())) {
    throw new ConfigError('window.from must not be after window.to');
  }
  const podRef = toPodRef(options.pod);
  if (!podRef) throw new ConfigError('collectCloudContext needs a pod with a name and a namespace');
  const target: TargetRef = {
    namespace: podRef.namespace,
    pod: podRef.name,
    ...(podRef.uid ? { podUid: podRef.uid } : {}),
  };
  const out: CloudContextResult = { records: {} };
  const write = async (
    key: keyof typeof CLOUD_CONTEXT_PATHS,
    item: string,
    doc: unknown,
    status: string,
    reason?: string,
  ): Promise<void> => {
    const path = CLOUD_CONTEXT_PATHS[key];
    const failed = status === 'failed';
    const truncated = status === 'partial';
    out.records[path] = await bundle.writeArtifact(path, `${JSON.stringify(doc, null, 2)}\n`, {
      source: { kind: 'aws-api', profile: 'cloud-context', item },
      contentType: 'application/json',
      target,
      details: { status },
      ...(truncated
        ? { status: 'truncated' as const, reason: reason ?? 'some reads failed or were cut' }
        : {}),
      ...(failed
        ? { finish: () => ({ status: 'failed' as const, reason: reason ?? `${item} failed` }) }
        : {}),
    });
    bundle.log({ step: 'cloud-context', item, event: 'done', status, ...(reason ? { reason } : {}) });
  };

  if (options.identity) {
    const id = options.identity;
    await write(
      'identity',
      'pod-identity',
      id,
      id.complete ? 'complete' : 'partial',
      id.complete ? undefined : `skipped: ${id.skipped.map((s) => s.item).join(', ')}`,
    );
  }

  const retry = options.retry;
  if (options.node && options.nodeContext !== false) {
    try {
      out.node = await nodeContext({
        node: options.node,
        pod: options.pod,
        region,
        credentials: options.credentials,
        endpoint: options.endpoints?.ec2,
        setScaleInProtection: options.nodeContext?.setScaleInProtection,
        bundle,
        retry,
        signal,
      });
      await write(
        'node',
        'node-context',
        out.node,
        out.node.status,
        out.node.failures.map((f) => `${f.action}: ${f.kind}`).join('; ') || undefined,
      );
    } catch (err) {
      if (err instanceof AbortedError || err instanceof ConfigError) throw err;
      await write(
        'node',
        'node-context',
        { error: (err as Error).message },
        'failed',
        (err as Error).message,
      );
    }
  }

  const instanceId = out.node?.instanceId ?? undefined;
  const known: KnownSources = {
    cidrs: [...(out.node?.knownSources.cidrs ?? []), ...(options.knownSources?.cidrs ?? [])],
    ips: [...(out.node?.knownSources.ips ?? []), ...(options.knownSources?.ips ?? [])],
  };
  if (options.cloudTrail !== false) {
    const podRoles = [...new Set((options.identity?.awsRoles ?? []).map((r) => r.roleArn))];
    out.cloudTrail = await cloudTrailActivity({
      region,
      credentials: options.credentials,
      endpoint: options.endpoints?.cloudtrail,
      podRoleArns: podRoles,
      nodeInstanceId: instanceId,
      nodeRoleArn: out.node?.instanceProfile?.roleArns?.[0],
      startTime: options.window.from,
      endTime: options.window.to,
      knownSources: known,
      ...(options.cloudTrail ?? {}),
      retry,
      signal,
    });
    await write(
      'cloudTrail',
      'cloudtrail',
      out.cloudTrail,
      out.cloudTrail.status === 'complete' ? 'complete' : out.cloudTrail.status,
      out.cloudTrail.notes.join('; ').slice(0, 1000) || undefined,
    );
  }

  if (options.guardDuty !== false) {
    const owners = (options.identity?.owners.chain ?? []).map((o) => o.name);
    out.guardDuty = await guardDutyFindings({
      region,
      credentials: options.credentials,
      endpoint: options.endpoints?.guardduty,
      clusterName: options.clusterName,
      instanceId,
      pod: { namespace: podRef.namespace, name: podRef.name, ownerNames: owners },
      ...(options.guardDuty ?? {}),
      retry,
      signal,
    });
    const gs = out.guardDuty.status;
    await write(
      'guardDuty',
      'guardduty',
      out.guardDuty,
      gs === 'collected' || gs === 'disabled' ? 'complete' : gs,
      [...out.guardDuty.notes, ...out.guardDuty.failures.map((f) => `${f.action}: ${f.kind}`)].join('; ') ||
        undefined,
    );
  }
  return out;
}
