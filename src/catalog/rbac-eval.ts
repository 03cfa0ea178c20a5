/**
 * Pure helpers of the identity context: which subjects a service-account token carries, which
 * bindings name them, what their rules let the holder do, and label-selector matching.
 */
import type { LabelSelector, PolicyRule, RbacBinding } from '../kube/index.js';

/** The Kubernetes identity a pod's service-account token authenticates as. */
export interface ServiceAccountSubjects {
  /** `system:serviceaccount:<ns>:<name>`. */
  username: string;
  /** Groups the token carries. */
  groups: string[];
}

/** The username and groups of a service account's token. */
export function serviceAccountSubjects(namespace: string, name: string): ServiceAccountSubjects {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

/** Which subject of a binding grants the service account: itself, its username, or one of its groups. */
export function bindingGrants(
  binding: RbacBinding,
  namespace: string,
  name: string,
): { kind: string; name: string; namespace?: string } | undefined {
  const who = serviceAccountSubjects(namespace, name);
  for (const s of binding.subjects ?? []) {
    if (s.kind === 'ServiceAccount') {
      // A ServiceAccount subject without namespace means the binding's own namespace (RoleBinding).
      const ns = s.namespace || binding.metadata.namespace;
      if (s.name === name && ns === namespace) return { kind: s.kind, name: s.name, namespace: ns };
    } else if (s.kind === 'User' && s.name === who.username) {
      return { kind: s.kind, name: s.name };
    } else if (s.kind === 'Group' && who.groups.includes(s.name)) {
      return { kind: s.kind, name: s.name };
    }
  }
  return undefined;
}

const has = (list: readonly string[] | null | undefined, v: string): boolean =>
  (list ?? []).includes('*') || (list ?? []).includes(v);

/** True when `rule` allows `verb` on `group`/`resource` (a resource may carry `/subresource`). */
export function ruleAllows(rule: PolicyRule, verb: string, group: string, resource: string): boolean {
  if (!has(rule.verbs, verb)) return false;
  if (!has(rule.apiGroups, group)) return false;
  const resources = rule.resources ?? [];
  if (resources.includes('*') || resources.includes(resource)) return true;
  const slash = resource.indexOf('/');
  return slash > 0 && resources.includes(`*${resource.slice(slash)}`);
}

/** A thing a token holder could do that matters to an investigator. */
export interface CapabilityCheck {
  /** Stable id, e.g. `read-secrets`. */
  id: string;
  /** What it means, in one sentence. */
  text: string;
  /** `high`: takes over the namespace/cluster or its credentials; `medium`: widens the foothold. */
  severity: 'high' | 'medium';
  /** Any of these verb/group/resource triples grants it. */
  any: ReadonlyArray<readonly [verb: string, group: string, resource: string]>;
}

/** The capabilities the identity context looks for in the rules granted to a token. */
export const CAPABILITY_CHECKS: readonly CapabilityCheck[] = Object.freeze([
  {
    id: 'cluster-admin',
    text: 'every verb on every resource (cluster-admin equivalent in its scope)',
    severity: 'high',
    any: [['*', '*', '*']],
  },
  {
    id: 'read-secrets',
    text: 'read Secrets (other service-account tokens, credentials)',
    severity: 'high',
    any: [
      ['get', '', 'secrets'],
      ['list', '', 'secrets'],
      ['watch', '', 'secrets'],
    ],
  },
  {
    id: 'exec-into-pods',
    text: 'run commands in other pods (pods/exec, pods/attach)',
    severity: 'high',
    any: [
      ['create', '', 'pods/exec'],
      ['get', '', 'pods/exec'],
      ['create', '', 'pods/attach'],
    ],
  },
  {
    id: 'create-workloads',
    text: 'start pods (with any service account, host mounts where admission allows)',
    severity: 'high',
    any: [
      ['create', '', 'pods'],
      ['create', 'apps', 'deployments'],
      ['create', 'apps', 'daemonsets'],
      ['create', 'apps', 'statefulsets'],
      ['create', 'batch', 'jobs'],
      ['create', 'batch', 'cronjobs'],
      ['patch', 'apps', 'deployments'],
      ['patch', 'apps', 'daemonsets'],
    ],
  },
  {
    id: 'escalate-rbac',
    text: 'grant itself more rights (write role bindings, bind or escalate roles)',
    severity: 'high',
    any: [
      ['create', 'rbac.authorization.k8s.io', 'rolebindings'],
      ['create', 'rbac.authorization.k8s.io', 'clusterrolebindings'],
      ['patch', 'rbac.authorization.k8s.io', 'rolebindings'],
      ['patch', 'rbac.authorization.k8s.io', 'clusterrolebindings'],
      ['update', 'rbac.authorization.k8s.io', 'rolebindings'],
      ['update', 'rbac.authorization.k8s.io', 'clusterrolebindings'],
      ['bind', 'rbac.authorization.k8s.io', 'clusterroles'],
      ['bind', 'rbac.authorization.k8s.io', 'roles'],
      ['escalate', 'rbac.authorization.k8s.io', 'clusterroles'],
      ['escalate', 'rbac.authorization.k8s.io', 'roles'],
    ],
  },
  {
    id: 'impersonate',
    text: 'act as other users, groups or service accounts (impersonate)',
    severity: 'high',
    any: [
      ['impersonate', '', 'users'],
      ['impersonate', '', 'groups'],
      ['impersonate', '', 'serviceaccounts'],
    ],
  },
  {
    id: 'mint-tokens',
    text: 'issue tokens for other service accounts (serviceaccounts/token)',
    severity: 'high',
    any: [['create', '', 'serviceaccounts/token']],
  },
  {
    id: 'node-proxy',
    text: "reach the kubelet API through the API server (nodes/proxy: exec on any of the node's pods)",
    severity: 'high',
    any: [
      ['get', '', 'nodes/proxy'],
      ['create', '', 'nodes/proxy'],
    ],
  },
  {
    id: 'read-configmaps',
    text: 'read ConfigMaps (including aws-auth in kube-system)',
    severity: 'medium',
    any: [
      ['get', '', 'configmaps'],
      ['list', '', 'configmaps'],
    ],
  },
  {
    id: 'delete-evidence',
    text: 'delete pods or events (destroy evidence)',
    severity: 'medium',
    any: [
      ['delete', '', 'pods'],
      ['deletecollection', '', 'pods'],
      ['delete', '', 'events'],
    ],
  },
  {
    id: 'list-pods',
    text: 'enumerate pods (reconnaissance)',
    severity: 'medium',
    any: [['list', '', 'pods']],
  },
]);

/** True when the label selector selects an object with `labels`. An empty selector selects all. */
export function selectorMatches(
  selector: LabelSelector | null | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = labels[e.key];
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (value === undefined) return false;
        break;
      case 'DoesNotExist':
        if (value !== undefined) return false;
        break;
      default:
        // An operator the API server would have rejected: select nothing rather than guess.
        return false;
    }
  }
  return true;
}
