/**
 * In-container commands for process memory. POSIX sh plus `dd` (busybox or coreutils): both
 * scripts are constants, the pid is a validated positional argument, and the frame key and the
 * read plan arrive on stdin, so nothing from the target is ever interpolated into a script.
 * Nothing is written in the target.
 */
import type { MemoryPlan } from './memory-maps.js';

const PRELUDE = [
  'IFS= read -r K || exit 97',
  'e() { printf "\\n%s E %s\\n" "$K" "$1"; }',
  'b() { printf "\\n%s B %s\\n" "$K" "$1"; }',
];

/**
 * Reads what the core notes and the plan need. Positional args: `pid mapsPages`. Frames (headers):
 * `maps`, `stat`, `status`, `cmdline`, `auxv`, `syscall`, `exe` (first 64 bytes of the executable,
 * for the machine type), `memopen` (dd's stderr from opening `/proc/<pid>/mem`, exit code = open result).
 */
export const MEMORY_INFO_SCRIPT = [
  ...PRELUDE,
  'exec </dev/null',
  'P=$1; N=$2',
  'd() { dd if="/proc/$P/$1" bs="$2" count="$3" 2>/dev/null; }',
  'b maps; d maps 4096 "$N"; e $?',
  'b stat; d stat 4096 1; e $?',
  'b status; d status 4096 4; e $?',
  'b cmdline; d cmdline 4096 2; e $?',
  'b auxv; d auxv 4096 1; e $?',
  'b syscall; d syscall 4096 1; e $?',
  'b exe; d exe 64 1; e $?',
  'm=$(dd if="/proc/$P/mem" bs=1 count=0 2>&1 >/dev/null); r=$?',
  'b memopen; printf "%s" "$m"; e $r',
].join('\n');

/**
 * Reads regions of `/proc/<pid>/mem`. Positional arg: `pid`. Stdin: the key line, then one line
 * `id skipPages countPages` per region, then `.`. Frames per region: `<id> M` (the bytes, exit code
 * of dd) then `<id> R` (dd's stderr, for the reason: EPERM, EIO…). 4 KiB blocks: every maps range
 * is page aligned, and `skip` is computed on our side (no 64-bit shell arithmetic needed).
 */
export const MEMORY_READ_SCRIPT = [
  ...PRELUDE,
  'P=$1',
  'exec 3>&1',
  'while IFS=" " read -r i s c; do',
  '  [ "$i" = . ] && break',
  '  b "$i M"',
  '  m=$(dd if="/proc/$P/mem" bs=4096 skip="$s" count="$c" 2>&1 >&3 </dev/null); r=$?',
  '  e $r',
  '  b "$i R"; printf "%s" "$m"; e 0',
  'done',
].join('\n');

function checkPid(pid: number): void {
  if (!Number.isInteger(pid) || pid < 1 || pid > 4_194_304) throw new RangeError(`invalid pid ${pid}`);
}

/** argv of the info exec (send `key\n` on stdin, then end it). */
export function memoryInfoArgv(shell: string, pid: number, mapsPages = 2048): string[] {
  checkPid(pid);
  if (!Number.isInteger(mapsPages) || mapsPages < 1 || mapsPages > 65_536) {
    throw new RangeError(`invalid maps page cap ${mapsPages}`);
  }
  return [shell, '-c', MEMORY_INFO_SCRIPT, 'eksf-meminfo', String(pid), String(mapsPages)];
}

/** argv of the read exec; send {@link memoryReadInput} on stdin. */
export function memoryReadArgv(shell: string, pid: number): string[] {
  checkPid(pid);
  return [shell, '-c', MEMORY_READ_SCRIPT, 'eksf-memread', String(pid)];
}

/** Stdin of the read exec: key, one line per planned region that is read, `.`. */
export function memoryReadInput(key: string, plan: MemoryPlan): string {
  if (!/^[0-9a-f]{8,128}$/.test(key)) throw new RangeError('invalid frame key');
  const lines = [key];
  for (const p of plan.regions) {
    if (p.skip || p.take === 0n) continue;
    lines.push(`${p.id} ${p.region.start / 4096n} ${p.take / 4096n}`);
  }
  lines.push('.');
  return `${lines.join('\n')}\n`;
}
