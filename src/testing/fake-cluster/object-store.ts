/**
 * Read-only objects FakeCluster serves as stored: service accounts, RBAC roles and bindings,
 * workload controllers, network policies. Get and paginated list (`limit`/`continue`), with the
 * same paths and authorization attributes as kube-apiserver.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../../errors.js';
import { authorizeOrThrow, type RequestContext } from './context.js';
import { notFound, status, writeJson } from './http.js';
import type { KubeJsonObject } from './types.js';

interface StoredKind {
  group: string;
  resource: string;
  namespaced: boolean;
  listKind: string;
}

const KINDS: Record<string, StoredKind> = {
  ServiceAccount: {
    group: '',
    resource: 'serviceaccounts',
    namespaced: true,
    listKind: 'ServiceAccountList',
  },
  Role: { group: 'rbac.authorization.k8s.io', resource: 'roles', namespaced: true, listKind: 'RoleList' },
  ClusterRole: {
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterroles',
    namespaced: false,
    listKind: 'ClusterRoleList',
  },
  RoleBinding: {
    group: 'rbac.authorization.k8s.io',
    resource: 'rolebindings',
    namespaced: true,
    listKind: 'RoleBindingList',
  },
  ClusterRoleBinding: {
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterrolebindings',
    namespaced: false,
    listKind: 'ClusterRoleBindingList',
  },
  ReplicaSet: { group: 'apps', resource: 'replicasets', namespaced: true, listKind: 'ReplicaSetList' },
  Deployment: { group: 'apps', resource: 'deployments', namespaced: true, listKind: 'DeploymentList' },
  StatefulSet: { group: 'apps', resource: 'statefulsets', namespaced: true, listKind: 'StatefulSetList' },
  DaemonSet: { group: 'apps', resource: 'daemonsets', namespaced: true, listKind: 'DaemonSetList' },
  Job: { group: 'batch', resource: 'jobs', namespaced: true, listKind: 'JobList' },
  CronJob: { group: 'batch', resource: 'cronjobs', namespaced: true, listKind: 'CronJobList' },
  NetworkPolicy: {
    group: 'networking.k8s.io',
    resource: 'networkpolicies',
    namespaced: true,
    listKind: 'NetworkPolicyList',
  },
};

/** A request path that names a stored kind. */
export interface StoredRoute {
  kind: string;
  group: string;
  resource: string;
  namespace: string | undefined;
  name: string | undefined;
}

/** The stored objects of one FakeCluster. */
export class FakeObjectStore {
  readonly #objects = new Map<string, KubeJsonObject>();

  /** The kinds this store serves. */
  static readonly kinds: readonly string[] = Object.keys(KINDS);

  /**
   * Stores an object (`kind`, `apiVersion`, `metadata.name`, and `metadata.namespace` for
   * namespaced kinds are required); fills in uid, resourceVersion and creationTimestamp.
   */
  add(obj: KubeJsonObject, resourceVersion: number, now: number): KubeJsonObject {
    const kind = typeof obj.kind === 'string' ? obj.kind : '';
    const k = KINDS[kind];
    if (!k) throw new ConfigError(`FakeCluster does not store kind ${JSON.stringify(kind)}`);
    const meta = { ...((obj.metadata as KubeJsonObject | undefined) ?? {}) };
    const name = meta.name;
    if (typeof name !== 'string' || name === '') throw new ConfigError(`${kind} needs metadata.name`);
    if (k.namespaced && typeof meta.namespace !== 'string') meta.namespace = 'default';
    if (!k.namespaced) delete meta.namespace;
    meta.uid ??= randomUUID();
    meta.resourceVersion = String(resourceVersion);
    meta.creationTimestamp ??= new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const apiVersion = k.group === '' ? 'v1' : `${k.group}/v1`;
    const stored: KubeJsonObject = { ...obj, apiVersion, kind, metadata: meta };
    this.#objects.set(this.#key(k, meta.namespace as string | undefined, name), stored);
    return stored;
  }

  /** Removes an object; true when it existed. */
  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const k = KINDS[kind];
    return k !== undefined && this.#objects.delete(this.#key(k, k.namespaced ? namespace : undefined, name));
  }

  /** The route when `seg` (decoded path segments) names a stored kind, else undefined. */
  route(seg: readonly string[]): StoredRoute | undefined {
    let group: string;
    let rest: string[];
    if (seg[0] === 'api' && seg[1] === 'v1') {
      group = '';
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg[2] === 'v1' && seg[1] !== undefined) {
      group = seg[1];
      rest = seg.slice(3);
    } else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [resource, name, ...extra] = rest;
    if (extra.length > 0) return undefined;
    const entry = Object.entries(KINDS).find(([, k]) => k.group === group && k.resource === resource);
    if (!entry) return undefined;
    const [kind, k] = entry;
    if (!k.namespaced && namespace !== undefined) return undefined;
    if (k.namespaced && name !== undefined && namespace === undefined) return undefined;
    return { kind, group, resource: k.resource, namespace, name };
  }

  /** Answers a GET on a route: the object, undefined when absent, or a page of the list. */
  serve(route: StoredRoute, q: URLSearchParams, resourceVersion: number): KubeJsonObject | undefined {
    const k = KINDS[route.kind] as StoredKind;
    if (route.name !== undefined) return this.#objects.get(this.#key(k, route.namespace, route.name));
    const prefix = `${k.group}/${k.resource}/${route.namespace === undefined ? '' : `${route.namespace}/`}`;
    const keys = [...this.#objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    const limitRaw = Number(q.get('limit') ?? '0');
    const limit = Number.isInteger(limitRaw) && limitRaw > 0 ? limitRaw : keys.length;
    const cont = q.get('continue');
    const after = cont ? Buffer.from(cont, 'base64url').toString('utf8') : '';
    const remaining = keys.filter((key) => key > after);
    const page = remaining.slice(0, limit);
    const meta: KubeJsonObject = { resourceVersion: String(resourceVersion) };
    if (remaining.length > page.length) {
      meta.continue = Buffer.from(page[page.length - 1] as string).toString('base64url');
      meta.remainingItemCount = remaining.length - page.length;
    }
    return {
      kind: k.listKind,
      apiVersion: k.group === '' ? 'v1' : `${k.group}/v1`,
      metadata: meta,
      items: page.map((key) => this.#objects.get(key) as KubeJsonObject),
    };
  }

  #key(k: StoredKind, namespace: string | undefined, name: string): string {
    return `${k.group}/${k.resource}/${k.namespaced ? `${namespace}/` : ''}${name}`;
  }
}

/** Route: get and list of the objects added with `FakeCluster.addObject`. */
export function serveStoredObjects(ctx: RequestContext): boolean {
  const stored = ctx.state.stored.route([...ctx.seg]);
  if (!stored) return false;
  if (ctx.method !== 'GET') throw status(405, 'MethodNotAllowed', 'FakeCluster serves get and list here');
  const verb = stored.name === undefined ? 'list' : 'get';
  authorizeOrThrow(ctx, ctx.user, { ...stored, verb, apiGroup: stored.group });
  const body = ctx.state.stored.serve(stored, ctx.q, ctx.state.resourceVersion);
  if (!body) throw notFound(stored.resource, stored.name ?? '');
  writeJson(ctx.res, 200, body);
  return true;
}
