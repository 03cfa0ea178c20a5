import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink, type S3SinkOptions, verifyEvidence } from '../../src/evidence/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { custodyInput, pattern, sha256, writeSample } from './helpers.js';

const motoMissing =
  spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).status === 0
    ? undefined
    : 'moto_server is not on PATH (pip install "moto[server]")';

const MiB = 1024 * 1024;

function startMoto(): Promise<{ proc: ChildProcess; endpoint: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`moto_server did not start: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ proc, endpoint: m[1] });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`moto_server exited (${code}): ${out}`)));
  });
}

describe.skipIf(skipWithoutPeer('moto_server', motoMissing))('S3Sink against moto_server', () => {
  let moto: { proc: ChildProcess; endpoint: string };
  let client: S3Client;
  const sent: Array<{ command: string; headers: Record<string, string> }> = [];
  const failParts = new Map<string, number>(); // key substring -> part number to fail

  beforeAll(async () => {
    moto = await startMoto();
    client = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; PartNumber?: number };
        if (context.commandName === 'UploadPartCommand' && input.Key) {
          for (const [needle, part] of failParts) {
            if (input.Key.includes(needle) && input.PartNumber === part) {
              throw Object.assign(new Error('injected part failure (test)'), { name: 'InjectedFault' });
            }
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'faultInjector' },
    );
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const req = args.request as { headers?: Record<string, string> };
        sent.push({ command: context.commandName ?? '', headers: { ...(req.headers ?? {}) } });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'headerRecorder' },
    );
    await client.send(new CreateBucketCommand({ Bucket: 'evidence' }));
    await client.send(new CreateBucketCommand({ Bucket: 'worm', ObjectLockEnabledForBucket: true }));
  });

  afterAll(() => {
    moto?.proc.kill('SIGTERM');
  });

  const sink = (o: Partial<S3SinkOptions> = {}) =>
    new S3Sink({ client, bucket: 'evidence', prefix: 'cases/IR-7', partSize: 5 * MiB, queueSize: 2, ...o });

  it('streams a multipart artifact and small ones, and the bundle verifies', async () => {
    const w = await sink().open({ acquisitionId: 'acq-s3-1' });
    const sample = await writeSample(w);
    const bigBytes = 17 * MiB + 123;
    const big = await w.writeArtifact(
      'containers/app/core.bin',
      Readable.from(pattern(bigBytes, 256 * 1024, 9)),
      {
        source: { kind: 'exec' },
      },
    );
    const res = await w.finalize(custodyInput);
    expect(res.location).toBe('s3://evidence/cases/IR-7/acq-s3-1/');
    expect(big.bytes).toBe(bigBytes);
    let h = '';
    {
      const { createHash } = await import('node:crypto');
      const x = createHash('sha256');
      for (const c of pattern(bigBytes, 256 * 1024, 9)) x.update(c);
      h = x.digest('hex');
    }
    expect(big.sha256).toBe(h);
    expect(big.storage?.s3).toMatchObject({
      multipart: true,
      key: 'cases/IR-7/acq-s3-1/containers/app/core.bin',
    });
    const parts = sent.filter((s) => s.command === 'UploadPartCommand').length;
    expect(parts).toBeGreaterThanOrEqual(4);
    const tags = await client.send(
      new GetObjectTaggingCommand({ Bucket: 'evidence', Key: 'cases/IR-7/acq-s3-1/containers/app/core.bin' }),
    );
    expect(tags.TagSet).toContainEqual({ Key: 'sha256', Value: h });
    const small = await client.send(
      new HeadObjectCommand({ Bucket: 'evidence', Key: `cases/IR-7/acq-s3-1/${sample.small}` }),
    );
    expect(small.Metadata?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sent.some((s) => s.command === 'PutObjectCommand' && s.headers['x-amz-checksum-sha256'])).toBe(
      true,
    );

    const report = await verifyEvidence(res.location, { s3Client: client });
    expect(report.problems).toEqual([]);
    expect(report.status).toBe('unanchored');
    expect(report.anchors).toEqual([]);
    expect(report.consistency).toContain('sidecar-beside-bundle');
    const again = await verifyEvidence(
      { s3: { client, bucket: 'evidence', prefix: 'cases/IR-7/acq-s3-1' } },
      { expectedManifestSha256: res.manifestSha256 },
    );
    expect(again.status).toBe('valid');
  });

  it('a part that fails aborts its multipart upload, records the artifact failed, and the rest goes on', async () => {
    failParts.set('will-fail', 2);
    const w = await sink().open({ acquisitionId: 'acq-s3-fault' });
    const failed = await w.writeArtifact(
      'dump/will-fail.bin',
      Readable.from(pattern(16 * MiB, 256 * 1024, 3)),
      {
        source: { kind: 'exec' },
      },
    );
    expect(failed.status).toBe('failed');
    expect(failed.stored).toBe(false);
    expect(failed.reason).toContain('injected part failure');
    const ok = await w.writeArtifact('dump/after.bin', Readable.from(pattern(6 * MiB, 256 * 1024, 4)), {
      source: { kind: 'exec' },
    });
    expect(ok.status).toBe('complete');
    const left = await client.send(
      new ListMultipartUploadsCommand({ Bucket: 'evidence', Prefix: 'cases/IR-7/acq-s3-fault/' }),
    );
    expect(left.Uploads ?? []).toEqual([]);
    expect(sent.some((s) => s.command === 'AbortMultipartUploadCommand')).toBe(true);
    const res = await w.finalize();
    expect(res.manifest.counts).toMatchObject({ complete: 1, failed: 1 });
    const report = await verifyEvidence(res.location, { s3Client: client, acceptUnanchored: true });
    expect(report.status).toBe('valid');
    failParts.clear();
  });

  it('sends SSE and Object Lock headers and the objects are locked', async () => {
    const until = new Date(Date.now() + 2 * 86_400_000);
    sent.length = 0;
    const w = await sink({
      bucket: 'worm',
      encryption: { type: 'AES256' },
      objectLock: { mode: 'GOVERNANCE', retainUntil: until, legalHold: true },
    }).open({ acquisitionId: 'acq-worm' });
    const r1 = await w.writeArtifact('small.txt', 'hello', { source: { kind: 'test' } });
    const r2 = await w.writeArtifact('big.bin', Readable.from(pattern(11 * MiB)), {
      source: { kind: 'test' },
    });
    expect([r1.status, r2.status]).toEqual(['complete', 'complete']);
    const res = await w.finalize();
    for (const cmd of ['PutObjectCommand', 'CreateMultipartUploadCommand']) {
      const req = sent.find((s) => s.command === cmd);
      expect(req, cmd).toBeDefined();
      expect(req?.headers['x-amz-object-lock-mode']).toBe('GOVERNANCE');
      expect(req?.headers['x-amz-object-lock-legal-hold']).toBe('ON');
      expect(req?.headers['x-amz-object-lock-retain-until-date']).toBeDefined();
      expect(req?.headers['x-amz-server-side-encryption']).toBe('AES256');
    }
    for (const key of ['small.txt', 'big.bin', 'manifest.json']) {
      const Key = `cases/IR-7/acq-worm/${key}`;
      // moto answers GetObjectRetention with the object body; HeadObject carries the same lock state.
      const head = await client.send(new HeadObjectCommand({ Bucket: 'worm', Key }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      expect(head.ObjectLockLegalHoldStatus).toBe('ON');
      expect(head.ObjectLockRetainUntilDate?.getTime()).toBeGreaterThan(Date.now() + 86_400_000);
      expect(head.ServerSideEncryption).toBe('AES256');
    }
    const v = await verifyEvidence(res.location, { s3Client: client, requireObjectLock: true });
    expect(v.problems).toEqual([]);
    expect(v.status).toBe('valid');
    expect(v.anchors).toEqual(['object-lock']);
  });

  const tampers: Array<
    [
      string,
      (base: string, s: { small: string; big: string }) => Promise<void>,
      'modified' | 'missing' | 'unexpected',
      (s: { small: string; big: string }) => string,
    ]
  > = [
    [
      'one flipped byte',
      async (base, s) => {
        const o = await client.send(new GetObjectCommand({ Bucket: 'evidence', Key: base + s.big }));
        const b = Buffer.from(
          await (o.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        b[777] = (b[777] ?? 0) ^ 0x80;
        await client.send(
          new PutObjectCommand({ Bucket: 'evidence', Key: base + s.big, Body: b, Metadata: o.Metadata }),
        );
      },
      'modified',
      (s) => s.big,
    ],
    [
      'one truncated file',
      async (base, s) => {
        await client.send(
          new PutObjectCommand({ Bucket: 'evidence', Key: base + s.big, Body: Buffer.from('short') }),
        );
      },
      'modified',
      (s) => s.big,
    ],
    [
      'one added file',
      async (base) => {
        await client.send(new PutObjectCommand({ Bucket: 'evidence', Key: `${base}planted`, Body: 'x' }));
      },
      'unexpected',
      () => 'planted',
    ],
    [
      'one deleted file',
      async (base, s) => {
        await client.send(new DeleteObjectCommand({ Bucket: 'evidence', Key: base + s.small }));
      },
      'missing',
      (s) => s.small,
    ],
    [
      'an edited manifest',
      async (base) => {
        const o = await client.send(
          new GetObjectCommand({ Bucket: 'evidence', Key: `${base}manifest.json` }),
        );
        const m = JSON.parse(await (o.Body as { transformToString(): Promise<string> }).transformToString());
        m.caseId = 'IR-other';
        await client.send(
          new PutObjectCommand({ Bucket: 'evidence', Key: `${base}manifest.json`, Body: JSON.stringify(m) }),
        );
      },
      'modified',
      () => 'manifest.json',
    ],
    [
      'an edited custody record',
      async (base) => {
        const o = await client.send(new GetObjectCommand({ Bucket: 'evidence', Key: `${base}custody.json` }));
        const c = JSON.parse(await (o.Body as { transformToString(): Promise<string> }).transformToString());
        c.examiner.callerArn = 'arn:aws:iam::999999999999:user/mallory';
        await client.send(
          new PutObjectCommand({ Bucket: 'evidence', Key: `${base}custody.json`, Body: JSON.stringify(c) }),
        );
      },
      'modified',
      () => 'custody.json',
    ],
  ];
  tampers.forEach(([what, mutate, list, path], i) => {
    it(`detects ${what}`, async () => {
      const w = await sink().open({ acquisitionId: `acq-tamper-${i}` });
      const s = await writeSample(w);
      const res = await w.finalize(custodyInput);
      expect((await verifyEvidence(res.location, { s3Client: client, acceptUnanchored: true })).status).toBe(
        'valid',
      );
      await mutate(`cases/IR-7/acq-tamper-${i}/`, s);
      const report = await verifyEvidence(res.location, { s3Client: client });
      expect(report.status).toBe('invalid');
      expect(report[list]).toContain(path(s));
    });
  });

  it('detects an object whose metadata hash was changed', async () => {
    const w = await sink().open({ acquisitionId: 'acq-meta' });
    const s = await writeSample(w);
    const res = await w.finalize();
    const Key = `cases/IR-7/acq-meta/${s.small}`;
    const o = await client.send(new GetObjectCommand({ Bucket: 'evidence', Key }));
    const body = Buffer.from(
      await (o.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    await client.send(
      new PutObjectCommand({ Bucket: 'evidence', Key, Body: body, Metadata: { sha256: sha256('other') } }),
    );
    const report = await verifyEvidence(res.location, { s3Client: client });
    expect(report.status).toBe('invalid');
    expect(report.problems.some((p) => p.code === 'metadata' && p.path === s.small)).toBe(true);
  });

  it('an aborted S3 acquisition verifies as incomplete', async () => {
    const w = await sink().open({ acquisitionId: 'acq-s3-abort' });
    await w.writeArtifact('one.txt', 'one', { source: { kind: 'test' } });
    await w.abort('sink test abort');
    const report = await verifyEvidence(w.location, { s3Client: client });
    expect(report.problems).toEqual([]);
    expect(report.status).toBe('incomplete');
    expect(report.aborted).toBe('sink test abort');
    await expect(sink().open({ acquisitionId: 'acq-s3-abort' })).rejects.toThrow(/already holds objects/);
  });
});
