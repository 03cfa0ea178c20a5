/**
 * The opt-in `memory` item as the collector runs it: the volatile phase's suspects are read into
 * ELF cores in the bundle (checked with the real readelf and gdb), and a core that is cut, capped
 * or unreadable is never `complete`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ArtifactCollector, ProfileSpecInput, TargetReport } from '../../src/collect/index.js';
import { chooseProcesses } from '../../src/collect/run/phases/memory.js';
import type { ProcRow } from '../../src/collect/run/phases/process-table.js';
import { verifyEvidence } from '../../src/evidence/index.js';
import type {
  SandboxEntry,
  SandboxPath,
  SandboxPreset,
  SandboxProcessSpec,
} from '../../src/testing/sandbox/index.js';
import { skipWithoutCommand, skipWithoutPeer } from '../support/peers.js';
import { acquireSandbox, bundleJson, type ManifestRecord, sandboxMissing, useEnv } from './support.js';

const skip =
  skipWithoutPeer('bwrap', sandboxMissing()) ||
  skipWithoutCommand('gdb', 'gdb') ||
  skipWithoutCommand('readelf', 'binutils');

const MARK_A = 'EKSF_IMPLANT_';
const MARK_B = 'KEY_ONLY_IN_MEMORY_5c21';
const MARKER = MARK_A + MARK_B;
/** A fileless implant: a deleted copy of busybox in /var/tmp whose shell holds a key only in memory. */
const IMPLANT: SandboxProcessSpec = {
  argv: ['/var/tmp/.k/sh', '-c', `K=$(printf "%s%s" "${MARK_A}" "${MARK_B}"); while :; do sleep 5; done`],
  binary: 'busybox',
  deleteAfterStart: true,
};
/** An innocent process (busybox from /bin): never a suspect. */
const INNOCENT: SandboxProcessSpec = { argv: ['/bin/sh', '-c', 'while :; do sleep 7; done'] };

type FileList = (SandboxEntry & { path: SandboxPath })[];

/** A JSON document of the bundle, or an empty selection when it was not written (skipped). */
function collectedJson<T>(loc: string, path: string): T {
  try {
    return bundleJson<T>(loc, path);
  } catch {
    return { processes: [], leftOut: [] } as T;
  }
}

interface Selection {
  processes: { pid: number; why: string[]; status: string; core?: string; reason?: string }[];
  leftOut: { pid: number }[];
  problem?: string;
}

const memoryOnly = (extra: Record<string, unknown> = {}, maxProcesses = 2000): ProfileSpecInput => ({
  name: 'mem',
  description: 'process table and memory of the suspects',
  items: [
    {
      id: 'ps',
      kind: 'proc',
      perProcess: { fields: ['comm', 'status', 'cmdline'], links: true, maxProcesses },
    },
    { id: 'memory', kind: 'memory', ...extra },
  ],
});

describe('memory selection (pure)', () => {
  const row = (pid: number, extra: Partial<ProcRow> = {}): ProcRow => ({
    pid,
    exeDeleted: false,
    fds: {},
    ns: {},
    collector: false,
    ...extra,
  });
  it('a live process whose executable could not be read is not taken as innocent', () => {
    const table = [
      row(1, { exe: '/bin/busybox', state: 'S (sleeping)' }),
      row(7, { state: 'S (sleeping)' }),
      row(8, { state: 'Z (zombie)' }),
      row(9, { collector: true }),
    ];
    const r = chooseProcesses({ select: 'suspects', pids: [], match: [] }, table);
    expect(r.chosen).toEqual([]);
    expect(r.problem).toMatch(
      /1 process\(es\) whose executable could not be read were not classified \(pids 7\)/,
    );
    // every process (select: all) takes it anyway: nothing left unclassified
    expect(chooseProcesses({ select: 'all', pids: [], match: [] }, table).problem).toBeUndefined();
  });
});

