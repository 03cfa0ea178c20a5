/**
 * The whole-filesystem timeline's view of the target: its mount points (from its mountinfo, read
 * with shell builtins), which of them are pseudo filesystems, and the roots the listing splits `/`
 * into. The listing itself is the metadata phase's.
 */
import { type PhaseEnv, shellOf } from '../env.js';
import { derivedVerdict, type Verdict } from '../verdict.js';

/** Most roots of a whole-filesystem listing (top-level directories and mount points). */
export const MAX_TIMELINE_ROOTS = 4096;

/** Filesystem types that hold no evidence of the container's own files (and can be endless). */
export const PSEUDO_FS: ReadonlySet<string> = new Set([
  'proc',
  'sysfs',
  'cgroup',
  'cgroup2',
  'devpts',
  'mqueue',
  'debugfs',
  'tracefs',
  'securityfs',
  'pstore',
  'bpf',
  'configfs',
  'fusectl',
  'hugetlbfs',
  'binfmt_misc',
  'autofs',
  'nsfs',
  'efivarfs',
  'selinuxfs',
  'rpc_pipefs',
]);

/** Mount points of the container from its mountinfo text (octal escapes decoded), with their types. */
export function parseMountinfo(text: string): { mountPoint: string; fsType: string }[] {
  const out: { mountPoint: string; fsType: string }[] = [];
  for (const line of text.split('\n').slice(0, 10_000)) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 6 || f.length < dash + 2) continue;
    const mp = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    if (!mp.startsWith('/') || mp.split('/').includes('..') || mp.length > 4096) continue;
    out.push({ mountPoint: mp.replace(/\/{2,}/g, '/'), fsType: f[dash + 1] ?? '' });
  }
  return out;
}

/**
 * The roots of a whole-filesystem listing: every top-level directory and every mount point (the
 * listing does not cross filesystems), except pseudo filesystems and what lies under them; mount
 * points and the standard top-level directories come first, the others after. Pure.
 */
export function timelineRoots(
  topLevel: readonly string[],
  mounts: readonly { mountPoint: string; fsType: string }[],
): string[] {
  const pseudo = mounts
    .filter((m) => PSEUDO_FS.has(m.fsType) && m.mountPoint !== '/')
    .map((m) => m.mountPoint);
  const under = (p: string) => pseudo.some((q) => p === q || p.startsWith(`${q}/`));
  // without mountinfo, the kernel's own trees are still left out by name
  if (mounts.length === 0) pseudo.push('/proc', '/sys');
  const first = new Set<string>();
  const rest = new Set<string>();
  for (const m of mounts) if (m.mountPoint !== '/' && !under(m.mountPoint)) first.add(m.mountPoint);
  for (const t of topLevel) if (!under(t)) (STANDARD_TOP.has(t) ? first : rest).add(t);
  // the system's own directories and the mount points first: thousands of planted top-level
  // directories cannot push `/usr` or a volume past the cap on roots
  return [...[...first].sort(), ...[...rest].filter((r) => !first.has(r)).sort()];
}

/** Top-level directories of Linux images (FHS and common application roots), listed before any other. */
const STANDARD_TOP: ReadonlySet<string> = new Set(
  ['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'libx32', 'opt', 'root', 'run']
    .concat(['sbin', 'srv', 'tmp', 'usr', 'var', 'app', 'data', 'workspace'])
    .map((n) => `/${n}`),
);

const MOUNTINFO_SCRIPT = 'while IFS= read -r l; do printf "%s\\n" "$l"; done < "$1"';

/** Reads the target's mountinfo (builtins only) for the whole-filesystem timeline. */
export async function discoverTopLevel(
  env: PhaseEnv,
  prefix: string,
): Promise<{
  mounts: { mountPoint: string; fsType: string }[];
  excluded: { mountPoint: string; fsType: string }[];
  verdict: Verdict;
  problem?: string;
}> {
  const pid = /^\/proc\/(\d{1,10})\/root$/.exec(prefix)?.[1];
  const file = prefix === '' ? '/proc/self/mountinfo' : pid ? `/proc/${pid}/mountinfo` : undefined;
  if (!file)
    return {
      mounts: [],
      excluded: [],
      verdict: derivedVerdict([]),
      problem: `no mountinfo for the root ${prefix}: mount points are not listed on their own`,
    };
  const res = await env.door.capture({
    step: 'timeline-mounts',
    argv: [shellOf(env), '-c', MOUNTINFO_SCRIPT, 'eksf-mounts', file],
    maxBytes: 4 * 1024 * 1024,
  });
  const mounts = parseMountinfo(res.bytes.toString('utf8'));
  const excluded = mounts.filter((m) => PSEUDO_FS.has(m.fsType) && m.mountPoint !== '/');
  if (mounts.length === 0)
    return {
      mounts,
      excluded,
      verdict: res.verdict,
      problem:
        'mountinfo unreadable: pseudo filesystems cannot be told apart and mount points are not listed on their own',
    };
  return { mounts, excluded, verdict: res.verdict };
}
