/**
 * Phase 4, file metadata: every listing root by its own exec and budget (see listing-plan.ts),
 * then `stat` batches, then the bodyfile and findings, derived from all of them: if any listing
 * or stat exec is not complete, neither is the bodyfile, and its reason names the roots.
 */
import {
  applyStatOutput,
  type ListedEntry,
  metadataFindings,
  parseListing,
  renderBodyfile,
} from '../../listing.js';
import type { FileItem } from '../../schema.js';
import { batchByChars, listingArgv, statArgv } from '../../scripts.js';
import { type PhaseEnv, shellOf } from '../env.js';
import { planListing, rootBudget } from '../listing-plan.js';
import { reason } from '../reasons.js';
import type { ReceiverFinding, Verdict } from '../verdict.js';
import { rootPrefix } from '../view.js';

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

function countNul(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0); i >= 0; i = b.indexOf(0, i + 1)) n++;
  return n;
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
    items.flatMap(({ item }) => item.paths.map((pattern) => ({ pattern, maxDepth: item.maxDepth ?? 8 }))),
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
  const jobs: { label: string; roots: { root: string; maxDepth: number }[]; depth: number }[] = [];
  if (plan.pinned.length)
    jobs.push({
      label: 'pinned paths',
      roots: plan.pinned.map((p) => ({ root: `${prefix}${p}`, maxDepth: 0 })),
      depth: 0,
    });
  for (const r of plan.roots)
    jobs.push({ label: r.root, roots: [{ root: `${prefix}${r.root}`, maxDepth: r.depth }], depth: r.depth });
  for (const [i, job] of jobs.entries()) {
    if (env.signal.aborted) break;
    const path = env.c(`files/listing/${String(i).padStart(3, '0')}.raw`);
    const argv = listingArgv(shell, kind, job.roots);
    const res = await env.door.toArtifact({
      step: 'listing',
      argv,
      path,
      timeoutMs: budget.timeMs,
      maxBytes: budget.bytes,
      meta: env.meta(src, {
        contentType: 'application/octet-stream',
        details: { root: job.label, depth: job.depth, budget },
      }),
      receive: async (parse, stop) => {
        const parts: Buffer[] = [];
        let nul = 0;
        let over = false;
        for await (const c of parse) {
          const b = Buffer.from(c as Buffer);
          parts.push(b);
          nul += countNul(b);
          if (nul > budget.entries + 8) {
            over = true;
            stop();
            break;
          }
        }
        const parsed = parseListing(Buffer.concat(parts), prefix, budget.entries);
        const findings: ReceiverFinding[] = [];
        if (parsed.capped || over)
          findings.push({
            status: 'truncated',
            code: 'listing-root-truncated',
            text: `listing of ${job.label} cut at ${budget.entries} entries (per-root budget)`,
          });
        return { value: parsed, findings };
      },
    });
    const parsed = res.value;
    let n = 0;
    for (const e of parsed?.entries ?? []) {
      if (entries.has(e.path)) continue;
      entries.set(e.path, e);
      n++;
    }
    rejected += parsed?.rejected ?? 0;
    verdicts.push(res.verdict);
    const why =
      res.verdict.status === 'complete' ? undefined : res.verdict.reasons.map((r) => r.text).join('; ');
    roots.push({
      root: job.label,
      depth: job.depth,
      artifact: path,
      status: res.verdict.status,
      entries: n,
      reason: why,
    });
    if (why)
      env.reasons.add(
        reason('listing-root-truncated', `listing of ${job.label} is ${res.verdict.status}: ${why}`, path),
      );
  }
  const statVerdicts: Verdict[] = [];
  if (env.strategy.stat) {
    const wanted = [...entries.values()].filter((e) => e.requestable);
    const batches = batchByChars(wanted, (e) => `${prefix}${e.path}`, env.limits.maxArgvChars);
    for (const [bi, batch] of batches.entries()) {
      if (env.signal.aborted) break;
      const expected = batch.map((entry) => ({ full: `${prefix}${entry.path}`, entry }));
      const sargv = statArgv(expected.map((x) => x.full));
      const res = await env.door.toArtifact({
        step: `stat-${bi}`,
        argv: sargv,
        path: env.c(`files/stat-${String(bi).padStart(3, '0')}.raw`),
        maxBytes: 16 * 1024 * 1024,
        meta: env.meta(src, {
          argv: ['stat', '-c', sargv[2] as string, '--', `<${expected.length} listed paths>`],
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
