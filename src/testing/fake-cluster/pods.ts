/**
 * Pods: get (JSON or Table), list with selectors and paging, logs, the exec preflight, and the
 * ephemeralcontainers subresource (whose patch logic lives in `ephemeral-patch.ts`).
 *
 * @module
 */
import { type CoreRequest, maxBodyBytes } from './context.js';
import { patchEphemeral } from './ephemeral-patch.js';
import {
  badRequest,
  type HttpStatus,
  invalid,
  methodNotAllowed,
  noSuchResource,
  notFound,
  queryBool,
  queryInt,
  readBody,
  status,
  writeJson,
} from './http.js';
import {
  type ContainerEntry,
  type LogLine,
  logTimestamp,
  type PodEntry,
  podJson,
  podTable,
} from './objects.js';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { allContainers } from './state.js';

const POD_FIELDS: ReadonlySet<string> = new Set([
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
]);

function podFields(p: PodEntry): Record<string, string> {
  const json = podJson(p);
  const st = json.status as Record<string, unknown>;
  return {
    'metadata.name': p.name,
    'metadata.namespace': p.namespace,
    'spec.nodeName': p.nodeName ?? '',
    'spec.restartPolicy': 'Always',
    'spec.schedulerName': 'default-scheduler',
    'spec.serviceAccountName': p.spec.serviceAccountName ?? 'default',
    'spec.hostNetwork': String(p.spec.hostNetwork ?? false),
    'status.phase': String(st.phase ?? ''),
    'status.podIP': typeof st.podIP === 'string' ? st.podIP : '',
    'status.nominatedNodeName': '',
  };
}

const wantsTable = (r: CoreRequest): boolean => (r.req.headers.accept ?? '').includes('as=Table');

function listPods(r: CoreRequest): void {
  const { state, q, res, namespace } = r;
  const labels = parseLabelSelector(q.get('labelSelector'));
  const fields = parseFieldSelector(q.get('fieldSelector'), POD_FIELDS);
  const all = [...state.pods.values()]
    .filter((p) => namespace === undefined || p.namespace === namespace)
    .filter((p) => matchLabels(labels, p.spec.labels) && matchFields(fields, podFields(p)))
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  const page = r.pager.paginate(all, (p) => `${p.namespace}/${p.name}`, q);
  if (wantsTable(r)) {
    writeJson(res, 200, podTable(page.items, state.clock(), page.meta, q.get('includeObject') ?? 'Metadata'));
    return;
  }
  writeJson(res, 200, {
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: page.meta,
    items: page.items.map((p) => podJson(p, false)),
  });
}

/** The container a log or exec request names (or the only one), with the apiserver's 400s. */
export function selectContainer(pod: PodEntry, requested: string | null): ContainerEntry {
  const everything = allContainers(pod);
  if (!requested) {
    if (pod.containers.length === 1 && pod.containers[0]) return pod.containers[0];
    if (everything.length === 0) throw badRequest(`a container name must be specified for pod ${pod.name}`);
    throw badRequest(
      `a container name must be specified for pod ${pod.name}, choose one of: [${everything.map((c) => c.name).join(' ')}]`,
    );
  }
  const c = everything.find((x) => x.name === requested);
  if (!c) throw badRequest(`container ${requested} is not valid for pod ${pod.name}`);
  return c;
}

/** Checks an exec request's pod and options before the upgrade; returns the container. */
export function execPreflight(pod: PodEntry, q: URLSearchParams): ContainerEntry {
  if (pod.nodeName === null) throw badRequest(`pod ${pod.name} does not have a host assigned`);
  const c = selectContainer(pod, q.get('container'));
  if (!queryBool(q, 'stdin') && !queryBool(q, 'stdout') && !queryBool(q, 'stderr')) {
    throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  }
  return c;
}

