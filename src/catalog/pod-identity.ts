/**
 * The identity context of a pod, from the Kubernetes API only (works for distroless pods): its
 * service account and the AWS roles it maps to, the RBAC that grants the account or its groups,
 * the owner chain with the ReplicaSet revision history, namespace events in a window and the
 * NetworkPolicies that select the pod. Every read that is denied is a recorded skip naming the
 * exact RBAC rule to add; nothing is guessed.
 */
import { createHash } from 'node:crypto';
import type { EKSClient } from '@aws-sdk/client-eks';
import { z } from 'zod';
import { type CredentialsInput, classifyAwsError } from '../aws/index.js';
import { AbortedError, ConfigError, EksForensicsError, ForbiddenError, NotFoundError } from '../errors.js';
import type {
  KubeClient,
  KubeResourceKind,
  Pod,
  PolicyRule,
  RbacBinding,
  RbacRole,
  Workload,
} from '../kube/index.js';
import { loadYaml } from '../util/index.js';
import {
  bindingGrants,
  CAPABILITY_CHECKS,
  ruleAllows,
  selectorMatches,
  serviceAccountSubjects,
} from './rbac-eval.js';

/** The annotation IRSA reads on a ServiceAccount. */
export const IRSA_ROLE_ANNOTATION = 'eks.amazonaws.com/role-arn';

/** One RBAC permission the identity context reads with. */
export interface IdentityReadPermission {
  /** The item of the document it fills. */
  item: IdentityItem;
  /** API group (`''` for core). */
  apiGroup: string;
  /** Resource. */
  resource: string;
  /** Verbs. */
  verbs: readonly string[];
  /** `cluster`: needs a ClusterRole bound cluster-wide; `namespace`: a Role in the pod's namespace suffices. */
  scope: 'cluster' | 'namespace';
  /** What it is for. */
  purpose: string;
}

/** The items of a {@link PodIdentityContext}. */
export type IdentityItem =
  | 'pod'
  | 'serviceAccount'
  | 'podIdentityAssociations'
  | 'roleBindings'
  | 'clusterRoleBindings'
  | 'roles'
  | 'clusterRoles'
  | 'owners'
  | 'revisions'
  | 'events'
  | 'networkPolicies';

const RBAC = 'rbac.authorization.k8s.io';

/** The Kubernetes reads of {@link podIdentityContext}, for docs and for the skip remediation. */
export const IDENTITY_READ_PERMISSIONS: readonly IdentityReadPermission[] = Object.freeze([
  {
    item: 'pod',
    apiGroup: '',
    resource: 'pods',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'the pod itself',
  },
  {
    item: 'serviceAccount',
    apiGroup: '',
    resource: 'serviceaccounts',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'role-arn annotation, automount',
  },
  {
    item: 'roleBindings',
    apiGroup: RBAC,
    resource: 'rolebindings',
    verbs: ['list'],
    scope: 'cluster',
    purpose: 'bindings in any namespace that grant the SA or its groups',
  },
  {
    item: 'clusterRoleBindings',
    apiGroup: RBAC,
    resource: 'clusterrolebindings',
    verbs: ['list'],
    scope: 'cluster',
    purpose: 'cluster-wide bindings that grant the SA or its groups',
  },
  {
    item: 'roles',
    apiGroup: RBAC,
    resource: 'roles',
    verbs: ['get'],
    scope: 'cluster',
    purpose: 'rules of bound Roles',
  },
  {
    item: 'clusterRoles',
    apiGroup: RBAC,
    resource: 'clusterroles',
    verbs: ['get'],
    scope: 'cluster',
    purpose: 'rules of bound ClusterRoles',
  },
  {
    item: 'owners',
    apiGroup: 'apps',
    resource: 'replicasets',
    verbs: ['get', 'list'],
    scope: 'namespace',
    purpose: 'owner chain and revision history',
  },
  {
    item: 'owners',
    apiGroup: 'apps',
    resource: 'deployments',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'owner chain',
  },
  {
    item: 'owners',
    apiGroup: 'apps',
    resource: 'statefulsets',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'owner chain',
  },
  {
    item: 'owners',
    apiGroup: 'apps',
    resource: 'daemonsets',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'owner chain',
  },
  {
    item: 'owners',
    apiGroup: 'batch',
    resource: 'jobs',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'owner chain',
  },
  {
    item: 'owners',
    apiGroup: 'batch',
    resource: 'cronjobs',
    verbs: ['get'],
    scope: 'namespace',
    purpose: 'owner chain',
  },
  {
    item: 'events',
    apiGroup: '',
    resource: 'events',
    verbs: ['list'],
    scope: 'namespace',
    purpose: 'namespace events in the window',
  },
  {
    item: 'networkPolicies',
    apiGroup: 'networking.k8s.io',
    resource: 'networkpolicies',
    verbs: ['list'],
    scope: 'namespace',
    purpose: 'NetworkPolicies that select the pod',
  },
]);

