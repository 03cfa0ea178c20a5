/**
 * What a newcomer meets when a sink's root is wrong, and that no file descriptor outlives a
 * bundle whose open or finalize failed (a responder host runs for a long time).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvidenceError } from '../../src/errors.js';
import { AuxFiles } from '../../src/evidence/fsutil.js';
import { DirectorySink, TarSink } from '../../src/evidence/index.js';

let base = '';
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'eksf-sink-errors-'));
});
afterAll(() => rm(base, { recursive: true, force: true }));

/** Paths under `dir` this process holds open (Linux /proc). */
function openUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const sinks = [
  { name: 'DirectorySink', make: (root: string) => new DirectorySink({ root }) },
  { name: 'TarSink', make: (root: string) => new TarSink({ root }) },
] as const;

describe.each(sinks)('$name root errors', ({ make }) => {
  it('a root that is a file says so, not "already exists"', async () => {
    const file = join(base, `${Math.random()}.txt`);
    await writeFile(file, 'not a folder');
    const err = await make(file)
      .open({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvidenceError);
    expect((err as Error).message).toMatch(/sink root .* is not a folder/);
    expect((err as Error).message).not.toMatch(/already exists/);
  });

  it('a root below a file says so', async () => {
    const file = join(base, `${Math.random()}.txt`);
    await writeFile(file, 'x');
    const err = await make(join(file, 'evidence'))
      .open({})
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/sink root .* is not a folder/);
  });

  it('an existing bundle still says "already exists"', async () => {
    const root = join(base, `exists-${Math.random()}`);
    const first = await make(root).open({ acquisitionId: 'a-1' });
    await first.abort('test');
    const err = await make(root)
      .open({ acquisitionId: 'a-1' })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/already exists/);
  });
});

describe('no descriptor outlives a failed bundle', () => {
  it('DirectorySink: finalize that fails (acquisition.log removed underneath) closes the journal', async () => {
    const root = join(base, `leak-dir-${Math.random()}`);
    const w = await new DirectorySink({ root }).open({});
    await w.writeArtifact('a.txt', 'a', { source: { kind: 'test' } });
    expect(openUnder(root).some((p) => p.endsWith('journal.jsonl'))).toBe(true);
    await unlink(join(w.location, 'acquisition.log'));
    await expect(w.finalize()).rejects.toBeInstanceOf(EvidenceError);
    expect(openUnder(root)).toEqual([]);
  });

  it('TarSink: finalize that fails the same way closes every descriptor', async () => {
    const root = join(base, `leak-tar-${Math.random()}`);
    const w = await new TarSink({ root }).open({});
    await w.writeArtifact('a.txt', 'a', { source: { kind: 'test' } });
    await unlink(join(`${w.location}.partial`, 'acquisition.log'));
    await expect(w.finalize()).rejects.toBeInstanceOf(EvidenceError);
    expect(openUnder(root)).toEqual([]);
  });

  it('AuxFiles.create that fails on the log closes the journal it opened', async () => {
    const dir = join(base, `aux-${Math.random()}`);
    await mkdir(dir);
    await writeFile(join(dir, 'acquisition.log'), 'in the way');
    await expect(AuxFiles.create(dir, 'journal.jsonl', 'acquisition.log')).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(openUnder(dir)).toEqual([]);
  });
});

describe.skipIf(process.getuid?.() !== 0)('a root this process cannot write', () => {
  it('names the errno and the uid, not "cannot create bundle folder"', async () => {
    // As root nothing is refused: a child loads the sink as root, then drops to uid 65534.
    const root = join(base, `ro-${Math.random()}`);
    await mkdir(root);
    await chmod(root, 0o755);
    await chmod(base, 0o755);
    const mod = new URL('../../src/evidence/index.ts', import.meta.url).pathname;
    const script = join(base, `probe-${Math.random()}.mts`);
    await writeFile(
      script,
      `import { DirectorySink } from ${JSON.stringify(mod)};
process.setgroups([]); process.setgid(65534); process.setuid(65534);
try { await new DirectorySink({ root: ${JSON.stringify(root)} }).open({}); process.stdout.write('opened'); }
catch (e) { process.stdout.write(JSON.stringify({ code: e.code, message: e.message })); }
`,
    );
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { PATH: process.env.PATH ?? '', TMPDIR: base },
      });
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
      });
      child.once('error', reject);
      child.once('close', () => resolve(buf));
    });
    const r = JSON.parse(out) as { code: string; message: string };
    expect(r.code).toBe('EKSF_EVIDENCE');
    expect(r.message).toMatch(/sink root \S+ (is not writable here )?\(EACCES, uid 65534\)/);
  });
});

// 'mid': between chunks, hint exact; 'end': after the last chunk, hint too long (the tar entry's
// guessed header is reverted, so the archive hash re-reads the entry from the file on a dead thread).
describe.each(sinks)('$name: the hashing threads die', ({ make }) => {
  it.each([
    { when: 'mid', hintParts: 4 },
    { when: 'end', hintParts: 6 },
  ])(
    '$when-artifact: the artifact fails (never complete); a folder still finalizes valid, a tar refuses to seal',
    async ({ when, hintParts }) => {
      const { setHashOffloadDefault, terminateHashWorkers } = await import('../../src/util/index.js');
      const { verifyEvidence } = await import('../../src/evidence/index.js');
      const { Readable } = await import('node:stream');
      setHashOffloadDefault(true);
      try {
        const sink = make(join(base, `hash-dies-${make.name}-${Math.random().toString(36).slice(2)}`));
        const w = await sink.open({});
        const part = Buffer.alloc(2 << 20, 9);
        const source = Readable.from(
          (async function* () {
            yield part;
            yield part;
            if (when === 'mid') await terminateHashWorkers();
            yield part;
            yield part;
            if (when === 'end') await terminateHashWorkers();
          })(),
        );
        const rec = await w.writeArtifact('big.bin', source, {
          source: { kind: 'test' },
          expectedBytes: hintParts * part.length,
        });
        expect(rec.status).toBe('failed');
        expect(rec.reason).toMatch(/hashing worker thread exited/);
        if (sink instanceof TarSink) {
          // The archive's own hash was on a worker too: the tar cannot be sealed, and says why.
          await expect(w.finalize()).rejects.toThrow(/hashing worker thread exited/);
          const report = await verifyEvidence(w.location, { acceptUnanchored: true });
          expect(report.status).not.toBe('valid');
          return;
        }
        await w.writeArtifact('after.txt', 'written after the hashing thread died', {
          source: { kind: 'test' },
        });
        const res = await w.finalize();
        const report = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
        expect(report.problems).toEqual([]);
        expect(report.status).toBe('valid');
        expect(res.artifacts.find((a) => a.path === 'big.bin')?.status).toBe('failed');
      } finally {
        setHashOffloadDefault('auto');
      }
    },
  );
});
