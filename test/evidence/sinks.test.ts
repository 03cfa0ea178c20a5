import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvidenceError, ValidationError } from '../../src/errors.js';
import {
  type BundleInit,
  type BundleWriter,
  CustodySchema,
  DirectorySink,
  type EvidenceSink,
  evidenceJsonSchemas,
  ManifestSchema,
  type MemoryBundle,
  MemorySink,
  SealSchema,
  TarSink,
  verifyEvidence,
} from '../../src/evidence/index.js';
import { sealPayload } from '../../src/evidence/seal.js';
import { custodyInput, type Files, pattern, sha256, tamperer, writeSample } from './helpers.js';

const run = promisify(execFile);
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'eksf-evidence-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Kind {
  name: string;
  sink: () => EvidenceSink;
  /** What verifyEvidence gets for a bundle. */
  loc: (sink: EvidenceSink, w: BundleWriter) => string | MemoryBundle;
}
let n = 0;
const kinds: Kind[] = [
  {
    name: 'directory',
    sink: () => new DirectorySink({ root: join(root, `dir-${n++}`) }),
    loc: (_s, w) => w.location,
  },
  { name: 'tar', sink: () => new TarSink({ root: join(root, `tar-${n++}`) }), loc: (_s, w) => w.location },
  {
    name: 'tar.gz',
    sink: () => new TarSink({ root: join(root, `tgz-${n++}`), gzip: true, memoryBufferBytes: 64 * 1024 }),
    loc: (_s, w) => w.location,
  },
  {
    name: 'memory',
    sink: () => new MemorySink(),
    loc: (s, w) => (s as MemorySink).bundles.get(w.acquisitionId) as MemoryBundle,
  },
];

async function fresh(kind: Kind, init: BundleInit = {}) {
  const sink = kind.sink();
  const w = await sink.open({ caseId: 'IR-7', ...init });
  const sample = await writeSample(w);
  const res = await w.finalize(custodyInput);
  const loc = kind.loc(sink, w);
  const t = tamperer(
    kind.name === 'memory' ? 'memory' : kind.name === 'directory' ? 'directory' : 'tar',
    loc,
    w.acquisitionId,
  );
  return { sink, w, sample, res, loc, t };
}

function editJson(files: Files, name: string, edit: (v: Record<string, unknown>) => void): void {
  const v = JSON.parse((files.get(name) as Buffer).toString('utf8')) as Record<string, unknown>;
  edit(v);
  files.set(name, Buffer.from(`${JSON.stringify(v, null, 2)}\n`));
}

