/**
 * Phase 3, volatile state: command items, then /proc (system files, per-process fields, links)
 * in one framed exec, then bytes of deleted or suspicious executables and deleted fds. Each frame
 * is stored with its own verdict; the process table is derived from the whole exec.
 */
import { Readable } from 'node:stream';
import type { ArtifactRecord } from '../../../evidence/index.js';
import { applyEnvPolicy, hashExecutables, type PolicyEnvEntry } from '../../coverage/index.js';
import { demuxFrames, newFrameKey } from '../../frames.js';
import type { ProcItem } from '../../schema.js';
import { batchByChars, procBytesArgv, type ReadMode, volatileArgv } from '../../scripts.js';
import type { EnvironMode } from '../../sensitive.js';
import { canPullBytes, coverageVerdict, doorCoverageExec } from '../coverage-exec.js';
import { afterExec, frameVerdict } from '../door.js';
import { type PhaseEnv, shellOf } from '../env.js';
import { reason } from '../reasons.js';
import { derivedVerdict, type ReceiverFinding, type Verdict } from '../verdict.js';
import { MountCheck } from './proc-mounts.js';
import {
  type Proc,
  type ProcessTable,
  type ProcRow,
  processBytesWanted,
  processTable,
} from './process-table.js';

/** Read before and after every process listing (stored only when an item asks for it): see {@link MountCheck}. */
const MOUNTINFO = 'self/mountinfo';

const PID = /^\d{1,10}$/;
/** What `environ.json` and `environment-findings.json` say about the values they show. */
const ENV_POLICY_NOTE =
  'loader, runtime-option, proxy (password removed), shell-startup, history and search-path variables are kept in clear (at most 4096 characters) and flagged; every other value follows `mode`';

/** How /proc is read with the strategy in force. */
export function readModeOf(env: PhaseEnv): ReadMode {
  if (env.strategy.volatile === 'builtins') return 'builtins';
  return env.strategy.headCap ? 'head' : 'cat';
}

type Src = { kind: string; profile?: string; item?: string };

