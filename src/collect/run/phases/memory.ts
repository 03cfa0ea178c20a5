/**
 * The `memory` items, right after the `proc` items of the volatile phase: the suspects they found
 * (or the processes asked for) are read from `/proc/<pid>/mem` into an ELF core each, streamed into
 * the store. Every exec goes through the door; the core's status is decided after its stream
 * ended, from the execs' verdicts and the index's own problems (a cap, an unreadable region, a cut
 * stream), so a core that is not whole is never `complete`.
 */
import { Readable } from 'node:stream';
import {
  type CoreMachine,
  type MemoryIndex,
  planProcessMemory,
  streamProcessCore,
} from '../../coverage/index.js';
import type { MemoryItem } from '../../schema.js';
import { canPullBytes, coverageVerdict, doorCoverageExec } from '../coverage-exec.js';
import { errMessage, type PhaseEnv, shellOf } from '../env.js';
import { reason } from '../reasons.js';
import { problemVerdict, type Verdict, withProblem } from '../verdict.js';
import { type ProcessTable, type ProcRow, suspectReasons } from './process-table.js';

const MiB = 1024 * 1024;
/** Longest text of a process the `match` expression is applied to (a hostile cmdline can be MiBs). */
const MATCH_TEXT = 4096;

/** One process the selection considered, as written in `memory/selection.json`. */
interface Chosen {
  pid: number;
  name?: string | undefined;
  exe?: string | undefined;
  why: string[];
}

/** The merged settings of all `memory` items of the run. */
interface Settings {
  select: 'suspects' | 'all' | 'none';
  pids: number[];
  match: RegExp[];
  maxProcesses: number;
  perProcess: number;
  perTarget: number;
}

function settingsOf(items: readonly { item: MemoryItem }[]): Settings {
  const sel = items.map((x) => x.item.select ?? 'suspects');
  return {
    select: sel.includes('all') ? 'all' : sel.includes('suspects') ? 'suspects' : 'none',
    pids: [...new Set(items.flatMap((x) => x.item.pids ?? []))],
    match: items.flatMap((x) => (x.item.match ? [new RegExp(x.item.match)] : [])),
    maxProcesses: Math.max(...items.map((x) => x.item.maxProcesses ?? 4)),
    perProcess: Math.max(...items.map((x) => x.item.maxBytesPerProcess ?? 256 * MiB)),
    perTarget: Math.max(...items.map((x) => x.item.maxBytesPerTarget ?? 1024 * MiB)),
  };
}

/**
 * Which processes to read: explicit pids first, then the selection in pid order, then forks (a
 * child still running the executable of a selected parent: its memory may differ, so it is read
 * too, after the others, and counts against the process cap like any suspect).
 */
export function chooseProcesses(
  s: Pick<Settings, 'select' | 'pids' | 'match'>,
  table: readonly ProcRow[] | undefined,
): { chosen: Chosen[]; problem?: string } {
  const chosen: Chosen[] = [];
  const forks: Chosen[] = [];
  const byPid = new Map((table ?? []).map((r) => [r.pid, r]));
  for (const pid of s.pids) {
    const r = byPid.get(pid);
    chosen.push({ pid, name: r?.name, exe: r?.exe, why: ['asked for by pid'] });
  }
  if (s.select === 'none') return { chosen };
  if (!table)
    return {
      chosen,
      problem:
        'no process table: the memory selection needs a `proc` item with per-process links in the same run (the built-in `memory` profile has one)',
    };
  const matches = (r: ProcRow) =>
    s.match.length === 0 ||
    s.match.some((re) =>
      [r.name, r.cmdline, r.exe].some((t) => t !== undefined && re.test(t.slice(0, MATCH_TEXT))),
    );
  const taken = new Map<number, Chosen>();
  // a live process whose executable could not be read cannot be called innocent
  const unclassified =
    s.select === 'suspects'
      ? table.filter((r) => !r.collector && r.exe === undefined && !(r.state ?? '').startsWith('Z'))
      : [];
  for (const r of table) {
    if (r.collector || s.pids.includes(r.pid) || !matches(r)) continue;
    const why = s.select === 'all' ? ['every process'] : suspectReasons(r);
    if (why.length === 0) continue;
    if (s.match.length > 0) why.push('matches the selection expression');
    const parent = r.ppid !== undefined ? taken.get(r.ppid) : undefined;
    const c: Chosen = { pid: r.pid, name: r.name, exe: r.exe, why };
    taken.set(r.pid, c);
    if (parent && parent.exe !== undefined && parent.exe === r.exe) {
      why.push(`fork of ${parent.pid} (same executable)`);
      forks.push(c);
    } else chosen.push(c);
  }
  return {
    chosen: [...chosen, ...forks],
    ...(unclassified.length > 0
      ? {
          problem: `${unclassified.length} process(es) whose executable could not be read were not classified (pids ${unclassified
            .slice(0, 20)
            .map((r) => r.pid)
            .join(', ')}); name them in \`pids\` to read their memory`,
        }
      : {}),
  };
}