for (const kind of kinds) {
  describe(`${kind.name} sink`, () => {
    it('writes a bundle that verifies, with manifest, custody, seal and sidecar', async () => {
      const { res, sample, loc } = await fresh(kind);
      const report = await verifyEvidence(loc, { expectedManifestSha256: res.manifestSha256 });
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('valid');
      expect(report.ok).toBe(true);
      expect(report.anchors).toEqual(['expected-manifest-sha256']);
      expect(report.consistency).toContain('sidecar-beside-bundle');
      expect(report.checked).toBe(4); // 2 stored artifacts + journal + log
      expect(report.manifestSha256).toBe(res.manifestSha256);

      const m = ManifestSchema.parse(res.manifest);
      expect(m.counts).toEqual({ complete: 2, truncated: 0, failed: 0, skipped: 1 });
      const big = m.artifacts.find((a) => a.path === sample.big);
      let all = Buffer.alloc(0);
      for (const c of pattern(sample.bigBytes)) all = Buffer.concat([all, c]);
      expect(big?.sha256).toBe(sha256(all));
      expect(big?.bytes).toBe(sample.bigBytes);
      expect(big?.exitCode).toBe(0);
      expect(big?.argv).toEqual(['cat', '/proc/1/maps']);
      const skipped = m.artifacts.find((a) => a.path === sample.failed);
      expect(skipped).toMatchObject({
        status: 'skipped',
        reason: 'not readable (EACCES)',
        stored: false,
        bytes: 0,
      });

      const c = CustodySchema.parse(res.custody);
      expect(c.manifestSha256).toBe(res.manifestSha256);
      expect(c.examiner.callerArn).toBe(custodyInput.examiner.callerArn);
      expect(c.targets[0]?.containers[0]?.imageDigest).toContain('@sha256:');
      expect(c.changes).toHaveLength(1);
      expect(c.changes[0]?.kind).toBe('ephemeral-container-added');
      expect(c.sink).toEqual({ kind: kind.name === 'tar.gz' ? 'tar' : kind.name, location: res.location });
      expect(c.startedAt <= c.finishedAt).toBe(true);
    });

    const tampers: Array<
      [
        string,
        (f: Files, s: { small: string; big: string }) => void,
        'modified' | 'missing' | 'unexpected',
        (s: { small: string; big: string }) => string,
      ]
    > = [
      [
        'one flipped byte',
        (f, s) => {
          const b = f.get(s.big) as Buffer;
          b[12345] = (b[12345] ?? 0) ^ 0x01;
        },
        'modified',
        (s) => s.big,
      ],
      [
        'one truncated file',
        (f, s) => f.set(s.big, (f.get(s.big) as Buffer).subarray(0, 1000)),
        'modified',
        (s) => s.big,
      ],
      [
        'one added file',
        (f) => f.set('containers/app/planted.sh', Buffer.from('#!/bin/sh\n')),
        'unexpected',
        () => 'containers/app/planted.sh',
      ],
      ['one deleted file', (f, s) => f.delete(s.small), 'missing', (s) => s.small],
      ['a deleted acquisition.log', (f) => f.delete('acquisition.log'), 'missing', () => 'acquisition.log'],
      [
        'an edited manifest',
        (f) =>
          editJson(f, 'manifest.json', (m) => {
            (m.artifacts as Array<Record<string, unknown>>)[0]!.reason = 'edited';
          }),
        'modified',
        () => 'manifest.json',
      ],
      [
        'an edited custody record',
        (f) =>
          editJson(f, 'custody.json', (c) => {
            (c.examiner as Record<string, unknown>).name = 'Mallory';
          }),
        'modified',
        () => 'custody.json',
      ],
    ];
    for (const [what, mutate, list, path] of tampers) {
      it(`detects ${what}`, async () => {
        const { t, loc, sample } = await fresh(kind);
        const files = await t.load();
        mutate(files, sample);
        await t.store(files);
        const report = await verifyEvidence(loc);
        expect(report.status).toBe('invalid');
        expect(report.ok).toBe(false);
        expect(report[list]).toContain(path(sample));
        expect(report.problems.length).toBeGreaterThan(0);
      });
    }

    it('detects a consistent rewrite of manifest + custody + seal through the sidecar, and the signature', async () => {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const { t, loc, sample } = await fresh(kind, { signingKey: privateKey });
      expect((await verifyEvidence(loc, { publicKey })).status).toBe('valid');
      expect((await verifyEvidence(loc, { publicKey })).signature).toBe('valid');
      const files = await t.load();
      // The forger removes an artifact and re-computes every internal hash without the key.
      files.delete(sample.small);
      editJson(files, 'manifest.json', (m) => {
        m.artifacts = (m.artifacts as Array<{ path: string }>).filter((a) => a.path !== sample.small);
        (m.counts as Record<string, number>).complete = 1;
      });
      const mh = sha256(files.get('manifest.json') as Buffer);
      editJson(files, 'custody.json', (c) => {
        c.manifestSha256 = mh;
      });
      const ch = sha256(files.get('custody.json') as Buffer);
      editJson(files, 'seal.json', (s) => {
        s.manifestSha256 = mh;
        s.custodySha256 = ch;
      });
      await t.store(files);
      const withSidecar = await verifyEvidence(loc);
      expect(withSidecar.status).toBe('invalid');
      expect(withSidecar.problems.some((p) => p.code === 'sidecar')).toBe(true);
      const signed = await verifyEvidence(loc, { publicKey });
      expect(signed.signature).toBe('invalid');
      expect(signed.status).toBe('invalid');
      const wrongKey = generateKeyPairSync('ed25519').publicKey;
      expect((await verifyEvidence(loc, { publicKey: wrongKey })).signature).toBe('invalid');
    });

    it('does not let a finalized bundle pass as incomplete when its manifest, custody and seal are deleted', async () => {
      const { t, loc } = await fresh(kind);
      const files = await t.load();
      for (const f of ['manifest.json', 'custody.json', 'seal.json']) files.delete(f);
      await t.store(files);
      const report = await verifyEvidence(loc);
      expect(report.status).toBe('invalid');
      expect(report.missing).toEqual(expect.arrayContaining(['manifest.json', 'custody.json', 'seal.json']));
    });

    it('reports an aborted acquisition as incomplete and keeps what was written', async () => {
      const sink = kind.sink();
      const w = await sink.open({});
      const a = await w.writeArtifact('a.txt', 'hello', { source: { kind: 'test' } });
      const slow = new Readable({ read() {} });
      slow.push(Buffer.alloc(100_000, 7));
      const pending = w.writeArtifact('slow.bin', slow, { source: { kind: 'exec' } });
      await new Promise((r) => setTimeout(r, 50));
      await w.abort('operator cancelled');
      const rec = await pending;
      expect(rec.status).toBe('failed');
      expect(rec.reason).toContain('operator cancelled');
      expect(rec.stored).toBe(true);
      expect(rec.bytes).toBe(100_000);
      await expect(w.writeArtifact('late', 'x', { source: { kind: 'test' } })).rejects.toBeInstanceOf(
        EvidenceError,
      );
      await expect(w.finalize()).rejects.toBeInstanceOf(EvidenceError);
      const report = await verifyEvidence(kind.loc(sink, w));
      expect(report.problems).toEqual([]);
      expect(report.status).toBe('incomplete');
      expect(report.complete).toBe(false);
      expect(report.ok).toBe(false);
      expect(report.aborted).toBe('operator cancelled');
      expect(report.checked).toBe(2);
      expect(a.sha256).toBe(sha256('hello'));
    });

    it('reports a bundle never finalized (crash) as incomplete, and tampering with it as invalid', async () => {
      const sink = kind.sink();
      const w = await sink.open({});
      await w.writeArtifact('one.txt', 'one', { source: { kind: 'test' } });
      await w.writeArtifact('two.txt', 'two', { source: { kind: 'test' } });
      // no finalize, no abort: the process "died" here
      const loc = kind.loc(sink, w);
      const report = await verifyEvidence(loc);
      expect(report.status).toBe('incomplete');
      expect(report.complete).toBe(false);
      if (kind.name === 'directory') {
        await unlink(join(w.location, 'two.txt'));
        const r2 = await verifyEvidence(loc);
        expect(r2.status).toBe('invalid');
        expect(r2.missing).toEqual(['two.txt']);
      }
      // The "dead" writer still holds its journal in this live process: release it.
      await w.abort('test cleanup');
    });

    it('records a failing source as failed with the bytes received, and the bundle stays valid', async () => {
      const sink = kind.sink();
      const w = await sink.open({});
      async function* broken() {
        yield Buffer.alloc(70_000, 1);
        yield Buffer.alloc(30_000, 2);
        throw new Error('connection reset by peer');
      }
      const rec = await w.writeArtifact('broken.bin', broken(), { source: { kind: 'exec' } });
      expect(rec).toMatchObject({ status: 'failed', stored: true, bytes: 100_000 });
      expect(rec.reason).toContain('connection reset by peer');
      const fin = await w.writeArtifact('finish-fails', 'abc', {
        source: { kind: 'exec' },
        finish: () => {
          throw new Error('exit status unknown');
        },
      });
      expect(fin.status).toBe('failed');
      expect(fin.reason).toContain('exit status unknown');
      const res = await w.finalize();
      expect(res.manifest.counts.failed).toBe(2);
      expect((await verifyEvidence(kind.loc(sink, w), { acceptUnanchored: true })).status).toBe('valid');
    });

    it('takes many concurrent artifacts with colliding names', async () => {
      const sink = kind.sink();
      const w = await sink.open({});
      const sizes = Array.from({ length: 24 }, (_, i) => (i * 37_911) % 400_000);
      const recs = await Promise.all(
        sizes.map((size, i) =>
          w.writeArtifact(
            i % 3 === 0 ? 'same/Name.log' : `f/${i}.bin`,
            Readable.from(pattern(size, 8192, i + 1)),
            {
              source: { kind: 'test' },
            },
          ),
        ),
      );
      expect(new Set(recs.map((r) => r.path)).size).toBe(24);
      recs.forEach((r, i) => {
        let all = Buffer.alloc(0);
        for (const c of pattern(sizes[i] ?? 0, 8192, i + 1)) all = Buffer.concat([all, c]);
        expect(r.sha256).toBe(sha256(all));
      });
      const fin = await w.finalize();
      expect(
        (await verifyEvidence(kind.loc(sink, w), { expectedManifestSha256: fin.manifestSha256 })).status,
      ).toBe('valid');
    });

    it('refuses an existing acquisition id and invalid custody input', async () => {
      const sink = kind.sink();
      const w = await sink.open({ acquisitionId: 'acq-fixed' });
      await expect(sink.open({ acquisitionId: 'acq-fixed' })).rejects.toBeInstanceOf(EvidenceError);
      await expect(sink.open({ acquisitionId: '../escape' })).rejects.toThrow(/safe single file name/);
      await expect(
        w.finalize({ targets: [{ namespace: 3 as unknown as string, pod: { name: 'p' } }] }),
      ).rejects.toBeInstanceOf(ValidationError);
      // still usable after a rejected custody
      const ok = await w.finalize({});
      expect(ok.acquisitionId).toBe('acq-fixed');
    });
  });
}

