import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeExeInventory,
  decodeExePull,
  exeInventoryArgv,
  exePullArgv,
  hashExecutables,
  type MappedObject,
} from '../../src/collect/coverage/index.js';
import type { FrameEvent } from '../../src/collect/index.js';
import { sleeperElf } from '../../src/testing/sandbox/elf.js';
import { hostileProcesses } from '../../src/testing/sandbox/index.js';
import { addSandboxPod, type Env, sandboxMissing, startEnv } from '../collect/support.js';
import { skipWithoutPeer } from '../support/peers.js';
import { kubeExec } from './support.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const begin = (...header: string[]): FrameEvent => ({ type: 'begin', header, offset: 0 });
const data = (b: Buffer | string): FrameEvent => ({ type: 'data', chunk: Buffer.from(b) });
const end = (rc: number | null): FrameEvent => ({ type: 'end', rc, offset: 0, contentBytes: 0 });
async function* ev(list: FrameEvent[]): AsyncGenerator<FrameEvent> {
  yield* list;
}

describe('executable hashes: inventory and pull decoding', () => {
  it('a stream that breaks inside a file claims no hash and no wholeness for it', async () => {
    const objects = [
      {
        key: 'a',
        dev: '08:01',
        inode: '1',
        paths: ['/bin/x'],
        pids: [1],
        executable: true,
        deleted: false,
        primary: '/proc/1/exe',
        fallback: '-',
      },
    ] satisfies MappedObject[];
    const got = await decodeExePull(
      ev([begin('0', 'A'), data('partial bytes'), { type: 'error', reason: 'stream cut', offset: 20 }]),
      objects,
      1 << 20,
    );
    expect(got.problem).toBe('stream cut');
    expect(got.hashes[0]).toMatchObject({ whole: false, bytes: 13 });
    expect(got.hashes[0]?.sha256).toBeUndefined();
  });

  it('dedups by device and inode across processes, marks the executable and deleted files', async () => {
    const maps = (exe: string) =>
      [
        `00400000-00401000 r--p 00000000 08:01 11 ${exe}`,
        '7f0000000000-7f0000001000 r-xp 00000000 08:01 22 /usr/lib/libc.so.6',
        '7f0000002000-7f0000003000 r-xp 00000000 08:01 33 /tmp/.x/libhide.so (deleted)',
        '7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 [stack]',
      ].join('\n');
    const inv = await decodeExeInventory(
      ev([
        begin('1', 'E'),
        data('/usr/bin/app'),
        end(0),
        begin('1', 'M'),
        data(maps('/usr/bin/app')),
        end(0),
        begin('2', 'E'),
        end(1),
        begin('2', 'M'),
        data(maps('/usr/bin/app')),
        end(0),
        begin('cap'),
        end(0),
      ]),
    );
    expect(inv.objects.map((o) => o.key)).toEqual(['08:01:11', '08:01:22', '08:01:33']);
    const [app, libc, hide] = inv.objects as [MappedObject, MappedObject, MappedObject];
    expect(app).toMatchObject({
      executable: true,
      primary: '/proc/1/exe',
      pids: [1, 2],
      fallback: '/usr/bin/app',
    });
    expect(libc.primary).toBe('/proc/1/map_files/7f0000000000-7f0000001000');
    expect(hide).toMatchObject({ deleted: true, fallback: '-' });
    expect(inv.capped).toContain('more processes than the cap');
  });

  it('forged frames stop the inventory; object count is capped', async () => {
    const bad = await decodeExeInventory(ev([begin('1;rm', 'E')]));
    expect(bad.stoppedEarly).toBe(true);
    const many: FrameEvent[] = [];
    for (let i = 0; i < 50; i++) {
      many.push(
        begin(String(i + 1), 'M'),
        data(`00400000-00401000 r-xp 00000000 08:01 ${i + 1} /bin/x${i}`),
        end(0),
      );
    }
    const capped = await decodeExeInventory(ev(many), { maxObjects: 10 });
    expect(capped.objects).toHaveLength(10);
    expect(capped.capped.join()).toMatch(/more than 10 distinct/);
  });

  it('pull decoding: handle, path fallback, unreadable, cut at the cap', async () => {
    const o = (i: number): MappedObject => ({
      key: `0:${i}`,
      dev: '00:01',
      inode: String(i),
      paths: [`/bin/${i}`],
      pids: [1],
      executable: false,
      deleted: false,
      primary: `/proc/1/map_files/${i}000-${i}fff`,
      fallback: `/bin/${i}`,
    });
    const objs = [o(1), o(2), o(3), o(4)];
    const r = await decodeExePull(
      ev([
        begin('0', 'A'),
        data('abc'),
        end(0),
        begin('1', 'B'),
        data('def'),
        end(0),
        begin('2', 'N'),
        end(0),
        begin('3', 'A'),
        data('x'.repeat(100)),
        end(0),
      ]),
      objs,
      10,
    );
    expect(r.hashes.map((h) => [h.via, h.whole])).toEqual([
      ['handle', true],
      ['path', true],
      ['none', false],
      ['handle', false],
    ]);
    expect(r.hashes[0]?.sha256).toBe(sha256('abc'));
    expect(r.hashes[3]?.bytes).toBe(10);
    expect(() => exePullArgv('sh', [{ ...o(1), primary: '/etc/shadow' }])).toThrow(RangeError);
    expect(exeInventoryArgv('sh').slice(3)).toEqual(['eksf-exeinv', '256', '4096', '/proc']);
    expect(() => exeInventoryArgv('sh', 256, 4096, '/proc/../etc')).toThrow(RangeError);
    expect(() => exeInventoryArgv('sh', 256, 4096, '/tmp/x; rm -rf /')).toThrow(RangeError);
  });
});

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe.skipIf(skip)('executable hashes (sandbox)', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  }, 60_000);

  it('hashes the deleted miner through /proc/<pid>/exe and busybox once for all its applets', async () => {
    const t = await addSandboxPod(env, { preset: 'busybox', processes: hostileProcesses() });
    const t0 = Date.now();
    const r = await hashExecutables({ exec: kubeExec(env.kube, t), shell: 'sh' });
    const ms = Date.now() - t0;
    const miner = r.hashes.find((h) => h.paths.some((p) => p.startsWith('/tmp/.X11-unix/xmrig')));
    expect(miner).toMatchObject({ executable: true, deleted: true, via: 'handle', whole: true });
    expect(miner?.sha256).toBe(sha256(sleeperElf()));
    const busybox = r.hashes.filter((h) => h.sha256 === sha256(readFileSync('/bin/busybox')));
    // pid 1 (sleep), the exec's own shell and the planted shell: busybox by one inode in /bin, plus the deleted copy
    expect(busybox.length).toBeGreaterThanOrEqual(1);
    const keys = r.hashes.map((h) => h.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(r.hashes.every((h) => h.via === 'handle')).toBe(true);
    process.stderr.write(
      `exe hashes: ${r.hashes.length} objects, ${r.processes} processes, ${r.bytes} bytes, ${ms} ms\n`,
    );
  }, 60_000);
});
