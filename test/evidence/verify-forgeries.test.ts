/**
 * verifyEvidence against someone paid to make an altered bundle verify. Every forgery below is
 * applied on every reader (directory, tar, tar.gz, memory, S3 on moto), and most are made
 * internally consistent (custody, seal and the sidecar beside the bundle recomputed), so only the
 * checks under test can catch them. The verifier is called with `acceptUnanchored: true` so that a
 * forgery must be caught as `invalid`, not merely reported as unanchored.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink, type VerifyReport, verifyEvidence } from '../../src/evidence/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { custodyInput, sha256, writeSample } from './helpers.js';
import {
  artifacts,
  freshPlace,
  getJson,
  journal,
  type Kind,
  LOCAL_KINDS,
  motoClient,
  motoMissing,
  type Place,
  plant,
  putJson,
  reseal,
  setArtifacts,
  setJournal,
  startMoto,
} from './verify-support.js';

let root: string;
let moto: { proc: ChildProcess; endpoint: string } | undefined;
let s3: S3Client | undefined;
const s3Skip = skipWithoutPeer('moto_server', motoMissing);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'eksf-forge-'));
  if (!s3Skip) {
    moto = await startMoto();
    s3 = await motoClient(moto.endpoint);
  }
}, 60_000);
afterAll(async () => {
  s3?.destroy();
  moto?.proc.kill('SIGTERM');
  await rm(root, { recursive: true, force: true });
});

const fresh = (kind: Kind, init = {}) => freshPlace(kind, root, s3, init);
const verify = (p: Place, o: Parameters<typeof verifyEvidence>[1] = {}) =>
  verifyEvidence(p.loc, { acceptUnanchored: true, ...o });
const codes = (r: VerifyReport) => r.problems.map((p) => p.code);
const expectInvalid = (r: VerifyReport, code: string) => {
  expect(r.status, JSON.stringify(r.problems)).toBe('invalid');
  expect(r.ok).toBe(false);
  expect(codes(r), JSON.stringify(r.problems)).toContain(code);
};

/** Applies `forge` to the files, reseals everything inside, stores, reseals the sidecar beside. */
async function forgeConsistently(p: Place, forge: (files: Map<string, Buffer>) => void): Promise<void> {
  const files = await p.load();
  forge(files);
  reseal(files);
  await p.store(files);
  await p.resealSidecar();
}

const ALL: Kind[] = [...LOCAL_KINDS, 's3'];

