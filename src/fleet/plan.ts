/**
 * Plan a sweep from a catalog walk and put it on a queue.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type {
  CatalogProblem,
  ClusterInfo,
  ConnectOptions,
  ContainerInfo,
  PodInfo,
  PodsOptions,
} from '../catalog/index.js';
import { ConfigError, ValidationError } from '../errors.js';
import { type SendFailure, type SweepQueue, sendAll } from './sqs.js';
import { getJson, putJson, SweepKeys, type SweepStore } from './store.js';
import {
  acquisitionIdFor,
  FLEET_SCHEMA_VERSION,
  type SweepCluster,
  SweepIdSchema,
  type SweepManifest,
  SweepManifestSchema,
  type SweepTarget,
  targetKey,
} from './types.js';
import { errText, mapLimit } from './util.js';

/** What {@link planSweep} needs of a catalog (`ClusterCatalog` from `eks-forensics` has it). */
export interface SweepCatalog {
  /** Clusters across accounts and regions. */
  clusters(options?: { signal?: AbortSignal | undefined }): AsyncIterable<ClusterInfo>;
  /** Visible pods of one cluster. */
  pods(cluster: ClusterInfo, options?: PodsOptions): Promise<PodInfo[]>;
  /** Failures of the latest cluster walk. */
  readonly problems?: readonly CatalogProblem[];
}

/** Which containers a sweep covers. Every field narrows; omitted fields do not filter. */
export interface SweepSelector {
  /** Sweep id (1-63 of `[A-Za-z0-9_.-]`). Re-planning with the same id gives the same acquisition ids. Default: generated. */
  sweepId?: string | undefined;
  /** Case id recorded in every bundle. */
  caseId?: string | undefined;
  /** Only these account ids. */
  accounts?: readonly string[] | undefined;
  /** Only these regions. */
  regions?: readonly string[] | undefined;
  /** Only these clusters (names or ARNs). */
  clusters?: readonly string[] | undefined;
  /** Only these namespaces. */
  namespaces?: readonly string[] | undefined;
  /** Kubernetes label selector for pods (server-side). */
  labelSelector?: string | undefined;
  /** Also running init containers. Default false (sidecars are included). */
  includeInit?: boolean | undefined;
  /** Last say over each container. */
  filter?: ((cluster: ClusterInfo, pod: PodInfo, container: ContainerInfo) => boolean) | undefined;
  /** Connection options per cluster (endpoint override, tunnel agent, private VPC). */
  connect?: ((cluster: ClusterInfo) => ConnectOptions | undefined) | undefined;
  /** Clusters listed at the same time. Default 4. */
  concurrency?: number | undefined;
  /** Cancels the walk. */
  signal?: AbortSignal | undefined;
}

/** A planned sweep: the target messages and what could not be seen. */
export interface SweepPlan {
  /** Sweep id. */
  sweepId: string;
  /** Case id. */
  caseId?: string | undefined;
  /** When planned (UTC ISO). */
  createdAt: string;
  /** One message per container, sorted by key, with a deterministic acquisition id. */
  targets: SweepTarget[];
  /** Accounts, regions or clusters that failed during the walk: the plan does not cover them. */
  problems: { where: string; message: string }[];
}

/** A new sweep id: `sw-<UTC yyyymmddhhmmss>-<6 hex>`. */
export function newSweepId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `sw-${t}-${randomBytes(3).toString('hex')}`;
}

function sweepCluster(c: ClusterInfo): SweepCluster {
  return {
    name: c.name,
    arn: c.arn,
    accountId: c.accountId,
    region: c.region,
    partition: c.partition,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    ...(c.certificateAuthority ? { certificateAuthority: c.certificateAuthority } : {}),
    ...(c.id ? { id: c.id } : {}),
    ...(c.roleArn ? { roleArn: c.roleArn } : {}),
    ...(c.reachability?.kind === 'private-only' ? { privateOnly: true } : {}),
  };
}

