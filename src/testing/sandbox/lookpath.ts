/**
 * Resolves container paths against a rootfs on the host the way the container would see them:
 * absolute symlinks restart at the rootfs, `..` never climbs above it, at most 40 links. Used to
 * find an exec'd command the way runc does (`exec.LookPath` inside the container).
 */

import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/** Resolves `path` (absolute in the container) to a host path under `root`, or null when missing. */
export async function resolveInRoot(
  root: string,
  path: string,
): Promise<{ hostPath: string; stat: Stats } | null> {
  const pending = path.split('/').filter((c) => c.length > 0);
  const done: string[] = [];
  let links = 0;
  for (;;) {
    const c = pending.shift();
    if (c === undefined) break;
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const hostPath = `${root}/${[...done, c].join('/')}`;
    const st = await lstat(hostPath).catch(() => null);
    if (st === null) return null;
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return null;
      const target = await readlink(hostPath).catch(() => null);
      if (target === null) return null;
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((x) => x.length > 0));
      continue;
    }
    if (pending.length > 0 && !st.isDirectory()) return null;
    done.push(c);
  }
  const hostPath = `${root}/${done.join('/')}`;
  const stat = await lstat(hostPath).catch(() => null);
  return stat === null ? null : { hostPath, stat };
}

/** Default PATH of a container when its environment has none (as containerd sets it). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Finds `command` as runc would: names with a `/` are taken as paths (relative to `cwd`), others
 * are searched in `PATH`. Returns null and the runc-style error message when not executable.
 */
export async function lookPath(
  root: string,
  command: string,
  pathVar: string,
  cwd: string,
): Promise<{ ok: true } | { ok: false; message: string }> {
  const isExec = (st: Stats): boolean => st.isFile() && (st.mode & 0o111) !== 0;
  if (command.length === 0) return { ok: false, message: 'exec: "": executable file not found in $PATH' };
  if (command.includes('/')) {
    const r = await resolveInRoot(root, posix.resolve(cwd, command));
    if (r === null)
      return { ok: false, message: `exec: "${command}": stat ${command}: no such file or directory` };
    if (!isExec(r.stat)) return { ok: false, message: `exec: "${command}": permission denied` };
    return { ok: true };
  }
  for (const dir of pathVar.split(':')) {
    const r = await resolveInRoot(root, posix.resolve(cwd, dir || '.', command));
    if (r !== null && isExec(r.stat)) return { ok: true };
  }
  return { ok: false, message: `exec: "${command}": executable file not found in $PATH` };
}
