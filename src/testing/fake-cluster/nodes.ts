/**
 * Nodes: get and list with label and field selectors.
 *
 * @module
 */
import { type CoreRequest, requireGet } from './context.js';
import { notFound, writeJson } from './http.js';
import { nodeJson } from './objects.js';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';

const NODE_FIELDS: ReadonlySet<string> = new Set(['metadata.name', 'spec.unschedulable']);

/** `GET /api/v1/nodes[/name]`. */
export function serveNodes(r: CoreRequest): void {
  requireGet(r);
  const { state, q, res, name } = r;
  if (name !== undefined) {
    const node = state.nodes.get(name);
    if (!node) throw notFound('nodes', name);
    writeJson(res, 200, nodeJson(node, state.version.gitVersion));
    return;
  }
  const fields = parseFieldSelector(q.get('fieldSelector'), NODE_FIELDS);
  const labels = parseLabelSelector(q.get('labelSelector'));
  const all = [...state.nodes.values()]
    .filter(
      (n) =>
        matchLabels(labels, n.spec.labels) &&
        matchFields(fields, { 'metadata.name': n.spec.name, 'spec.unschedulable': 'false' }),
    )
    .sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
  const page = r.pager.paginate(all, (n) => n.spec.name, q);
  writeJson(res, 200, {
    kind: 'NodeList',
    apiVersion: 'v1',
    metadata: page.meta,
    items: page.items.map((n) => nodeJson(n, state.version.gitVersion, false)),
  });
}
