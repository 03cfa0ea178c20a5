/**
 * Process memory → ELF core: two execs per process (info, then regions), everything hashed and
 * checked on our side. The core file carries the region bytes; the index locates each region in
 * it (`coreOffset`, `bytes`, `sha256`) and says what could not be read and why.
 */
import { createHash } from 'node:crypto';
import { demuxFrames, newFrameKey } from '../frames.js';
import { type CoverageExec, type CoverageExecSession, sendStdin, settle } from './exec.js';
import type { CoreMachine } from './memory-core.js';
import { type MemoryPlan, type MemoryPlanLimits, planMemoryRead } from './memory-maps.js';
import {
  CoreAssembler,
  decodeMemoryInfo,
  type ProcessMemoryInfo,
  type RegionRecord,
} from './memory-receive.js';
import { memoryInfoArgv, memoryReadArgv, memoryReadInput } from './memory-script.js';

/** Options of {@link acquireProcessMemory}. */
export interface ProcessMemoryOptions extends MemoryPlanLimits {
  /** Starts execs in the target. */
  exec: CoverageExec;
  /** The shell the probe found. */
  shell: string;
  /** Process id in the target's PID namespace. */
  pid: number;
  /** Machine to write in the core when the executable's header cannot tell (e.g. from the node's architecture). */
  machineHint?: CoreMachine | undefined;
  /** Pages of `maps` read at most (default 2048 = 8 MiB). */
  mapsPages?: number | undefined;
}

/** The index written next to the core (`memory/<pid>.index.json`). */
export interface MemoryIndex {
  pid: number;
  machine: CoreMachine | null;
  /** What the notes hold and what they do not. */
  notes: string;
  status: 'complete' | 'partial' | 'failed';
  reasons: string[];
  plannedBytes: number;
  cappedBytes: number;
  mapsRejected: { line: number; reason: string }[];
  mapsCapped: boolean;
  coreBytes: number;
  coreSha256: string | null;
  regions: RegionRecord[];
}

/** First step's outcome: the plan, or why memory cannot be read. */
export interface ProcessMemoryPlan {
  info: ProcessMemoryInfo;
  plan: MemoryPlan | undefined;
  /** Set when the process memory cannot be read at all (then there is no core). */
  unreadable?: string | undefined;
  infoExit: { exitCode: number | undefined; error?: string | undefined };
}

/** Runs the info exec and plans the read. */
export async function planProcessMemory(opts: ProcessMemoryOptions): Promise<ProcessMemoryPlan> {
  const key = newFrameKey();
  const session = await opts.exec(memoryInfoArgv(opts.shell, opts.pid, opts.mapsPages), { stdin: true });
  const stdinProblem = await sendStdin(session, `${key}\n`);
  const info = await decodeMemoryInfo(demuxFrames(session.stdout, key), opts.pid);
  if (info.stoppedEarly) session.abort(new Error('info stream abandoned'));
  const infoExit = await settle(session);
  if (stdinProblem) info.problems.push(`stdin: ${stdinProblem}`);
  if (!info.machine && opts.machineHint) info.machine = opts.machineHint;
  if (!info.memReadable) {
    return { info, plan: undefined, unreadable: info.memError ?? 'cannot open /proc/<pid>/mem', infoExit };
  }
  const plan = planMemoryRead(info.maps.regions, opts);
  return { info, plan, infoExit };
}

/**
 * Streams the core of a planned process: iterate `core` into the sink (backpressure flows to the
 * exec), then read `index()`. Leaving the iteration early aborts the exec.
 */
export function streamProcessCore(
  opts: Pick<ProcessMemoryOptions, 'exec' | 'shell' | 'pid'>,
  planned: ProcessMemoryPlan,
): { core: AsyncGenerator<Buffer>; index(): MemoryIndex } {
  const plan = planned.plan;
  if (!plan) throw new RangeError('no plan: the process memory is unreadable');
  const asm = new CoreAssembler(planned.info.machine, planned.info.process, plan);
  const hash = createHash('sha256');
  let exitNote: string | undefined;
  let finished = false;
  async function* core(): AsyncGenerator<Buffer> {
    const key = newFrameKey();
    let session: CoverageExecSession | undefined;
    try {
      session = await opts.exec(memoryReadArgv(opts.shell, opts.pid), { stdin: true });
      const stdin = sendStdin(session, memoryReadInput(key, plan as MemoryPlan));
      for await (const chunk of asm.stream(demuxFrames(session.stdout, key))) {
        hash.update(chunk);
        yield chunk;
      }
      if (asm.stoppedEarly) session.abort(new Error('read stream abandoned'));
      const end = await settle(session);
      const problem = await Promise.race([
        stdin,
        new Promise<string>((r) => setTimeout(() => r('stdin did not finish'), 200).unref()),
      ]);
      if (problem) exitNote = `stdin: ${problem}`;
      if (end.error) exitNote = `read exec: ${end.error}`;
      else if (end.exitCode !== 0) exitNote = `read exec exited ${end.exitCode}`;
      finished = true;
    } finally {
      if (!finished) session?.abort(new Error('core stream left early'));
    }
  }
  return {
    core: core(),
    index(): MemoryIndex {
      const r = asm.result;
      const reasons = [...planned.info.problems, ...r.problems];
      if (exitNote) reasons.push(exitNote);
      if (planned.info.maps.capped) reasons.push('maps capped');
      if (planned.info.maps.rejected.length > 0)
        reasons.push(`${planned.info.maps.rejected.length} maps lines rejected`);
      if (plan.cappedBytes > 0n) reasons.push(`${plan.cappedBytes} readable bytes left out by caps`);
      for (const reg of r.regions) {
        if (reg.status !== 'complete' && reg.status !== 'skipped') {
          reasons.push(`region ${reg.start}-${reg.end} ${reg.status}${reg.reason ? ` (${reg.reason})` : ''}`);
        }
      }
      const anyRead = r.regions.some((x) => x.bytes > 0);
      const status =
        reasons.length === 0 && r.allPlannedComplete ? 'complete' : anyRead ? 'partial' : 'failed';
      return {
        pid: opts.pid,
        machine: planned.info.machine ?? null,
        notes: `NT_PRSTATUS (one thread: ids set, registers zero${planned.info.process.pc !== undefined ? ' except sp and pc from /proc/<pid>/syscall' : ''}), NT_PRPSINFO, ${planned.info.process.auxv ? 'NT_AUXV, ' : ''}NT_FILE`,
        status,
        reasons: reasons.slice(0, 200),
        plannedBytes: Number(plan.plannedBytes),
        cappedBytes: Number(plan.cappedBytes),
        mapsRejected: planned.info.maps.rejected,
        mapsCapped: planned.info.maps.capped,
        coreBytes: r.coreBytes,
        coreSha256: hash.digest('hex'),
        regions: r.regions,
      };
    },
  };
}
