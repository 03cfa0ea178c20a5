/**
 * Discovery (`/version`, `/api`, `/apis`, group and resource lists) and the health endpoints.
 * A new served API group is one entry in {@link API_GROUPS}.
 *
 * @module
 */
import type { RequestContext } from './context.js';
import { methodNotAllowed, writeJson } from './http.js';
import type { KubeJsonObject } from './types.js';

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const sub = (name: string, kind: string, verbs: string[]): KubeJsonObject => ({
  name,
  singularName: '',
  namespaced: true,
  kind,
  verbs,
});

const clusterCreateOnly = (name: string, kind: string, namespaced = false): KubeJsonObject => ({
  name,
  singularName: name.replace(/s$/, ''),
  namespaced,
  kind,
  verbs: ['create'],
});

/** Resources of the core group (`/api/v1`). */
export const CORE_RESOURCES: readonly KubeJsonObject[] = [
  {
    name: 'events',
    singularName: 'event',
    namespaced: true,
    kind: 'Event',
    verbs: ALL_VERBS,
    shortNames: ['ev'],
  },
  {
    name: 'namespaces',
    singularName: 'namespace',
    namespaced: false,
    kind: 'Namespace',
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['ns'],
  },
  {
    name: 'nodes',
    singularName: 'node',
    namespaced: false,
    kind: 'Node',
    verbs: ALL_VERBS,
    shortNames: ['no'],
  },
  {
    name: 'pods',
    singularName: 'pod',
    namespaced: true,
    kind: 'Pod',
    verbs: ALL_VERBS,
    shortNames: ['po'],
    categories: ['all'],
  },
  sub('pods/attach', 'PodAttachOptions', ['create', 'get']),
  sub('pods/ephemeralcontainers', 'Pod', ['get', 'patch', 'update']),
  sub('pods/exec', 'PodExecOptions', ['create', 'get']),
  sub('pods/log', 'Pod', ['get']),
  sub('pods/status', 'Pod', ['get', 'patch', 'update']),
];

/** A named API group served at version v1, with its resources. */
export interface ApiGroupDiscovery {
  name: string;
  resources: readonly KubeJsonObject[];
}

/** The named API groups, in the order `/apis` lists them. */
export const API_GROUPS: readonly ApiGroupDiscovery[] = [
  {
    name: 'authentication.k8s.io',
    resources: [
      clusterCreateOnly('selfsubjectreviews', 'SelfSubjectReview'),
      clusterCreateOnly('tokenreviews', 'TokenReview'),
    ],
  },
  {
    name: 'authorization.k8s.io',
    resources: [
      clusterCreateOnly('localsubjectaccessreviews', 'LocalSubjectAccessReview', true),
      clusterCreateOnly('selfsubjectaccessreviews', 'SelfSubjectAccessReview'),
      clusterCreateOnly('selfsubjectrulesreviews', 'SelfSubjectRulesReview'),
      clusterCreateOnly('subjectaccessreviews', 'SubjectAccessReview'),
    ],
  },
];

const resourceList = (groupVersion: string, resources: readonly KubeJsonObject[]): KubeJsonObject => ({
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion,
  resources: [...resources],
});

const groupJson = (name: string): KubeJsonObject => ({
  name,
  versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
  preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
});

/** The discovery document at `path`, or `undefined` when `path` is not a discovery path. */
export function discoveryDocument(
  path: string,
  version: { major: string; minor: string; gitVersion: string },
  server: string,
): KubeJsonObject | undefined {
  switch (path) {
    case '/version':
      return {
        major: version.major,
        minor: version.minor,
        gitVersion: version.gitVersion,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2025-01-01T00:00:00Z',
        goVersion: 'go1.24.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      };
    case '/api':
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [
          { clientCIDR: '0.0.0.0/0', serverAddress: server.replace('https://', '') },
        ],
      };
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: API_GROUPS.map((g) => groupJson(g.name)) };
    case '/api/v1':
      return resourceList('v1', CORE_RESOURCES);
  }
  for (const g of API_GROUPS) {
    if (path === `/apis/${g.name}`) return { kind: 'APIGroup', apiVersion: 'v1', ...groupJson(g.name) };
    if (path === `/apis/${g.name}/v1`) return resourceList(`${g.name}/v1`, g.resources);
  }
  return undefined;
}

/** Route: discovery documents (GET only). */
export function serveDiscovery(ctx: RequestContext): boolean {
  const doc = discoveryDocument(ctx.path, ctx.state.version, ctx.server);
  if (doc === undefined) return false;
  if (ctx.method !== 'GET') throw methodNotAllowed();
  writeJson(ctx.res, 200, doc);
  return true;
}

/** Route: `/healthz`, `/livez`, `/readyz`. */
export function serveHealth(ctx: RequestContext): boolean {
  if (ctx.path !== '/healthz' && ctx.path !== '/livez' && ctx.path !== '/readyz') return false;
  ctx.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  ctx.res.end('ok');
  return true;
}
