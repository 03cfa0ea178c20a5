/**
 * Finding the target's processes from inside the debug container: a read-only scan of
 * `/proc/[0-9]*` (mount namespace, parent, uid, cgroup, cmdline), and the choice of the target's
 * main process. The scan output comes from a shared PID namespace with a possibly hostile
 * target: every line is bounded, parsed defensively and never interpolated anywhere.
 */

/** Longest cmdline/cgroup excerpt the scan reads per process. */
export const SCAN_FIELD_BYTES = 1024;

/**
 * The scan script. Positional args: `maxProcs fieldBytes`. Output lines `<pid|S|M>\t<field>\t<value>`
 * with tabs, newlines and NULs in values turned into spaces (cgroup lines joined with `|`).
 */
export const SCAN_SCRIPT = [
  'M=$1; L=$2',
  'x() { tr "\\000\\n\\t" "   "; }',
  'printf "S\\tmnt\\t"; readlink /proc/self/ns/mnt 2>/dev/null | x; echo',
  'printf "S\\tpid\\t%s\\n" "$$"',
  'n=0',
  'for d in /proc/[0-9]*; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  '  p=${d##*/}',
  '  case $p in *[!0-9]*) continue;; esac',
  '  [ -d "$d" ] || continue',
  '  n=$((n+1)); if [ "$n" -gt "$M" ]; then printf "M\\tmax\\t%s\\n" "$M"; break; fi',
  '  printf "%s\\tmnt\\t" "$p"; readlink "$d/ns/mnt" 2>/dev/null | x; echo',
  '  printf "%s\\tstat\\t" "$p"; head -c 512 "$d/stat" 2>/dev/null | x; echo',
  '  printf "%s\\tuid\\t" "$p"; { while IFS= read -r l; do case $l in Uid:*) printf "%s" "$l";; esac; done <"$d/status"; } 2>/dev/null | x; echo',
  '  printf "%s\\tcgroup\\t" "$p"; head -c "$L" "$d/cgroup" 2>/dev/null | tr "\\000\\n\\t" " | "; echo',
  '  printf "%s\\tcmdline\\t" "$p"; head -c "$L" "$d/cmdline" 2>/dev/null | x; echo',
  'done',
].join('\n');

/** argv of the scan. */
export function scanArgv(maxProcesses: number): string[] {
  return ['sh', '-c', SCAN_SCRIPT, 'eksf-ephemeral-scan', String(maxProcesses), String(SCAN_FIELD_BYTES)];
}

/** One process seen from the debug container. */
export interface ScannedProcess {
  /** PID in the shared PID namespace. */
  pid: number;
  /** `mnt:[…]` link (which container's filesystem it runs in). */
  mnt?: string | undefined;
  /** Parent PID (0 when the parent is outside the namespace). */
  ppid?: number | undefined;
  /** Command name from `stat`. */
  comm?: string | undefined;
  /** Real UID. */
  uid?: number | undefined;
  /** `/proc/<pid>/cgroup`, lines joined with `|` (bounded). */
  cgroup?: string | undefined;
  /** Command line, arguments joined with spaces (bounded). */
  cmdline?: string | undefined;
}

/** What the scan saw. */
export interface ProcessScan {
  /** Mount namespace of the debug container (of the scanning shell). */
  selfMnt: string | undefined;
  /** PID of the scanning shell. */
  selfPid: number | undefined;
  /** Every process, in PID order. */
  processes: ScannedProcess[];
  /** True when the process cap was reached. */
  truncated: boolean;
}

const MNT = /^mnt:\[\d{1,20}\]$/;

/** Parses scan output (hostile input: bounded, unknown lines ignored). */
export function parseScan(text: string, maxProcesses: number): ProcessScan {
  const procs = new Map<number, ScannedProcess>();
  const scan: ProcessScan = { selfMnt: undefined, selfPid: undefined, processes: [], truncated: false };
  for (const line of text.split('\n')) {
    const a = line.indexOf('\t');
    const b = a < 0 ? -1 : line.indexOf('\t', a + 1);
    if (b < 0) continue;
    const who = line.slice(0, a);
    const field = line.slice(a + 1, b);
    const value = line.slice(b + 1).slice(0, SCAN_FIELD_BYTES * 2);
    if (who === 'S') {
      if (field === 'mnt' && MNT.test(value.trim())) scan.selfMnt = value.trim();
      if (field === 'pid' && /^\d{1,10}$/.test(value)) scan.selfPid = Number(value);
      continue;
    }
    if (who === 'M') {
      scan.truncated = true;
      continue;
    }
    if (!/^\d{1,10}$/.test(who)) continue;
    const pid = Number(who);
    let p = procs.get(pid);
    if (!p) {
      if (procs.size >= maxProcesses) {
        scan.truncated = true;
        continue;
      }
      p = { pid };
      procs.set(pid, p);
    }
    switch (field) {
      case 'mnt':
        if (MNT.test(value.trim())) p.mnt = value.trim();
        break;
      case 'stat': {
        const open = value.indexOf('(');
        const close = value.lastIndexOf(')');
        if (open > 0 && close > open) {
          p.comm = value.slice(open + 1, close).slice(0, 64);
          const rest = value.slice(close + 2).split(' ');
          const ppid = rest[1];
          if (ppid !== undefined && /^\d{1,10}$/.test(ppid)) p.ppid = Number(ppid);
        }
        break;
      }
      case 'uid': {
        const m = /^Uid:\s+(\d{1,10})/.exec(value);
        if (m?.[1]) p.uid = Number(m[1]);
        break;
      }
      case 'cgroup':
        p.cgroup = value.replace(/\|+$/, '').slice(0, SCAN_FIELD_BYTES);
        break;
      case 'cmdline':
        p.cmdline = value.trimEnd().slice(0, SCAN_FIELD_BYTES);
        break;
    }
  }
  scan.processes = [...procs.values()].sort((x, y) => x.pid - y.pid);
  return scan;
}

/** How the target's main process was chosen. */
export type TargetPidMethod = 'caller' | 'cgroup' | 'mount-namespace' | 'command-match';

/** The choice of the target's main process and the split of the PID namespace. */
export interface TargetChoice {
  /** The target's main process. */
  pid: number;
  /** How it was chosen. */
  method: TargetPidMethod;
  /** One sentence on why (for the acquisition log and the report). */
  detail: string;
  /** Processes that belong to the debug container (its own mount namespace, and the scanning shell). */
  debugPids: number[];
  /** Every other process (what the target container sees, minus the debug container). */
  targetPids: number[];
  /** The processes of the target container itself (same mount namespace as `pid`, or same cgroup). */
  containerPids: number[];
}

/** Facts about the target container that help choose its process. */
export interface ChoiceHints {
  /** `containerID` from the pod status (`containerd://<id>`), matched against cgroup paths. */
  containerId?: string | undefined;
  /** The container's `command` + `args` from the pod spec, matched against cmdlines. */
  command?: readonly string[] | undefined;
  /** A PID given by the caller. */
  targetPid?: number | undefined;
}

function isPause(p: ScannedProcess): boolean {
  return p.comm === 'pause' || p.cmdline === '/pause' || p.cmdline === 'pause';
}

function rootOf(group: readonly ScannedProcess[]): ScannedProcess | undefined {
  const pids = new Set(group.map((p) => p.pid));
  return group.find((p) => p.ppid === undefined || !pids.has(p.ppid)) ?? group[0];
}

function describe(p: ScannedProcess): string {
  return `${p.pid} (${(p.cmdline || p.comm || '?').slice(0, 80)})`;
}

/**
 * Chooses the target's main process: the caller's PID; else the processes whose cgroup names the
 * target's container ID; else the only mount namespace other than the debug container's (pause
 * excluded); else the namespace whose command line matches the container's command. Within the
 * chosen group, the process whose parent is outside the group (lowest PID first).
 *
 * @returns the choice, or a string saying why no single process could be chosen.
 */
export function chooseTargetProcess(scan: ProcessScan, hints: ChoiceHints = {}): TargetChoice | string {
  const debug = scan.processes.filter(
    (p) => (scan.selfMnt !== undefined && p.mnt === scan.selfMnt) || p.pid === scan.selfPid,
  );
  const debugPids = debug.map((p) => p.pid);
  const rest = scan.processes.filter((p) => !debugPids.includes(p.pid));
  const targetPids = rest.map((p) => p.pid);
  if (scan.selfMnt === undefined) {
    return "cannot read the debug container's own mount namespace (/proc/self/ns/mnt): its processes cannot be told apart from the target's";
  }
  const sameMnt = (pid: number) => {
    const mnt = rest.find((p) => p.pid === pid)?.mnt;
    return rest.filter((p) => (mnt === undefined ? p.pid === pid : p.mnt === mnt)).map((p) => p.pid);
  };
  if (hints.targetPid !== undefined) {
    const p = rest.find((x) => x.pid === hints.targetPid);
    if (!p) {
      return `PID ${hints.targetPid} given as targetPid is not a process outside the debug container (seen: ${rest
        .slice(0, 20)
        .map(describe)
        .join(', ')})`;
    }
    return {
      pid: p.pid,
      method: 'caller',
      detail: `PID ${describe(p)} given by the caller`,
      debugPids,
      targetPids,
      containerPids: sameMnt(p.pid),
    };
  }
  if (rest.length === 0)
    return 'no process outside the debug container is visible: the runtime may not support targetContainerName (shared PID namespace)';
  const id = (hints.containerId ?? '').replace(/^[a-z0-9.+-]+:\/\//i, '');
  if (/^[0-9a-f]{12,128}$/i.test(id)) {
    const byCgroup = rest.filter((p) => p.cgroup?.toLowerCase().includes(id.toLowerCase()));
    const root = rootOf(byCgroup);
    if (root) {
      return {
        pid: root.pid,
        method: 'cgroup',
        detail: `PID ${describe(root)}: its cgroup names the target's container ID ${id.slice(0, 12)}; lowest PID whose parent is outside that cgroup`,
        debugPids,
        targetPids,
        containerPids: byCgroup.map((p) => p.pid),
      };
    }
  }
  if (rest.every((p) => p.mnt === undefined)) {
    return `the mount namespaces of the other processes (${rest
      .slice(0, 10)
      .map(describe)
      .join(
        ', ',
      )}) cannot be read: ptrace-read access is denied, so their files could not be read either; use profile 'general' or 'sysadmin', or run the debug container as the target's UID (runAsUser)`;
  }
  const groups = new Map<string, ScannedProcess[]>();
  for (const p of rest) {
    const k = p.mnt ?? `unknown:${p.pid}`;
    const g = groups.get(k);
    if (g) g.push(p);
    else groups.set(k, [p]);
  }
  let candidates = [...groups.values()].filter((g) => !g.every(isPause));
  if (candidates.length > 1) {
    const known = candidates.filter((g) => g[0]?.mnt !== undefined);
    if (known.length >= 1) candidates = known;
  }
  if (candidates.length === 1) {
    const g = candidates[0] as ScannedProcess[];
    const root = rootOf(g) as ScannedProcess;
    return {
      pid: root.pid,
      method: 'mount-namespace',
      detail: `PID ${describe(root)}: the only mount namespace besides the debug container's${
        root.pid === 1 ? ' (PID 1 of the shared namespace)' : ''
      }; lowest PID whose parent is outside it`,
      debugPids,
      targetPids,
      containerPids: g.map((p) => p.pid),
    };
  }
  const cmd = (hints.command ?? []).join(' ').trim();
  if (cmd && candidates.length > 1) {
    const matching = candidates.filter((g) =>
      g.some((p) => p.cmdline === cmd || p.cmdline?.startsWith(`${cmd} `)),
    );
    if (matching.length === 1) {
      const g = matching[0] as ScannedProcess[];
      const root = rootOf(g) as ScannedProcess;
      return {
        pid: root.pid,
        method: 'command-match',
        detail: `PID ${describe(root)}: several containers share the PID namespace (shareProcessNamespace); its mount namespace is the only one running the container's command`,
        debugPids,
        targetPids,
        containerPids: g.map((p) => p.pid),
      };
    }
  }
  return `several containers share the PID namespace and none could be matched to the target (candidates: ${candidates
    .slice(0, 10)
    .map((g) => describe(rootOf(g) as ScannedProcess))
    .join(', ')}); pass targetPid`;
}

/**
 * Script that builds the proc view in the debug container's own /tmp: a directory with a link per
 * target PID (read from stdin, one per line) to `/proc/<pid>`, `self`, `net` and `mounts` pointing
 * at the target's main process, and every other /proc entry linked as is. The collector then uses
 * it as its proc base, so the debug container's processes are not in the target's process list and
 * `self/…` describes the target. Positional args: `viewDir targetPid`. Writes only under `viewDir`
 * in the debug container's filesystem; nothing in the target.
 */
export const VIEW_SCRIPT = [
  'V=$1; T=$2',
  'case $V in /tmp/eksf-*) ;; *) exit 64;; esac',
  'case $T in *[!0-9]*|"") exit 64;; esac',
  'rm -rf "$V" 2>/dev/null; mkdir -p "$V" || exit 65',
  'for e in /proc/*; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  '  n=${e##*/}',
  '  case $n in self|thread-self|net|mounts|[0-9]*) continue;; esac',
  '  ln -s "$e" "$V/$n" || exit 66',
  'done',
  'ln -s "/proc/$T" "$V/self" && ln -s "/proc/$T/net" "$V/net" && ln -s "/proc/$T/mounts" "$V/mounts" || exit 66',
  'while IFS= read -r p; do',
  '  case $p in *[!0-9]*|"") continue;; esac',
  '  ln -s "/proc/$p" "$V/$p" || exit 66',
  'done',
  'echo eksf-view-ok',
].join('\n');

/** argv of the view builder. */
export function viewArgv(viewDir: string, targetPid: number): string[] {
  if (!/^\/tmp\/eksf-[a-z0-9-]{1,80}$/.test(viewDir)) throw new RangeError(`invalid view dir ${viewDir}`);
  return ['sh', '-c', VIEW_SCRIPT, 'eksf-ephemeral-view', viewDir, String(targetPid)];
}
