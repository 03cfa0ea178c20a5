/**
 * Tool probe (one exec per container) and strategy selection (pure, from the probe result).
 */

/** Tools the probe looks for. */
export const PROBE_TOOLS = [
  'busybox',
  'tar',
  'cat',
  'head',
  'find',
  'stat',
  'readlink',
  'base64',
  'ls',
  'dd',
  'date',
  'wc',
  'sha256sum',
  'id',
  'uname',
  'ps',
] as const;

/** A tool name the probe checks. */
export type ProbeTool = (typeof PROBE_TOOLS)[number];

/** Shells tried, in order, to run the probe. `/busybox/sh` is where distroless `:debug` images keep one. */
export const SHELL_CANDIDATES = ['sh', '/bin/sh', '/busybox/sh'] as const;

/**
 * The probe script. Prints, for each tool name passed as an argument, `T<TAB>name<TAB>where`, then
 * feature lines `F<TAB>feature<TAB>0|1`, then `U<TAB>uid`. Writes nothing in the container.
 * Tool names are positional arguments: nothing target-derived is ever interpolated.
 */
export const PROBE_SCRIPT = [
  'for t in "$@"; do w=$(command -v "$t" 2>/dev/null) || w=; printf "T\\t%s\\t%s\\n" "$t" "$w"; done',
  'f() { n=$1; shift; if "$@" >/dev/null 2>&1 </dev/null; then printf "F\\t%s\\t1\\n" "$n"; else printf "F\\t%s\\t0\\n" "$n"; fi; }',
  'f tar tar cf - /proc/self/status',
  'f find-print0 find / -xdev -maxdepth 0 -print0',
  'f stat-c stat -c %s /',
  'f head-c head -c 1 /proc/self/status',
  'f readlink readlink /proc/self/exe',
  'f cat cat /proc/self/status',
  'f date date -u +%s',
  'f wc-c wc -c /proc/self/status',
  'f xargs-0 xargs -0 stat -c %s /',
  'u=; while IFS= read -r l; do case $l in Uid:*) set -- $l; u=$2;; esac; done </proc/self/status 2>/dev/null',
  'printf "U\\t%s\\n" "$u"',
  'printf "S\\t%s\\n" "$$"',
].join('\n');

/** argv of the probe for one shell candidate. */
export function probeArgv(shell: string = SHELL_CANDIDATES[0]): string[] {
  return [shell, '-c', PROBE_SCRIPT, 'eksf-probe', ...PROBE_TOOLS];
}

/** Feature tests run by the probe. */
export type ProbeFeature =
  | 'tar'
  | 'find-print0'
  | 'stat-c'
  | 'head-c'
  | 'readlink'
  | 'cat'
  | 'date'
  | 'wc-c'
  | 'xargs-0';

/** What the probe found in one container. */
export interface ProbeResult {
  /** The shell that ran the probe, or undefined when none could run. */
  shell: string | undefined;
  /** Where each tool was found (`command -v` output; an applet name without a path for busybox builtins). */
  tools: Partial<Record<ProbeTool, string>>;
  /** Which features actually worked. */
  features: Partial<Record<ProbeFeature, boolean>>;
  /** Real UID of the exec'd process, when readable. */
  uid: number | undefined;
  /** Why no shell could run (exec errors per candidate). */
  shellErrors: string[];
  /** Set when exec itself was refused (403/401/pod gone): not a missing shell, no debug container will help. */
  execDenied?: string | undefined;
}

/**
 * Parses the probe's stdout (bounded, hostile: unknown lines are ignored).
 */
export function parseProbeOutput(stdout: string, shell: string): ProbeResult {
  const tools: Partial<Record<ProbeTool, string>> = {};
  const features: Partial<Record<ProbeFeature, boolean>> = {};
  let uid: number | undefined;
  const known = new Set<string>(PROBE_TOOLS);
  const featureNames = new Set<string>([
    'tar',
    'find-print0',
    'stat-c',
    'head-c',
    'readlink',
    'cat',
    'date',
    'wc-c',
    'xargs-0',
  ]);
  for (const line of stdout.slice(0, 64 * 1024).split('\n')) {
    const parts = line.split('\t');
    if (parts[0] === 'T' && parts.length === 3 && known.has(parts[1] ?? '')) {
      const where = (parts[2] ?? '').slice(0, 512);
      if (where) tools[parts[1] as ProbeTool] = where;
    } else if (parts[0] === 'F' && parts.length === 3 && featureNames.has(parts[1] ?? '')) {
      features[parts[1] as ProbeFeature] = parts[2] === '1';
    } else if (parts[0] === 'U' && /^\d{1,10}$/.test(parts[1] ?? '')) {
      uid = Number(parts[1]);
    }
  }
  return { shell, tools, features, uid, shellErrors: [] };
}