for (const kind of ALL) {
  describe.skipIf(kind === 's3' && s3Skip)(`${kind}: verifyEvidence is not fooled`, () => {
    it('a fresh bundle: valid only with an external anchor; the sidecar beside it is not one', async () => {
      const p = await fresh(kind);
      const careless = await verifyEvidence(p.loc);
      expect(careless.problems).toEqual([]);
      expect(careless.status).toBe('unanchored');
      expect(careless.ok).toBe(false);
      expect(careless.anchored).toBe(false);
      expect(careless.anchors).toEqual([]);
      expect(careless.consistency).toEqual(
        expect.arrayContaining(['seal', 'custody', 'journal', 'location', 'sidecar-beside-bundle']),
      );
      const pinned = await verifyEvidence(p.loc, { expectedManifestSha256: p.manifestSha256 });
      expect(pinned.status).toBe('valid');
      expect(pinned.anchors).toEqual(['expected-manifest-sha256']);
      const sidecar = await verifyEvidence(p.loc, { sidecar: await p.sidecarText() });
      expect(sidecar.status).toBe('valid');
      expect(sidecar.anchors).toEqual(['sidecar']);
      const optIn = await verify(p);
      expect(optIn.status).toBe('valid');
      expect(optIn.anchored).toBe(false);
    });

    it('a consistent rewrite (custody, seal, sidecar beside recomputed) is unanchored at best, invalid against a kept sidecar', async () => {
      const p = await fresh(kind);
      const kept = await p.sidecarText();
      await forgeConsistently(p, (files) => {
        const m = getJson(files, 'manifest.json');
        m.caseId = 'IR-FORGED';
        putJson(files, 'manifest.json', m);
      });
      const careless = await verifyEvidence(p.loc);
      expect(careless.status).toBe('unanchored'); // what a forger gets: never `valid`
      expect(careless.anchors).toEqual([]);
      expectInvalid(await verifyEvidence(p.loc, { sidecar: kept }), 'sidecar');
      expectInvalid(await verifyEvidence(p.loc, { expectedManifestSha256: p.manifestSha256 }), 'modified');
    });

    it('replay: bundle B stored at A’s place is invalid (identity)', async () => {
      const a = await fresh(kind);
      const b = await fresh(kind);
      if (kind === 'tar' || kind === 'tar.gz') {
        await writeFile(a.loc as string, await readFile(b.loc as string));
      } else {
        await a.store(await b.load());
      }
      await a.resealSidecar();
      const r = await verify(a);
      expectInvalid(r, 'identity');
      expect(r.problems.find((x) => x.code === 'identity')?.message).toContain(b.name);
      // even with B's own anchor, B's bundle at A's place does not verify
      expectInvalid(await verifyEvidence(a.loc, { expectedManifestSha256: b.manifestSha256 }), 'identity');
    });

    it('replay with the ids rewritten but custody.sink.location still naming B is invalid', async () => {
      const a = await fresh(kind);
      const b = await fresh(kind);
      const files = await b.load();
      for (const name of ['manifest.json', 'custody.json', 'seal.json']) {
        const v = getJson(files, name);
        v.acquisitionId = a.name;
        putJson(files, name, v);
      }
      const lines = journal(files);
      (lines[0] as Record<string, unknown>).acquisitionId = a.name;
      setJournal(files, lines);
      reseal(files);
      await a.store(files);
      await a.resealSidecar();
      const r = await verify(a);
      expectInvalid(r, 'identity');
      expect(r.problems.some((x) => x.message.includes('sink location'))).toBe(true);
    });

    it('custody swapped in from another bundle is invalid', async () => {
      const a = await fresh(kind);
      const b = await fresh(kind);
      const theirs = await b.load();
      await forgeConsistently(a, (files) => {
        files.set('custody.json', theirs.get('custody.json') as Buffer);
      });
      expectInvalid(await verify(a), 'identity');
    });

    it('the manifest says complete where the journal recorded skipped: invalid (journal)', async () => {
      const p = await fresh(kind);
      await forgeConsistently(p, (files) => {
        setArtifacts(
          files,
          artifacts(files).map((a) =>
            a.status === 'skipped' ? { ...a, status: 'complete', reason: undefined } : a,
          ),
        );
      });
      const r = await verify(p);
      expectInvalid(r, 'journal');
      expect(r.problems.find((x) => x.code === 'journal')?.message).toMatch(/journal recorded skipped/);
    });

    it('a journal line injected (an artifact the manifest omits) is invalid', async () => {
      const p = await fresh(kind);
      await forgeConsistently(p, (files) => {
        const lines = journal(files);
        const rec = (lines.find((l) => l.type === 'artifact') as { record: Record<string, unknown> }).record;
        lines.splice(1, 0, {
          type: 'artifact',
          at: '2026-01-01T00:00:00.000Z',
          record: { ...rec, path: 'injected.txt' },
        });
        setJournal(files, lines);
      });
      expectInvalid(await verify(p), 'journal');
    });

    it('a finalized journal that records an abort, or a second begin, is invalid', async () => {
      const p = await fresh(kind);
      await forgeConsistently(p, (files) => {
        const lines = journal(files);
        lines.splice(2, 0, { type: 'abort', at: '2026-01-01T00:00:00.000Z', reason: 'x' }, lines[0] as never);
        setJournal(files, lines);
      });
      const r = await verify(p);
      expectInvalid(r, 'journal');
      expect(r.problems.filter((x) => x.code === 'journal').length).toBeGreaterThanOrEqual(2);
    });

    it('a manifest listing fewer artifacts than files present is invalid', async () => {
      const p = await fresh(kind);
      let dropped = '';
      await forgeConsistently(p, (files) => {
        const list = artifacts(files);
        const i = list.findIndex((a) => a.stored);
        dropped = list[i]?.path ?? '';
        list.splice(i, 1);
        setArtifacts(files, list);
        setJournal(
          files,
          journal(files).filter(
            (l) => (l.record as { path?: string } | undefined)?.path !== dropped && l.path !== dropped,
          ),
        );
      });
      const r = await verify(p);
      expectInvalid(r, 'unexpected');
      expect(r.unexpected).toContain(dropped);
    });

    it('duplicate paths in the manifest are invalid', async () => {
      const p = await fresh(kind);
      await forgeConsistently(p, (files) => {
        const list = artifacts(files);
        const skipped = list.find((a) => a.status === 'skipped');
        setArtifacts(files, [...list, { ...(skipped as (typeof list)[0]) }]);
      });
      expectInvalid(await verify(p), 'path');
    });

    for (const [what, path] of [
      ['../outside.txt', '../outside.txt'],
      ['/abs.txt', '/abs.txt'],
      ['x//y.txt', 'x//y.txt'],
      ['a case twin of pod/pod.json', 'Pod/pod.json'],
      ['an NFD (decomposed) name', 'containers/app/cafe\u0301.txt'],
      ['a control character', 'containers/app/a\u0007b'],
      ['a reserved top-level name', 'acquisition.log'],
    ] as const) {
      it(`a planted artifact at ${what} is invalid (path)`, async () => {
        const p = await fresh(kind);
        await forgeConsistently(p, (files) => plant(files, path, Buffer.from('planted\n'), null));
        // store the bytes where that path leads for this storage
        const files = await p.load();
        if (path !== 'acquisition.log') files.set(path, Buffer.from('planted\n'));
        await p.store(files);
        await p.resealSidecar();
        expectInvalid(await verify(p), 'path');
      });
    }

    it('a manifest larger than the bound is invalid ("exceeds"), never absent', async () => {
      const p = await fresh(kind);
      await forgeConsistently(p, (files) => {
        const m = files.get('manifest.json') as Buffer;
        files.set('manifest.json', Buffer.concat([m, Buffer.alloc(200 * 1024, 0x20)]));
      });
      const r = await verify(p, { maxManifestBytes: 64 * 1024 });
      expectInvalid(r, 'too-large');
      expect(r.complete).toBe(true);
      expect(r.problems.find((x) => x.code === 'too-large')?.message).toMatch(
        /manifest\.json exceeds 65536 bytes/,
      );
      // within the bound the same padded manifest verifies: the padding itself is not the finding
      expect((await verify(p)).status).toBe('valid');
    });

    it('a custody record padded past its bound is invalid, not absent', async () => {
      const p = await fresh(kind);
      const files = await p.load();
      const padded = Buffer.concat([files.get('custody.json') as Buffer, Buffer.alloc(17 << 20, 0x20)]);
      files.set('custody.json', padded);
      const seal = getJson(files, 'seal.json');
      seal.custodySha256 = sha256(padded);
      putJson(files, 'seal.json', seal);
      await p.store(files);
      await p.resealSidecar();
      const r = await verify(p);
      expectInvalid(r, 'too-large');
      expect(r.complete).toBe(true);
    }, 60_000);

    it('a key set: valid when one pinned key signed it, invalid when none did', async () => {
      const signer = generateKeyPairSync('ed25519');
      const other = generateKeyPairSync('ed25519');
      const p = await fresh(kind, { signingKey: signer.privateKey });
      const r = await verifyEvidence(p.loc, { publicKey: [other.publicKey, signer.publicKey] });
      expect(r.status).toBe('valid');
      expect(r.anchors).toEqual(['signature']);
      const bad = await verifyEvidence(p.loc, { publicKey: [other.publicKey] });
      expectInvalid(bad, 'signature');
      expect(bad.problems.find((x) => x.code === 'signature')?.message).toMatch(/not among the pinned/);
    });
  });
}

