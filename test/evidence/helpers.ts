import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import type { BundleWriter, MemoryBundle } from '../../src/evidence/index.js';

/** Bundle-relative path → bytes, loaded from any local bundle. */
export type Files = Map<string, Buffer>;

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes, streamed. */
export function* pattern(total: number, chunk = 64 * 1024, seed = 1): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  let left = total;
  while (left > 0) {
    const n = Math.min(chunk, left);
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i + 4 <= n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeUInt32LE(x >>> 0, i);
    }
    for (let i = n - (n % 4); i < n; i++) b[i] = i & 0xff;
    left -= n;
    yield b;
  }
}

export async function loadDir(dir: string): Promise<Files> {
  const out: Files = new Map();
  const walk = async (d: string) => {
    for (const n of await readdir(d)) {
      const f = join(d, n);
      if ((await lstat(f)).isDirectory()) await walk(f);
      else out.set(relative(dir, f).split(sep).join('/'), await readFile(f));
    }
  };
  await walk(dir);
  return out;
}

export async function storeDir(dir: string, files: Files): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const [p, b] of files) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), b);
  }
}

export async function loadTar(file: string): Promise<Files> {
  const out: Files = new Map();
  const ex = extract();
  const gz = file.endsWith('.gz');
  const done = (async () => {
    for await (const e of ex) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      if (e.header.type === 'file')
        out.set(e.header.name.split('/').slice(1).join('/'), Buffer.concat(parts));
    }
  })();
  if (gz) await pipeline(createReadStream(file), createGunzip(), ex);
  else await pipeline(createReadStream(file), ex);
  await done;
  return out;
}

export async function storeTar(file: string, files: Files, prefix: string): Promise<void> {
  const p = pack();
  const gz = file.endsWith('.gz');
  const w = gz ? pipeline(p, createGzip(), createWriteStream(file)) : pipeline(p, createWriteStream(file));
  for (const [name, b] of files) p.entry({ name: `${prefix}/${name}` }, b);
  p.finalize();
  await w;
}

/** Uniform load/store over directory, tar and memory bundles. */
export interface Tamperer {
  load(): Promise<Files>;
  store(files: Files): Promise<void>;
}

export function tamperer(kind: string, location: string | MemoryBundle, name: string): Tamperer {
  if (typeof location !== 'string') {
    return {
      load: async () => new Map([...location.files].map(([k, v]) => [k, Buffer.from(v)])),
      store: async (files) => {
        location.files.clear();
        for (const [k, v] of files) location.files.set(k, v);
      },
    };
  }
  if (kind === 'directory') return { load: () => loadDir(location), store: (f) => storeDir(location, f) };
  return { load: () => loadTar(location), store: (f) => storeTar(location, f, name) };
}

/** Writes a small standard bundle with a few artifacts. */
export async function writeSample(
  b: BundleWriter,
): Promise<{ small: string; big: string; failed: string; bigBytes: number }> {
  const bigBytes = 3 * 1024 * 1024 + 17;
  const [small, big, failed] = await Promise.all([
    b.writeArtifact('pod/pod.json', JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }), {
      source: { kind: 'api' },
      contentType: 'application/json',
    }),
    b.writeArtifact('containers/app/proc/1/maps', Readable.from(pattern(bigBytes)), {
      source: { kind: 'exec', profile: 'linux-basic', item: 'maps' },
      argv: ['cat', '/proc/1/maps'],
      target: { namespace: 'ns', pod: 'p', container: 'app' },
      finish: async () => ({ exitCode: 0 }),
    }),
    b.recordArtifact('containers/app/files/etc/shadow', {
      source: { kind: 'exec' },
      status: 'skipped',
      reason: 'not readable (EACCES)',
    }),
  ]);
  b.log({ event: 'step', step: 'sample' });
  b.recordChange({
    kind: 'ephemeral-container-added',
    description: 'added debugger-1',
    target: { pod: 'p' },
  });
  return { small: small.path, big: big.path, failed: failed.path, bigBytes };
}

export const custodyInput = {
  caseId: 'IR-7',
  examiner: { callerArn: 'arn:aws:iam::111122223333:role/Responder', name: 'Ada' },
  cluster: { arn: 'arn:aws:eks:eu-west-1:111122223333:cluster/prod', name: 'prod', region: 'eu-west-1' },
  targets: [
    {
      namespace: 'ns',
      pod: { name: 'p', uid: '0d7b3c3a-1111-2222-3333-444455556666' },
      containers: [
        {
          name: 'app',
          containerId: 'containerd://abc',
          image: 'nginx:1.27',
          imageDigest: `docker.io/library/nginx@sha256:${'a'.repeat(64)}`,
        },
      ],
      node: {
        name: 'ip-10-0-0-1.ec2.internal',
        providerId: 'aws:///eu-west-1a/i-0123',
        instanceId: 'i-0123',
      },
    },
  ],
};

/**
 * Runs a child script (`node --import tsx <script> ...args`) until it prints `READY <location>`,
 * then SIGKILLs it (no cleanup code runs); resolves with the location.
 */
export function runAndKill(script: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (.+)\n/.exec(out);
      if (m?.[1]) {
        const loc = m[1];
        p.once('exit', () => resolve(loc));
        p.kill('SIGKILL');
      }
    });
    p.once('exit', (code, sig) => {
      if (sig !== 'SIGKILL') reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}