describe('tar bundles and GNU tar', () => {
  for (const gzip of [false, true]) {
    it(`system tar lists and extracts a ${gzip ? '.tar.gz' : '.tar'} bundle that matches the manifest`, async () => {
      const sink = new TarSink({ root: join(root, `gnu-${gzip}`), gzip, memoryBufferBytes: 128 * 1024 });
      const w = await sink.open({ acquisitionId: 'acq-gnu' });
      await writeSample(w);
      await w.writeArtifact(`long/${'n'.repeat(150)}/é-unicode ${'x'.repeat(120)}.txt`, 'long name', {
        source: { kind: 'test' },
      });
      const res = await w.finalize(custodyInput);
      const list = await run('tar', [gzip ? '-tzvf' : '-tvf', res.location]);
      expect(list.stdout).toContain('acq-gnu/manifest.json');
      const out = join(root, `gnu-out-${gzip}`);
      await run('mkdir', ['-p', out]);
      await run('tar', [gzip ? '-xzf' : '-xf', res.location, '-C', out]);
      const manifest = ManifestSchema.parse(
        JSON.parse(await readFile(join(out, 'acq-gnu', 'manifest.json'), 'utf8')),
      );
      expect(sha256(await readFile(join(out, 'acq-gnu', 'manifest.json')))).toBe(res.manifestSha256);
      for (const a of manifest.artifacts.filter((x) => x.stored)) {
        expect(sha256(await readFile(join(out, 'acq-gnu', a.path)))).toBe(a.sha256);
      }
      for (const f of manifest.bundleFiles) {
        expect(sha256(await readFile(join(out, 'acq-gnu', f.path)))).toBe(f.sha256);
      }
      const custody = CustodySchema.parse(
        JSON.parse(await readFile(join(out, 'acq-gnu', 'custody.json'), 'utf8')),
      );
      expect(custody.manifestSha256).toBe(res.manifestSha256);
      // sidecar checks with sha256sum
      const check = await run('sha256sum', ['-c', `${res.location}.sha256`], { cwd: sink.root });
      expect(check.stdout).toContain(': OK');
      expect(existsSync(`${res.location}.partial`)).toBe(false);
    });
  }

  it('directory sidecar passes sha256sum -c', async () => {
    const sink = new DirectorySink({ root: join(root, 'dir-sum') });
    const w = await sink.open({ acquisitionId: 'acq-sum' });
    await writeSample(w);
    const res = await w.finalize(custodyInput);
    const check = await run('sha256sum', ['-c', res.sidecar as string], { cwd: sink.root });
    expect(check.stdout).toMatch(/manifest\.json: OK[\s\S]*custody\.json: OK/);
  });

  it('a tar with a duplicated entry (extraction would overwrite) is invalid', async () => {
    const sink = new TarSink({ root: join(root, 'dup') });
    const w = await sink.open({ acquisitionId: 'acq-dup' });
    await writeSample(w);
    const res = await w.finalize();
    const { loadTar, storeTar } = await import('./helpers.js');
    const files = await loadTar(res.location);
    const { pack } = await import('tar-stream');
    const { createWriteStream } = await import('node:fs');
    const { pipeline } = await import('node:stream/promises');
    const p = pack();
    const done = pipeline(p, createWriteStream(res.location));
    for (const [k, v] of files) p.entry({ name: `acq-dup/${k}` }, v);
    p.entry({ name: 'acq-dup/pod/pod.json' }, Buffer.from('{"forged":true}'));
    p.finalize();
    await done;
    const report = await verifyEvidence(res.location);
    expect(report.status).toBe('invalid');
    expect(report.unexpected).toContain('pod/pod.json');
    void storeTar;
  });
});

