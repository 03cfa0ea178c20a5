import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeContainer } from '../../src/testing/runtime.js';
import {
  craftedTar,
  createSandboxRuntime,
  HOSTILE_PATHS,
  hostileFiles,
  hostileNames,
  hostileProcesses,
  type SandboxRuntime,
} from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { execIn, sandboxMissing, sh } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

async function listTar(
  buf: Buffer,
): Promise<{ entries: { name: string; type: string; linkname?: string | null }[]; error?: string }> {
  const extract = tarStream.extract();
  const entries: { name: string; type: string; linkname?: string | null }[] = [];
  return new Promise((resolve) => {
    extract.on('entry', (h, stream, next) => {
      entries.push({ name: h.name, type: h.type ?? 'file', linkname: h.linkname });
      stream.on('end', next);
      stream.on('error', () => undefined);
      stream.resume();
    });
    extract.on('finish', () => resolve({ entries }));
    extract.on('error', (e) => resolve({ entries, error: e.message }));
    Readable.from([buf]).pipe(extract);
  });
}

describe('craftedTar', () => {
  it('writes valid headers for hostile names and truncates at a lying size', async () => {
    const ok = await listTar(
      craftedTar([
        { name: '../x', content: 'a' },
        { name: '/abs', type: 'symlink', linkname: '/etc' },
      ]),
    );
    expect(ok.error).toBeUndefined();
    expect(ok.entries.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['../x', 'file', null],
      ['/abs', 'symlink', '/etc'],
    ]);
    const liar = await listTar(craftedTar([{ name: 'big', content: 'x', claimedSize: 1 << 20 }]));
    expect(liar.error).toMatch(/unexpected end/i);
  });
});

describe.skipIf(skip)('sandbox runtime: hostile content', () => {
  let rt: SandboxRuntime;
  let c: RuntimeContainer;
  beforeAll(async () => {
    rt = await createSandboxRuntime();
    c = await rt.start({
      pod: { namespace: 'evil', name: 'evil', uid: 'evil-uid' },
      name: 'app',
      image: 'busybox',
      options: { files: hostileFiles(), processes: hostileProcesses() },
    });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('hosts a /dev/zero log, a FIFO log and a 10 GiB sparse file', async () => {
    expect(await sh(c, `readlink ${HOSTILE_PATHS.zeroLog}; stat -c %F ${HOSTILE_PATHS.fifoLog}`)).toBe(
      '/dev/zero\nfifo\n',
    );
    const zeros = await execIn(c, ['cat', HOSTILE_PATHS.zeroLog], { max: 1 << 20 });
    expect(zeros.stdout.length).toBe(1 << 20);
    expect(zeros.stdout.every((b) => b === 0)).toBe(true);
    const fifo = await execIn(c, ['cat', HOSTILE_PATHS.fifoLog], { timeoutMs: 300 });
    expect(fifo.exit).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
    expect(await sh(c, `stat -c "%s %b" ${HOSTILE_PATHS.sparse}`)).toBe('10737418240 0\n');
  });

  it('hosts awkward names, byte for byte', async () => {
    const r = await execIn(c, ['find', HOSTILE_PATHS.names, '-type', 'f', '-print0']);
    const names = r.stdout
      .toString('latin1')
      .split('\0')
      .filter(Boolean)
      .map((p) => Buffer.from(p.slice(HOSTILE_PATHS.names.length + 1), 'latin1'));
    const want = hostileNames();
    expect(names.map((n) => n.toString('hex')).sort()).toEqual(want.map((n) => n.toString('hex')).sort());
  });

  it('hosts a path longer than 4 KiB and symlink loops', async () => {
    const out = await sh(
      c,
      `cd ${HOSTILE_PATHS.deep} && n=0 && while d=$(ls -d [0-9]* 2>/dev/null | head -n 1) && [ -n "$d" ]; do cd -P -- "$d" || exit 9; n=$((n+1)); done; echo $n; cat leaf.txt`,
    );
    expect(out).toBe('16\ndeep\n');
    const loop = await execIn(c, ['cat', `${HOSTILE_PATHS.loops}/a`]);
    expect(loop.stderr).toMatch(/Symbolic links|too many levels/i);
    expect(await sh(c, `ls ${HOSTILE_PATHS.loops}/dir/sub/up/sub/up/sub/up/`)).toBe('root\nsub\n');
  });

  it('its tar ignores the request and emits a crafted archive', async () => {
    const r = await execIn(c, ['tar', 'cf', '-', '/etc/passwd']);
    expect(r.exit).toEqual({ kind: 'exited', exitCode: 0 });
    const { entries, error } = await listTar(r.stdout);
    const names = entries.map((e) => e.name);
    expect(names).toContain('app/../../../../../../tmp/eksf-escape-dotdot.txt');
    expect(names).toContain('/tmp/eksf-escape-absolute.txt');
    expect(entries.find((e) => e.name === 'app/link-out')?.linkname).toBe('/tmp');
    expect(entries.find((e) => e.name === 'app/hard')).toMatchObject({
      type: 'link',
      linkname: '/etc/passwd',
    });
    expect(error).toMatch(/unexpected end/i);
  });

  it('has a command whose output never ends and a log that grows while read', async () => {
    const endless = await execIn(c, [HOSTILE_PATHS.endless], { max: 4 << 20 });
    expect(endless.stdout.length).toBe(4 << 20);
    expect(endless.exit).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
    const sizes = await sh(
      c,
      `stat -c %s ${HOSTILE_PATHS.growing}; sleep 0.3; stat -c %s ${HOSTILE_PATHS.growing}`,
    );
    const [a, b] = sizes.trim().split('\n').map(Number);
    expect(b).toBeGreaterThan(a ?? Number.POSITIVE_INFINITY);
  });

  it('runs a miner and a reverse shell from deleted binaries and a process with LD_PRELOAD', async () => {
    const exes = await sh(c, 'for p in /proc/[0-9]*; do l=$(readlink $p/exe) && echo "$l"; done | sort -u');
    expect(exes).toContain('/tmp/.X11-unix/xmrig (deleted)\n');
    expect(exes).toContain('/var/tmp/.rs/sh (deleted)\n');
    const ps = await sh(c, 'ps -o args');
    expect(ps).toContain('stratum+tcp://pool.example.invalid:3333');
    const env = await sh(
      c,
      'for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null; done | grep LD_PRELOAD',
    );
    expect(env).toBe('LD_PRELOAD=/usr/lib/libprocesshider.so\n');
  });
});
