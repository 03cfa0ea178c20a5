/**
 * Image presets: the base layout every sandbox image gets, and what each preset adds.
 */
import { link } from 'node:fs/promises';
import type { RootfsBuilder, SandboxEntry } from './rootfs.js';

/**
 * What the image ships besides the file map:
 * - `busybox`: static busybox at `/bin/busybox`, every applet hard-linked in `/bin`.
 * - `shell-only`: `/bin/sh` (dash, with the libc it needs) and the app binary; no tar, cat, find, stat…
 * - `none`: no shell at all, like distroless: only the app binary (`/app/server`).
 * - `{ applets }`: only the listed busybox applets (plus the app binary). Note Debian's static
 *   busybox runs every applet from its shell (`FEATURE_SH_STANDALONE`), so listing `sh` gives
 *   every applet to `sh -c`; use `shell-only` for a shell without tools.
 */
export type SandboxPreset = 'busybox' | 'shell-only' | 'none' | { applets: readonly string[] };

/** Where presets other than `busybox` put the app binary (the sleeper), and their default entrypoint. */
export const APP_BINARY = '/app/server';

/** Host pieces presets copy from. */
export interface PresetSources {
  busybox: string;
  applets: readonly string[];
  /** Dash and the shared objects it needs, as host paths (null when the host has no dash). */
  dash: { binary: string; libs: readonly string[] } | null;
}

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:app:/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
daemon:x:1:
app:x:1000:
nogroup:x:65534:
`;

/** Entries every image gets (a distroless-like base). */
export function baseEntries(hostname: string): [string, SandboxEntry][] {
  return [
    ['/bin', { type: 'dir' }],
    ['/usr/bin', { type: 'dir' }],
    ['/usr/local/bin', { type: 'dir' }],
    ['/etc', { type: 'dir' }],
    ['/proc', { type: 'dir', mode: 0o555 }],
    ['/dev', { type: 'dir' }],
    ['/sys', { type: 'dir', mode: 0o555 }],
    ['/tmp', { type: 'dir', mode: 0o1777 }],
    ['/var/tmp', { type: 'dir', mode: 0o1777 }],
    ['/var/log', { type: 'dir' }],
    ['/run', { type: 'dir' }],
    ['/root', { type: 'dir', mode: 0o700 }],
    ['/home', { type: 'dir' }],
    ['/app', { type: 'dir' }],
    ['/etc/passwd', { content: PASSWD }],
    ['/etc/group', { content: GROUP }],
    ['/etc/hostname', { content: `${hostname}\n` }],
    [
      '/etc/hosts',
      { content: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t${hostname}\n` },
    ],
    [
      '/etc/os-release',
      {
        content:
          'NAME="eks-forensics sandbox"\nID=eksf-sandbox\nPRETTY_NAME="eks-forensics sandbox (FakeCluster)"\nVERSION_ID="1"\n',
      },
    ],
  ];
}

/** Adds the preset's binaries; returns the default entrypoint. */
export async function applyPreset(
  b: RootfsBuilder,
  preset: SandboxPreset,
  src: PresetSources,
): Promise<string[]> {
  const bin = (name: string): Buffer => Buffer.from(`/bin/${name}`);
  if (preset === 'busybox') {
    await b.add(bin('busybox'), { type: 'binary', binary: 'busybox' });
    const target = await b.hostPath([Buffer.from('bin'), Buffer.from('busybox')]);
    for (const a of src.applets) {
      if (a === 'busybox' || a.includes('/')) continue;
      await link(target, `${b.root}/bin/${a}`).catch(() => undefined);
    }
    await b.add(Buffer.from('/usr/bin/env'), { type: 'symlink', target: '/bin/env' });
    return ['sleep', 'infinity'];
  }
  await b.add(Buffer.from(APP_BINARY), { type: 'binary', binary: 'sleeper' });
  if (preset === 'none') return [APP_BINARY];
  if (preset === 'shell-only') {
    if (!src.dash) throw new Error('the shell-only preset needs dash on the host (apt-get install dash)');
    await b.copyHostFile(src.dash.binary, bin('sh'), 0o755);
    for (const lib of src.dash.libs) await b.copyHostFile(lib, Buffer.from(lib), 0o755);
    return [APP_BINARY];
  }
  const applets = preset.applets.filter((a) => a.length > 0 && !a.includes('/'));
  const first = applets[0];
  if (first === undefined) return [APP_BINARY];
  // The multi-call binary is reachable only under the listed names (plus `busybox` if listed).
  await b.add(bin(first), { type: 'binary', binary: 'busybox' });
  const target = `${b.root}/bin/${first}`;
  for (const a of applets.slice(1)) await link(target, `${b.root}/bin/${a}`).catch(() => undefined);
  return applets.includes('sleep') ? ['sleep', 'infinity'] : [APP_BINARY];
}