/** Builds one target message (used by {@link planSweep}; exported for hand-made plans). */
export function sweepTarget(
  sweepId: string,
  cluster: ClusterInfo | SweepCluster,
  pod: { namespace: string; name: string; uid?: string | undefined },
  container: string,
  caseId?: string,
): SweepTarget {
  const c = 'reachability' in cluster ? sweepCluster(cluster) : cluster;
  const key = targetKey({
    accountId: c.accountId,
    region: c.region,
    cluster: c.name,
    namespace: pod.namespace,
    pod: pod.name,
    container,
  });
  return {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'eks-forensics.fleet.target',
    sweepId,
    acquisitionId: acquisitionIdFor(sweepId, key),
    key,
    ...(caseId ? { caseId } : {}),
    cluster: c,
    namespace: pod.namespace,
    pod: pod.name,
    ...(pod.uid ? { podUid: pod.uid } : {}),
    container,
  };
}

/**
 * Walks the catalog (accounts × regions × clusters × pods, with the catalog's visibility policy)
 * and returns one target per running container that the selector keeps, each with a
 * deterministic acquisition id. A cluster whose pods cannot be listed is a plan problem, not a
 * failure of the plan: check `problems` before calling the sweep complete.
 *
 * @throws {ConfigError} for a bad sweep id or concurrency.
 */
export async function planSweep(catalog: SweepCatalog, selector: SweepSelector = {}): Promise<SweepPlan> {
  const sweepId = selector.sweepId ?? newSweepId();
  if (!SweepIdSchema.safeParse(sweepId).success)
    throw new ConfigError(
      `sweep id ${JSON.stringify(sweepId)}: use 1-63 of [A-Za-z0-9_.-], starting alphanumeric`,
    );
  const concurrency = selector.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new ConfigError('concurrency must be an integer >= 1');
  const clusters: ClusterInfo[] = [];
  const pick = (list: readonly string[] | undefined, ...values: string[]) =>
    !list || values.some((v) => list.includes(v));
  for await (const c of catalog.clusters({ signal: selector.signal })) {
    if (!pick(selector.accounts, c.accountId) || !pick(selector.regions, c.region)) continue;
    if (!pick(selector.clusters, c.name, c.arn)) continue;
    clusters.push(c);
  }
  const problems: { where: string; message: string }[] = (catalog.problems ?? []).map((p) => ({
    where: [p.account ?? p.roleArn, p.region, p.cluster].filter(Boolean).join('/') || p.operation,
    message: p.message,
  }));
  const seen = new Map<string, SweepTarget>();
  const namespaces = selector.namespaces ?? [undefined];
  await mapLimit(clusters, concurrency, async (cluster) => {
    for (const namespace of namespaces) {
      let pods: PodInfo[];
      try {
        pods = await catalog.pods(cluster, {
          ...(namespace ? { namespace } : {}),
          ...(selector.labelSelector ? { labelSelector: selector.labelSelector } : {}),
          ...(selector.connect?.(cluster) ? { connect: selector.connect(cluster) } : {}),
          signal: selector.signal,
        });
      } catch (err) {
        problems.push({
          where: `${cluster.accountId}/${cluster.region}/${cluster.name}${namespace ? `/${namespace}` : ''}`,
          message: `pods could not be listed: ${errText(err)}`,
        });
        continue;
      }
      for (const pod of pods) {
        if (pod.hidden) continue;
        for (const c of pod.containers) {
          if (c.hidden || c.state !== 'running' || c.kind === 'ephemeral') continue;
          if (c.kind === 'init' && !selector.includeInit) continue;
          if (selector.filter && !selector.filter(cluster, pod, c)) continue;
          const t = sweepTarget(sweepId, cluster, pod, c.name, selector.caseId);
          seen.set(t.key, t);
        }
      }
    }
  });
  const targets = [...seen.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    sweepId,
    ...(selector.caseId ? { caseId: selector.caseId } : {}),
    createdAt: new Date().toISOString(),
    targets,
    problems,
  };
}

