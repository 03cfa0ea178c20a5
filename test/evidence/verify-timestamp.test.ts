/**
 * RFC 3161 round trip with a local TSA: `openssl ts -reply` behind a tiny HTTP server on
 * 127.0.0.1, with a test CA and a TSA certificate (EKU critical,timeStamping) made by openssl in
 * the test. Every sink asks the TSA at finalize; verifyEvidence checks the token against the
 * pinned CA or TSA certificate; `openssl ts -verify` agrees.
 */

import type { ChildProcess } from 'node:child_process';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvidenceError } from '../../src/errors.js';
import { children, type Der, parseDer } from '../../src/evidence/der.js';
import { DirectorySink, MemorySink, TimestampingSink, verifyEvidence } from '../../src/evidence/index.js';
import { timestampRequest, verifyTimestampToken } from '../../src/evidence/tsa.js';
import { skipWithoutPeer } from '../support/peers.js';
import { custodyInput, sha256, writeSample } from './helpers.js';
import {
  freshPlace,
  getJson,
  type Kind,
  LOCAL_KINDS,
  motoClient,
  motoMissing,
  type Place,
  putJson,
  reseal,
  startMoto,
} from './verify-support.js';

const run = promisify(execFile);
const opensslMissing =
  spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0 ? undefined : 'openssl is not on PATH';
const noOpenssl = skipWithoutPeer('openssl', opensslMissing);
const s3Skip = skipWithoutPeer('moto_server', motoMissing);

