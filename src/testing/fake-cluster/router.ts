/**
 * The REST router: authenticate, then try each route of {@link ROUTES} in order; the first that
 * claims the path answers. Thrown `HttpStatus` values become Status responses.
 *
 * To serve a new API, add a route file (`(ctx) => boolean | Promise<boolean>`, `false` when the
 * path is not its own) and list it in `ROUTES` before `serveCore`; add its discovery entry to
 * `API_GROUPS` in `discovery.ts`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveCheckpointRoute } from './checkpoint.js';
import type { ClusterContext, RequestContext } from './context.js';
import { serveCore } from './core.js';
import { serveDiscovery, serveHealth } from './discovery.js';
import { badRequest, HttpStatus, noSuchResource, status, writeJson } from './http.js';
import { serveStoredObjects } from './object-store.js';
import { type AuthUser, unauthorizedStatus } from './rbac.js';
import { serveReviews } from './reviews.js';
import type { FakeRequestRecord } from './types.js';

/** A route: answers the request and returns `true`, or returns `false` to pass it on. */
export type Route = (ctx: RequestContext) => boolean | Promise<boolean>;

/** Routes in the order they are tried. */
export const ROUTES: readonly Route[] = [
  serveDiscovery, // /version, /api, /apis, /api/v1, /apis/<group>[/v1]
  serveHealth, // /healthz, /livez, /readyz
  serveReviews, // /apis/authentication.k8s.io/v1/selfsubjectreviews, /apis/authorization.k8s.io/v1/selfsubjectaccessreviews
  serveStoredObjects, // RBAC and workload objects added with addObject
  serveCheckpointRoute, // /api/v1/nodes/<n>/proxy/checkpoint/<ns>/<pod>/<container>
  serveCore, // /api/v1/...
];

async function route(
  cluster: ClusterContext,
  req: IncomingMessage,
  res: ServerResponse,
  user: AuthUser | undefined,
) {
  if (!user) throw new HttpStatus(401, unauthorizedStatus());
  cluster.state.syncStates();
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  let seg: string[];
  try {
    seg = path
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    throw badRequest(`invalid escape in request path ${JSON.stringify(path)}`);
  }
  const ctx: RequestContext = {
    ...cluster,
    req,
    res,
    user,
    method: req.method ?? 'GET',
    path,
    seg,
    q: url.searchParams,
  };
  for (const r of ROUTES) if (await r(ctx)) return;
  throw noSuchResource();
}

/** Answers one REST request and records it once the response is finished. */
export function serveRequest(
  cluster: ClusterContext,
  req: IncomingMessage,
  res: ServerResponse,
  record: (rec: FakeRequestRecord) => void,
): void {
  let user: AuthUser | undefined;
  res.once('finish', () =>
    record({
      method: req.method ?? '',
      url: req.url ?? '',
      user: user?.username,
      status: res.statusCode,
      accept: req.headers.accept,
    }),
  );
  user = cluster.auth.authenticate(req.headers.authorization);
  route(cluster, req, res, user).catch((err: unknown) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpStatus) {
      writeJson(res, err.code, err.body);
      return;
    }
    cluster.state.logger.error({ err: String(err), url: req.url }, 'FakeCluster handler failed');
    const e = status(500, 'InternalError', `Internal error occurred: ${String(err)}`);
    writeJson(res, 500, e.body);
  });
}