/** A probe result for a container where no shell could run. */
export function noShellProbe(shellErrors: string[]): ProbeResult {
  return { shell: undefined, tools: {}, features: {}, uid: undefined, shellErrors };
}

/**
 * How bytes leave the container:
 * - `tar`: file contents as one tar stream (`tar cf - -- paths…`), /proc via framed `head -c`;
 * - `framed`: per-file frames from `head -c`/`cat` (busybox applets or coreutils) in one exec;
 * - `builtins`: shell builtins only (`read` loops): text only, NUL bytes lost — degraded;
 * - `none`: no shell: API state only; the target needs an ephemeral debug container.
 */
export type ContentStrategy = 'tar' | 'framed' | 'builtins' | 'none';

/** How file metadata (the bodyfile-style listing) is taken. */
export type ListingStrategy = 'find-stat' | 'find' | 'shell' | 'none';

/** The strategy chosen for a container, with what is degraded and why. */
export interface Strategy {
  /** File contents. */
  content: ContentStrategy;
  /** /proc and pseudo files (never tar: /proc sizes are 0). */
  volatile: 'framed' | 'builtins' | 'none';
  /** Metadata listing. */
  listing: ListingStrategy;
  /** True when `builtins` or listings without stat are used. */
  degraded: boolean;
  /** Human-readable notes for the manifest (what is missing and what that costs). */
  notes: string[];
  /** Whether `head -c` caps reads in the container (else the receiver caps and cancels). */
  headCap: boolean;
  /** Whether `readlink` is available for link targets. */
  readlink: boolean;
  /** Whether `stat -c` gives sizes up front. */
  stat: boolean;
  /** Whether `wc -c` is available (size fallback). */
  wc: boolean;
}

/**
 * Picks the strategy from a probe result. Pure.
 *
 * @param prefer force a content strategy when available (tests, or `tar` avoided on purpose).
 */
export function chooseStrategy(probe: ProbeResult, prefer?: ContentStrategy): Strategy {
  const notes: string[] = [];
  if (!probe.shell) {
    return {
      content: 'none',
      volatile: 'none',
      listing: 'none',
      degraded: true,
      notes: ['no shell in the container: only API state acquired; needs an ephemeral debug container'],
      headCap: false,
      readlink: false,
      stat: false,
      wc: false,
    };
  }
  const f = probe.features;
  const canRead = Boolean(f['head-c'] || f.cat);
  let content: ContentStrategy = f.tar ? 'tar' : canRead ? 'framed' : 'builtins';
  if (prefer && prefer !== 'none') {
    if (prefer === 'tar' && f.tar) content = 'tar';
    else if (prefer === 'framed' && canRead) content = 'framed';
    else if (prefer === 'builtins') content = 'builtins';
  }
  if (!f.tar && content !== 'builtins')
    notes.push('no working tar: file contents read as framed head/cat streams');
  const volatile = canRead ? 'framed' : 'builtins';
  if (!canRead) {
    notes.push(
      'shell builtins only (no cat/head): text read with `read` loops; NUL bytes and binary content are lost, executables not recovered',
    );
  }
  let listing: ListingStrategy = f['find-print0'] ? (f['stat-c'] ? 'find-stat' : 'find') : 'shell';
  if (listing === 'find') notes.push('no `stat -c`: file listing without sizes/times (names and types only)');
  if (listing === 'shell') {
    listing = 'shell';
    notes.push(
      f['stat-c']
        ? 'no usable find: directories walked with shell globs'
        : 'no usable find or stat: directories walked with shell globs, names and types only',
    );
  }
  if (!f.readlink) notes.push('no readlink: link targets (exe, cwd, fd) not recorded');
  return {
    content,
    volatile,
    listing,
    degraded: content === 'builtins' || listing !== 'find-stat' || !f.readlink,
    notes,
    headCap: Boolean(f['head-c']),
    readlink: Boolean(f.readlink),
    stat: Boolean(f['stat-c']),
    wc: Boolean(f['wc-c']),
  };
}