/** The IAM action of {@link podIdentityContext} (Pod Identity associations). */
export const IDENTITY_IAM_ACTIONS: readonly string[] = Object.freeze([
  'eks:ListPodIdentityAssociations',
  'eks:DescribePodIdentityAssociation',
]);

const KIND_RESOURCE: Partial<Record<KubeResourceKind, { apiGroup: string; resource: string }>> = {
  ReplicaSet: { apiGroup: 'apps', resource: 'replicasets' },
  Deployment: { apiGroup: 'apps', resource: 'deployments' },
  StatefulSet: { apiGroup: 'apps', resource: 'statefulsets' },
  DaemonSet: { apiGroup: 'apps', resource: 'daemonsets' },
  Job: { apiGroup: 'batch', resource: 'jobs' },
  CronJob: { apiGroup: 'batch', resource: 'cronjobs' },
};

// ------------------------------------------------------------------ document schema

/** zod schema of one recorded skip of a {@link PodIdentityContext}. */
export const identitySkipSchema = z.object({
  item: z.string(),
  code: z.string(),
  reason: z.string(),
  rbacRule: z
    .object({
      apiGroups: z.array(z.string()),
      resources: z.array(z.string()),
      verbs: z.array(z.string()),
      scope: z.enum(['cluster', 'namespace']),
    })
    .optional(),
  iamAction: z.string().optional(),
});

const grantedRuleSchema = z.object({
  verbs: z.array(z.string()),
  apiGroups: z.array(z.string()),
  resources: z.array(z.string()),
  resourceNames: z.array(z.string()).optional(),
  nonResourceURLs: z.array(z.string()).optional(),
  /** `*` = every namespace (ClusterRoleBinding), else the RoleBinding's namespace. */
  scope: z.string(),
  binding: z.string(),
});

const revisionSchema = z.object({
  name: z.string(),
  revision: z.number().int().nullable(),
  createdAt: z.string().nullable(),
  podTemplateHash: z.string().nullable(),
  templateSha256: z.string(),
  images: z.array(z.string()),
  serviceAccountName: z.string().nullable(),
  replicas: z.number().int().nullable(),
  ownsPod: z.boolean(),
});

