/**
 * `homeFiles` of `file` items: the container's `/etc/passwd` is read once (through the door, capped)
 * and each item gains `<home>/<name>` paths for every account's home, before the metadata phase
 * plans its listing. A passwd that cannot be read whole is a recorded degradation, never silent.
 */
import { parsePasswd } from '../coverage/index.js';
import type { ProfileSpec } from '../schema.js';
import { type PhaseEnv, shellOf } from './env.js';
import { reason } from './reasons.js';
import { verdictText } from './verdict.js';

/** Homes used at most (the rest are recorded as left out). */
export const MAX_HOMES = 256;
const PASSWD_MAX_BYTES = 1024 * 1024;
/** Builtins only: works in any POSIX shell, without `cat`. */
const READ_PASSWD = 'while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done < /etc/passwd';
const GLOB = /[*?[\]\\]/;

/** Returns `specs` with `homeFiles` turned into paths under every passwd home. */
export async function expandHomeFiles(env: PhaseEnv, specs: readonly ProfileSpec[]): Promise<ProfileSpec[]> {
  const wanted = specs.some((s) => s.items.some((i) => i.kind === 'file' && i.homeFiles?.length));
  if (!wanted) return [...specs];
  const tools = env.probe?.tools ?? {};
  // a bounded reader where there is one: a passwd that is /dev/zero must not keep the exec busy
  const argv =
    'dd' in tools
      ? [shellOf(env), '-c', 'dd if=/etc/passwd bs=65536 count=17 2>/dev/null', 'eksf-passwd']
      : 'head' in tools
        ? ['head', '-c', String(PASSWD_MAX_BYTES + 1), '/etc/passwd']
        : [shellOf(env), '-c', READ_PASSWD, 'eksf-passwd'];
  const res = await env.door.capture({
    step: 'passwd-homes',
    argv,
    maxBytes: PASSWD_MAX_BYTES,
    timeoutMs: Math.min(30_000, env.limits.execTimeoutMs),
  });
  const degraded = (why: string) =>
    env.reasons.add(
      reason(
        'degraded',
        `home directories from /etc/passwd: ${why}; only the items' own paths were searched`,
      ),
    );
  if (res.verdict.status !== 'complete') {
    degraded(verdictText(res.verdict) ?? res.verdict.status);
    return [...specs];
  }
  const parsed = parsePasswd(res.bytes.toString('utf8'), { maxBytes: PASSWD_MAX_BYTES });
  const homes = [
    ...new Set(parsed.entries.map((e) => e.home).filter((h) => !GLOB.test(h) && h.length <= 512)),
  ];
  const kept = homes.slice(0, MAX_HOMES);
  // a rejected line (a home in /proc, a relative home, a glob) is nothing we could have searched:
  // logged with its reason, not a degradation; a cap is
  if (homes.length > kept.length || parsed.capped)
    degraded(
      `${homes.length - kept.length} homes over the cap of ${MAX_HOMES}${parsed.capped ? ', the file cut at its cap' : ''}`,
    );
  env.log({ event: 'passwd-homes', homes: kept.length, rejected: parsed.rejected });
  return specs.map((s) => ({
    ...s,
    items: s.items.map((i) => {
      if (i.kind !== 'file' || !i.homeFiles?.length) return i;
      const extra = kept.flatMap((h) => (i.homeFiles ?? []).map((n) => (h === '/' ? `/${n}` : `${h}/${n}`)));
      return { ...i, paths: [...new Set([...i.paths, ...extra])] };
    }),
  }));
}
