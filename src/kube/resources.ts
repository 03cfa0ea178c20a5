/**
 * The Kubernetes objects read for a pod's identity context (service accounts, RBAC, workloads,
 * network policies): zod schemas for the fields relied on, and one registry of where each kind
 * lives in the API, so a new kind is one entry rather than a new client method.
 */
import { z } from 'zod';
import { listMetaSchema, objectMetaSchema } from './schemas.js';

const str = z.string().max(1_000_000);
const strList = z.array(str).max(10_000);
const storedMeta = objectMetaSchema.extend({ name: str });
const selectorRequirementSchema = z.looseObject({
  key: str,
  operator: str,
  values: strList.nullable().optional(),
});

/** `metav1.LabelSelector`. */
export const labelSelectorSchema = z.looseObject({
  matchLabels: z.record(z.string(), z.string()).nullable().optional(),
  matchExpressions: z.array(selectorRequirementSchema).max(1000).nullable().optional(),
});

/** A `v1.ServiceAccount`. */
export const serviceAccountSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMeta,
  automountServiceAccountToken: z.boolean().nullable().optional(),
  secrets: z
    .array(z.looseObject({ name: str.optional() }))
    .max(10_000)
    .nullable()
    .optional(),
  imagePullSecrets: z
    .array(z.looseObject({ name: str.optional() }))
    .max(10_000)
    .nullable()
    .optional(),
});

/** One `rbac.authorization.k8s.io/v1` `PolicyRule`. */
export const policyRuleSchema = z.looseObject({
  verbs: strList,
  apiGroups: strList.nullable().optional(),
  resources: strList.nullable().optional(),
  resourceNames: strList.nullable().optional(),
  nonResourceURLs: strList.nullable().optional(),
});

/** A `Role` or `ClusterRole`. */
export const roleSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMeta,
  rules: z.array(policyRuleSchema).max(10_000).nullable().optional(),
  aggregationRule: z
    .looseObject({ clusterRoleSelectors: z.array(labelSelectorSchema).max(1000).nullable().optional() })
    .nullable()
    .optional(),
});

/** A `RoleBinding` or `ClusterRoleBinding`. */
export const roleBindingSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMeta,
  roleRef: z.looseObject({ apiGroup: str.optional(), kind: str, name: str }),
  subjects: z
    .array(z.looseObject({ kind: str, name: str, namespace: str.optional(), apiGroup: str.optional() }))
    .max(10_000)
    .nullable()
    .optional(),
});

/** A workload controller (ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob). */
export const workloadSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMeta,
  spec: z
    .looseObject({
      replicas: z.number().int().nullable().optional(),
      selector: labelSelectorSchema.nullable().optional(),
      template: z.looseObject({}).nullable().optional(),
      jobTemplate: z.looseObject({}).nullable().optional(),
    })
    .nullable()
    .optional(),
  status: z.looseObject({}).nullable().optional(),
});

/** A `networking.k8s.io/v1` `NetworkPolicy`. */
export const networkPolicySchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: storedMeta,
  spec: z
    .looseObject({
      podSelector: labelSelectorSchema.nullable().optional(),
      policyTypes: strList.nullable().optional(),
      ingress: z.array(z.looseObject({})).max(10_000).nullable().optional(),
      egress: z.array(z.looseObject({})).max(10_000).nullable().optional(),
    })
    .nullable()
    .optional(),
});

/** A core `v1.Event` (as listed by namespace). */
export const namespaceEventSchema = z.looseObject({
  metadata: objectMetaSchema,
  involvedObject: z
    .looseObject({ kind: str.optional(), name: str.optional(), uid: str.optional() })
    .optional(),
  reason: str.optional(),
  message: str.optional(),
  type: str.optional(),
  count: z.number().int().optional(),
  firstTimestamp: str.nullable().optional(),
  lastTimestamp: str.nullable().optional(),
  eventTime: str.nullable().optional(),
});