/** zod schema of the {@link PodIdentityContext} document (also validates one read back). */
export const podIdentityContextSchema = z.object({
  kind: z.literal('PodIdentityContext'),
  version: z.literal(1),
  collectedAt: z.string(),
  window: z.object({ from: z.string(), to: z.string() }),
  complete: z.boolean(),
  pod: z.object({
    namespace: z.string(),
    name: z.string(),
    uid: z.string().nullable(),
    nodeName: z.string().nullable(),
    serviceAccountName: z.string(),
    automountServiceAccountToken: z.boolean().nullable(),
    labels: z.record(z.string(), z.string()),
  }),
  serviceAccount: z.object({
    status: z.enum(['found', 'not-found', 'skipped']),
    name: z.string(),
    username: z.string(),
    groups: z.array(z.string()),
    roleArn: z.string().nullable(),
    automountServiceAccountToken: z.boolean().nullable(),
    /** Whether the pod gets a token mounted (pod setting wins over the SA's; default true). */
    tokenMounted: z.boolean().nullable(),
    object: z.unknown().optional(),
  }),
  awsRoles: z.array(z.object({ roleArn: z.string(), source: z.enum(['irsa', 'pod-identity']) })),
  podIdentityAssociations: z.object({
    status: z.enum(['found', 'empty', 'skipped', 'not-requested']),
    items: z.array(
      z.object({
        associationId: z.string(),
        associationArn: z.string().nullable(),
        roleArn: z.string().nullable(),
        targetRoleArn: z.string().nullable(),
        namespace: z.string(),
        serviceAccount: z.string(),
        createdAt: z.string().nullable(),
        modifiedAt: z.string().nullable(),
      }),
    ),
  }),
  rbac: z.object({
    status: z.enum(['collected', 'partial', 'skipped']),
    bindings: z.array(
      z.object({
        kind: z.enum(['RoleBinding', 'ClusterRoleBinding']),
        namespace: z.string().nullable(),
        name: z.string(),
        roleRef: z.object({ kind: z.string(), name: z.string() }),
        grantedTo: z.object({ kind: z.string(), name: z.string() }),
        roleStatus: z.enum(['found', 'missing', 'skipped']),
        object: z.unknown(),
      }),
    ),
    rules: z.array(grantedRuleSchema),
    capabilities: z.array(
      z.object({
        id: z.string(),
        text: z.string(),
        severity: z.enum(['high', 'medium']),
        scopes: z.array(z.string()),
        via: z.array(z.string()),
      }),
    ),
    truncated: z.boolean(),
  }),
  owners: z.object({
    status: z.enum(['collected', 'partial', 'none', 'skipped']),
    chain: z.array(
      z.object({
        kind: z.string(),
        name: z.string(),
        uid: z.string().nullable(),
        status: z.enum(['found', 'not-found', 'skipped', 'unsupported-kind']),
        object: z.unknown().optional(),
      }),
    ),
    revisions: z.array(revisionSchema),
    /** The pod's ReplicaSet is not the newest revision, or revisions ran different images/SAs. */
    templateChanged: z.boolean(),
  }),
  events: z.object({
    status: z.enum(['collected', 'skipped']),
    items: z.array(z.unknown()),
    truncated: z.boolean(),
    outsideWindow: z.number().int(),
  }),
  networkPolicies: z.object({
    status: z.enum(['collected', 'skipped']),
    selecting: z.array(z.object({ name: z.string(), policyTypes: z.array(z.string()), object: z.unknown() })),
    ingressIsolated: z.boolean().nullable(),
    egressIsolated: z.boolean().nullable(),
  }),
  skipped: z.array(identitySkipSchema),
});

/** The identity context of one pod; see {@link podIdentityContext}. */
export type PodIdentityContext = z.infer<typeof podIdentityContextSchema>;
/** One recorded skip of a {@link PodIdentityContext}. */
export type IdentitySkip = z.infer<typeof identitySkipSchema>;

/** Where to read the Pod Identity associations (EKS API). */
export interface PodIdentityLookup {
  /** EKS cluster name. */
  clusterName: string;
  /** An EKS client to use; otherwise one is made from `region`, `credentials`, `endpoint`. */
  client?: Pick<EKSClient, 'send'> | undefined;
  /** Region of the cluster. */
  region?: string | undefined;
  /** AWS credentials (SDK provider or static keys). */
  credentials?: CredentialsInput | undefined;
  /** Endpoint override (tests, VPC endpoints). */
  endpoint?: string | undefined;
  /** Most associations described (default 50). */
  maxAssociations?: number | undefined;
}

/** Options of {@link podIdentityContext}. */
export interface PodIdentityContextOptions {
  /** Events window (default: the 24 hours before now). */
  window?: { from: Date; to: Date } | undefined;
  /** Read the Pod Identity associations of the service account from the EKS API. */
  podIdentity?: PodIdentityLookup | undefined;
  /** Most namespace events kept (default 2 000). */
  maxEvents?: number | undefined;
  /** Most bindings listed per kind (default 20 000). */
  maxBindings?: number | undefined;
  /** Cancels the reads. */
  signal?: AbortSignal | undefined;
  /** Clock (tests). */
  now?: (() => Date) | undefined;
}

/** The part of a `KubeClient` {@link podIdentityContext} uses. */
export type IdentityKube = Pick<KubeClient, 'getPod' | 'getObject' | 'listObjects'>;

/** A pod: the object, or its namespace and name (then it is read with `get pods`). */
export type PodSelector = Pod | { namespace: string; name: string };

function ruleFor(item: IdentityItem, resource?: string): IdentitySkip['rbacRule'] {
  const p =
    IDENTITY_READ_PERMISSIONS.find(
      (x) => x.item === item && (resource === undefined || x.resource === resource),
    ) ??
    IDENTITY_READ_PERMISSIONS.find((x) => resource !== undefined && x.resource === resource) ??
    IDENTITY_READ_PERMISSIONS.find((x) => x.item === item);
  if (!p) return undefined;
  return { apiGroups: [p.apiGroup], resources: [p.resource], verbs: [...p.verbs], scope: p.scope };
}

