/**
 * What a sweep has done so far, read back from S3 (the only shared state): per target status,
 * attempts, bytes and what is still outstanding.
 *
 * @module
 */

import { z } from 'zod';
import { ConfigError, ValidationError } from '../errors.js';
import { verifyEvidence } from '../evidence/index.js';
import { getJson, listKeys, SweepKeys, type SweepStore } from './store.js';
import {
  type AttemptRecord,
  AttemptRecordSchema,
  DeadLetterRecordSchema,
  FinalRecordSchema,
  SweepIdSchema,
  SweepManifestSchema,
} from './types.js';
import { errText, mapLimit, sleep } from './util.js';

/** Where one target stands. */
export type SweepTargetState =
  /** Committed: one finalized bundle is the evidence. */
  | 'finalized'
  /** A worker holds it now. */
  | 'running'
  /** Tried and not finalized; the queue will deliver it again. */
  | 'retrying'
  /** Given up; the reason is recorded. */
  | 'dead-lettered'
  /** On the queue, never started. */
  | 'pending'
  /** Planned but SQS refused the message: not on the queue. */
  | 'not-enqueued';

/** One target in a {@link SweepReport}. */
export interface SweepTargetProgress {
  /** Deterministic acquisition id. */
  acquisitionId: string;
  /** `account/region/cluster/namespace/pod/container`. */
  key: string;
  /** Where it stands. */
  state: SweepTargetState;
  /** Collector status of the committed bundle. */
  status?: 'complete' | 'partial' | 'failed' | undefined;
  /** Attempts started. */
  attempts: number;
  /** Bytes in the committed bundle. */
  bytes: number;
  /** The committed bundle. */
  location?: string | undefined;
  /** SHA-256 of its manifest.json. */
  manifestSha256?: string | undefined;
  /** Why it is not complete, why the last attempt failed, or why it was given up. */
  reasons: string[];
  /** With `verify`: the result of verifyEvidence on the committed bundle. */
  verified?: 'valid' | 'unanchored' | 'incomplete' | 'invalid' | undefined;
}

/** Progress of a sweep. */
export interface SweepReport {
  /** Sweep id. */
  sweepId: string;
  /** When it was planned. */
  createdAt: string;
  /** When this report was read. */
  at: string;
  /** Targets per state. */
  counts: Record<SweepTargetState, number>;
  /** Committed targets by collector status. */
  statuses: { complete: number; partial: number; failed: number };
  /** Bytes in committed bundles. */
  bytes: number;
  /** Every target, in plan order. */
  targets: SweepTargetProgress[];
  /** Acquisition ids not yet finalized and not given up. */
  outstanding: string[];
  /** Plan gaps (unreachable regions/clusters) and record problems (unreadable records, duplicate bundles, failed verification). */
  problems: string[];
  /** True when nothing is outstanding. */
  done: boolean;
}

/** Options of {@link sweepReport}. */
export interface SweepReportOptions {
  /** The store the sweep was enqueued with. */
  store: SweepStore;
  /** Sweep id. */
  sweepId: string;
  /** Also re-hash every committed bundle with verifyEvidence (slow: reads every byte). Default false. */
  verify?: boolean | undefined;
  /** S3 reads at once. Default 16. */
  concurrency?: number | undefined;
  /** Cancels reading. */
  signal?: AbortSignal | undefined;
}

const EnqueueSchema = z.object({
  sent: z.number(),
  failed: z.array(z.object({ id: z.string(), code: z.string(), message: z.string() })),
});

/**
 * Reads the sweep manifest and every target's records and summarises them. A target counts as
 * `finalized` only through its create-once `final.json`; with `verify`, its bundle is also
 * re-hashed and a bundle that does not verify is a problem. Records that do not parse are
 * problems, never silently skipped.
 *
 * @throws {ValidationError} when the sweep manifest is missing or unreadable.
 */