describe('reader-specific forgeries', () => {
  it('directory: a symlink to a file outside the bundle is invalid', async () => {
    const p = await fresh('directory');
    await writeFile(join(root, 'secret.txt'), 'outside');
    await symlink(join(root, 'secret.txt'), join(p.loc as string, 'pod', 'link.txt'));
    expectInvalid(await verify(p), 'unexpected');
  });

  for (const kind of ['tar', 'tar.gz'] as const) {
    it(`${kind}: entries outside <id>/ are invalid, never mapped into the bundle`, async () => {
      const p = await fresh(kind);
      const files = await p.load();
      await p.store(files, [{ name: 'other/evil.sh', data: Buffer.from('x') }]);
      await p.resealSidecar();
      const r = await verify(p);
      expectInvalid(r, 'path');
      expect(r.unexpected).toContain('other/evil.sh');
    });

    it(`${kind}: <id>/../x and <id>//x entries are invalid`, async () => {
      const p = await fresh(kind);
      const files = await p.load();
      await p.store(files, [
        { name: `${p.name}/../x`, data: Buffer.from('x') },
        { name: `${p.name}//y`, data: Buffer.from('y') },
      ]);
      await p.resealSidecar();
      const r = await verify(p);
      expectInvalid(r, 'path');
      expect(r.problems.filter((x) => x.code === 'path').length).toBeGreaterThanOrEqual(2);
    });

    it(`${kind}: two entries with the same name (extraction keeps the second) are invalid`, async () => {
      const p = await fresh(kind);
      const files = await p.load();
      await p.store(files, [{ name: `${p.name}/pod/pod.json`, data: Buffer.from('{"forged":true}') }]);
      await p.resealSidecar();
      expectInvalid(await verify(p), 'unexpected');
    });
  }

  it('tar.gz: a truncated file is invalid even when a forger adds an outside journal', async () => {
    const p = await fresh('tar.gz');
    const file = p.loc as string;
    const data = await readFile(file);
    await truncate(file, data.length - 200);
    const r = await verify(p);
    expect(r.status).toBe('invalid');
    expect(codes(r).some((c) => c === 'storage' || c === 'missing')).toBe(true);
  });

  it('s3 and memory keys: <id>/../x and <id>//x are invalid', async () => {
    const p = await fresh('memory');
    const files = await p.load();
    files.set('../x', Buffer.from('x'));
    files.set('/y', Buffer.from('y'));
    await p.store(files);
    const r = await verify(p);
    expectInvalid(r, 'path');
    expect(r.unexpected).toEqual(expect.arrayContaining(['../x', '/y']));
  });

  it.skipIf(s3Skip)('s3: keys <id>/../x and <id>//x are invalid', async () => {
    const p = await fresh('s3');
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const base = `cases/${p.name}/`;
    await s3?.send(new PutObjectCommand({ Bucket: 'forge', Key: `${base}../x`, Body: 'x' }));
    await s3?.send(new PutObjectCommand({ Bucket: 'forge', Key: `${base}/y`, Body: 'y' }));
    const r = await verify(p);
    expectInvalid(r, 'path');
    expect(r.unexpected).toEqual(expect.arrayContaining(['../x', '/y']));
  });

  it.skipIf(s3Skip)(
    's3: Object Lock is an anchor only while the final files have one locked version',
    async () => {
      const { CreateBucketCommand, GetObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
      const client = s3 as S3Client;
      await client.send(new CreateBucketCommand({ Bucket: 'forge-worm', ObjectLockEnabledForBucket: true }));
      const sink = new S3Sink({
        client,
        bucket: 'forge-worm',
        objectLock: { mode: 'GOVERNANCE', retainDays: 1 },
      });
      const w = await sink.open({ acquisitionId: 'acq-worm-forge' });
      await writeSample(w);
      const res = await w.finalize(custodyInput);
      const loc = { s3: { client, bucket: 'forge-worm', prefix: 'acq-worm-forge/' } };
      const good = await verifyEvidence(loc, { requireObjectLock: true });
      expect(good.problems).toEqual([]);
      expect(good.status).toBe('valid');
      expect(good.anchors).toEqual(['object-lock']);
      expect(good.objectLock?.files['manifest.json']?.mode).toBe('GOVERNANCE');
      // An unlocked bundle cannot satisfy requireObjectLock.
      const plain = await fresh('s3');
      expectInvalid(await verifyEvidence(plain.loc, { requireObjectLock: true }), 'object-lock');
      // Object Lock protects versions, not keys: a new version of manifest.json (even the same bytes)
      // on top of the locked one means what is read is no longer what was locked.
      const o = await client.send(
        new GetObjectCommand({ Bucket: 'forge-worm', Key: 'acq-worm-forge/manifest.json' }),
      );
      const same = Buffer.from(
        await (o.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      await client.send(
        new PutObjectCommand({ Bucket: 'forge-worm', Key: 'acq-worm-forge/manifest.json', Body: same }),
      );
      const after = await verifyEvidence(loc, { requireObjectLock: true });
      expectInvalid(after, 'object-lock');
      expect(after.problems.find((x) => x.code === 'object-lock')?.message).toMatch(/2 version\(s\)/);
      // without requireObjectLock it is simply not an anchor any more
      const soft = await verifyEvidence(loc, { expectedManifestSha256: res.manifestSha256 });
      expect(soft.status).toBe('valid');
      expect(soft.anchors).toEqual(['expected-manifest-sha256']);
    },
  );

  it('an unsigned sidecar supplied by the caller that names nothing useful is rejected up front', async () => {
    const p = await fresh('memory');
    await expect(verifyEvidence(p.loc, { sidecar: 'nothing here' })).rejects.toThrow(
      /no "<sha256> {2}<name>" line/,
    );
    expect(sha256('')).toHaveLength(64);
  });
});