function errorCode(err: unknown): string {
  return err instanceof EksForensicsError ? err.code : 'EKSF_ERROR';
}

function shortMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 400) ?? '';
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function templateOf(w: Workload): Record<string, unknown> {
  const t = (w.spec?.template ?? {}) as Record<string, unknown>;
  const meta = { ...((t.metadata as Record<string, unknown> | undefined) ?? {}) };
  const labels = { ...((meta.labels as Record<string, string> | undefined) ?? {}) };
  delete labels['pod-template-hash'];
  meta.labels = labels;
  return { ...t, metadata: meta };
}

function imagesOf(template: Record<string, unknown>): string[] {
  const spec = (template.spec ?? {}) as { containers?: unknown; initContainers?: unknown };
  const out: string[] = [];
  for (const list of [spec.initContainers, spec.containers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      const image = (c as { image?: unknown }).image;
      if (typeof image === 'string') out.push(image.slice(0, 1000));
    }
  }
  return out;
}

function eventTime(e: Record<string, unknown>): number | undefined {
  const meta = (e.metadata ?? {}) as { creationTimestamp?: unknown };
  for (const v of [e.lastTimestamp, e.eventTime, e.firstTimestamp, meta.creationTimestamp]) {
    if (typeof v === 'string' && v !== '') {
      const t = Date.parse(v);
      if (Number.isFinite(t)) return t;
    }
  }
  return undefined;
}

/**
 * Reads the identity context of a pod from the Kubernetes API (and, with `podIdentity`, the EKS
 * Pod Identity associations): who the pod is, what its token may do, where it came from.
 * Never throws for a denied or failed read: the item is `skipped` and `skipped[]` says why and
 * which RBAC rule (or IAM action) to grant; `complete` is false then.
 *
 * @throws {@link AbortedError} when `signal` fires; {@link NotFoundError} when the pod does not
 *   exist; {@link ForbiddenError} when even `get pods` is denied.
 */
