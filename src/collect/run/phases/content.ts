/**
 * Phase 5, file contents: the rows selected from the listing, read in batches as one tar stream
 * or one framed stream per batch; raw streams stored as received (copy mode), rows finished by
 * one helper, indexes derived from the streams they describe.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { demuxFrames, newFrameKey } from '../../frames.js';
import type { ListedEntry } from '../../listing.js';
import type { ProfileSpec } from '../../schema.js';
import { batchByChars, filesArgv, type ReadMode, tarArgv } from '../../scripts.js';
import { receiveTar, type TarReceiveResult } from '../../tar.js';
import type { Received } from '../door.js';
import { type PhaseEnv, shellOf } from '../env.js';
import { reason } from '../reasons.js';
import { problemVerdict, type ReceiverFinding, type Verdict } from '../verdict.js';
import { rootPrefix } from '../view.js';
import { type Delivered, type FileRow, finishRow, type ReadContentMode, selectRows } from './rows.js';

type Src = { kind: string; profile?: string | undefined; item?: string | undefined };

/** Reads the content of the files the items select. `inputs`: the listing's verdicts. */
export async function contentPhase(
  env: PhaseEnv,
  specs: readonly ProfileSpec[],
  listing: ReadonlyMap<string, ListedEntry>,
  inputs: readonly Verdict[],
): Promise<void> {
  const { rows, skipped } = selectRows(specs, listing, env.copySensitive);
  const tokens: Record<string, unknown>[] = [];
  const verdicts: Verdict[] = [...inputs];
  for (const mode of ['copy', 'hash', 'jwt'] as const) {
    const group = [...rows.values()].filter((r) => r.mode === mode);
    if (group.length === 0) continue;
    const batches = batchByChars(
      group,
      (r) => `${env.view.fs.root}${r.path}12345678`,
      env.limits.maxArgvChars,
    );
    for (const batch of batches) {
      if (env.signal.aborted) break;
      verdicts.push(
        env.strategy.content === 'tar'
          ? await tarBatch(env, batch, mode, tokens)
          : await framedBatch(env, batch, mode, tokens),
      );
    }
  }
  for (const r of rows.values())
    if (r.status === 'skipped' && !r.reason) {
      r.status = 'failed';
      r.reason = 'not read (acquisition stopped)';
    }
  const all = [...rows.values(), ...skipped].sort((a, b) => (a.path < b.path ? -1 : 1));
  // rows the container did not deliver (or delivered short) make the index, and the target, partial
  const bad = [...rows.values()].filter((r) => r.status === 'failed' || r.status === 'truncated');
  if (bad.length) {
    const why = reason(
      'artifact-failed',
      `${bad.length} selected file(s) not fully read (first: ${bad[0]?.path}: ${bad[0]?.reason ?? bad[0]?.status}); see files/index.json`,
      env.c('files/index.json'),
    );
    env.reasons.add(why);
    verdicts.push(problemVerdict('truncated', why));
  }
  const src: Src = { kind: 'files', profile: specs.map((s) => s.name).join(','), item: 'file-items' };
  await env.store.derived(
    env.c('files/index.json'),
    `${JSON.stringify({ strategy: env.strategy.content, root: env.view.fs.root, files: all }, null, 2)}\n`,
    env.meta(src, { contentType: 'application/json' }),
    verdicts,
  );
  if (tokens.length) {
    await env.store.derived(
      env.c('files/tokens.json'),
      `${JSON.stringify(tokens, null, 2)}\n`,
      env.meta(
        { ...src, item: 'jwt' },
        {
          contentType: 'application/json',
          details: { note: 'decoded header and claims only; raw tokens and signatures are not stored' },
        },
      ),
      verdicts.slice(inputs.length),
    );
  }
}

function batchSrc(batch: readonly FileRow[]): Src {
  return { kind: 'files', profile: undefined, item: [...new Set(batch.flatMap((r) => r.items))].join(',') };
}