describe('signing and schemas', () => {
  it('signs the seal payload with Ed25519 and rejects non-Ed25519 keys', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const sink = new MemorySink();
    const w = await sink.open({ signingKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string });
    await w.writeArtifact('x', 'y', { source: { kind: 'test' } });
    const res = await w.finalize();
    expect(res.signed).toBe(true);
    const bundle = sink.bundles.get(res.acquisitionId) as MemoryBundle;
    const seal = SealSchema.parse(JSON.parse((bundle.files.get('seal.json') as Buffer).toString()));
    const { verify } = await import('node:crypto');
    expect(
      verify(
        null,
        sealPayload(seal.acquisitionId, seal.manifestSha256, seal.custodySha256),
        publicKey,
        Buffer.from(seal.signature?.value ?? '', 'base64'),
      ),
    ).toBe(true);
    const report = await verifyEvidence(bundle, {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    });
    expect(report.signature).toBe('valid');
    expect(report.anchors).toContain('signature');
    expect((await verifyEvidence(bundle)).signature).toBe('unchecked');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    await expect(sink.open({ signingKey: rsa })).rejects.toThrow(/Ed25519/);
    // unsigned bundle + public key → invalid
    const w2 = await sink.open({});
    const r2 = await w2.finalize();
    const rep2 = await verifyEvidence(sink.bundles.get(r2.acquisitionId) as MemoryBundle, { publicKey });
    expect(rep2.status).toBe('invalid');
    expect(rep2.signature).toBe('invalid');
  });

  it('checks an expected manifest hash', async () => {
    const sink = new MemorySink();
    const w = await sink.open({});
    const res = await w.finalize();
    const b = sink.bundles.get(res.acquisitionId) as MemoryBundle;
    expect((await verifyEvidence(b, { expectedManifestSha256: res.manifestSha256 })).anchors).toContain(
      'expected-manifest-sha256',
    );
    expect((await verifyEvidence(b, { expectedManifestSha256: '0'.repeat(64) })).status).toBe('invalid');
  });

  it('docs/schemas holds the current JSON Schemas', async () => {
    const s = evidenceJsonSchemas();
    for (const [k, v] of Object.entries(s)) {
      const file = fileURLToPath(new URL(`../../docs/schemas/evidence-${k}.schema.json`, import.meta.url));
      expect(
        JSON.parse(await readFile(file, 'utf8')),
        `${file} is stale: regenerate it from evidenceJsonSchemas()`,
      ).toEqual(v);
    }
  });

  it('exports JSON Schemas with schemaVersion', () => {
    const s = evidenceJsonSchemas() as Record<string, { properties?: Record<string, unknown> }>;
    expect(Object.keys(s.manifest?.properties ?? {})).toEqual(
      expect.arrayContaining(['schemaVersion', 'artifacts']),
    );
    expect(Object.keys(s.custody?.properties ?? {})).toEqual(
      expect.arrayContaining(['schemaVersion', 'examiner', 'targets', 'changes', 'manifestSha256']),
    );
  });
});