/** Machine of the node, for a core whose executable header could not be read. */
function machineHint(env: PhaseEnv): CoreMachine | undefined {
  const sel = env.pod?.spec?.nodeSelector as Record<string, unknown> | undefined;
  const arch = sel?.['kubernetes.io/arch'];
  if (arch === 'arm64') return 'aarch64';
  if (arch === 'amd64') return 'x86_64';
  return undefined;
}

/** Runs the `memory` items of all profiles (the union of their selections, the largest caps). */
export async function memoryStep(
  env: PhaseEnv,
  items: readonly { profile: string; item: MemoryItem }[],
  table: ProcessTable | undefined,
): Promise<void> {
  if (items.length === 0) return;
  const s = settingsOf(items);
  const src = {
    kind: 'memory',
    profile: [...new Set(items.map((x) => x.profile))].join(','),
    item: items.map((x) => x.item.id).join(','),
  };
  const selPath = env.c('memory/selection.json');
  const selMeta = env.meta(src, { contentType: 'application/json' });
  if (!canPullBytes(env)) {
    const why = 'process memory needs `dd` in the container (or an ephemeral debug container that has it)';
    await env.store.record(selPath, 'skipped', why, selMeta);
    // memory was asked for: not acquiring it is not a complete acquisition
    env.reasons.add(reason('degraded', `process memory not acquired: ${why}`, selPath));
    return;
  }
  const { chosen, problem } = chooseProcesses(s, table?.rows);
  const taken = chosen.slice(0, s.maxProcesses);
  const leftOut = chosen.slice(s.maxProcesses);
  let left = BigInt(s.perTarget);
  const results: Array<Chosen & { status: string; core?: string; coreBytes?: number; reason?: string }> = [];
  const verdicts: Verdict[] = [];
  for (const c of taken) {
    if (env.signal.aborted) {
      results.push({ ...c, status: 'not-read', reason: 'run aborted' });
      continue;
    }
    if (left <= 0n) {
      results.push({ ...c, status: 'not-read', reason: `target cap of ${s.perTarget} bytes spent` });
      continue;
    }
    if (table?.covered.has(c.pid)) {
      // /proc/<pid>/mem there is another process's memory (or none): never stored under this pid
      results.push({ ...c, status: 'not-read', reason: 'a mount covers its /proc directory' });
      continue;
    }
    let r: OneResult;
    try {
      r = await oneProcess(env, c.pid, { perProcess: BigInt(s.perProcess), left }, src);
    } catch (err) {
      // one process that breaks the step (a refused exec, a sink error) does not end the others
      const why = `memory of pid ${c.pid} not acquired: ${errMessage(err)}`;
      env.reasons.add(reason('artifact-failed', why, env.c(`memory/${c.pid}.core`)));
      r = {
        status: 'failed',
        bytes: 0,
        reason: why,
        verdict: problemVerdict('failed', reason('artifact-failed', why, selPath)),
      };
    }
    left -= BigInt(r.bytes);
    verdicts.push(r.verdict);
    results.push({
      ...c,
      status: r.status,
      ...(r.core ? { core: r.core, coreBytes: r.bytes } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
    });
  }
  // the selection inherits every core's verdict, and is only as complete as the process table it
  // was made from
  if (table && s.select !== 'none') verdicts.push(table.verdict);
  const v = await coverageVerdict(
    verdicts,
    [
      ...(problem ? [problem] : []),
      ...(leftOut.length > 0
        ? [`${leftOut.length} selected processes left out by the process cap of ${s.maxProcesses}`]
        : []),
      ...results.filter((r) => r.status === 'not-read').map((r) => `pid ${r.pid} not read: ${r.reason}`),
    ],
    'memory',
    selPath,
  );
  env.log({ event: 'memory', chosen: chosen.length, read: taken.length, leftOut: leftOut.length });
  const doc = {
    select: s.select,
    match: s.match.map((re) => re.source),
    caps: { maxProcesses: s.maxProcesses, maxBytesPerProcess: s.perProcess, maxBytesPerTarget: s.perTarget },
    ...(problem ? { problem } : {}),
    processes: results,
    leftOut,
  };
  await env.store.derived(selPath, `${JSON.stringify(doc, null, 2)}\n`, selMeta, [v]);
}

interface OneResult {
  status: string;
  core?: string;
  bytes: number;
  reason?: string;
  verdict: Verdict;
}

/** Plans, streams and indexes the core of one process. */
async function oneProcess(
  env: PhaseEnv,
  pid: number,
  caps: { perProcess: bigint; left: bigint },
  src: { kind: string; profile: string; item: string },
): Promise<OneResult> {
  const corePath = env.c(`memory/${pid}.core`);
  const indexPath = env.c(`memory/${pid}.index.json`);
  const { exec, verdicts } = doorCoverageExec(env.door, `memory:${pid}`);
  const shell = shellOf(env);
  const planned = await planProcessMemory({
    exec,
    shell,
    pid,
    maxProcessBytes: caps.perProcess,
    targetBytesLeft: caps.left,
    machineHint: machineHint(env),
  });
  const meta = env.meta(src, { contentType: 'application/x-coredump', details: { pid } });
  if (!planned.plan) {
    const why = `process memory unreadable: ${planned.unreadable ?? 'unknown'}${planned.info.problems.length ? `; ${planned.info.problems.join('; ')}` : ''}`;
    const rec = await env.store.record(corePath, 'failed', why.slice(0, 1000), meta);
    const v = await coverageVerdict(verdicts, [why], 'memory', indexPath);
    const failed = withProblem(v, 'failed', reason('artifact-failed', why.slice(0, 500), corePath));
    await env.store.derived(
      indexPath,
      `${JSON.stringify({ pid, status: 'failed', reasons: [why], info: { exit: planned.infoExit, problems: planned.info.problems } }, null, 2)}\n`,
      env.meta(src, { contentType: 'application/json' }),
      [failed],
    );
    return { status: 'failed', bytes: 0, reason: rec.reason ?? why, verdict: failed };
  }
  const stream = streamProcessCore({ exec, shell, pid }, planned);
  let ended!: () => void;
  const end = new Promise<void>((r) => {
    ended = r;
  });
  async function* body(): AsyncGenerator<Buffer> {
    try {
      yield* stream.core;
    } finally {
      ended();
    }
  }
  let index: MemoryIndex | undefined;
  const verdict = end.then(async () => {
    index = stream.index();
    let v = await coverageVerdict(verdicts, index.reasons, 'memory', corePath);
    if (index.status === 'failed')
      v = withProblem(
        v,
        'failed',
        reason('artifact-failed', 'no region of the process could be read', corePath),
      );
    return v;
  });
  const rec = await env.store.fromExec(corePath, Readable.from(body()), meta, verdict);
  const v = await verdict;
  const idx = index ?? stream.index();
  await env.store.derived(
    indexPath,
    `${JSON.stringify({ ...idx, core: corePath, coreStoredSha256: rec.sha256 ?? null }, null, 2)}\n`,
    env.meta(src, { contentType: 'application/json' }),
    [v],
  );
  return {
    status: rec.status,
    core: corePath,
    bytes: rec.bytes,
    ...(rec.reason ? { reason: rec.reason } : {}),
    verdict: v,
  };
}