export async function podIdentityContext(
  kube: IdentityKube,
  pod: PodSelector,
  options: PodIdentityContextOptions = {},
): Promise<PodIdentityContext> {
  const signal = options.signal;
  const now = options.now?.() ?? new Date();
  const to = options.window?.to ?? now;
  const from = options.window?.from ?? new Date(to.getTime() - 24 * 3_600_000);
  if (!(from.getTime() <= to.getTime())) throw new ConfigError('window.from must not be after window.to');
  const p: Pod = 'metadata' in pod ? pod : await kube.getPod(pod.namespace, pod.name, { signal });
  const namespace = p.metadata.namespace;
  const saName = p.spec?.serviceAccountName || 'default';
  const labels = { ...(p.metadata.labels ?? {}) };
  const podAutomount = (p.spec as { automountServiceAccountToken?: unknown } | undefined)
    ?.automountServiceAccountToken;
  const skipped: IdentitySkip[] = [];
  const fail = (item: IdentityItem, err: unknown, resource?: string): void => {
    if (err instanceof AbortedError) throw err;
    const denied = err instanceof ForbiddenError;
    skipped.push({
      item,
      code: errorCode(err),
      reason: denied
        ? `denied: ${shortMessage(err)}. Grant the reader ${describeRule(ruleFor(item, resource))}.`
        : shortMessage(err),
      ...(denied ? { rbacRule: ruleFor(item, resource) } : {}),
    });
  };
  const subjects = serviceAccountSubjects(namespace, saName);

  // --- service account
  const sa: PodIdentityContext['serviceAccount'] = {
    status: 'skipped',
    name: saName,
    username: subjects.username,
    groups: subjects.groups,
    roleArn: null,
    automountServiceAccountToken: null,
    tokenMounted: typeof podAutomount === 'boolean' ? podAutomount : null,
  };
  try {
    const obj = await kube.getObject('ServiceAccount', namespace, saName, { signal });
    sa.status = 'found';
    sa.object = obj;
    const arn = obj.metadata.annotations?.[IRSA_ROLE_ANNOTATION];
    sa.roleArn = typeof arn === 'string' && arn !== '' ? arn.slice(0, 2048) : null;
    sa.automountServiceAccountToken = obj.automountServiceAccountToken ?? null;
    sa.tokenMounted =
      typeof podAutomount === 'boolean' ? podAutomount : obj.automountServiceAccountToken !== false;
  } catch (err) {
    if (err instanceof NotFoundError) sa.status = 'not-found';
    else fail('serviceAccount', err);
  }

  // --- Pod Identity associations
  const pia = await readPodIdentityAssociations(options.podIdentity, namespace, saName, signal, skipped);
  const awsRoles: PodIdentityContext['awsRoles'] = [];
  if (sa.roleArn) awsRoles.push({ roleArn: sa.roleArn, source: 'irsa' });
  for (const a of pia.items) {
    if (a.roleArn) awsRoles.push({ roleArn: a.roleArn, source: 'pod-identity' });
    if (a.targetRoleArn) awsRoles.push({ roleArn: a.targetRoleArn, source: 'pod-identity' });
  }

  // --- RBAC
  const rbac = await readRbac(kube, namespace, saName, options.maxBindings ?? 20_000, signal, fail);

  // --- owners and revisions
  const owners = await readOwners(kube, p, signal, fail);

  // --- events
  const events: PodIdentityContext['events'] = {
    status: 'skipped',
    items: [],
    truncated: false,
    outsideWindow: 0,
  };
  try {
    const max = Math.max(1, options.maxEvents ?? 2_000);
    const r = await kube.listObjects('Event', { namespace, maxItems: max, signal });
    events.status = 'collected';
    events.truncated = r.truncated;
    for (const e of r.items) {
      const t = eventTime(e as Record<string, unknown>);
      if (t !== undefined && (t < from.getTime() || t > to.getTime())) events.outsideWindow++;
      else events.items.push(e);
    }
  } catch (err) {
    fail('events', err);
  }

  // --- network policies
  const netpol: PodIdentityContext['networkPolicies'] = {
    status: 'skipped',
    selecting: [],
    ingressIsolated: null,
    egressIsolated: null,
  };
  try {
    const r = await kube.listObjects('NetworkPolicy', { namespace, signal });
    netpol.status = 'collected';
    netpol.ingressIsolated = false;
    netpol.egressIsolated = false;
    for (const np of r.items) {
      if (!selectorMatches(np.spec?.podSelector ?? {}, labels)) continue;
      const types = np.spec?.policyTypes?.length
        ? np.spec.policyTypes
        : ['Ingress', ...(np.spec?.egress?.length ? ['Egress'] : [])];
      if (types.includes('Ingress')) netpol.ingressIsolated = true;
      if (types.includes('Egress')) netpol.egressIsolated = true;
      netpol.selecting.push({ name: np.metadata.name, policyTypes: [...types], object: np });
    }
    if (r.truncated)
      fail('networkPolicies', new EksForensicsError('more NetworkPolicies than the list bound'));
  } catch (err) {
    fail('networkPolicies', err);
  }

  const doc: PodIdentityContext = {
    kind: 'PodIdentityContext',
    version: 1,
    collectedAt: now.toISOString(),
    window: { from: from.toISOString(), to: to.toISOString() },
    complete: skipped.length === 0 && !rbac.truncated && !events.truncated,
    pod: {
      namespace,
      name: p.metadata.name,
      uid: p.metadata.uid ?? null,
      nodeName: p.spec?.nodeName ?? null,
      serviceAccountName: saName,
      automountServiceAccountToken: typeof podAutomount === 'boolean' ? podAutomount : null,
      labels,
    },
    serviceAccount: sa,
    awsRoles,
    podIdentityAssociations: pia,
    rbac,
    owners,
    events,
    networkPolicies: netpol,
    skipped,
  };
  return podIdentityContextSchema.parse(doc);
}

function describeRule(rule: IdentitySkip['rbacRule']): string {
  if (!rule) return 'read access';
  const where =
    rule.scope === 'cluster' ? 'with a ClusterRole bound by a ClusterRoleBinding' : "in the pod's namespace";
  return `"${rule.verbs.join(', ')}" on ${rule.resources.join(', ')} (apiGroup "${rule.apiGroups.join(', ')}") ${where}`;
}

