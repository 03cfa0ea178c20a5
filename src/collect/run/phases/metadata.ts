/**
 * Phase 4, file metadata: every listing root by its own exec and budget (see listing-plan.ts),
 * then `stat` batches, then the bodyfile and findings, derived from all of them: if any listing
 * or stat exec is not complete, neither is the bodyfile, and its reason names the roots.
 */

import type { Readable } from 'node:stream';
import {
  applyStatOutput,
  type ListedEntry,
  metadataFindings,
  parseListing,
  renderBodyfile,
} from '../../listing.js';
import type { FileItem } from '../../schema.js';
import {
  batchBy,
  batchByChars,
  listingArgv,
  STAT_STDIN_BATCH,
  statArgv,
  statStdinArgv,
} from '../../scripts.js';
import { frameVerdict, type Received } from '../door.js';
import { type PhaseEnv, shellOf } from '../env.js';
import { planListing, type RootBudget, rootBudget } from '../listing-plan.js';
import { reason } from '../reasons.js';
import { derivedVerdict, problemVerdict, type Verdict, withProblem } from '../verdict.js';
import { rootPrefix } from '../view.js';
import { discoverTopLevel, MAX_TIMELINE_ROOTS, timelineRoots } from './timeline.js';

/** What one root's listing gave. */
export interface RootRecord {
  root: string;
  depth: number;
  artifact: string;
  status: Verdict['status'];
  entries: number;
  reason?: string | undefined;
}

/** Result of the metadata phase: the entries, and the verdicts the content phase inherits from. */
export interface MetadataResult {
  entries: Map<string, ListedEntry>;
  roots: RootRecord[];
  verdicts: Verdict[];
}

/** One root of the listing. */
interface Job {
  label: string;
  root: string;
  depth: number;
}

/** What one root of a listing exec gave. */
interface RootOutput {
  raw: Buffer;
  closed: boolean;
  rc: number | null;
  cut?: string | undefined;
}

/**
 * Splits a listing stream by root markers, enforcing each root's budget (entries, bytes, time).
 * Stops the exec when a root spends its budget; the roots after it are left for the next exec.
 */
async function receiveRoots(
  parse: Readable,
  stop: () => void,
  count: number,
  budget: RootBudget,
): Promise<Received<RootOutput[]>> {
  const out: RootOutput[] = [];
  let cur: { i: number; parts: Buffer[]; bytes: number; entries: number; started: number } | undefined;
  let carry: Buffer = Buffer.alloc(0);
  let stopped = false;
  const finish = (closed: boolean, rc: number | null, cut?: string) => {
    if (!cur) return;
    out[cur.i] = { raw: Buffer.concat(cur.parts), closed, rc, ...(cut ? { cut } : {}) };
    cur = undefined;
  };
  const halt = (why: string) => {
    finish(false, null, why);
    stopped = true;
    stop();
  };
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => halt(`no end after ${budget.timeMs} ms`), budget.timeMs);
    timer.unref?.();
  };
  try {
    for await (const chunk of parse) {
      if (stopped) break;
      let buf = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let at = 0;
      for (let nul = buf.indexOf(0, at); nul >= 0 && !stopped; nul = buf.indexOf(0, at)) {
        const rec = buf.subarray(at, nul + 1);
        at = nul + 1;
        const text = rec.length < 24 ? rec.toString('latin1', 0, rec.length - 1) : '';
        const start = /^R(\d{1,6})$/.exec(text);
        const end = /^Q(\d{1,6}):(\d{1,3})$/.exec(text);
        if (start) {
          finish(false, null);
          const i = Number(start[1]);
          if (i >= count || out[i]) continue;
          cur = { i, parts: [], bytes: 0, entries: 0, started: Date.now() };
          arm();
        } else if (end && cur && Number(end[1]) === cur.i) {
          finish(true, Number(end[2]));
          clearTimeout(timer);
        } else if (cur) {
          if (rec[0] === 0x2f) cur.entries++;
          cur.bytes += rec.length;
          if (cur.entries > budget.entries) halt(`more than ${budget.entries} entries`);
          else if (cur.bytes > budget.bytes) halt(`more than ${budget.bytes} bytes`);
          else cur.parts.push(Buffer.from(rec));
        }
      }
      carry = stopped ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
      buf = Buffer.alloc(0);
      if (cur && carry.length > budget.bytes) halt(`a record longer than ${budget.bytes} bytes`);
    }
  } finally {
    clearTimeout(timer);
  }
  finish(false, null);
  return { value: out };
}

