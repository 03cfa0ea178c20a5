/**
 * FakeCluster's kubelet checkpoint route (`POST /api/v1/nodes/<node>/proxy/checkpoint/<ns>/<pod>/<c>`)
 * and its failure modes, as the kubelet answers through the API server's node proxy.
 */
import type { ServerResponse } from 'node:http';
import { authorizeOrThrow, type RequestContext } from './context.js';
import { notFound } from './http.js';
import { podJson } from './objects.js';

/**
 * How a node's kubelet answers a checkpoint request:
 * - `supported`: 200 with the archive path (CRI-O/CRIU, containerd 2.0+);
 * - `unsupported` (default): 500, the runtime does not implement CheckpointContainer (containerd 1.x);
 * - `criu-fails`: 500, the runtime tried and CRIU failed;
 * - `gate-off`: 404 `404 page not found` (the `ContainerCheckpoint` feature gate is off);
 * - `lying`: 200 with an archive "path" that is not one (a hostile or broken node).
 */
export type FakeCheckpointBehavior = 'supported' | 'unsupported' | 'criu-fails' | 'gate-off' | 'lying';

const behaviors = new WeakMap<object, Map<string, FakeCheckpointBehavior>>();
const taken = new WeakMap<object, string[]>();

/** Sets how `node`'s kubelet answers checkpoint requests on `cluster` (a FakeCluster). */
export function setFakeCheckpointBehavior(
  cluster: object,
  node: string,
  behavior: FakeCheckpointBehavior,
): void {
  const key = keyOf(cluster);
  let m = behaviors.get(key);
  if (!m) {
    m = new Map();
    behaviors.set(key, m);
  }
  m.set(node, behavior);
}

/** Archive paths the fake kubelets of `cluster` reported, in order. */
export function fakeCheckpointArchives(cluster: object): readonly string[] {
  return taken.get(keyOf(cluster)) ?? [];
}

// Behaviour is kept per cluster state, so a route (which sees the state) and a test (which holds
// the FakeCluster) reach the same entry.
function keyOf(cluster: object): object {
  return (cluster as { state?: object }).state ?? cluster;
}

/** Route: `POST /api/v1/nodes/<node>/proxy/checkpoint/<ns>/<pod>/<container>`. */
export function serveCheckpointRoute(ctx: RequestContext): boolean {
  const rest = ctx.seg.slice(2);
  if (ctx.seg[0] !== 'api' || ctx.seg[1] !== 'v1' || !isCheckpointPath(rest)) return false;
  const name = rest[1] as string;
  const verb = ctx.method === 'POST' ? 'create' : ctx.method.toLowerCase();
  authorizeOrThrow(ctx, ctx.user, { verb, resource: 'nodes', subresource: 'proxy', name, apiGroup: '' });
  if (!ctx.state.nodes.has(name)) throw notFound('nodes', name);
  const pod = ctx.state.pods.get(`${rest[4]}/${rest[5]}`);
  serveCheckpoint(ctx.state, {
    method: ctx.method,
    node: name,
    rest,
    pod: pod && podJson(pod),
    now: ctx.state.clock(),
    res: ctx.res,
  });
  return true;
}

/** True for `nodes/<n>/proxy/checkpoint/…` paths (the `rest` after `/api/v1`). */
export function isCheckpointPath(rest: readonly string[]): boolean {
  return rest[0] === 'nodes' && rest[2] === 'proxy' && rest[3] === 'checkpoint';
}

function text(res: ServerResponse, code: number, body: string): void {
  res.writeHead(code, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/**
 * Serves one checkpoint request after authorization (`create` on `nodes/proxy`). `pod` is the pod's
 * JSON when it exists; the caller answers 404 for an unknown node before calling.
 */
export function serveCheckpoint(
  cluster: object,
  a: {
    method: string;
    node: string;
    rest: readonly string[];
    pod: { spec?: { nodeName?: unknown; containers?: unknown } } | undefined;
    now: number;
    res: ServerResponse;
  },
): void {
  const [ns, podName, container, ...more] = a.rest.slice(4);
  const behavior = behaviors.get(cluster)?.get(a.node) ?? 'unsupported';
  if (
    behavior === 'gate-off' ||
    ns === undefined ||
    podName === undefined ||
    container === undefined ||
    more.length > 0
  ) {
    text(a.res, 404, '404 page not found\n');
    return;
  }
  if (a.method !== 'POST') {
    text(a.res, 405, '405: Method Not Allowed');
    return;
  }
  const spec = a.pod?.spec;
  if (!spec || spec.nodeName !== a.node) {
    text(a.res, 404, 'pod does not exist');
    return;
  }
  const names = Array.isArray(spec.containers)
    ? spec.containers.map((c: unknown) => (c as { name?: unknown }).name)
    : [];
  if (!names.includes(container)) {
    text(a.res, 404, `container ${container} does not exist`);
    return;
  }
  const id = `${ns}/${podName}/${container}`;
  if (behavior === 'unsupported') {
    text(
      a.res,
      500,
      `checkpointing of ${id} failed (rpc error: code = Unimplemented desc = method CheckpointContainer not implemented)`,
    );
    return;
  }
  if (behavior === 'criu-fails') {
    text(
      a.res,
      500,
      `checkpointing of ${id} failed (rpc error: code = Unknown desc = failed to checkpoint container: criu failed: type NOTIFY errno 0)`,
    );
    return;
  }
  const stamp = new Date(a.now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const path =
    behavior === 'lying'
      ? '../../../etc/shadow'
      : `/var/lib/kubelet/checkpoints/checkpoint-${podName}_${ns}-${container}-${stamp}.tar`;
  const list = taken.get(cluster) ?? [];
  list.push(path);
  taken.set(cluster, list);
  const body = JSON.stringify({ items: [path] });
  a.res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  a.res.end(body);
}
