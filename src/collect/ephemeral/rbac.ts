/**
 * What the ephemeral-container path needs in the cluster, as data, as a grant sentence for error
 * messages, and as Role/RoleBinding YAML (the generator behind docs/distroless.md).
 */
import { DEFAULT_RBAC_GROUP } from '../../catalog/index.js';
import { ConfigError } from '../../errors.js';
import { loadYaml } from '../../util/index.js';

/** One RBAC permission the ephemeral-container path uses. */
export interface EphemeralPermission {
  /** Verb. */
  verb: 'get' | 'create' | 'patch';
  /** Resource, with subresource (`pods/ephemeralcontainers`). */
  resource: string;
  /** What it is used for. */
  usedFor: string;
}

/** Every RBAC permission the ephemeral-container path uses (core API group, in the pod's namespace). */
export const EPHEMERAL_PERMISSIONS: readonly EphemeralPermission[] = Object.freeze([
  {
    verb: 'patch',
    resource: 'pods/ephemeralcontainers',
    usedFor: 'add the debug container (strategic-merge PATCH)',
  },
  { verb: 'get', resource: 'pods', usedFor: 'read the pod and wait until the debug container runs' },
  { verb: 'get', resource: 'pods/exec', usedFor: 'exec in the debug container over WebSocket' },
  {
    verb: 'create',
    resource: 'pods/exec',
    usedFor: 'exec in the debug container (Kubernetes >= 1.35, SPDY)',
  },
]);

/** One line naming what to grant, for error messages. */
export function ephemeralGrantText(namespace: string): string {
  return `grant in namespace ${namespace}: ${EPHEMERAL_PERMISSIONS.map(
    (p) => `${p.verb} on ${p.resource}`,
  ).join(', ')} (Role YAML: ephemeralRoleYaml({ namespace: '${namespace}' }), see docs/distroless.md)`;
}

/** Options of {@link ephemeralRoleYaml}. */
export interface EphemeralRoleOptions {
  /** Namespace of the pods to acquire. */
  namespace: string;
  /** Role and RoleBinding name (default `eks-forensics-ephemeral`). */
  name?: string | undefined;
  /** Group the responder's identity maps to (default: the catalog's `DEFAULT_RBAC_GROUP`). */
  group?: string | undefined;
}

const DNS = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * A namespaced Role + RoleBinding granting exactly {@link EPHEMERAL_PERMISSIONS}, to add beside the
 * acquisition ClusterRole where distroless containers may be acquired. Apply with `kubectl apply -f -`.
 *
 * @throws {ConfigError} for an invalid namespace, name or group.
 */
export function ephemeralRoleYaml(options: EphemeralRoleOptions): string {
  const name = options.name ?? 'eks-forensics-ephemeral';
  const group = options.group ?? DEFAULT_RBAC_GROUP;
  if (!DNS.test(options.namespace))
    throw new ConfigError(`invalid namespace ${JSON.stringify(options.namespace)}`);
  if (!DNS.test(name)) throw new ConfigError(`invalid role name ${JSON.stringify(name)}`);
  if (!/^[A-Za-z0-9:._@-]{1,256}$/.test(group))
    throw new ConfigError(`invalid group ${JSON.stringify(group)}`);
  const byResource = new Map<string, string[]>();
  for (const p of EPHEMERAL_PERMISSIONS)
    byResource.set(p.resource, [...(byResource.get(p.resource) ?? []), p.verb]);
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace: options.namespace },
    rules: [...byResource].map(([resource, verbs]) => ({ apiGroups: [''], resources: [resource], verbs })),
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace: options.namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
  };
  const { stringify } = loadYaml();
  return `${stringify(role)}---\n${stringify(binding)}`;
}
