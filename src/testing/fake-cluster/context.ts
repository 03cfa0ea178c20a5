/**
 * What a route handler sees: the cluster (state, authenticator, options, pager) and the parsed
 * request.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpStatus, methodNotAllowed } from './http.js';
import type { Pager } from './paging.js';
import { type Authenticator, type AuthUser, forbiddenStatus, type RequestAttributes } from './rbac.js';
import type { ClusterState } from './state.js';
import type { FakeClusterOptions } from './types.js';

/** The cluster side, shared by every request. */
export interface ClusterContext {
  readonly state: ClusterState;
  readonly auth: Authenticator;
  readonly options: FakeClusterOptions;
  readonly pager: Pager;
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
}

/** One authenticated REST request, its path split into decoded segments. */
export interface RequestContext extends ClusterContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly user: AuthUser;
  readonly method: string;
  /** Path without trailing slashes (`/` for the root). */
  readonly path: string;
  /** Decoded path segments. */
  readonly seg: readonly string[];
  readonly q: URLSearchParams;
}

/** 403 with the apiserver's Forbidden Status unless RBAC allows the request. */
export function authorizeOrThrow(cluster: ClusterContext, user: AuthUser, a: RequestAttributes): void {
  if (!cluster.auth.authorize(user, a).allowed) throw new HttpStatus(403, forbiddenStatus(user, a));
}

/** The request body limit. */
export function maxBodyBytes(cluster: ClusterContext): number {
  return cluster.options.maxRequestBodyBytes ?? 1 << 20;
}

/** A core-group request after path parsing and authorization. */
export interface CoreRequest extends RequestContext {
  readonly namespace: string | undefined;
  readonly resource: string;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

/** 405 unless the request is a plain GET (no subresource). */
export function requireGet(r: CoreRequest): void {
  if (r.method !== 'GET' || r.subresource !== undefined) throw methodNotAllowed();
}
