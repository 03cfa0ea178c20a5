/**
 * Process memory → ELF core against a real sandbox container, checked with the real readelf and gdb.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CoverageExec,
  type MemoryIndex,
  planMemoryRead,
  planProcessMemory,
  streamProcessCore,
} from '../../src/collect/coverage/index.js';
import { addSandboxPod, type Env, sandboxMissing, startEnv } from '../collect/support.js';
import { skipWithoutCommand, skipWithoutPeer } from '../support/peers.js';
import { kubeExec, run } from './support.js';

const skip =
  skipWithoutPeer('bwrap', sandboxMissing()) ||
  skipWithoutCommand('gdb', 'gdb') ||
  skipWithoutCommand('readelf', 'binutils');

const MARK_A = 'EKSF_MEM_';
const MARK_B = 'ONLY_IN_HEAP_7f3a91';
const MARKER = MARK_A + MARK_B;
// the marker exists only once the shell has built it: argv holds its two halves apart
const HOLDER = `M=$(printf "%s%s" "${MARK_A}" "${MARK_B}"); while :; do sleep 5; done`;

describe.skipIf(skip)('process memory to an ELF core (sandbox, readelf, gdb)', () => {
  let env: Env;
  let exec: CoverageExec;
  let work: string;
  let pid: number;
  beforeAll(async () => {
    env = await startEnv();
    work = mkdtempSync(join(tmpdir(), 'eksf-core-'));
    const t = await addSandboxPod(env, {
      preset: 'busybox',
      processes: [{ argv: ['/bin/sh', '-c', HOLDER] }],
    });
    exec = kubeExec(env.kube, t);
    const found = await run(exec, ['sh', '-c', `grep -l ${MARK_B} /proc/[0-9]*/cmdline`]);
    const m = /\/proc\/(\d+)\/cmdline/.exec(found);
    pid = Number(m?.[1]);
    expect(pid).toBeGreaterThan(0);
  }, 60_000);
  afterAll(async () => {
    await env?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  async function acquire(
    limits: { maxProcessBytes?: bigint } = {},
  ): Promise<{ index: MemoryIndex; core: string }> {
    const planned = await planProcessMemory({ exec, shell: 'sh', pid, ...limits });
    expect(planned.unreadable).toBeUndefined();
    const s = streamProcessCore({ exec, shell: 'sh', pid }, planned);
    const file = join(work, `core.${pid}.${Date.now()}`);
    await pipeline(Readable.from(s.core), createWriteStream(file));
    return { index: s.index(), core: file };
  }

  it('readelf parses the core, gdb reads the marker only the heap held', async () => {
    const { index, core } = await acquire();
    expect(index.status, index.reasons.join('\n')).toBe('complete');
    expect(index.machine).toBe(process.arch === 'x64' ? 'x86_64' : 'aarch64');
    const bytes = readFileSync(core);
    expect(bytes.length).toBe(index.coreBytes);
    const at = bytes.indexOf(MARKER);
    expect(at).toBeGreaterThan(0);
    const region = index.regions.find(
      (r) => r.coreOffset !== undefined && at >= r.coreOffset && at < r.coreOffset + r.bytes,
    );
    expect(region).toBeDefined();
    if (!region || region.coreOffset === undefined) return;
    expect(region.status).toBe('complete');
    const addr = BigInt(`0x${region.start}`) + BigInt(at - region.coreOffset);

    const elf = execFileSync('readelf', ['-lnW', core], { encoding: 'utf8' });
    expect(elf).toMatch(/Elf file type is CORE/);
    expect(elf).toMatch(/NT_PRSTATUS/);
    expect(elf).toMatch(/NT_PRPSINFO/);
    expect(elf).toMatch(/NT_FILE/);
    expect(elf).toMatch(/NT_AUXV/);
    expect(elf).toMatch(new RegExp(`LOAD\\s+0x0*${region.coreOffset.toString(16)}\\s+0x0*${region.start}`));

    const gdb = execFileSync(
      'gdb',
      [
        '-nx',
        '-batch',
        '-ex',
        `core-file ${core}`,
        '-ex',
        `x/s 0x${addr.toString(16)}`,
        '-ex',
        `find /b 0x${region.start}, 0x${(BigInt(`0x${region.start}`) + BigInt(region.bytes) - 1n).toString(16)}, 'E','K','S','F','_','M','E','M','_','O','N','L','Y'`,
        '-ex',
        'info proc',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (process.env.EKSF_DEBUG_CORE) process.stderr.write(`${elf}\n${gdb}\n`);
    expect(gdb).toContain(`"${MARKER}"`);
    expect(gdb).toMatch(/pattern found/);
    expect(gdb).not.toMatch(/is not a core dump|not in executable format/);
    expect(index.notes).toMatch(/registers zero/);
    process.stderr.write(
      `core: ${index.coreBytes} bytes, ${index.regions.filter((r) => r.status === 'complete').length} regions complete, ${index.plannedBytes} planned\n`,
    );
  }, 60_000);

  it('a lying maps line (unmapped range) is unreadable with EIO; a range past the mapping is truncated', async () => {
    const planned = await planProcessMemory({ exec, shell: 'sh', pid });
    const regions = planned.info.maps.regions;
    // a readable region followed by at least 16 unmapped pages
    const i = regions.findIndex(
      (r, k) =>
        r.perms[0] === 'r' && r.path !== '[vvar]' && (regions[k + 1]?.start ?? 0n) - r.end >= 16n * 4096n,
    );
    expect(i).toBeGreaterThanOrEqual(0);
    const real = regions[i] as (typeof regions)[number];
    const lies = [
      { start: 0x10000n, end: 0x12000n, perms: 'rw-p', offset: 0n, dev: '00:00', inode: '0', path: '[lie]' },
      ...regions.slice(0, i),
      { ...real, end: real.end + 8n * 4096n },
      ...regions.slice(i + 1),
    ];
    const plan = planMemoryRead(lies);
    const s = streamProcessCore({ exec, shell: 'sh', pid }, { ...planned, plan });
    const file = join(work, 'lying.core');
    await pipeline(Readable.from(s.core), createWriteStream(file));
    const index = s.index();
    expect(index.status).toBe('partial');
    const lie = index.regions[0];
    expect([lie?.status, lie?.reason, lie?.bytes]).toEqual(['unreadable', 'EIO', 0]);
    const grown = index.regions[i + 1];
    expect(grown?.status).toBe('truncated');
    expect(grown?.bytes).toBe(Number(real.end - real.start));
    expect(grown?.reason).toMatch(/EIO|short-read/);
    // the others are still complete, and readelf still parses the core
    expect(index.regions.filter((r) => r.status === 'complete').length).toBeGreaterThan(3);
    expect(execFileSync('readelf', ['-lW', file], { encoding: 'utf8' })).toMatch(/CORE/);
  }, 60_000);

  it('a replaced dd flooding maps: capped, abandoned, recorded; no hang', async () => {
    const t = await addSandboxPod(env, {
      preset: 'shell-only',
      files: {
        '/usr/local/bin/dd': {
          content:
            '#!/bin/sh\ncase "$1" in\n  if=/proc/*/maps) while :; do printf "%s\\n" "00400000-00401000 r--p 00000000 00:00 0 /lie" "zz not maps" "00500000-00400000 rw-p 00000000 00:00 0"; done;;\n  *) exit 1;;\nesac\n',
          mode: 0o755,
        },
      },
    });
    const hostile = kubeExec(env.kube, t);
    const t0 = Date.now();
    const planned = await planProcessMemory({ exec: hostile, shell: 'sh', pid: 1, mapsPages: 64 });
    expect(Date.now() - t0).toBeLessThan(45_000);
    expect(planned.info.problems.join('\n')).toMatch(/beyond the caps|beyond the 8388608-byte cap/);
    expect(planned.info.maps.rejected.length).toBeGreaterThan(0);
    expect(planned.unreadable).toMatch(/cannot|unknown|EPERM|frame/);
    expect(planned.plan).toBeUndefined();
  }, 60_000);
});
