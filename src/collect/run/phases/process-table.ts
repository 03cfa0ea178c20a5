/**
 * The process table the volatile phase derives from /proc (`proc/processes.json`), and the
 * choices later steps make from it: which executables' bytes to copy, which processes are
 * suspects for the memory item.
 */

const WRITABLE_EXE = /^(\/tmp\/|\/var\/tmp\/|\/dev\/shm\/|\/run\/|\/home\/|\/root\/|memfd:)/;

import type { Verdict } from '../verdict.js';

/** The table handed to later steps, with the verdict of the exec it came from (a cut listing may miss processes). */
export interface ProcessTable {
  rows: readonly ProcRow[];
  verdict: Verdict;
  /** Pids whose /proc directory a mount covers: what is read there is another's (see proc-mounts.ts). */
  covered: ReadonlySet<number>;
}

/** What the volatile exec gave for one process. */
export interface Proc {
  cmdline?: string;
  status?: string;
  comm?: string;
  links: Record<string, string>;
  fds: Record<string, string>;
  ns: Record<string, string>;
}

/**
 * Why a process is a suspect for the memory item: a deleted executable, an executable in a
 * writable directory or a memfd, an open memfd. Empty when it is not one.
 */
export function suspectReasons(r: ProcRow): string[] {
  const why: string[] = [];
  if (r.collector) return why;
  const exe = r.exe ?? '';
  if (exe.endsWith(' (deleted)')) why.push('deleted executable');
  if (exe.startsWith('memfd:')) why.push('executable is a memfd');
  else if (WRITABLE_EXE.test(exe)) why.push('executable in a writable directory');
  for (const [fd, target] of Object.entries(r.fds)) {
    if (!/^\d+$/.test(fd)) continue;
    if (target.startsWith('memfd:')) {
      why.push(`fd ${fd} is a memfd`);
      break;
    }
  }
  return why;
}

/** One row of `proc/processes.json`. */
export interface ProcRow {
  pid: number;
  ppid?: number | undefined;
  name?: string | undefined;
  uid?: string | undefined;
  state?: string | undefined;
  cmdline?: string | undefined;
  exe?: string | undefined;
  exeDeleted: boolean;
  cwd?: string | undefined;
  root?: string | undefined;
  fds: Record<string, string>;
  ns: Record<string, string>;
  collector: boolean;
}

/** Builds the table, in pid order. */
export function processTable(procs: Map<string, Proc>, selfPid: string | undefined): ProcRow[] {
  const table: ProcRow[] = [];
  for (const [pid, p] of [...procs].sort((a, b) => Number(a[0]) - Number(b[0]))) {
    const st = (k: string) => p.status?.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1]?.trim();
    const exe = p.links.exe;
    table.push({
      pid: Number(pid),
      ppid: st('PPid') !== undefined ? Number(st('PPid')) : undefined,
      name: st('Name') ?? p.comm,
      uid: st('Uid')?.split(/\s+/)[0],
      state: st('State'),
      cmdline: p.cmdline,
      exe,
      exeDeleted: exe?.endsWith(' (deleted)') ?? false,
      cwd: p.links.cwd,
      root: p.links.root,
      fds: p.fds,
      ns: p.ns,
      collector: pid === selfPid,
    });
  }
  return table;
}

/** `<pid>/exe` and `<pid>/fd/<n>` paths whose bytes the `exe` mode asks for (each target once). */
export function processBytesWanted(table: readonly ProcRow[], exeMode: string): string[] {
  const rels: string[] = [];
  const seen = new Set<string>();
  for (const r of table) {
    if (r.collector) continue;
    const exe = r.exe;
    if (exe) {
      const want =
        exeMode === 'all' || exe.endsWith(' (deleted)') || (exeMode === 'writable' && WRITABLE_EXE.test(exe));
      if (want && !seen.has(exe)) {
        seen.add(exe);
        rels.push(`${r.pid}/exe`);
      }
    }
    for (const [fd, target] of Object.entries(r.fds)) {
      if (!/^\d+$/.test(fd)) continue;
      if (
        (target.startsWith('memfd:') || (target.endsWith(' (deleted)') && !target.startsWith('/dev/'))) &&
        !seen.has(`${r.pid}:${target}`)
      ) {
        seen.add(`${r.pid}:${target}`);
        rels.push(`${r.pid}/fd/${fd}`);
      }
    }
  }
  return rels;
}
