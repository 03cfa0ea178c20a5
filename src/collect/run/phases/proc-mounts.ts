/**
 * The mount check behind the process listing. A bind mount over `/proc/<pid>` hides that process
 * from `ps` or shows another's files under its pid, without a kernel module; a `/proc` that is not
 * procfs shows whatever the container wrote. The volatile exec reads its own mountinfo before and
 * after the listing; {@link MountCheck} decides from both what the listing may claim.
 */
import { reason } from '../reasons.js';
import { derivedVerdict, problemVerdict, type Verdict, withProblem } from '../verdict.js';

/** A mount in the container's mountinfo that changes what the process listing under /proc shows. */
export interface ProcMount {
  /** Mount point as the container sees it (`/proc/123`, `/proc/123/cmdline`, `/proc`). */
  mountPoint: string;
  /** Filesystem type and source of the mount (`ext4 /dev/vda`, `tmpfs tmpfs`). */
  fs: string;
  /** The pid whose directory the mount covers; absent for a mount on /proc itself. */
  pid?: string | undefined;
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo`. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/**
 * Mounts that make the process listing lie, from the exec shell's own `/proc/self/mountinfo`:
 * anything mounted on or under `<procBase>/<pid>` (a bind over a process directory hides that
 * process or shows another's files: a known way to hide a process from `ps` without a kernel
 * module), and a `<procBase>` whose topmost mount is not procfs (the whole listing is then files
 * the container wrote). Masks the runtimes add (`/proc/kcore`, `/proc/sys`, …) are not process
 * directories and are not reported. Lines that do not parse are skipped; `unparsed` counts them.
 */
export function procMounts(mountinfo: string, procBase: string): { mounts: ProcMount[]; unparsed: number } {
  const base = procBase.replace(/\/+$/, '') || '/proc';
  const mounts: ProcMount[] = [];
  let top: ProcMount | undefined;
  let unparsed = 0;
  for (const line of mountinfo.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    const point = fields[4];
    if (dash < 0 || point === undefined || fields.length < dash + 3) {
      unparsed++;
      continue;
    }
    const mountPoint = unescapeMount(point);
    const fs = `${fields[dash + 1]} ${unescapeMount(fields[dash + 2] ?? '')}`;
    if (mountPoint === base) {
      top = { mountPoint, fs };
      continue;
    }
    if (!mountPoint.startsWith(`${base}/`)) continue;
    const pid = mountPoint.slice(base.length + 1).split('/')[0] ?? '';
    if (/^\d+$/.test(pid)) mounts.push({ mountPoint, fs, pid });
  }
  if (top && !top.fs.startsWith('proc ')) mounts.unshift(top);
  return { mounts, unparsed };
}

/** The mounts seen over the listing, and whether the check could be made (both readings whole). */
export class MountCheck {
  readonly #procBase: string;
  readonly #cap: number;
  #readings = 0;
  #why: string | undefined;
  /** Mounts over /proc or its process directories, from either reading. */
  readonly mounts: ProcMount[] = [];
  readonly #covered = new Set<string>();

  constructor(procBase: string, cap: number) {
    this.#procBase = procBase;
    this.#cap = cap;
  }

  /** Both readings arrived whole and parsed. */
  get checked(): boolean {
    return this.#readings === 2 && this.#why === undefined;
  }

  /** Takes one reading of mountinfo (`rc`: its frame's exit code; `over`: cut at the cap). */
  reading(body: Buffer, rc: number | null | undefined, over: boolean, when: 'before' | 'after'): void {
    if (rc !== 0 || body.length === 0) this.#why ??= `${when} the listing: not readable (rc ${rc})`;
    else if (over || body.length >= this.#cap)
      this.#why ??= `${when} the listing: larger than the per-file cap of ${this.#cap} bytes`;
    else {
      this.#readings++;
      for (const m of procMounts(body.toString('utf8'), this.#procBase).mounts) {
        if (this.mounts.some((x) => x.mountPoint === m.mountPoint && x.fs === m.fs)) continue;
        this.mounts.push(m);
        if (m.pid) this.#covered.add(m.pid);
      }
    }
  }

  /** Whether a mount covers `/proc/<pid>` (or something in it). */
  covers(pid: string): boolean {
    return this.#covered.has(pid);
  }

  /** The covered pids, as numbers. */
  coveredPids(): Set<number> {
    return new Set([...this.#covered].map(Number));
  }

  /** The mount problems alone, for evidence read from /proc by other execs (executable hashes). */
  verdict(): Verdict {
    return this.listingVerdict(derivedVerdict([]));
  }

  /** A frame read under `/proc/<pid>`: failed when a mount covers that directory (call once the exec is over). */
  frameVerdict(pid: string, frame: Verdict, path: string): Verdict {
    if (!this.#covered.has(pid)) return frame;
    return withProblem(frame, 'failed', reason('volatile-anomaly', this.#coveredText(pid), path));
  }

  /**
   * The verdict of the process listing: the exec's, and not complete when a mount hides or forges
   * process directories, when /proc is not procfs, or when the mounts could not be checked.
   */
  listingVerdict(exec: Verdict): Verdict {
    if (!this.checked) {
      return withProblem(
        exec,
        'truncated',
        reason(
          'volatile-anomaly',
          `the mounts over /proc could not be checked (mountinfo ${this.#why ?? 'not received'}): a process directory hidden by a mount would not show`,
        ),
      );
    }
    const problems = this.mounts.map((m) =>
      m.pid === undefined
        ? problemVerdict(
            'failed',
            reason(
              'volatile-anomaly',
              `${m.mountPoint} is not procfs (${m.fs}): the process listing shows files, not processes`,
            ),
          )
        : problemVerdict('truncated', reason('volatile-anomaly', this.#coveredText(m.pid))),
    );
    return problems.length ? derivedVerdict([exec, ...problems]) : exec;
  }

  #coveredText(pid: string): string {
    const m = this.mounts.filter((x) => x.pid === pid).map((x) => `${x.mountPoint} (${x.fs})`);
    return `a mount covers process ${pid}'s /proc directory (${m.join(', ')}): what was read there may not be that process (a way to hide a process from ps)`;
  }
}