export async function sweepReport(options: SweepReportOptions): Promise<SweepReport> {
  if (!SweepIdSchema.safeParse(options.sweepId).success)
    throw new ConfigError(`bad sweep id ${JSON.stringify(options.sweepId)}`);
  const { store, signal } = options;
  const keys = new SweepKeys(store, options.sweepId);
  const manifest = await getJson(store, keys.manifest, SweepManifestSchema, { manifest: true, signal });
  if (!manifest)
    throw new ValidationError(
      `no sweep manifest at s3://${store.bucket}/${keys.manifest}; was the sweep enqueued with this store?`,
    );
  const problems: string[] = manifest.problems.map(
    (p) => `not covered by the plan: ${p.where}: ${p.message}`,
  );
  const enqueue = await getJson(store, keys.enqueue, EnqueueSchema, { signal }).catch((e: unknown) => {
    problems.push(`enqueue.json: ${errText(e)}`);
    return undefined;
  });
  const refused = new Map((enqueue?.failed ?? []).map((f) => [f.id, `${f.code}: ${f.message}`]));
  const all = await listKeys(store, keys.targets, signal);
  const byTarget = new Map<string, string[]>();
  for (const k of all) {
    const rest = k.slice(keys.targets.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue;
    const id = rest.slice(0, slash);
    const list = byTarget.get(id) ?? [];
    list.push(rest.slice(slash + 1));
    byTarget.set(id, list);
  }
  const planned = new Set(manifest.targets.map((t) => t.acquisitionId));
  for (const id of byTarget.keys())
    if (!planned.has(id)) problems.push(`records for ${id}, which the sweep manifest does not list`);
  const now = Date.now();
  const targets = await mapLimit(
    manifest.targets,
    options.concurrency ?? 16,
    async (t): Promise<SweepTargetProgress> => {
      const files = byTarget.get(t.acquisitionId) ?? [];
      const p: SweepTargetProgress = {
        acquisitionId: t.acquisitionId,
        key: t.key,
        state: 'pending',
        attempts: 0,
        bytes: 0,
        reasons: [],
      };
      const attempts: AttemptRecord[] = [];
      for (const f of files) {
        const m = /^attempt-(\d+)\.json$/.exec(f);
        if (!m) continue;
        p.attempts++;
        try {
          const a = await getJson(store, keys.target(t.acquisitionId) + f, AttemptRecordSchema, { signal });
          if (a) attempts.push(a);
        } catch (e) {
          problems.push(`${t.acquisitionId}/${f}: ${errText(e)}`);
        }
      }
      attempts.sort((a, b) => a.attempt - b.attempt);
      const finalized = attempts.filter((a) => a.state === 'finalized' || a.state === 'superseded');
      if (finalized.length > 1)
        problems.push(
          `${t.acquisitionId}: ${finalized.length} finalized bundles (${finalized.map((a) => a.bundleId).join(', ')}); only final.json's is the evidence`,
        );
      let final: z.infer<typeof FinalRecordSchema> | undefined;
      if (files.includes('final.json')) {
        try {
          final = await getJson(store, keys.final(t.acquisitionId), FinalRecordSchema, { signal });
        } catch (e) {
          problems.push(`${t.acquisitionId}/final.json: ${errText(e)}`);
        }
      }
      const last = attempts[attempts.length - 1];
      if (final && final.acquisitionId === t.acquisitionId) {
        p.state = 'finalized';
        p.status = final.status;
        p.bytes = final.bytes;
        p.location = final.location;
        p.manifestSha256 = final.manifestSha256;
        const a = attempts.find((x) => x.attempt === final?.attempt);
        if (a?.reasons) p.reasons.push(...a.reasons);
        if (final.recovered)
          p.reasons.push(
            'committed by another worker after the acquiring worker stopped (status from the manifest)',
          );
        if (options.verify) {
          const prefix = keys.bundlePrefix(final.bundleId);
          const v = await verifyEvidence(
            { s3: { client: store.client, bucket: store.bucket, prefix } },
            { expectedManifestSha256: final.manifestSha256 },
          ).catch((e: unknown) => {
            problems.push(`${t.acquisitionId}: verification could not run: ${errText(e)}`);
            return undefined;
          });
          p.verified = v?.status;
          if (v && !v.ok)
            problems.push(
              `${t.acquisitionId}: bundle ${final.bundleId} does not verify (${v.status}): ${v.problems
                .slice(0, 3)
                .map((x) => x.message)
                .join('; ')}`,
            );
        }
        return p;
      }
      if (files.includes('dead-letter.json')) {
        try {
          const d = await getJson(store, keys.deadLetter(t.acquisitionId), DeadLetterRecordSchema, {
            signal,
          });
          p.state = 'dead-lettered';
          if (d) p.reasons.push(d.reason);
          return p;
        } catch (e) {
          problems.push(`${t.acquisitionId}/dead-letter.json: ${errText(e)}`);
        }
      }
      if (last?.state === 'running' && Date.parse(last.leaseUntil) > now) p.state = 'running';
      // finalized but final.json not listed yet: the worker is committing right now
      else if (last?.state === 'finalized' && !files.includes('final.json')) p.state = 'running';
      else if (last) {
        p.state = 'retrying';
        p.reasons.push(
          ...(last.reasons ?? [last.state === 'running' ? 'interrupted (lease expired)' : last.state]),
        );
      } else if (refused.has(t.acquisitionId)) {
        p.state = 'not-enqueued';
        p.reasons.push(`SQS refused the message: ${refused.get(t.acquisitionId)}`);
      }
      return p;
    },
  );
  const counts: SweepReport['counts'] = {
    finalized: 0,
    running: 0,
    retrying: 0,
    'dead-lettered': 0,
    pending: 0,
    'not-enqueued': 0,
  };
  const statuses = { complete: 0, partial: 0, failed: 0 };
  let bytes = 0;
  for (const t of targets) {
    counts[t.state]++;
    if (t.state === 'finalized' && t.status) {
      statuses[t.status]++;
      bytes += t.bytes;
    }
  }
  const outstanding = targets
    .filter((t) => t.state !== 'finalized' && t.state !== 'dead-lettered')
    .map((t) => t.acquisitionId);
  return {
    sweepId: manifest.sweepId,
    createdAt: manifest.createdAt,
    at: new Date(now).toISOString(),
    counts,
    statuses,
    bytes,
    targets,
    outstanding,
    problems,
    done: outstanding.length === 0,
  };
}

/**
 * Yields a {@link SweepReport} every `intervalMs` (default 5 s) until the sweep is done or
 * `signal` fires: a live view for dashboards and CLIs.
 */
export async function* watchSweep(
  options: SweepReportOptions & { intervalMs?: number | undefined },
): AsyncGenerator<SweepReport> {
  for (;;) {
    const r = await sweepReport(options);
    yield r;
    if (r.done) return;
    try {
      await sleep(options.intervalMs ?? 5000, options.signal);
    } catch {
      return;
    }
  }
}
