/**
 * Namespaces: the four built-in ones plus every namespace a pod lives in.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { type CoreRequest, requireGet } from './context.js';
import { notFound, writeJson } from './http.js';
import { rfc3339 } from './objects.js';
import type { KubeJsonObject } from './types.js';

/** `GET /api/v1/namespaces[/name]`. */
export function serveNamespaces(r: CoreRequest): void {
  requireGet(r);
  const { state, res, name } = r;
  const names = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);
  for (const p of state.pods.values()) names.add(p.namespace);
  const ns = (n: string): KubeJsonObject => ({
    metadata: {
      name: n,
      uid: randomUUID(),
      resourceVersion: '1',
      creationTimestamp: rfc3339(state.clock()),
      labels: { 'kubernetes.io/metadata.name': n },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  });
  if (name !== undefined) {
    if (!names.has(name)) throw notFound('namespaces', name);
    writeJson(res, 200, { kind: 'Namespace', apiVersion: 'v1', ...ns(name) });
    return;
  }
  writeJson(res, 200, {
    kind: 'NamespaceList',
    apiVersion: 'v1',
    metadata: { resourceVersion: String(state.resourceVersion) },
    items: [...names].sort().map(ns),
  });
}