/** A ServiceAccount, as validated by {@link serviceAccountSchema}. */
export type ServiceAccount = z.infer<typeof serviceAccountSchema>;
/** A Role or ClusterRole. */
export type RbacRole = z.infer<typeof roleSchema>;
/** A RoleBinding or ClusterRoleBinding. */
export type RbacBinding = z.infer<typeof roleBindingSchema>;
/** One RBAC policy rule. */
export type PolicyRule = z.infer<typeof policyRuleSchema>;
/** A workload controller object. */
export type Workload = z.infer<typeof workloadSchema>;
/** A NetworkPolicy. */
export type NetworkPolicy = z.infer<typeof networkPolicySchema>;
/** A label selector. */
export type LabelSelector = z.infer<typeof labelSelectorSchema>;
/** A core event listed by namespace. */
export type NamespaceEvent = z.infer<typeof namespaceEventSchema>;

/** Where one kind lives in the API, and the schema its objects are validated with. */
export interface KubeResourceDef<S extends z.ZodType> {
  /** API group (`''` for core). */
  group: string;
  /** API version. */
  version: string;
  /** Plural resource name. */
  resource: string;
  /** Namespaced or cluster-scoped. */
  namespaced: boolean;
  /** zod schema of one object. */
  schema: S;
}

const def = <S extends z.ZodType>(
  group: string,
  version: string,
  resource: string,
  namespaced: boolean,
  schema: S,
): KubeResourceDef<S> => ({ group, version, resource, namespaced, schema });

/** Where each kind the identity context reads lives in the API, and its schema. */
export const KUBE_RESOURCES = {
  ServiceAccount: def('', 'v1', 'serviceaccounts', true, serviceAccountSchema),
  Role: def('rbac.authorization.k8s.io', 'v1', 'roles', true, roleSchema),
  ClusterRole: def('rbac.authorization.k8s.io', 'v1', 'clusterroles', false, roleSchema),
  RoleBinding: def('rbac.authorization.k8s.io', 'v1', 'rolebindings', true, roleBindingSchema),
  ClusterRoleBinding: def('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', false, roleBindingSchema),
  ReplicaSet: def('apps', 'v1', 'replicasets', true, workloadSchema),
  Deployment: def('apps', 'v1', 'deployments', true, workloadSchema),
  StatefulSet: def('apps', 'v1', 'statefulsets', true, workloadSchema),
  DaemonSet: def('apps', 'v1', 'daemonsets', true, workloadSchema),
  Job: def('batch', 'v1', 'jobs', true, workloadSchema),
  CronJob: def('batch', 'v1', 'cronjobs', true, workloadSchema),
  NetworkPolicy: def('networking.k8s.io', 'v1', 'networkpolicies', true, networkPolicySchema),
  Event: def('', 'v1', 'events', true, namespaceEventSchema),
} as const;

/** A kind in {@link KUBE_RESOURCES}. */
export type KubeResourceKind = keyof typeof KUBE_RESOURCES;
/** The object type of a {@link KubeResourceKind}. */
export type KubeResourceObject<K extends KubeResourceKind> = z.infer<(typeof KUBE_RESOURCES)[K]['schema']>;

/** The collection path of a kind (`/apis/apps/v1/namespaces/web/replicasets`). */
export function resourcePath(kind: KubeResourceKind, namespace: string | undefined): string {
  const d = KUBE_RESOURCES[kind];
  const base = d.group === '' ? `/api/${d.version}` : `/apis/${d.group}/${d.version}`;
  if (!d.namespaced || namespace === undefined) return `${base}/${d.resource}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${d.resource}`;
}

/** The list schema of a kind. */
export function listSchemaOf<K extends KubeResourceKind>(kind: K) {
  const item = KUBE_RESOURCES[kind].schema as (typeof KUBE_RESOURCES)[K]['schema'];
  return z.looseObject({ metadata: listMetaSchema.optional(), items: z.array(item).nullable() });
}

/** Options of `KubeClient.listObjects`. */
export interface ListObjectsOptions {
  /** Namespace of a namespaced kind; omitted = all namespaces. Ignored for cluster-scoped kinds. */
  namespace?: string | undefined;
  /** Stop after this many objects (default 5 000); `truncated` says so. */
  maxItems?: number | undefined;
  /** Field selector, e.g. `involvedObject.uid=…`. */
  fieldSelector?: string | undefined;
  /** Label selector. */
  labelSelector?: string | undefined;
  /** Cancels the listing. */
  signal?: AbortSignal | undefined;
}

/** What `KubeClient.listObjects` returns. */
export interface ListObjectsResult<T> {
  /** The objects, in server order. */
  items: T[];
  /** True when `maxItems` stopped the listing before the server's last page. */
  truncated: boolean;
}
