/**
 * TarSink's writer: large artifacts stream straight into the archive behind a placeholder header
 * that is rewritten at the end. GNU tar must read every such bundle, the sidecar must hash the
 * final file, and a crash, a failing source or concurrent large artifacts must not corrupt it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open as openFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ManifestSchema, TarSink, verifyEvidence } from '../../src/evidence/index.js';
import { setHashOffloadDefault } from '../../src/util/index.js';
import { pattern, runAndKill, sha256 } from './helpers.js';

const run = promisify(execFile);
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'eksf-tarw-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const src = { source: { kind: 'test' } };
const bytesOf = (total: number, seed: number) => Buffer.concat([...pattern(total, 64 * 1024, seed)]);

/** Lists with GNU tar, extracts, and compares every stored artifact with the manifest and `expected`. */
async function gnuTarCheck(file: string, id: string, expected: Map<string, Buffer>): Promise<void> {
  const gz = file.endsWith('.gz');
  const list = await run('tar', [gz ? '-tzvf' : '-tvf', file]);
  expect(list.stderr).toBe('');
  const out = await mkdtemp(join(root, 'x-'));
  const x = await run('tar', [gz ? '-xzf' : '-xf', file, '-C', out]);
  expect(x.stderr).toBe('');
  const manifest = ManifestSchema.parse(JSON.parse(await readFile(join(out, id, 'manifest.json'), 'utf8')));
  for (const a of manifest.artifacts.filter((r) => r.stored)) {
    expect(sha256(await readFile(join(out, id, a.path)))).toBe(a.sha256);
  }
  for (const [path, body] of expected) {
    expect(sha256(await readFile(join(out, id, path)))).toBe(sha256(body));
  }
  const check = await run('sha256sum', ['-c', `${file}.sha256`], { cwd: join(file, '..') });
  expect(check.stdout).toContain(': OK');
}

