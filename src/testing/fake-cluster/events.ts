/**
 * Events: get and list with the field selectors kubectl and the collector use.
 *
 * @module
 */
import { type CoreRequest, requireGet } from './context.js';
import { notFound, writeJson } from './http.js';
import { matchFields, parseFieldSelector } from './selectors.js';

const EVENT_FIELDS: ReadonlySet<string> = new Set([
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
  'metadata.name',
  'metadata.namespace',
]);

/** `GET /api/v1/[namespaces/ns/]events[/name]`. */
export function serveEvents(r: CoreRequest): void {
  requireGet(r);
  const { state, q, res, name, namespace } = r;
  if (name !== undefined) {
    const ev = state.events.find((e) => e.namespace === namespace && e.name === name);
    if (!ev) throw notFound('events', name);
    writeJson(res, 200, { kind: 'Event', apiVersion: 'v1', ...ev.json });
    return;
  }
  const fields = parseFieldSelector(q.get('fieldSelector'), EVENT_FIELDS);
  const all = state.events
    .filter((e) => namespace === undefined || e.namespace === namespace)
    .filter((e) => {
      const io = e.json.involvedObject as Record<string, string | undefined>;
      const src = e.json.source as Record<string, string | undefined>;
      return matchFields(fields, {
        'involvedObject.kind': io.kind ?? '',
        'involvedObject.namespace': io.namespace ?? '',
        'involvedObject.name': io.name ?? '',
        'involvedObject.uid': io.uid ?? '',
        'involvedObject.apiVersion': io.apiVersion ?? '',
        'involvedObject.resourceVersion': io.resourceVersion ?? '',
        'involvedObject.fieldPath': io.fieldPath ?? '',
        reason: String(e.json.reason ?? ''),
        reportingComponent: String(e.json.reportingComponent ?? ''),
        source: src.component ?? '',
        type: String(e.json.type ?? ''),
        'metadata.name': e.name,
        'metadata.namespace': e.namespace,
      });
    })
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  const page = r.pager.paginate(all, (e) => `${e.namespace}/${e.name}`, q);
  writeJson(res, 200, {
    kind: 'EventList',
    apiVersion: 'v1',
    metadata: page.meta,
    items: page.items.map((e) => e.json),
  });
}