async function readPodIdentityAssociations(
  lookup: PodIdentityLookup | undefined,
  namespace: string,
  serviceAccount: string,
  signal: AbortSignal | undefined,
  skipped: IdentitySkip[],
): Promise<PodIdentityContext['podIdentityAssociations']> {
  if (!lookup) return { status: 'not-requested', items: [] };
  const eks = await import('@aws-sdk/client-eks');
  let client = lookup.client;
  if (!client) {
    if (!lookup.region) throw new ConfigError('podIdentity needs a client or a region');
    client = new eks.EKSClient({
      region: lookup.region,
      ...(lookup.credentials ? { credentials: lookup.credentials } : {}),
      ...(lookup.endpoint ? { endpoint: lookup.endpoint } : {}),
    });
  }
  let action = 'eks:ListPodIdentityAssociations';
  try {
    const ids: Array<{ associationId: string; associationArn: string | null }> = [];
    let nextToken: string | undefined;
    const max = Math.max(1, lookup.maxAssociations ?? 50);
    do {
      const out = await client.send(
        new eks.ListPodIdentityAssociationsCommand({
          clusterName: lookup.clusterName,
          namespace,
          serviceAccount,
          maxResults: 100,
          ...(nextToken ? { nextToken } : {}),
        }),
        { abortSignal: signal },
      );
      for (const a of out.associations ?? []) {
        // The filter is the server's; a response naming another account's SA is not this pod's.
        if (a.namespace !== namespace || a.serviceAccount !== serviceAccount || !a.associationId) continue;
        if (ids.length < max)
          ids.push({ associationId: a.associationId, associationArn: a.associationArn ?? null });
      }
      nextToken = out.nextToken || undefined;
    } while (nextToken && ids.length < max);
    action = 'eks:DescribePodIdentityAssociation';
    const items: PodIdentityContext['podIdentityAssociations']['items'] = [];
    for (const id of ids) {
      const d = await client.send(
        new eks.DescribePodIdentityAssociationCommand({
          clusterName: lookup.clusterName,
          associationId: id.associationId,
        }),
        { abortSignal: signal },
      );
      const a = d.association;
      items.push({
        associationId: id.associationId,
        associationArn: a?.associationArn ?? id.associationArn,
        roleArn: a?.roleArn ?? null,
        targetRoleArn: (a as { targetRoleArn?: string } | undefined)?.targetRoleArn ?? null,
        namespace,
        serviceAccount,
        createdAt: a?.createdAt ? new Date(a.createdAt).toISOString() : null,
        modifiedAt: a?.modifiedAt ? new Date(a.modifiedAt).toISOString() : null,
      });
    }
    return { status: items.length ? 'found' : 'empty', items };
  } catch (err) {
    if (signal?.aborted)
      throw new AbortedError('reading Pod Identity associations was aborted', { cause: err });
    const c = classifyAwsError(err, lookup.region);
    skipped.push({
      item: 'podIdentityAssociations',
      code: c.kind,
      reason:
        c.kind === 'access-denied'
          ? `AWS denied ${action} (${c.awsCode ?? 'AccessDenied'}); grant the caller "${action}" on the cluster.`
          : `${action} failed: ${c.awsCode ?? ''} ${shortMessage(err)}`.trim(),
      ...(c.kind === 'access-denied' ? { iamAction: action } : {}),
    });
    return { status: 'skipped', items: [] };
  }
}