describe('TarSink streams large artifacts into the archive', () => {
  for (const gzip of [false, true]) {
    const ext = gzip ? '.tar.gz' : '.tar';

    it(`${ext}: streamed entries (also with a pax long name and sizes on and off block bounds) read back with GNU tar`, async () => {
      const sink = new TarSink({ root: join(root, `s-${gzip}`), gzip, memoryBufferBytes: 64 * 1024 });
      const w = await sink.open({ acquisitionId: 'acq-s' });
      const expected = new Map<string, Buffer>();
      const longName = `deep/${'d'.repeat(120)}/é-${'x'.repeat(90)}.bin`;
      const sizes: Array<[string, number]> = [
        ['a.bin', 5 * 1024 * 1024 + 17], // ends mid-slot, not on a 512-byte block
        [longName, 3 * 1024 * 1024], // a multiple of 512
        ['small.txt', 1000], // stays in memory
        ['b.bin', 1024 * 1024 + 512 * 3 + 1],
      ];
      let seed = 1;
      for (const [path, size] of sizes) {
        const body = bytesOf(size, seed++);
        expected.set(path, body);
        const rec = await w.writeArtifact(
          path,
          Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]),
          src,
        );
        expect(rec.status).toBe('complete');
        expect(rec.sha256).toBe(sha256(body));
      }
      const res = await w.finalize();
      const report = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('valid');
      expect(res.bundleSha256).toBe(sha256(await readFile(res.location)));
      await gnuTarCheck(res.location, 'acq-s', expected);
    });

    it(`${ext}: two large artifacts at once (one streams, one spools) and many small ones all land intact`, async () => {
      const sink = new TarSink({ root: join(root, `c-${gzip}`), gzip, memoryBufferBytes: 32 * 1024 });
      const w = await sink.open({ acquisitionId: 'acq-c' });
      const expected = new Map<string, Buffer>();
      const jobs: Promise<unknown>[] = [];
      for (let i = 0; i < 2; i++) {
        const body = bytesOf(4 * 1024 * 1024 + i * 999, 10 + i);
        expected.set(`big-${i}.bin`, body);
        // slow sources, so that both are open while the other streams
        const slow = Readable.from(
          (async function* () {
            for (let off = 0; off < body.length; off += 256 * 1024) {
              await new Promise((r) => setTimeout(r, 2));
              yield body.subarray(off, off + 256 * 1024);
            }
          })(),
        );
        jobs.push(w.writeArtifact(`big-${i}.bin`, slow, src));
      }
      for (let i = 0; i < 20; i++) {
        const body = bytesOf(100 + i * 3000, 100 + i);
        expected.set(`small/${i}.txt`, body);
        jobs.push(w.writeArtifact(`small/${i}.txt`, body, src));
      }
      await Promise.all(jobs);
      const res = await w.finalize();
      expect(res.artifacts.every((a) => a.status === 'complete')).toBe(true);
      const report = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('valid');
      await gnuTarCheck(res.location, 'acq-c', expected);
    });

    it(`${ext}: a source failing mid-stream keeps the bytes received, with a header that says so`, async () => {
      const sink = new TarSink({ root: join(root, `f-${gzip}`), gzip, memoryBufferBytes: 64 * 1024 });
      const w = await sink.open({ acquisitionId: 'acq-f' });
      const body = bytesOf(2 * 1024 * 1024 + 333, 7);
      const failing = Readable.from(
        (async function* () {
          yield body.subarray(0, 1024 * 1024);
          yield body.subarray(1024 * 1024);
          throw new Error('connection reset by the target');
        })(),
      );
      const rec = await w.writeArtifact('cut.bin', failing, src);
      expect(rec.status).toBe('failed');
      expect(rec.bytes).toBe(body.length);
      expect(rec.sha256).toBe(sha256(body));
      await w.writeArtifact('after.txt', 'written after the failure', src);
      const res = await w.finalize();
      const report = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('valid');
      await gnuTarCheck(res.location, 'acq-f', new Map([['cut.bin', body]]));
    });

    it.each(['none', 'exact', 'short'])(
      `${ext}: killed while a large artifact streams (size hint: %s): verifies as incomplete, forged bytes are not entries`,
      async (hint) => {
        const dir = join(root, `k-${gzip}-${hint}`);
        const location = await runAndKill(fileURLToPath(new URL('./tar-writer-child.ts', import.meta.url)), [
          gzip ? 'tar.gz' : 'tar',
          dir,
          hint,
        ]);
        // the large artifact's bytes reached the file behind the placeholder
        const fh = await openFile(location, 'r');
        const size = (await fh.stat()).size;
        await fh.close();
        if (!gzip) {
          expect(size).toBeGreaterThan(2 * 1024 * 1024);
          // An exact hint puts the guessed header (valid, announcing the hinted size) in the file; a
          // short one must have been replaced by the placeholder before the data passed the hint.
          const raw = await readFile(location);
          const h = raw.subarray(raw.indexOf(Buffer.from('acq-kill/big.bin')));
          let sum = 0;
          for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
          const valid = Number.parseInt(h.subarray(148, 155).toString('latin1'), 8) === sum;
          expect(valid).toBe(hint === 'exact');
          if (hint === 'exact')
            expect(Number.parseInt(h.subarray(124, 136).toString('latin1'), 8)).toBe(512 + (3 << 20) + 4096);
        }
        const report = await verifyEvidence(location, { acceptUnanchored: true });
        expect(report.problems).toEqual([]);
        expect(report.status).toBe('incomplete');
        expect(report.checked).toBe(1);
        expect(report.interrupted).toEqual(['big.bin']);
        expect(report.unexpected ?? []).toEqual([]);
        // GNU tar, too, must not find the forged entry in what the crash left
        const listed = await run('tar', [gzip ? '-tzf' : '-tf', location]).catch(
          (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
        );
        expect(listed.stdout).not.toContain('forged.txt');
      },
    );

    it.each([false, true])(
      `${ext}: size hints (exact, short, long, nonsense) never change what is stored or what verifies (hash workers: %s)`,
      async (offload) => {
        setHashOffloadDefault(offload);
        onTestFinished(() => setHashOffloadDefault('auto'));
        const sink = new TarSink({
          root: join(root, `h-${gzip}-${offload}`),
          gzip,
          memoryBufferBytes: 64 * 1024,
        });
        const w = await sink.open({ acquisitionId: 'acq-h' });
        const expected = new Map<string, Buffer>();
        const size = 3 * 1024 * 1024 + 77;
        const hints: Array<[string, number]> = [
          ['exact', size],
          ['short', 1024 * 1024],
          ['one-short', size - 1],
          ['long', size + 1],
          ['far-long', 64 * 1024 * 1024 * 1024],
          ['past-octal', 9 * 1024 * 1024 * 1024],
          ['zero', 0],
          ['negative', -5],
          ['nan', Number.NaN],
          ['fraction', size + 0.5],
        ];
        let seed = 40;
        for (const [name, expectedBytes] of hints) {
          // A forged header right where a header guessed from the hint would end the data.
          const body = bytesOf(size, seed++);
          const forged = Buffer.alloc(512);
          forged.write(`acq-h/forged-${name}.txt`, 0);
          forged.write('ustar\u000000', 257, 'latin1');
          if (expectedBytes > 0 && expectedBytes + 512 <= size) forged.copy(body, expectedBytes);
          expected.set(`${name}.bin`, body);
          const rec = await w.writeArtifact(
            `${name}.bin`,
            Readable.from([
              body.subarray(0, 70_000),
              body.subarray(70_000, 1_500_000),
              body.subarray(1_500_000),
            ]),
            { ...src, expectedBytes },
          );
          expect(rec.status, name).toBe('complete');
          expect(rec.bytes, name).toBe(size);
          expect(rec.sha256, name).toBe(sha256(body));
          expect(rec).not.toHaveProperty('expectedBytes');
        }
        // an exact hint on an artifact that then fails mid-stream
        const cut = bytesOf(2 * 1024 * 1024, 99);
        const failing = Readable.from(
          (async function* () {
            yield cut;
            throw new Error('connection reset by the target');
          })(),
        );
        const rec = await w.writeArtifact('cut.bin', failing, { ...src, expectedBytes: 8 * 1024 * 1024 });
        expect(rec.status).toBe('failed');
        expect(rec.sha256).toBe(sha256(cut));
        expected.set('cut.bin', cut);
        const res = await w.finalize();
        expect(res.bundleSha256).toBe(sha256(await readFile(res.location)));
        const report = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
        expect(report.problems).toEqual([]);
        expect(report.status).toBe('valid');
        await gnuTarCheck(res.location, 'acq-h', expected);
        const listed = await run('tar', [gzip ? '-tzf' : '-tf', res.location]);
        expect(listed.stdout).not.toContain('forged');
        if (!gzip) {
          // one byte of the exact-hint artifact changed after the fact: verification must see it
          const raw = await readFile(res.location);
          const at = raw.indexOf(Buffer.from('acq-h/exact.bin')) + 512 + 1000;
          const fh = await openFile(res.location, 'r+');
          await fh.write(Buffer.from([(raw[at] as number) ^ 1]), 0, 1, at);
          await fh.close();
          const damaged = await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 });
          expect(damaged.status).not.toBe('valid');
          expect(damaged.problems.map((p) => p.path)).toContain('exact.bin');
        }
      },
    );
  }

  it('the placeholder of a streaming entry is not a valid header', async () => {
    const sink = new TarSink({ root: join(root, 'ph'), memoryBufferBytes: 1024 });
    const w = await sink.open({ acquisitionId: 'acq-ph' });
    const src2 = new Readable({ read() {} });
    src2.push(Buffer.alloc(2 << 20, 1)); // fills the first 1 MiB slot, which then goes to the file
    const pending = w.writeArtifact('open.bin', src2, src);
    await new Promise((r) => setTimeout(r, 100));
    const raw = await readFile(w.location);
    // block 0: the bundle directory; block 1: the placeholder of open.bin
    const ph = raw.subarray(512, 1024);
    expect(ph.subarray(0, 16).toString('latin1')).toContain('acq-ph/open.bin');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (ph[i] as number);
    expect(Number.parseInt(ph.subarray(148, 155).toString('latin1'), 8)).not.toBe(sum);
    src2.push(null);
    await pending;
    const res = await w.finalize();
    expect((await verifyEvidence(res.location, { expectedManifestSha256: res.manifestSha256 })).status).toBe(
      'valid',
    );
  });
});
