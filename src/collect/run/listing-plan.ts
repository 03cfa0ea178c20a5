/**
 * Which roots the metadata phase lists, in which order, with which budgets. Pure.
 *
 * Every root is listed by its own exec with its own budget (entries, bytes, time), so a container
 * that floods one directory can only cut that root's listing. Roots nested in another root are
 * merged into it (deepening it as needed); paths named without glob characters are also listed
 * on their own at depth 0 ("pinned"), so a flood of their parent cannot hide them.
 */
import { compileGlob } from '../glob.js';
import type { CollectLimits } from '../types.js';

/**
 * Order of listing: most volatile and most valuable first (drop zones, then home directories and
 * configuration, then application and package trees, then logs), the rest after, alphabetically.
 */
export const ROOT_PRIORITY: readonly string[] = Object.freeze([
  '/dev/shm',
  '/tmp',
  '/var/tmp',
  '/run',
  '/var/run',
  '/root',
  '/home',
  '/etc',
  '/var/spool',
  '/usr/local',
  '/opt',
  '/srv',
  '/app',
  '/var/lib',
  '/lib/apk',
  '/var/log',
]);

/** Budgets of one root's listing. */
export interface RootBudget {
  /** Most entries (names) kept. */
  entries: number;
  /** Most bytes of raw listing. */
  bytes: number;
  /** Time for the root's exec. */
  timeMs: number;
}

/** Bytes of one root's listing at most (and never more than `maxArtifactBytes`). */
export const LISTING_ROOT_MAX_BYTES = 64 * 1024 * 1024;

/** The budget every root gets from the limits. */
export function rootBudget(limits: CollectLimits): RootBudget {
  return {
    entries: limits.maxEntriesPerArtifact,
    bytes: Math.min(limits.maxArtifactBytes, LISTING_ROOT_MAX_BYTES),
    timeMs: limits.execTimeoutMs,
  };
}

/** One root to list. */
export interface PlannedRoot {
  /** Container path. */
  root: string;
  /** Depth below it. */
  depth: number;
}

/** The listing plan. */
export interface ListingPlan {
  /** Paths named without glob characters, listed once more at depth 0 in one exec. */
  pinned: string[];
  /** Roots, in listing order. */
  roots: PlannedRoot[];
}

function rank(root: string): number {
  const i = ROOT_PRIORITY.findIndex((p) => root === p || root.startsWith(`${p}/`));
  return i < 0 ? ROOT_PRIORITY.length : i;
}

/** Plans the listing of `patterns` (absolute path patterns with their item's maxDepth). */
export function planListing(patterns: readonly { pattern: string; maxDepth: number }[]): ListingPlan {
  const all: PlannedRoot[] = [];
  const pinned = new Set<string>();
  for (const p of patterns) {
    const g = compileGlob(p.pattern, p.maxDepth);
    all.push({ root: g.root, depth: g.depth });
    if (!/[*?[]/.test(p.pattern)) pinned.add(g.root);
  }
  // ancestors first, so nested roots merge into the outermost one
  all.sort((a, b) => a.root.length - b.root.length || (a.root < b.root ? -1 : 1));
  const roots: PlannedRoot[] = [];
  for (const r of all) {
    const anc = roots.find((a) => a.root === r.root || a.root === '/' || r.root.startsWith(`${a.root}/`));
    if (!anc) {
      roots.push({ ...r });
      continue;
    }
    const rel =
      anc.root === r.root ? 0 : r.root.slice(anc.root === '/' ? 1 : anc.root.length + 1).split('/').length;
    anc.depth = Math.max(anc.depth, rel + r.depth);
  }
  roots.sort((a, b) => rank(a.root) - rank(b.root) || (a.root < b.root ? -1 : 1));
  // a pinned path that is itself a listed root needs no second listing
  const top = new Set(roots.map((r) => r.root));
  return {
    pinned: [...pinned].filter((p) => !top.has(p)).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1)),
    roots,
  };
}