async function tarBatch(
  env: PhaseEnv,
  batch: FileRow[],
  mode: ReadContentMode,
  tokens: Record<string, unknown>[],
): Promise<Verdict> {
  const prefix = rootPrefix(env.view);
  const expected = new Map<string, string>();
  for (const r of batch) expected.set(`${prefix}${r.path}`.replace(/^\/+/, ''), r.path);
  const argv = tarArgv(batch.map((r) => `${prefix}${r.path}`));
  const n = env.nextSeq();
  const streamPath = env.c(`files/content-${String(n).padStart(3, '0')}.tar`);
  const src = batchSrc(batch);
  const kept = new Map<string, Buffer>();
  const receive = async (parse: Readable, stop: () => void): Promise<Received<TarReceiveResult>> => {
    const r = await receiveTar(parse, {
      expected,
      maxEntries: Math.min(env.limits.maxEntriesPerArtifact, batch.length * 4 + 16),
      maxBytes: env.limits.maxArtifactBytes,
      keepBytes: mode === 'jwt' ? 64 * 1024 : 0,
      // in copy mode the sink hashes the very same bytes: one hash less per byte
      hashStream: mode !== 'copy',
      onKept: (e, b) => {
        if (e.requestedPath) kept.set(e.requestedPath, b);
      },
      onBytes: mode === 'copy' ? undefined : (len) => env.budget.takeBytes(len),
    });
    if (!r.ok) stop();
    const findings: ReceiverFinding[] = r.ok
      ? []
      : [{ status: 'failed', code: 'stream-rejected', text: r.reason ?? 'archive rejected' }];
    return { value: r, findings };
  };
  let result: TarReceiveResult | undefined;
  let verdict: Verdict;
  let storedSha: string | undefined;
  let exitCode: number | null;
  let error: string | undefined;
  const step = `content-${n}`;
  if (mode === 'copy') {
    const res = await env.door.toArtifact({
      step,
      argv,
      path: streamPath,
      meta: env.meta(src, {
        argv: ['tar', 'cf', '-', '--', `<${batch.length} paths, see files/index.json>`],
        contentType: 'application/x-tar',
      }),
      receive,
    });
    result = res.value;
    verdict = res.verdict;
    storedSha = res.record.sha256;
    exitCode = res.outcome.exitCode;
    error = res.outcome.error;
  } else {
    const res = await env.door.stream({ step, argv }, (s) => receive(s, () => s.destroy()));
    result = res.value;
    verdict = res.verdict;
    exitCode = res.outcome.exitCode;
    error = res.outcome.error;
  }
  for (const row of batch) {
    row.stream = mode === 'copy' ? streamPath : undefined;
    const e = result?.entries.find((x) => x.requestedPath === row.path);
    let got: Delivered;
    if (!e) {
      got = {
        kind: 'missing',
        why:
          result?.ok === false
            ? `not received: ${result.reason}`
            : error
              ? `not received: ${error}`
              : 'not in the archive (vanished or unreadable)',
      };
    } else {
      row.entry = e.name;
      if (e.type === 'symlink') got = { kind: 'link', target: e.linkname };
      else if (e.type !== 'file') got = { kind: 'other', what: `archive entry is a ${e.type}` };
      else
        got = {
          kind: 'file',
          bytes: e.bytes,
          sha256: e.sha256 ?? '',
          short: e.flags.includes('short-content'),
          kept: kept.get(row.path),
        };
    }
    finishRow(row, got, mode, tokens);
  }
  if (result && !result.ok)
    env.reasons.add(reason('stream-rejected', `tar stream ${streamPath}: ${result.reason}`, streamPath));
  if (verdict.status !== 'complete' && !(result && !result.ok))
    for (const r of verdict.reasons)
      env.reasons.add(reason(r.code, `tar exec ${streamPath}: ${r.text}`, streamPath));
  if (result) {
    const suspicious = result.entries.filter((e) =>
      e.flags.some((f) => f !== 'duplicate-entry' && !f.endsWith('-not-followed')),
    );
    const idx = {
      argv,
      exitCode,
      error,
      ok: result.ok,
      reason: result.reason,
      streamBytes: result.streamBytes,
      streamSha256: result.streamSha256 ?? storedSha,
      sawEndOfArchive: result.sawEndOfArchive,
      missing: result.missing,
      suspicious: suspicious.length,
      entries: result.entries,
    };
    await env.store.derived(
      `${streamPath.replace(/\.tar$/, '')}.index.json`,
      `${JSON.stringify(idx, null, 2)}\n`,
      env.meta(src, { contentType: 'application/json', details: { mode } }),
      [verdict],
    );
  }
  return verdict;
}

