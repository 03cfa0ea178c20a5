/**
 * List paging with `limit` / `continue` tokens bound to a resource-version snapshot, expiring
 * with 410 like etcd compaction does.
 *
 * @module
 */
import { badRequest, queryInt, status } from './http.js';
import type { KubeJsonObject } from './types.js';

const EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

/** One page of a list and its `metadata` (resourceVersion, continue, remainingItemCount). */
export interface ListPage<T> {
  items: T[];
  meta: KubeJsonObject;
}

/** Paging settings and the cluster's clock and current resource version. */
export interface PagerOptions {
  maxPageSize?: number | undefined;
  continueTokenTtlMs?: number | undefined;
  clock: () => number;
  resourceVersion: () => number;
}

/** Cuts sorted lists into pages; remembers when each snapshot's first token was issued. */
export class Pager {
  private readonly snapshots = new Map<number, number>();

  constructor(private readonly options: PagerOptions) {}

  /** The page `q` asks for of `all` (sorted by `key`). */
  paginate<T>(all: T[], key: (item: T) => string, q: URLSearchParams): ListPage<T> {
    const limitRaw = queryInt(q, 'limit');
    const max = this.options.maxPageSize ?? 500;
    const limit = limitRaw !== undefined && limitRaw > 0 ? Math.min(limitRaw, max) : undefined;
    const cont = q.get('continue');
    let rv = this.options.resourceVersion();
    let start = '';
    const now = this.options.clock();
    const ttl = this.options.continueTokenTtlMs ?? 5 * 60_000;
    if (cont) {
      let parsed: { v?: unknown; rv?: unknown; start?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(cont, 'base64').toString('utf8')) as typeof parsed;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data or invalid JSON');
      }
      if (
        parsed.v !== 'meta.k8s.io/v1' ||
        typeof parsed.rv !== 'number' ||
        typeof parsed.start !== 'string'
      ) {
        throw badRequest(
          'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
        );
      }
      start = parsed.start;
      const issued = this.snapshots.get(parsed.rv);
      if (issued === undefined || now - issued > ttl) {
        const fresh = this.continueToken(this.options.resourceVersion(), start, now);
        const e = status(410, 'Expired', EXPIRED_MESSAGE);
        e.body.metadata = { continue: fresh };
        throw e;
      }
      rv = parsed.rv;
    } else {
      if (!this.snapshots.has(rv)) this.snapshots.set(rv, now);
    }
    const remaining = all.filter((item) => key(item) >= start);
    const items = limit !== undefined ? remaining.slice(0, limit) : remaining;
    const meta: KubeJsonObject = { resourceVersion: String(rv) };
    if (limit !== undefined && remaining.length > items.length) {
      const last = items[items.length - 1];
      if (last !== undefined) {
        meta.continue = this.continueToken(rv, `${key(last)}\u0000`, now);
        meta.remainingItemCount = remaining.length - items.length;
      }
    }
    return { items, meta };
  }

  private continueToken(rv: number, start: string, now: number): string {
    if (!this.snapshots.has(rv)) this.snapshots.set(rv, now);
    return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64');
  }
}