/** Lists and stats the roots of the `file` items. */
export async function metadataPhase(
  env: PhaseEnv,
  items: readonly { profile: string; item: FileItem }[],
  containerStartedAt: number | undefined,
): Promise<MetadataResult | undefined> {
  if (items.length === 0) return undefined;
  const prefix = rootPrefix(env.view);
  const plan = planListing(
    items
      .filter(({ item }) => !item.wholeFilesystem)
      .flatMap(({ item }) => item.paths.map((pattern) => ({ pattern, maxDepth: item.maxDepth ?? 8 }))),
  );
  const kind =
    env.strategy.listing === 'find-stat' ? 'find' : env.strategy.listing === 'find' ? 'find-typed' : 'shell';
  const shell = shellOf(env);
  const src = {
    kind: 'listing',
    profile: [...new Set(items.map((i) => i.profile))].join(','),
    item: 'file-items',
  };
  const budget = rootBudget(env.limits);
  const entries = new Map<string, ListedEntry>();
  const roots: RootRecord[] = [];
  const verdicts: Verdict[] = [];
  let rejected = 0;
  let timeline: Record<string, unknown> | undefined;
  let execs = 0;
  const maxListed = env.limits.maxListedEntriesPerTarget;
  // one exec lists every root still to do; a root that spends its budget ends that exec, and the
  // next exec starts with the roots after it: a flood costs one exec, never another root
  const listJobs = async (jobs: readonly Job[]): Promise<void> => {
    let todo = jobs.map((_, i) => i);
    while (todo.length > 0 && !env.signal.aborted) {
      if (entries.size >= maxListed) {
        // the target's listing budget is spent: the roots still to do are recorded, not listed
        for (const jobIndex of todo) {
          const job = jobs[jobIndex] as Job;
          const text = `${job.label} not listed: the target's listing budget of ${maxListed} names is spent (maxListedEntriesPerTarget)`;
          const v = problemVerdict('truncated', reason('listing-root-truncated', text));
          verdicts.push(v);
          roots.push({
            root: job.label,
            depth: job.depth,
            artifact: '',
            status: 'truncated',
            entries: 0,
            reason: text,
          });
          env.reasons.add(reason('listing-root-truncated', text));
        }
        return;
      }
      // as many roots as fit in one argv (the exec's URL carries every argument), at least one
      const batch = batchByChars(todo, (i) => jobs[i]?.root ?? '', env.limits.maxArgvChars)[0] ?? [];
      const later = todo.slice(batch.length);
      const path = env.c(`files/listing/${String(execs++).padStart(3, '0')}.raw`);
      const argv = listingArgv(
        shell,
        kind,
        batch.map((i) => ({ root: jobs[i]?.root as string, maxDepth: jobs[i]?.depth ?? 0 })),
      );
      const res = await env.door.toArtifact({
        step: 'listing',
        argv,
        path,
        timeoutMs: Math.min(env.limits.execTimeoutMs, budget.timeMs * batch.length),
        meta: env.meta(src, {
          contentType: 'application/octet-stream',
          details: { roots: batch.map((i) => jobs[i]?.label), budgetPerRoot: budget },
        }),
        receive: (parse, stop) => receiveRoots(parse, stop, batch.length, budget),
      });
      const got = res.value ?? [];
      const stoppedByUs = res.outcome.stoppedBy === 'receiver';
      let progressed = false;
      const next: number[] = [];
      for (const [k, jobIndex] of batch.entries()) {
        const job = jobs[jobIndex] as (typeof jobs)[number];
        const r = got[k];
        if (!r) {
          next.push(jobIndex);
          continue;
        }
        progressed = true;
        const parsed = parseListing(r.raw, prefix, budget.entries);
        let n = 0;
        let over = false;
        for (const e of parsed.entries) {
          if (entries.has(e.path)) continue;
          if (entries.size >= maxListed) {
            over = true;
            break;
          }
          entries.set(e.path, e);
          n++;
        }
        rejected += parsed.rejected;
        // a root that closed before we stopped the exec is judged on its own end marker; one that
        // closed in an exec that then failed shares the exec's verdict
        const own = frameVerdict(
          {
            rc: r.rc,
            closed: r.closed,
            bytes: r.raw.length,
            ...(r.cut || parsed.capped || over
              ? {
                  findings: [
                    {
                      status: 'truncated' as const,
                      code: 'listing-root-truncated' as const,
                      text: over
                        ? `listing of ${job.label} cut: the target's listing budget of ${maxListed} names is spent (maxListedEntriesPerTarget)`
                        : `listing of ${job.label} cut: ${r.cut ?? `more than ${budget.entries} entries`} (per-root budget)`,
                    },
                  ],
                }
              : {}),
          },
          path,
        );
        const v = r.closed && stoppedByUs ? own : derivedVerdict([own, res.verdict]);
        verdicts.push(v);
        const why = v.status === 'complete' ? undefined : v.reasons.map((x) => x.text).join('; ');
        roots.push({
          root: job.label,
          depth: job.depth,
          artifact: path,
          status: v.status,
          entries: n,
          reason: why,
        });
        if (why)
          env.reasons.add(
            reason('listing-root-truncated', `listing of ${job.label} is ${v.status}: ${why}`, path),
          );
      }
      if (!progressed) {
        // the exec gave nothing for any root of its batch: those are not asked again; the roots of
        // later batches still get their own exec
        for (const jobIndex of next) {
          const job = jobs[jobIndex] as (typeof jobs)[number];
          verdicts.push(res.verdict);
          const why = res.verdict.reasons.map((x) => x.text).join('; ') || 'not listed';
          roots.push({
            root: job.label,
            depth: job.depth,
            artifact: path,
            status: res.verdict.status === 'complete' ? 'failed' : res.verdict.status,
            entries: 0,
            reason: why,
          });
          env.reasons.add(reason('listing-root-truncated', `listing of ${job.label} failed: ${why}`, path));
        }
        todo = later;
        continue;
      }
      todo = [...next, ...later];
    }
  };
  const job = (label: string, depth: number): Job => ({
    label,
    root: `${prefix}${label === '/' ? '' : label}` || '/',
    depth,
  });
  const whole = items.filter(({ item }) => item.wholeFilesystem);
  let wholeRoots: { root: string; depth: number }[] = [];
  if (whole.length > 0) {
    // the top level first (its files, and the names to split the tree by), then every top-level
    // directory and mount point as its own root with its own budget
    const depth = Math.max(...whole.map(({ item }) => item.maxDepth ?? 64));
    const top = await discoverTopLevel(env, prefix);
    verdicts.push(
      top.problem
        ? withProblem(
            top.verdict,
            'truncated',
            reason('listing-root-truncated', `whole-filesystem timeline: ${top.problem}`),
          )
        : top.verdict,
    );
    await listJobs([job('/', 1)]);
    const named = [...entries.values()]
      .filter(
        (e) =>
          e.path !== '/' &&
          e.path.split('/').length === 2 &&
          e.type !== 'f' &&
          e.type !== 'l' &&
          e.type !== 'o',
      )
      .map((e) => e.path);
    const all = timelineRoots(named, top.mounts);
    if (all.length > MAX_TIMELINE_ROOTS) {
      const text = `whole-filesystem timeline: ${all.length - MAX_TIMELINE_ROOTS} of ${all.length} top-level directories and mount points not listed (at most ${MAX_TIMELINE_ROOTS} roots), e.g. ${all.slice(MAX_TIMELINE_ROOTS, MAX_TIMELINE_ROOTS + 3).join(', ')}`;
      verdicts.push(problemVerdict('truncated', reason('listing-root-truncated', text)));
      env.reasons.add(reason('listing-root-truncated', text));
    }
    wholeRoots = all.slice(0, MAX_TIMELINE_ROOTS).map((r) => ({ root: r, depth: Math.max(0, depth - 1) }));
    timeline = {
      depth,
      roots: wholeRoots.map((r) => r.root),
      excluded: top.excluded,
      ...(top.problem ? { problem: top.problem } : {}),
    };
    if (top.problem)
      env.reasons.add(reason('listing-root-truncated', `whole-filesystem timeline: ${top.problem}`));
  }
  // the other items' roots first, on their own budgets (a flood in /usr must not cut /usr/local/bin
  // of another item), then the timeline's roots; an entry listed twice is kept once
  const jobs: Job[] = [];
  for (const p of plan.pinned) jobs.push(job(p, 0));
  for (const r of plan.roots) jobs.push(job(r.root, r.depth));
  for (const r of wholeRoots) jobs.push(job(r.root, r.depth));
  await listJobs(jobs);
  const statVerdicts: Verdict[] = [];
  if (env.strategy.stat) {
    const wanted = [...entries.values()].filter((e) => e.requestable);
    // where `xargs -0` works, the paths go on stdin (thousands per exec); else in argv batches
    const viaStdin = env.probe?.features['xargs-0'] === true;
    const batches = viaStdin
      ? batchBy(
          wanted,
          (e) => Buffer.byteLength(`${prefix}${e.path}`) + 1,
          STAT_STDIN_BATCH.bytes,
          STAT_STDIN_BATCH.paths,
        )
      : batchByChars(wanted, (e) => `${prefix}${e.path}`, env.limits.maxArgvChars);
    for (const [bi, batch] of batches.entries()) {
      if (env.signal.aborted) break;
      const expected = batch.map((entry) => ({ full: `${prefix}${entry.path}`, entry }));
      const sargv = viaStdin ? statStdinArgv() : statArgv(expected.map((x) => x.full));
      const res = await env.door.toArtifact({
        step: `stat-${bi}`,
        argv: sargv,
        ...(viaStdin ? { stdin: `${expected.map((x) => x.full).join('\0')}\0` } : {}),
        path: env.c(`files/stat-${String(bi).padStart(3, '0')}.raw`),
        maxBytes: 16 * 1024 * 1024,
        meta: env.meta(src, {
          argv: viaStdin
            ? [...sargv, `<${expected.length} listed paths on stdin>`]
            : ['stat', '-c', sargv[2] as string, '--', `<${expected.length} listed paths>`],
          contentType: 'text/plain',
        }),
        receive: async (parse) => {
          const parts: Buffer[] = [];
          for await (const c of parse) parts.push(Buffer.from(c as Buffer));
          return { value: Buffer.concat(parts).toString('utf8') };
        },
      });
      if (res.value) applyStatOutput(res.value, expected);
      statVerdicts.push(res.verdict);
      if (res.verdict.status !== 'complete') for (const r of res.verdict.reasons) env.reasons.add(r);
    }
  }
  const list = [...entries.values()];
  const inputs = [...verdicts, ...statVerdicts];
  const cut = roots.filter((r) => r.status !== 'complete');
  await env.store.derived(
    env.c('files/bodyfile.txt'),
    renderBodyfile(list),
    env.meta(src, {
      contentType: 'text/plain',
      details: {
        entries: list.length,
        rejectedRecords: rejected,
        listing: env.strategy.listing,
        roots,
        ...(timeline ? { wholeFilesystem: timeline } : {}),
        ...(cut.length ? { incompleteRoots: cut.map((r) => r.root) } : {}),
      },
    }),
    inputs,
  );
  if (env.strategy.stat) {
    await env.store.derived(
      env.c('files/findings.json'),
      `${JSON.stringify(metadataFindings(list, containerStartedAt), null, 2)}\n`,
      env.meta(src, { contentType: 'application/json' }),
      inputs,
    );
  }
  return { entries, roots, verdicts: inputs };
}