describe.skipIf(skip)('the memory item (sandbox, readelf, gdb)', () => {
  const env = useEnv();

  async function acquire(
    profiles: ArtifactCollectorProfiles,
    processes: SandboxProcessSpec[],
    files: FileList = [],
    preset: SandboxPreset = 'busybox',
  ): Promise<{ report: TargetReport; loc: string; sel: Selection; arts: ManifestRecord[] }> {
    const r = await acquireSandbox(env, { preset, files, processes }, { profiles });
    const sel = collectedJson<Selection>(r.loc, 'containers/app/memory/selection.json');
    return { report: r.report, loc: r.loc, sel, arts: r.artifacts };
  }
  type ArtifactCollectorProfiles = ConstructorParameters<typeof ArtifactCollector>[0]['profiles'];

  it('the built-in memory profile takes the fileless implant, not the innocent shell; gdb reads its key', async () => {
    const { report, loc, sel, arts } = await acquire(['memory'], [IMPLANT, INNOCENT]);
    expect(report.status, JSON.stringify(report.reasons)).toBe('complete');
    // the implant first; its `sleep` children (busybox applets: same deleted executable) after it
    const p = sel.processes[0];
    expect(p?.why).toEqual(['deleted executable', 'executable in a writable directory']);
    for (const f of sel.processes.slice(1)) expect(f.why.join(' ')).toMatch(new RegExp(`fork of ${p?.pid}`));
    expect(sel.processes.every((x) => x.status === 'complete')).toBe(true);
    expect(sel.processes.some((x) => x.why.includes('every process'))).toBe(false);
    const corePath = `containers/app/memory/${p?.pid}.core`;
    expect(arts.find((a) => a.path === corePath)?.status).toBe('complete');
    const core = join(loc, corePath);
    const bytes = readFileSync(core);
    const at = bytes.indexOf(MARKER);
    expect(at).toBeGreaterThan(0);
    const index = bundleJson<{
      status: string;
      coreSha256: string;
      regions: { start: string; coreOffset?: number; bytes: number; status: string }[];
    }>(loc, `containers/app/memory/${p?.pid}.index.json`);
    expect(index.status).toBe('complete');
    const region = index.regions.find(
      (r) => r.coreOffset !== undefined && at >= r.coreOffset && at < r.coreOffset + r.bytes,
    );
    expect(region).toBeDefined();
    const addr = BigInt(`0x${region?.start}`) + BigInt(at - (region?.coreOffset ?? 0));
    expect(execFileSync('readelf', ['-hW', core], { encoding: 'utf8' })).toMatch(/CORE \(Core file\)/);
    const gdb = execFileSync(
      'gdb',
      ['-nx', '-batch', '-ex', `core-file ${core}`, '-ex', `x/s 0x${addr.toString(16)}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(gdb).toContain(`"${MARKER}"`);
    // the stored hash is the hash of what the index describes
    const v = await verifyEvidence(loc);
    expect(v.status).toMatch(/^(valid|unanchored)$/);
  }, 120_000);

  it('a core over its per-process cap is truncated, and so are the selection and the target', async () => {
    const { report, sel, arts, loc } = await acquire(
      [memoryOnly({ maxBytesPerProcess: 64 * 1024 })],
      [IMPLANT],
    );
    const p = sel.processes[0];
    const core = arts.find((a) => a.path === `containers/app/memory/${p?.pid}.core`);
    expect(core?.status).toBe('truncated');
    expect(core?.reason).toMatch(/left out by caps/);
    expect(arts.find((a) => a.path === 'containers/app/memory/selection.json')?.status).toBe('truncated');
    expect(report.status).toBe('partial');
    const index = bundleJson<{ status: string }>(loc, `containers/app/memory/${p?.pid}.index.json`);
    expect(index.status).toBe('partial');
  }, 120_000);

  it('suspects beyond the process cap are listed as left out, never silently dropped', async () => {
    const second = { ...IMPLANT, argv: ['/tmp/.a/sh', '-c', 'while :; do sleep 9; done'] };
    const { report, sel, arts } = await acquire([memoryOnly({ maxProcesses: 1 })], [IMPLANT, second]);
    expect(sel.processes.length).toBe(1);
    expect(sel.leftOut.length).toBeGreaterThanOrEqual(1);
    const s = arts.find((a) => a.path === 'containers/app/memory/selection.json');
    expect(s?.status).toBe('truncated');
    expect(s?.reason).toMatch(/left out by the process cap of 1/);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a process that does not exist is failed with the reason, never an empty complete core', async () => {
    const { report, sel, arts } = await acquire([memoryOnly({ select: 'none', pids: [4_000_000] })], []);
    expect(sel.processes[0]?.status).toBe('failed');
    const core = arts.find((a) => a.path === 'containers/app/memory/4000000.core');
    expect(core?.status).toBe('failed');
    expect(core?.reason).toMatch(/unreadable/);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a read exec cut mid-core with a clean exit 0 is truncated', async () => {
    const cut: FileList = [
      {
        path: '/usr/local/bin/sh',
        content:
          '#!/bin/busybox sh\nif [ "$3" = eksf-memread ]; then /bin/busybox sh "$@" | /bin/busybox head -c 300000; exit 0; fi\nexec /bin/busybox sh "$@"\n',
        mode: 0o755,
      },
    ];
    const { report, sel, arts } = await acquire(['memory'], [IMPLANT], cut);
    const p = sel.processes[0];
    const core = arts.find((a) => a.path === `containers/app/memory/${p?.pid}.core`);
    expect(core?.status, JSON.stringify(core)).not.toBe('complete');
    expect(arts.find((a) => a.path === `containers/app/memory/${p?.pid}.index.json`)?.status).not.toBe(
      'complete',
    );
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a read exec killed (exit 137) after perfect output is not complete', async () => {
    const killed: FileList = [
      {
        path: '/usr/local/bin/sh',
        content:
          '#!/bin/busybox sh\nif [ "$3" = eksf-memread ]; then /bin/busybox sh "$@"; exit 137; fi\nexec /bin/busybox sh "$@"\n',
        mode: 0o755,
      },
    ];
    const { report, sel, arts } = await acquire(['memory'], [IMPLANT], killed);
    const p = sel.processes[0];
    const core = arts.find((a) => a.path === `containers/app/memory/${p?.pid}.core`);
    expect(core?.status).not.toBe('complete');
    expect(core?.reason).toMatch(/137/);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a selector takes any process by its command line; the collector never reads its own shell', async () => {
    const { sel } = await acquire([memoryOnly({ select: 'all', match: 'sleep 7' })], [IMPLANT, INNOCENT]);
    // the innocent shell and its `sleep 7` child match; the implant does not
    expect(sel.processes.length).toBeGreaterThan(0);
    for (const p of sel.processes) {
      expect(p.why.slice(0, 2)).toEqual(['every process', 'matches the selection expression']);
      expect(p.status).toBe('complete');
      expect((p as { exe?: string }).exe ?? '').not.toMatch(/var\/tmp/);
    }
    const all = await acquire([memoryOnly({ select: 'all', maxProcesses: 50 })], [INNOCENT]);
    const own = all.sel.processes.filter((p) => p.why.includes('every process'));
    // pid 1 (sleep), the innocent shell, its sleep child: never the collector's own shell
    for (const p of own) expect(p.status).not.toBe('not-read');
    const table = bundleJson<{ collectorShellPid: number }>(all.loc, 'containers/app/proc/processes.json');
    expect(own.map((p) => p.pid)).not.toContain(table.collectorShellPid);
  }, 120_000);

  it('a process table that was cut (more processes than read) leaves the selection truncated', async () => {
    const { sel, arts, report } = await acquire([memoryOnly({}, 1)], [INNOCENT, IMPLANT]);
    const rec = arts.find((a) => a.path === 'containers/app/memory/selection.json');
    expect(rec?.status, JSON.stringify(sel)).toBe('truncated');
    expect(rec?.reason).toMatch(/processes/);
    expect(report.status).toBe('partial');
  }, 120_000);

  it('a container without dd (a shell, no tools): memory is skipped with the reason and the target is not complete', async () => {
    const { report, arts } = await acquire(['memory'], [], [], 'shell-only');
    const rec = arts.find((a) => a.path === 'containers/app/memory/selection.json');
    expect(rec?.status).toBe('skipped');
    expect(rec?.reason).toMatch(/needs `dd`/);
    expect(report.status).toBe('partial');
    expect(report.reasons.join('\n')).toMatch(/process memory not acquired/);
  }, 120_000);

  it('without a process table the selection says what it needs and is not complete', async () => {
    const { report, sel, arts } = await acquire(
      [{ name: 'm', description: 'memory alone', items: [{ id: 'memory', kind: 'memory' }] }],
      [IMPLANT],
    );
    expect(sel.problem).toMatch(/needs a `proc` item/);
    expect(arts.find((a) => a.path === 'containers/app/memory/selection.json')?.status).toBe('truncated');
    expect(report.status).toBe('partial');
  }, 120_000);
});