async function readRbac(
  kube: IdentityKube,
  namespace: string,
  saName: string,
  maxBindings: number,
  signal: AbortSignal | undefined,
  fail: (item: IdentityItem, err: unknown, resource?: string) => void,
): Promise<PodIdentityContext['rbac']> {
  const out: PodIdentityContext['rbac'] = {
    status: 'collected',
    bindings: [],
    rules: [],
    capabilities: [],
    truncated: false,
  };
  let partial = false;
  const bindings: Array<{ b: RbacBinding; kind: 'RoleBinding' | 'ClusterRoleBinding' }> = [];
  try {
    const r = await kube.listObjects('ClusterRoleBinding', { maxItems: maxBindings, signal });
    out.truncated ||= r.truncated;
    for (const b of r.items) bindings.push({ b, kind: 'ClusterRoleBinding' });
  } catch (err) {
    fail('clusterRoleBindings', err);
    partial = true;
  }
  try {
    const r = await kube.listObjects('RoleBinding', { maxItems: maxBindings, signal });
    out.truncated ||= r.truncated;
    for (const b of r.items) bindings.push({ b, kind: 'RoleBinding' });
  } catch (err) {
    // RoleBindings in other namespaces only matter for other namespaces: fall back to our own.
    fail('roleBindings', err);
    partial = true;
    try {
      const r = await kube.listObjects('RoleBinding', { namespace, maxItems: maxBindings, signal });
      out.truncated ||= r.truncated;
      for (const b of r.items) bindings.push({ b, kind: 'RoleBinding' });
    } catch (err2) {
      if (err2 instanceof AbortedError) throw err2;
    }
  }
  const roles = new Map<string, RbacRole | 'missing' | 'skipped'>();
  const roleOf = async (kind: string, ns: string | undefined, name: string) => {
    const key = `${kind}/${ns ?? ''}/${name}`;
    const cached = roles.get(key);
    if (cached !== undefined) return cached;
    let v: RbacRole | 'missing' | 'skipped';
    try {
      v =
        kind === 'ClusterRole'
          ? await kube.getObject('ClusterRole', undefined, name, { signal })
          : await kube.getObject('Role', ns, name, { signal });
    } catch (err) {
      if (err instanceof NotFoundError) v = 'missing';
      else {
        fail(kind === 'ClusterRole' ? 'clusterRoles' : 'roles', err);
        partial = true;
        v = 'skipped';
      }
    }
    roles.set(key, v);
    return v;
  };
  const granted: Array<{ rule: PolicyRule; scope: string; binding: string }> = [];
  for (const { b, kind } of bindings) {
    const who = bindingGrants(b, namespace, saName);
    if (!who) continue;
    const bns = kind === 'RoleBinding' ? (b.metadata.namespace ?? null) : null;
    const role = await roleOf(b.roleRef.kind, bns ?? undefined, b.roleRef.name);
    const ref = `${kind}/${bns ? `${bns}/` : ''}${b.metadata.name}`;
    out.bindings.push({
      kind,
      namespace: bns,
      name: b.metadata.name,
      roleRef: { kind: b.roleRef.kind, name: b.roleRef.name },
      grantedTo: {
        kind: who.kind,
        name: who.kind === 'ServiceAccount' ? `${who.namespace}/${who.name}` : who.name,
      },
      roleStatus: typeof role === 'string' ? role : 'found',
      object: b,
    });
    if (typeof role === 'string') continue;
    for (const rule of role.rules ?? []) granted.push({ rule, scope: bns ?? '*', binding: ref });
  }
  for (const g of granted) {
    out.rules.push({
      verbs: [...g.rule.verbs],
      apiGroups: [...(g.rule.apiGroups ?? [])],
      resources: [...(g.rule.resources ?? [])],
      ...(g.rule.resourceNames?.length ? { resourceNames: [...g.rule.resourceNames] } : {}),
      ...(g.rule.nonResourceURLs?.length ? { nonResourceURLs: [...g.rule.nonResourceURLs] } : {}),
      scope: g.scope,
      binding: g.binding,
    });
  }
  for (const check of CAPABILITY_CHECKS) {
    const scopes = new Set<string>();
    const via = new Set<string>();
    for (const g of granted) {
      if (check.any.some(([v, grp, res]) => ruleAllows(g.rule, v, grp, res))) {
        // Rules limited to named objects grant less; they are still listed, with the names in `rules`.
        scopes.add(g.scope);
        via.add(g.binding);
      }
    }
    if (scopes.size) {
      out.capabilities.push({
        id: check.id,
        text: check.text,
        severity: check.severity,
        scopes: [...scopes].sort(),
        via: [...via].sort(),
      });
    }
  }
  if (partial) out.status = bindings.length ? 'partial' : 'skipped';
  return out;
}