/** Reads /proc for the `proc` items of all profiles. */
export async function procStep(
  env: PhaseEnv,
  items: readonly { profile: string; item: ProcItem }[],
): Promise<ProcessTable | undefined> {
  if (items.length === 0) return undefined;
  const files = [...new Set(items.flatMap((x) => x.item.files ?? []))];
  const per = items.map((x) => x.item.perProcess).filter((p) => p !== undefined);
  const fields = [...new Set(per.flatMap((p) => p.fields))];
  const links = per.some((p) => p.links ?? true);
  const environ: EnvironMode = per.find((p) => p.environ)?.environ ?? 'hash';
  const exeMode = per.find((p) => p.exe)?.exe ?? 'deleted';
  const maxExe = Math.max(0, ...per.map((p) => p.maxExeBytes ?? 20 * 1024 * 1024));
  const maxProcs = Math.max(1, ...per.map((p) => p.maxProcesses ?? 2000));
  const cap = Math.max(...items.map((x) => x.item.maxBytesPerFile ?? 4 * 1024 * 1024));
  const profile = [...new Set(items.map((x) => x.profile))].join(',');
  const src: Src = { kind: 'proc', profile, item: items.map((x) => x.item.id).join(',') };
  const mode = readModeOf(env);
  // The mount check needs the shell's own mountinfo, read before the first process directory.
  const readFiles = per.length > 0 && !files.includes(MOUNTINFO) ? [MOUNTINFO, ...files] : files;
  const argv = volatileArgv({
    shell: shellOf(env),
    mode,
    readlink: env.strategy.readlink,
    procBase: env.view.fs.procBase,
    capPerFile: cap,
    maxProcesses: per.length ? maxProcs : 0,
    fields: per.length ? fields : [],
    links: per.length > 0 && links,
    globalFiles: readFiles,
  });
  const key = newFrameKey();
  const procs = new Map<string, Proc>();
  const proc = (pid: string) => {
    let p = procs.get(pid);
    if (!p) {
      p = { links: {}, fds: {}, ns: {} };
      procs.set(pid, p);
    }
    return p;
  };
  let selfPid: string | undefined;
  const mountCheck = new MountCheck(env.view.fs.procBase, cap);
  const anomalies: string[] = [];
  const findings: ReceiverFinding[] = [];
  /** Loader, runtime-option, proxy… variables kept in clear by the environment policy, per process. */
  const envFlags: Array<{ pid: number } & PolicyEnvEntry> = [];
  let frames = 0;
  const pending: Promise<ArtifactRecord>[] = [];
  const res = await env.door.stream({ step: 'volatile', argv, stdin: `${key}\n` }, async (stdout, exec) => {
    let cur: { header: string[]; parts: Buffer[]; len: number; over: boolean } | undefined;
    for await (const ev of demuxFrames(stdout, key)) {
      if (ev.type === 'error') {
        anomalies.push(`framing: ${ev.reason} at byte ${ev.offset}`);
        findings.push({ status: 'failed', code: 'stream-rejected', text: `volatile stream: ${ev.reason}` });
        break;
      }
      if (ev.type === 'begin') {
        if (!env.budget.takeEntry() || ++frames > env.limits.maxEntriesPerArtifact) {
          anomalies.push('entry cap reached: stopped reading /proc');
          findings.push({
            status: 'truncated',
            code: 'budget',
            text: 'entry cap reached: stopped reading /proc',
          });
          break;
        }
        cur = { header: ev.header, parts: [], len: 0, over: false };
        continue;
      }
      if (!cur) continue;
      if (ev.type === 'data') {
        if (!env.budget.takeBytes(ev.chunk.length)) {
          anomalies.push('byte budget exhausted during /proc read');
          findings.push({
            status: 'truncated',
            code: 'budget',
            text: 'byte budget exhausted during /proc read',
          });
          break;
        }
        if (cur.len + ev.chunk.length > cap) {
          cur.parts.push(Buffer.from(ev.chunk.subarray(0, Math.max(0, cap - cur.len))));
          cur.len = cap;
          cur.over = true;
        } else {
          cur.parts.push(Buffer.from(ev.chunk));
          cur.len += ev.chunk.length;
        }
        continue;
      }
      const h = cur.header;
      const body = Buffer.concat(cur.parts);
      // /proc files are capped in the container by design: a frame at the cap is truncated
      const v = (path: string) =>
        frameVerdict(
          {
            rc: ev.rc,
            closed: true,
            bytes: body.length,
            ...(cur?.over || body.length >= cap
              ? { cut: { code: 'cap' as const, text: `per-file cap of ${cap} bytes` } }
              : {}),
          },
          path,
        );
      const over = cur.over;
      cur = undefined;
      if (h[0] === 'S' && h.length === 2) {
        selfPid = PID.test(body.toString()) ? body.toString() : undefined;
      } else if (h[0] === 'G' && h.length === 2 && readFiles.includes(h[1] ?? '')) {
        if (h[1] === MOUNTINFO && per.length > 0) {
          mountCheck.reading(body, ev.rc, over, 'before');
          if (!files.includes(MOUNTINFO)) continue;
        }
        const path = env.c(`proc/system/${h[1]}`);
        if (ev.rc !== 0 && body.length === 0)
          await env.store.record(path, 'skipped', `not readable (rc ${ev.rc})`, env.meta(src));
        else pending.push(env.store.frameFromExec(path, body, env.meta(src), afterExec(v(path), exec)));
      } else if (
        h[0] === 'P' &&
        h.length === 3 &&
        PID.test(h[1] ?? '') &&
        fields.includes(h[2] as (typeof fields)[number])
      ) {
        const pid = h[1] as string;
        const field = h[2] as string;
        const p = proc(pid);
        if (field === 'cmdline') p.cmdline = body.toString('utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
        if (field === 'status') p.status = body.toString('utf8').slice(0, 65536);
        if (field === 'comm') p.comm = body.toString('utf8').trim();
        // a process that exited between listing and reading: nothing to store
        if (ev.rc !== 0 && body.length === 0) continue;
        // Decided when the exec is over (both mount readings in): when a mount covers this
        // process's directory, these bytes may be anyone's.
        const checked = (path: string): Promise<Verdict> => {
          const frame = v(path);
          return exec.then((e) => derivedVerdict([mountCheck.frameVerdict(pid, frame, path), e]));
        };
        if (field === 'environ') {
          const path = env.c(`proc/${pid}/environ.json`);
          const vars = applyEnvPolicy(body, environ);
          for (const e of vars)
            if (e.category && envFlags.length < 10_000) envFlags.push({ pid: Number(pid), ...e });
          pending.push(
            env.store.frameFromExec(
              path,
              `${JSON.stringify({ mode: environ, policy: ENV_POLICY_NOTE, variables: vars }, null, 2)}\n`,
              env.meta(src, { contentType: 'application/json' }),
              checked(path),
            ),
          );
        } else {
          const path = env.c(`proc/${pid}/${field.replace('/', '_')}`);
          pending.push(env.store.frameFromExec(path, body, env.meta(src), checked(path)));
        }
      } else if (
        h[0] === 'L' &&
        h.length === 3 &&
        PID.test(h[1] ?? '') &&
        ['exe', 'cwd', 'root'].includes(h[2] ?? '')
      ) {
        if (body.length)
          proc(h[1] as string).links[h[2] as string] = body.toString('utf8').replace(/\n$/, '');
      } else if (
        h[0] === 'D' &&
        h.length === 3 &&
        PID.test(h[1] ?? '') &&
        ['fd', 'ns'].includes(h[2] ?? '')
      ) {
        const p = proc(h[1] as string);
        const parts = body.toString('utf8').split('\0');
        for (let i = 0; i + 1 < parts.length; i += 2) {
          const name = parts[i] as string;
          if (!/^[0-9a-z_]{1,32}$/.test(name)) continue;
          (h[2] === 'fd' ? p.fds : p.ns)[name] = (parts[i + 1] as string).replace(/\n$/, '');
        }
      } else if (h[0] === 'T' && h.length === 2 && h[1] === MOUNTINFO && per.length > 0) {
        mountCheck.reading(body, ev.rc, over, 'after');
      } else if (h[0] === 'M') {
        anomalies.push(`more than ${maxProcs} processes: the rest were not read`);
        findings.push({
          status: 'truncated',
          code: 'cap',
          text: `more than ${maxProcs} processes: the rest were not read`,
        });
      } else {
        anomalies.push(`unexpected frame header ${JSON.stringify(h.join(' ').slice(0, 100))}`);
        findings.push({
          status: 'failed',
          code: 'stream-rejected',
          text: 'unexpected frame header in the volatile stream',
        });
      }
    }
    return { value: undefined, findings };
  });
  await Promise.all(pending);
  for (const a of anomalies) env.reasons.add(reason('volatile-anomaly', `volatile: ${a}`));
  if (res.verdict.status !== 'complete') for (const r of res.verdict.reasons) env.reasons.add(r);
  const table = processTable(procs, selfPid);
  const listing = per.length > 0 ? mountCheck.listingVerdict(res.verdict) : res.verdict;
  if (per.length > 0) {
    for (const r of listing.reasons) if (r.code === 'volatile-anomaly') env.reasons.add(r);
    await env.store.derived(
      env.c('proc/processes.json'),
      `${JSON.stringify(
        {
          collectorShellPid: selfPid ? Number(selfPid) : undefined,
          ...(mountCheck.checked ? { mountsOverProc: mountCheck.mounts } : {}),
          processes: table,
        },
        null,
        2,
      )}\n`,
      env.meta(src, {
        argv,
        contentType: 'application/json',
        ...(anomalies.length ? { details: { anomalies } } : {}),
      }),
      [listing],
    );
  }
  if (per.length > 0 && fields.includes('environ')) {
    const suspicious = envFlags.filter((e) => e.suspicious).length;
    await env.store.derived(
      env.c('proc/environment-findings.json'),
      `${JSON.stringify({ policy: ENV_POLICY_NOTE, suspicious, variables: envFlags }, null, 2)}\n`,
      env.meta(src, { contentType: 'application/json' }),
      [listing],
    );
  }
  const hashing = per.filter((p) => p.hashMapped);
  if (hashing.length > 0)
    await exeHashStep(
      env,
      Math.max(...hashing.map((p) => p.maxHashBytes ?? 256 * 1024 * 1024)),
      maxProcs,
      src,
      mountCheck.verdict(),
    );
  const rows: ProcessTable | undefined =
    per.length > 0 ? { rows: table, verdict: listing, covered: mountCheck.coveredPids() } : undefined;
  if (exeMode === 'none' || maxExe === 0 || per.length === 0) return rows;
  if (mode === 'builtins') {
    if (table.some((r) => r.exeDeleted))
      env.reasons.add(
        reason('degraded', 'deleted executables present but not recoverable with shell builtins only'),
      );
    return rows;
  }
  // Bytes under a covered /proc/<pid> would be another file under this pid's name: not copied.
  const wanted = processBytesWanted(table, exeMode);
  const rels = wanted.filter((r) => !mountCheck.covers(r.split('/')[0] ?? ''));
  if (rels.length < wanted.length)
    env.reasons.add(
      reason(
        'volatile-anomaly',
        `not copied, their /proc directory is covered by a mount: ${wanted.filter((r) => !rels.includes(r)).join(', ')}`,
      ),
    );
  for (const batch of batchByChars(rels, (r) => r, env.limits.maxArgvChars))
    await procBytes(env, batch, maxExe, mode, src, table);
  return rows;
}

async function procBytes(
  env: PhaseEnv,
  rels: readonly string[],
  cap: number,
  mode: ReadMode,
  src: Src,
  table: readonly ProcRow[],
): Promise<void> {
  const argv = procBytesArgv(shellOf(env), mode, env.view.fs.procBase, cap, rels);
  const key = newFrameKey();
  const anomalies: string[] = [];
  const findings: ReceiverFinding[] = [];
  const pending: Promise<ArtifactRecord>[] = [];
  const res = await env.door.stream(
    { step: 'process-bytes', argv, stdin: `${key}\n` },
    async (stdout, exec) => {
      let cur:
        | {
            stream: Readable;
            len: number;
            rec: Promise<ArtifactRecord>;
            settle: (v: Verdict) => void;
            path: string;
          }
        | undefined;
      const close = (closed: boolean, rc: number | null | undefined) => {
        if (!cur) return;
        const c = cur;
        c.settle(
          frameVerdict(
            {
              rc,
              closed,
              bytes: c.len,
              ...(c.len >= cap
                ? {
                    cut: {
                      code: 'cap' as const,
                      text: `capped at ${cap} bytes (UAC-style cap for process images)`,
                    },
                  }
                : {}),
            },
            c.path,
          ),
        );
        c.stream.push(null);
      };
      for await (const ev of demuxFrames(stdout, key)) {
        if (ev.type === 'error') {
          anomalies.push(ev.reason);
          findings.push({ status: 'failed', code: 'stream-rejected', text: `process bytes: ${ev.reason}` });
          close(false, null);
          cur = undefined;
          break;
        }
        if (ev.type === 'begin') {
          const rel = ev.header[0] === 'X' && ev.header.length === 2 ? (ev.header[1] ?? '') : '';
          if (!rels.includes(rel)) {
            anomalies.push('unexpected frame');
            findings.push({
              status: 'failed',
              code: 'stream-rejected',
              text: 'unexpected frame in the process-bytes stream',
            });
            break;
          }
          const stream = new Readable({ read() {} });
          const row = table.find((r) => String(r.pid) === rel.split('/')[0]);
          const name = rel.endsWith('/exe')
            ? `proc/${rel.split('/')[0]}/exe.bin`
            : `proc/${rel.replace('/fd/', '/fd-')}.bin`;
          const path = env.c(name);
          let settle!: (v: Verdict) => void;
          const verdict = new Promise<Verdict>((r) => {
            settle = r;
          });
          const rec = env.store.fromExec(
            path,
            stream,
            env.meta(src, {
              argv,
              contentType: 'application/octet-stream',
              details: {
                process: row ? { pid: row.pid, exe: row.exe, cmdline: row.cmdline } : undefined,
                cap,
              },
            }),
            verdict.then((f) => afterExec(f, exec)),
          );
          pending.push(rec);
          cur = { stream, len: 0, rec, settle, path };
          continue;
        }
        if (!cur) continue;
        if (ev.type === 'data') {
          if (cur.len >= cap) continue;
          const piece = ev.chunk.subarray(0, cap - cur.len);
          if (!env.budget.takeBytes(piece.length)) {
            findings.push({
              status: 'truncated',
              code: 'budget',
              text: 'byte budget exhausted during process bytes',
            });
            close(false, null);
            cur = undefined;
            break;
          }
          cur.len += piece.length;
          cur.stream.push(Buffer.from(piece));
          continue;
        }
        close(true, ev.rc);
        cur = undefined;
      }
      if (cur) close(false, null);
      return { value: undefined, findings };
    },
  );
  await Promise.all(pending);
  if (res.verdict.status !== 'complete') for (const r of res.verdict.reasons) env.reasons.add(r);
  for (const a of anomalies) env.reasons.add(reason('volatile-anomaly', `process bytes: ${a}`));
}

/**
 * `proc/exe-hashes.json`: SHA-256 of every running executable and mapped file, through the door;
 * the document inherits every exec's verdict and is `truncated` when a cap left files out or a
 * hash is of a prefix or was read by path, and not complete when `mounts` (the listing's mount
 * check) found a /proc/<pid> covered: its hash would be another file's.
 */
async function exeHashStep(env: PhaseEnv, maxBytes: number, maxProcesses: number, src: Src, mounts: Verdict) {
  const path = env.c('proc/exe-hashes.json');
  const meta = env.meta(src, { contentType: 'application/json' });
  if (!canPullBytes(env)) {
    await env.store.record(path, 'skipped', 'executable hashes need `dd` in the container', meta);
    return;
  }
  const { exec, verdicts } = doorCoverageExec(env.door, 'exe-hashes');
  const r = await hashExecutables({
    exec,
    shell: shellOf(env),
    maxBytes,
    maxProcesses,
    procBase: env.view.fs.procBase,
  });
  const v = await coverageVerdict(verdicts, r.reasons, 'exe-hashes', path);
  const body = {
    processes: r.processes,
    bytesRead: r.bytes,
    hashes: r.hashes,
    notHashed: r.notHashed,
    reasons: r.reasons,
  };
  await env.store.derived(path, `${JSON.stringify(body, null, 2)}\n`, meta, [v, mounts]);
}