async function framedBatch(
  env: PhaseEnv,
  batch: FileRow[],
  mode: ReadContentMode,
  tokens: Record<string, unknown>[],
): Promise<Verdict> {
  const prefix = rootPrefix(env.view);
  const shell = shellOf(env);
  const readMode: ReadMode =
    env.strategy.content === 'builtins' ? 'builtins' : env.strategy.headCap ? 'head' : 'cat';
  const argv = filesArgv(
    shell,
    readMode,
    batch.map((r) => ({ path: `${prefix}${r.path}`, take: r.take })),
  );
  const n = env.nextSeq();
  const streamPath = env.c(`files/content-${String(n).padStart(3, '0')}.frames`);
  const src = batchSrc(batch);
  const key = newFrameKey();
  const anomalies: string[] = [];
  const receive = async (parse: Readable, stop: () => void): Promise<Received<undefined>> => {
    let cur:
      | {
          row: FileRow;
          hash: ReturnType<typeof createHash>;
          len: number;
          kept: Buffer[];
          kind: string;
          offset: number;
          link: Buffer[];
        }
      | undefined;
    for await (const ev of demuxFrames(parse, key)) {
      if (ev.type === 'error') {
        anomalies.push(`${ev.reason} at byte ${ev.offset}`);
        break;
      }
      if (ev.type === 'begin') {
        const idx = Number(ev.header[0]);
        const row = Number.isInteger(idx) ? batch[idx] : undefined;
        if (!row || !env.budget.takeEntry()) {
          anomalies.push(
            row
              ? 'entry budget exhausted'
              : `unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 80))}`,
          );
          break;
        }
        cur = {
          row,
          hash: createHash('sha256'),
          len: 0,
          kept: [],
          kind: ev.header[1] ?? '?',
          offset: ev.offset,
          link: [],
        };
        continue;
      }
      if (!cur) continue;
      if (ev.type === 'data') {
        if (mode !== 'copy' && !env.budget.takeBytes(ev.chunk.length)) {
          anomalies.push(`${env.budget.exhaustedBy(ev.chunk.length) ?? 'byte'} budget exhausted`);
          break;
        }
        if (cur.kind === 'L') {
          if (cur.len < 4096) cur.link.push(Buffer.from(ev.chunk.subarray(0, 4096 - cur.len)));
          cur.len += ev.chunk.length;
          continue;
        }
        const room = cur.row.take - cur.len;
        const piece = room >= ev.chunk.length ? ev.chunk : ev.chunk.subarray(0, Math.max(0, room));
        cur.hash.update(piece);
        if (mode === 'jwt') cur.kept.push(Buffer.from(piece));
        cur.len += ev.chunk.length;
        continue;
      }
      const row = cur.row;
      row.stream = mode === 'copy' ? streamPath : undefined;
      let got: Delivered;
      if (cur.kind === 'L')
        got = { kind: 'link', target: Buffer.concat(cur.link).toString('utf8').replace(/\n$/, '') };
      else if (cur.kind === 'N') got = { kind: 'other', what: 'not a regular file (or vanished) when read' };
      else {
        row.offset = cur.offset;
        got = {
          kind: 'file',
          bytes: Math.min(cur.len, row.take),
          received: cur.len,
          sha256: cur.hash.digest('hex'),
          rc: ev.rc,
          kept: Buffer.concat(cur.kept),
          builtins: readMode === 'builtins',
        };
      }
      finishRow(row, got, mode, tokens);
      cur = undefined;
    }
    if (anomalies.length) stop();
    const findings: ReceiverFinding[] = anomalies.length
      ? [{ status: 'failed', code: 'stream-rejected', text: anomalies.join('; ') }]
      : [];
    return { value: undefined, findings };
  };
  let verdict: Verdict;
  let exitCode: number | null;
  let error: string | undefined;
  const step = `content-${n}`;
  if (mode === 'copy') {
    const res = await env.door.toArtifact({
      step,
      argv,
      stdin: `${key}\n`,
      path: streamPath,
      meta: env.meta(src, {
        argv: [shell, '-c', '<files script>', `<${batch.length} paths, see files/index.json>`],
        contentType: 'application/octet-stream',
        details: {
          format: 'frames: \\n<key> B <i> F|L|N [take]\\n<bytes>\\n<key> E <rc>\\n; key in the index',
        },
      }),
      receive,
    });
    verdict = res.verdict;
    exitCode = res.outcome.exitCode;
    error = res.outcome.error;
  } else {
    const res = await env.door.stream({ step, argv, stdin: `${key}\n` }, (s) =>
      receive(s, () => s.destroy()),
    );
    verdict = res.verdict;
    exitCode = res.outcome.exitCode;
    error = res.outcome.error;
  }
  for (const row of batch) {
    if (row.status === 'skipped' && !row.reason) {
      row.status = 'failed';
      row.reason = anomalies[0] ?? error ?? 'no frame received';
    }
  }
  if (anomalies.length)
    env.reasons.add(
      reason('stream-rejected', `framed stream ${streamPath}: ${anomalies.join('; ')}`, streamPath),
    );
  else if (verdict.status !== 'complete')
    for (const r of verdict.reasons)
      env.reasons.add(reason(r.code, `framed exec ${streamPath}: ${r.text}`, streamPath));
  if (mode === 'copy') {
    await env.store.derived(
      `${streamPath.replace(/\.frames$/, '')}.index.json`,
      `${JSON.stringify({ argv, key, exitCode, error, anomalies, entries: batch.map((r) => ({ path: r.path, status: r.status, offset: r.offset, bytes: r.bytes, sha256: r.sha256, reason: r.reason })) }, null, 2)}\n`,
      env.meta(src, { contentType: 'application/json' }),
      [verdict],
    );
  }
  return verdict;
}