function podLog(r: CoreRequest, pod: PodEntry): void {
  const { q, res } = r;
  const c = selectContainer(pod, q.get('container'));
  const tailLines = queryInt(q, 'tailLines');
  const limitBytes = queryInt(q, 'limitBytes');
  const sinceSeconds = queryInt(q, 'sinceSeconds');
  const sinceTimeRaw = q.get('sinceTime');
  const inv = (field: string, value: number | string, detail: string): HttpStatus =>
    invalid('PodLogOptions', pod.name, field, 'FieldValueInvalid', `Invalid value: ${value}: ${detail}`);
  if (tailLines !== undefined && tailLines < 0)
    throw inv('tailLines', tailLines, 'must be greater than or equal to 0');
  if (limitBytes !== undefined && limitBytes < 1)
    throw inv('limitBytes', limitBytes, 'must be greater than 0');
  if (sinceSeconds !== undefined && sinceSeconds < 1)
    throw inv('sinceSeconds', sinceSeconds, 'must be greater than 0');
  if (sinceSeconds !== undefined && sinceTimeRaw) {
    throw invalid(
      'PodLogOptions',
      pod.name,
      '',
      'FieldValueForbidden',
      'at most one of `sinceTime` or `sinceSeconds` may be specified',
    );
  }
  let since: number | undefined;
  if (sinceTimeRaw) {
    since = Date.parse(sinceTimeRaw);
    if (Number.isNaN(since))
      throw badRequest(`parsing time "${sinceTimeRaw}" as "2006-01-02T15:04:05Z07:00": cannot parse`);
  } else if (sinceSeconds !== undefined) since = r.state.clock() - sinceSeconds * 1000;
  if (pod.nodeName === null) {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '0' });
    res.end();
    return;
  }
  const previous = queryBool(q, 'previous');
  if (previous) {
    if (!c.previousLogs)
      throw badRequest(`previous terminated container "${c.name}" in pod "${pod.name}" not found`);
  } else if (c.state === 'waiting') {
    throw badRequest(
      `container "${c.name}" in pod "${pod.name}" is waiting to start: ${c.reason ?? 'ContainerCreating'}`,
    );
  }
  let lines: LogLine[] = previous ? (c.previousLogs ?? []) : c.logs;
  if (since !== undefined) {
    const s = since;
    lines = lines.filter((l) => l.timeMs >= s);
  }
  if (tailLines !== undefined) lines = tailLines === 0 ? [] : lines.slice(-tailLines);
  const timestamps = queryBool(q, 'timestamps');
  let out = Buffer.concat(
    lines.map((l) => (timestamps ? Buffer.concat([Buffer.from(`${logTimestamp(l)} `), l.data]) : l.data)),
  );
  if (limitBytes !== undefined && out.length > limitBytes) out = out.subarray(0, limitBytes);
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': String(out.length),
    'Cache-Control': 'no-cache, private',
  });
  res.end(out);
}

/** `/api/v1/[namespaces/ns/]pods[/name[/log|exec|ephemeralcontainers]]`. */
export async function servePods(r: CoreRequest): Promise<void> {
  const { state, req, res, q, method, namespace, name, subresource } = r;
  if (name === undefined) {
    if (method !== 'GET') throw methodNotAllowed();
    listPods(r);
    return;
  }
  if (namespace === undefined) throw noSuchResource();
  const pod = state.pods.get(`${namespace}/${name}`);
  if (!pod) throw notFound('pods', name);
  switch (subresource) {
    case undefined:
      if (method !== 'GET') throw status(405, 'MethodNotAllowed', 'FakeCluster only serves get on pods');
      if (wantsTable(r)) {
        writeJson(
          res,
          200,
          podTable(
            [pod],
            state.clock(),
            { resourceVersion: String(pod.resourceVersion) },
            q.get('includeObject') ?? 'Metadata',
          ),
        );
      } else writeJson(res, 200, podJson(pod));
      return;
    case 'log':
      podLog(r, pod);
      return;
    case 'exec':
      execPreflight(pod, q);
      throw badRequest('Upgrade request required');
    case 'ephemeralcontainers':
      if (method === 'GET') {
        writeJson(res, 200, podJson(pod));
        return;
      }
      if (method === 'PATCH' || method === 'PUT') {
        const body = await readBody(req, maxBodyBytes(r));
        await patchEphemeral(r, pod, method, req.headers['content-type'] ?? '', body);
        writeJson(res, 200, podJson(pod));
        return;
      }
      throw methodNotAllowed();
    default:
      throw noSuchResource();
  }
}