let dir: string;
let server: Server;
let url: string;
let caPem: string;
let tsaPem: string;
let roguePem: string;
let requests = 0;
let moto: { proc: ChildProcess; endpoint: string } | undefined;
let s3: S3Client | undefined;

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function makePki(): Promise<void> {
  await writeFile(
    join(dir, 'ext.cnf'),
    [
      '[ca]',
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      '[tsa]',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,nonRepudiation',
      'extendedKeyUsage=critical,timeStamping',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  for (const name of ['ca', 'rogue']) {
    await openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`);
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '30',
      '-subj',
      `/CN=Test ${name} CA`,
      '-config',
      '/dev/null',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      'subjectKeyIdentifier=hash',
    );
  }
  // The TSA key is EC P-256, so the ECDSA path is exercised too.
  await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'tsa.key');
  await openssl(
    'req',
    '-new',
    '-key',
    'tsa.key',
    '-out',
    'tsa.csr',
    '-subj',
    '/CN=Test TSA',
    '-config',
    '/dev/null',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    'tsa.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'tsa.crt',
    '-days',
    '30',
    '-extfile',
    'ext.cnf',
    '-extensions',
    'tsa',
  );
  // The same TSA key certified by a CA nobody pins.
  await openssl(
    'x509',
    '-req',
    '-in',
    'tsa.csr',
    '-CA',
    'rogue.crt',
    '-CAkey',
    'rogue.key',
    '-CAcreateserial',
    '-out',
    'rogue-tsa.crt',
    '-days',
    '30',
    '-extfile',
    'ext.cnf',
    '-extensions',
    'tsa',
  );
  await writeFile(join(dir, 'serial'), '01\n');
  const tsaSection = (signer: string) =>
    [
      `dir = ${dir}`,
      'serial = $dir/serial',
      'crypto_device = builtin',
      `signer_cert = $dir/${signer}`,
      'certs = $dir/ca.crt',
      'signer_key = $dir/tsa.key',
      'signer_digest = sha256',
      'default_policy = 1.2.3.4.1',
      'digests = sha256, sha384, sha512',
      'accuracy = secs:1',
      'ordering = yes',
      'tsa_name = yes',
      'ess_cert_id_chain = no',
      'ess_cert_id_alg = sha256',
    ].join('\n');
  await writeFile(
    join(dir, 'tsa.cnf'),
    `[ tsa ]\ndefault_tsa = good\n[ good ]\n${tsaSection('tsa.crt')}\n[ rogue ]\n${tsaSection('rogue-tsa.crt')}\n`,
  );
  caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  tsaPem = await readFile(join(dir, 'tsa.crt'), 'utf8');
  roguePem = await readFile(join(dir, 'rogue.crt'), 'utf8');
}

/** POST /good or /rogue: answers a TimeStampReq with `openssl ts -reply`. Anything else: 500. */
function startTsa(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const n = ++requests;
      const section = req.url === '/rogue' ? 'rogue' : req.url === '/good' ? 'good' : undefined;
      if (!section || req.headers['content-type'] !== 'application/timestamp-query') {
        res.writeHead(500).end();
        return;
      }
      const q = join(dir, `q${n}.tsq`);
      const r = join(dir, `r${n}.tsr`);
      try {
        await writeFile(q, Buffer.concat(chunks));
        await run(
          'openssl',
          ['ts', '-reply', '-config', 'tsa.cnf', '-section', section, '-queryfile', q, '-out', r],
          {
            cwd: dir,
          },
        );
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(await readFile(r));
      } catch (e) {
        res.writeHead(500).end(String(e));
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve();
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eksf-tsa-'));
  if (noOpenssl) return;
  await makePki();
  await startTsa();
  if (!s3Skip) {
    moto = await startMoto();
    s3 = await motoClient(moto.endpoint);
  }
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  moto?.proc.kill('SIGTERM');
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await rm(dir, { recursive: true, force: true });
});

// 40 s: the TSA is openssl started per request, slow on a loaded 2-CPU machine (default 15 s).
const stamped = (kind: Kind, path = '/good', extra = {}) =>
  freshPlace(kind, dir, s3, { timestamp: { url: `${url}${path}`, timeoutMs: 40_000, ...extra } });

describe.skipIf(noOpenssl)('RFC 3161 timestamps with a local openssl TSA', () => {
  for (const kind of [...LOCAL_KINDS, 's3'] as Kind[]) {
    describe.skipIf(kind === 's3' && s3Skip)(kind, () => {
      let p: Place;
      beforeAll(async () => {
        p = await stamped(kind, '/good', { certificate: caPem, required: true });
      }, 60_000);

      it('round-trips: finalize stores the token, verifyEvidence anchors on it with the pinned CA or TSA cert', async () => {
        const r = await verifyEvidence(p.loc, { tsaCertificate: caPem });
        expect(r.problems).toEqual([]);
        expect(r.status).toBe('valid');
        expect(r.anchors).toEqual(['rfc3161']);
        expect(r.timestamp?.tsaSubject).toContain('Test TSA');
        expect(Math.abs(Date.parse(r.timestamp?.genTime ?? '') - Date.now())).toBeLessThan(120_000);
        expect(r.timestamp?.policy).toBe('1.2.3.4.1');
        const leaf = await verifyEvidence(p.loc, { tsaCertificate: tsaPem });
        expect(leaf.status).toBe('valid');
        // without a pin the token is only a consistency check
        const unpinned = await verifyEvidence(p.loc);
        expect(unpinned.status).toBe('unanchored');
        expect(unpinned.consistency).toContain('timestamp-imprint');
      });

      it('a CA nobody pinned: invalid', async () => {
        const r = await verifyEvidence(p.loc, { tsaCertificate: roguePem });
        expect(r.status).toBe('invalid');
        expect(r.problems.find((x) => x.code === 'timestamp')?.message).toMatch(
          /does not chain to the pinned/,
        );
      });

      it('a manifest rewritten (everything resealed) keeps the old token: invalid', async () => {
        // required: a TSA that did not answer fails here with its reason, not later as "no token"
        const q = await stamped(kind, '/good', { required: true });
        const files = await q.load();
        const m = getJson(files, 'manifest.json');
        m.caseId = 'IR-FORGED';
        putJson(files, 'manifest.json', m);
        reseal(files);
        await q.store(files);
        await q.resealSidecar();
        const r = await verifyEvidence(q.loc, { tsaCertificate: caPem });
        expect(r.status).toBe('invalid');
        expect(r.problems.find((x) => x.code === 'timestamp')?.message).toMatch(/not this manifest/);
        // even unpinned, a token over another hash is a finding
        expect((await verifyEvidence(q.loc, { acceptUnanchored: true })).status).toBe('invalid');
      });
    });
  }

  it('openssl ts -verify accepts the stored token independently', async () => {
    const p = await stamped('directory');
    const r = await run('openssl', [
      'ts',
      '-verify',
      '-in',
      join(p.loc as string, 'timestamp.tsr'),
      '-digest',
      p.manifestSha256,
      '-CAfile',
      join(dir, 'ca.crt'),
    ]);
    expect(r.stdout).toContain('Verification: OK');
  });

  it('a token from a rogue TSA (same key, other CA), or a flipped byte, does not verify', async () => {
    const p = await stamped('memory', '/rogue');
    const b = (p.loc as { files: Map<string, Buffer> }).files;
    const token = b.get('timestamp.tsr') as Buffer;
    expect((await verifyEvidence(p.loc, { tsaCertificate: caPem })).status).toBe('invalid');
    const good = await stamped('memory');
    const t2 = Buffer.from((good.loc as { files: Map<string, Buffer> }).files.get('timestamp.tsr') as Buffer);
    expect(verifyTimestampToken(t2, good.manifestSha256, [caPem]).ok).toBe(true);
    // Flip bits through every signed part (TSTInfo, signed attributes, signature): none verifies.
    // (Bytes outside them, e.g. the status text or the CA certificate carried along, prove nothing.)
    const resp = children(parseDer(t2));
    const sd = children(children(children(resp[1] as Der)[1] as Der)[0] as Der);
    const eContent = children(children(sd[2] as Der)[1] as Der)[0] as Der;
    const si = children(children(sd[sd.length - 1] as Der)[0] as Der);
    const signed = [eContent, si[3] as Der, si[5] as Der].map((d) => {
      const start = d.raw.byteOffset - t2.byteOffset;
      return [start, start + d.raw.length] as const;
    });
    let tried = 0;
    let accepted = 0;
    for (const [from, to] of signed) {
      for (let i = from; i < to; i += 3) {
        const x = Buffer.from(t2);
        x[i] = (x[i] as number) ^ 0x01;
        tried++;
        if (verifyTimestampToken(x, good.manifestSha256, [caPem]).ok) accepted++;
      }
    }
    expect(tried).toBeGreaterThan(50);
    expect(accepted).toBe(0);
    expect(token.length).toBeGreaterThan(100);
  });

  it('a missing token with a pinned TSA is invalid; a TSA that fails is recorded, or fatal when required', async () => {
    const sink = new MemorySink();
    const w = await new TimestampingSink(sink, { url: `${url}/nowhere` }).open({});
    await writeSample(w);
    const res = await w.finalize(custodyInput);
    expect(res.timestamp).toMatchObject({ stored: false });
    expect(res.timestamp && 'error' in res.timestamp ? res.timestamp.error : '').toMatch(
      /did not answer: HTTP 500/,
    );
    const bundle = sink.bundles.get(w.acquisitionId);
    if (!bundle) throw new Error('no bundle');
    expect((await verifyEvidence(bundle, { expectedManifestSha256: res.manifestSha256 })).status).toBe(
      'valid',
    );
    const pinned = await verifyEvidence(bundle, { tsaCertificate: caPem });
    expect(pinned.status).toBe('invalid');
    expect(pinned.missing).toContain('timestamp.tsr');

    const w2 = await new DirectorySink({ root: join(dir, 'required') }).open({
      timestamp: { url: `${url}/nowhere`, required: true },
    });
    await expect(w2.finalize(custodyInput)).rejects.toBeInstanceOf(EvidenceError);
  });

  it('a nonce with leading zero octets is minimal DER: openssl answers it with the same nonce', async () => {
    // randomBytes gives 0x00 first in 1 of 256 requests; encoded as is, openssl refused 1 in 512
    // ("illegal padding") and the bundle had no timestamp (a flaky CI run found it).
    const nonces = [
      [0, 0x12, 1, 2, 3, 4, 5, 6],
      [0, 0, 0, 0x92, 1, 2, 3, 4],
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0x80, 0, 0, 0, 0, 0, 0, 1],
    ];
    for (const [i, bytes] of nonces.entries()) {
      const nonce = Buffer.from(bytes);
      const q = join(dir, `zero-${i}.tsq`);
      const r = join(dir, `zero-${i}.tsr`);
      await writeFile(q, timestampRequest(sha256('z'), nonce));
      const hexValue = BigInt(`0x${nonce.toString('hex')}`)
        .toString(16)
        .toUpperCase();
      const query = await run('openssl', ['ts', '-query', '-in', q, '-text']);
      expect(query.stdout).toMatch(new RegExp(`Nonce: 0x0*${hexValue}\\b`, 'i'));
      await run(
        'openssl',
        ['ts', '-reply', '-config', 'tsa.cnf', '-section', 'good', '-queryfile', q, '-out', r],
        {
          cwd: dir,
        },
      );
      const reply = await run('openssl', ['ts', '-reply', '-in', r, '-text']);
      expect(reply.stdout).toMatch(/Status: Granted/);
      expect(reply.stdout).toMatch(new RegExp(`Nonce: 0x0*${hexValue}\\b`, 'i'));
    }
  });

  it('the request is a well-formed TimeStampReq openssl can read', async () => {
    const req = timestampRequest(sha256('x'), Buffer.from([0x80, 1, 2, 3, 4, 5, 6, 7]));
    await writeFile(join(dir, 'mine.tsq'), req);
    const r = await run('openssl', ['ts', '-query', '-in', join(dir, 'mine.tsq'), '-text']);
    expect(r.stdout).toContain(sha256('x').replace(/(..)/g, '$1 ').trim().slice(0, 20));
    expect(r.stdout).toMatch(/Certificate required: yes/);
    expect(r.stdout).toMatch(/Nonce: 0x0*80010203/i);
  });
});