async function readOwners(
  kube: IdentityKube,
  pod: Pod,
  signal: AbortSignal | undefined,
  fail: (item: IdentityItem, err: unknown, resource?: string) => void,
): Promise<PodIdentityContext['owners']> {
  const out: PodIdentityContext['owners'] = {
    status: 'none',
    chain: [],
    revisions: [],
    templateChanged: false,
  };
  const namespace = pod.metadata.namespace;
  let refs = pod.metadata.ownerReferences ?? [];
  let podRs: string | undefined;
  let deployment: Workload | undefined;
  for (let depth = 0; depth < 5; depth++) {
    const ref = refs.find((r) => r.controller) ?? refs[0];
    if (!ref?.kind || !ref.name) break;
    const kind = ref.kind as KubeResourceKind;
    const known = KIND_RESOURCE[kind];
    if (!known) {
      out.chain.push({ kind: ref.kind, name: ref.name, uid: ref.uid ?? null, status: 'unsupported-kind' });
      break;
    }
    try {
      const obj = (await kube.getObject(kind, namespace, ref.name, { signal })) as Workload;
      if (ref.uid && obj.metadata.uid && obj.metadata.uid !== ref.uid) {
        // Same name, another object: the owner was deleted and recreated.
        out.chain.push({ kind: ref.kind, name: ref.name, uid: ref.uid, status: 'not-found' });
        break;
      }
      out.chain.push({ kind: ref.kind, name: ref.name, uid: ref.uid ?? null, status: 'found', object: obj });
      if (kind === 'ReplicaSet' && depth === 0) podRs = obj.metadata.name;
      if (kind === 'Deployment') deployment = obj;
      refs = obj.metadata.ownerReferences ?? [];
    } catch (err) {
      if (err instanceof NotFoundError) {
        out.chain.push({ kind: ref.kind, name: ref.name, uid: ref.uid ?? null, status: 'not-found' });
      } else {
        out.chain.push({ kind: ref.kind, name: ref.name, uid: ref.uid ?? null, status: 'skipped' });
        fail('owners', err, known.resource);
      }
      break;
    }
  }
  if (deployment?.metadata.uid) {
    try {
      const r = await kube.listObjects('ReplicaSet', { namespace, maxItems: 1_000, signal });
      const mine = r.items.filter((rs) =>
        (rs.metadata.ownerReferences ?? []).some((o) => o.uid === deployment?.metadata.uid),
      );
      for (const rs of mine) {
        const t = templateOf(rs);
        const rev = Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision']);
        const spec = (t.spec ?? {}) as { serviceAccountName?: unknown };
        out.revisions.push({
          name: rs.metadata.name,
          revision: Number.isInteger(rev) ? rev : null,
          createdAt: rs.metadata.creationTimestamp ?? null,
          podTemplateHash: rs.metadata.labels?.['pod-template-hash'] ?? null,
          templateSha256: createHash('sha256').update(stableJson(t)).digest('hex'),
          images: imagesOf(t),
          serviceAccountName: typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : null,
          replicas: rs.spec?.replicas ?? null,
          ownsPod: rs.metadata.name === podRs,
        });
      }
      out.revisions.sort((a, b) => (a.revision ?? -1) - (b.revision ?? -1));
      const latest = out.revisions[out.revisions.length - 1];
      const distinct = (f: (r: (typeof out.revisions)[number]) => string) =>
        new Set(out.revisions.map(f)).size > 1;
      out.templateChanged =
        (latest !== undefined && podRs !== undefined && latest.name !== podRs) ||
        distinct((r) => r.images.join(',')) ||
        distinct((r) => r.serviceAccountName ?? '');
    } catch (err) {
      fail('revisions', err, 'replicasets');
    }
  }
  const statuses = out.chain.map((c) => c.status);
  if (out.chain.length === 0) out.status = 'none';
  else if (statuses.includes('skipped')) out.status = out.chain.length > 1 ? 'partial' : 'skipped';
  else out.status = 'collected';
  return out;
}

/**
 * A ClusterRole (merged rules of {@link IDENTITY_READ_PERMISSIONS}) and ClusterRoleBinding for
 * the group the responder is mapped to, so {@link podIdentityContext} skips nothing. Read-only.
 */
export function identityReaderClusterRoleYaml(
  options: { name?: string | undefined; group?: string | undefined } = {},
): string {
  const name = options.name ?? 'eks-forensics-identity-reader';
  const group = options.group ?? 'cado';
  if (!/^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/.test(name) || name.length > 253) {
    throw new ConfigError(`name "${name}" is not a valid Kubernetes name`);
  }
  if (group === '' || group.length > 253 || /[\s"'`$\\]/.test(group)) {
    throw new ConfigError(`group "${group}" is not a valid Kubernetes group name`);
  }
  const merged = new Map<string, { apiGroups: string[]; resources: string[]; verbs: string[] }>();
  for (const p of IDENTITY_READ_PERMISSIONS) {
    const key = `${p.apiGroup}|${p.verbs.join(',')}`;
    const r = merged.get(key) ?? { apiGroups: [p.apiGroup], resources: [], verbs: [...p.verbs] };
    if (!r.resources.includes(p.resource)) r.resources.push(p.resource);
    merged.set(key, r);
  }
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules: [...merged.values()],
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
  };
  const { stringify } = loadYaml();
  return `${stringify(role)}---\n${stringify(binding)}`;
}