/** Options of {@link enqueueSweep}. */
export interface EnqueueOptions {
  /** The work queue. */
  queue: SweepQueue;
  /** Where the sweep manifest goes (and, later, bundles and records). */
  store: SweepStore;
  /** Tries per batch entry that SQS refuses (throttling, internal errors). Default 5. */
  attempts?: number | undefined;
  /** Called after each batch with the count sent so far. */
  onProgress?: ((sent: number, total: number) => void) | undefined;
  /** Cancels sending (what was sent stays sent). */
  signal?: AbortSignal | undefined;
}

/** What {@link enqueueSweep} did. */
export interface EnqueueResult {
  /** Sweep id. */
  sweepId: string;
  /** Messages accepted by SQS. */
  sent: number;
  /** Entries SQS refused for good (acquisition id, code, message); they are not on the queue. */
  failed: SendFailure[];
  /** `s3://…/sweep.json`. */
  manifest: string;
}

/**
 * Writes the sweep manifest to S3 (merged with an earlier one of the same sweep id), then sends
 * the targets to SQS in batches of 10, retrying entries a batch reports as failed, and records
 * what was sent in `enqueue.json`. Sending the same plan twice is harmless: workers recognise
 * acquisition ids already finalized.
 *
 * @throws {EvidenceError} when the manifest cannot be written (nothing is sent then).
 */
export async function enqueueSweep(plan: SweepPlan, options: EnqueueOptions): Promise<EnqueueResult> {
  const keys = new SweepKeys(options.store, plan.sweepId);
  let earlier: SweepManifest | undefined;
  try {
    earlier = await getJson(options.store, keys.manifest, SweepManifestSchema, { manifest: true });
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    throw new ValidationError(
      `${keys.manifest} exists but is not a sweep manifest; choose another sweep id or remove it`,
      { cause: e },
    );
  }
  const byId = new Map((earlier?.targets ?? []).map((t) => [t.acquisitionId, t]));
  for (const t of plan.targets) {
    byId.set(t.acquisitionId, {
      acquisitionId: t.acquisitionId,
      key: t.key,
      clusterArn: t.cluster.arn,
      region: t.cluster.region,
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
    });
  }
  const manifest: SweepManifest = {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'eks-forensics.fleet.sweep',
    sweepId: plan.sweepId,
    ...(plan.caseId ? { caseId: plan.caseId } : {}),
    createdAt: earlier?.createdAt ?? plan.createdAt,
    queueUrl: options.queue.queueUrl,
    targets: [...byId.values()].sort((a, b) => (a.key < b.key ? -1 : 1)),
    problems: [...(earlier?.problems ?? []), ...plan.problems],
  };
  await putJson(options.store, keys.manifest, manifest, { signal: options.signal });
  let total = 0;
  const result = await sendAll(
    options.queue,
    plan.targets.map((t) => ({
      id: t.acquisitionId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80),
      body: JSON.stringify(t),
    })),
    {
      attempts: options.attempts,
      signal: options.signal,
      onSent: (n) => {
        total += n;
        options.onProgress?.(total, plan.targets.length);
      },
    },
  );
  const idOf = new Map(
    plan.targets.map((t) => [t.acquisitionId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80), t.acquisitionId]),
  );
  const failed = result.failed.map((f) => ({ ...f, id: idOf.get(f.id) ?? f.id }));
  await putJson(options.store, keys.enqueue, {
    schemaVersion: FLEET_SCHEMA_VERSION,
    kind: 'eks-forensics.fleet.enqueue',
    sweepId: plan.sweepId,
    at: new Date().toISOString(),
    sent: result.sent,
    failed,
  });
  return {
    sweepId: plan.sweepId,
    sent: result.sent,
    failed,
    manifest: `s3://${options.store.bucket}/${keys.manifest}`,
  };
}
