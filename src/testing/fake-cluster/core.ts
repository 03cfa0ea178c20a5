/**
 * The core group (`/api/v1/...`): path → namespace, resource, name, subresource; verb; RBAC;
 * then the resource's handler from {@link CORE_HANDLERS}.
 *
 * @module
 */
import { authorizeOrThrow, type CoreRequest, type RequestContext } from './context.js';
import { serveEvents } from './events.js';
import { noSuchResource, queryBool, status } from './http.js';
import { serveNamespaces } from './namespaces.js';
import { serveNodes } from './nodes.js';
import { servePods } from './pods.js';
import type { RequestAttributes } from './rbac.js';

/** Handler of one core resource. */
export type CoreHandler = (r: CoreRequest) => void | Promise<void>;

/** Core resources FakeCluster serves. */
export const CORE_HANDLERS: Readonly<Record<string, CoreHandler>> = {
  pods: servePods,
  events: serveEvents,
  nodes: serveNodes,
  namespaces: serveNamespaces,
};

/** The RBAC verb of a request, as kube-apiserver's RequestInfoFactory derives it. */
export function requestVerb(method: string, name: string | undefined, q: URLSearchParams): string {
  switch (method) {
    case 'GET':
      if (name !== undefined) return 'get';
      return queryBool(q, 'watch') ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PATCH':
      return 'patch';
    case 'PUT':
      return 'update';
    case 'DELETE':
      return name === undefined ? 'deletecollection' : 'delete';
    default:
      return method.toLowerCase();
  }
}

/** Route: everything under `/api/v1` (404 for other resources). */
export async function serveCore(ctx: RequestContext): Promise<boolean> {
  const { seg, method, q } = ctx;
  if (seg[0] !== 'api' || seg[1] !== 'v1') return false;
  const rest = seg.slice(2);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  const [resource = '', name, subresource, ...extra] = rest;
  const handler = Object.hasOwn(CORE_HANDLERS, resource) ? CORE_HANDLERS[resource] : undefined;
  if (extra.length > 0 || !handler) throw noSuchResource();
  const verb = requestVerb(method, name, q);
  const attrs: RequestAttributes = { verb, resource, subresource, namespace, name, apiGroup: '' };
  authorizeOrThrow(ctx, ctx.user, attrs);
  if (verb === 'watch')
    throw status(405, 'MethodNotAllowed', 'FakeCluster does not support watch; poll with get/list');
  await handler({ ...ctx, namespace, resource, name, subresource });
  return true;
}
