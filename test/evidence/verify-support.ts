/**
 * One "place" abstraction over every reader (directory, tar, tar.gz, memory, S3 on moto) for the
 * verifier's forgery tests: load a bundle's files, store forged ones back byte-exactly (including
 * names a writer never produces), and rewrite the sidecar the way a forger would.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { extract, pack } from 'tar-stream';
import {
  type BundleInit,
  DirectorySink,
  type EvidenceLocation,
  type MemoryBundle,
  MemorySink,
  S3Sink,
  TarSink,
} from '../../src/evidence/index.js';
import { custodyInput, type Files, sha256, writeSample } from './helpers.js';

export const motoMissing =
  spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).status === 0
    ? undefined
    : 'moto_server is not on PATH (pip install "moto[server]")';

export function startMoto(): Promise<{ proc: ChildProcess; endpoint: string }> {
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

export async function motoClient(endpoint: string): Promise<S3Client> {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
  });
  await client.send(new CreateBucketCommand({ Bucket: 'forge' }));
  return client;
}

/** A tar entry written verbatim (name not prefixed with the bundle folder). */
export interface RawEntry {
  name: string;
  data: Buffer;
}

/** A finalized bundle in one kind of storage, with byte-level access for forging. */
export interface Place {
  kind: 'directory' | 'tar' | 'tar.gz' | 'memory' | 's3';
  /** The acquisition id = the bundle name. */
  name: string;
  /** What verifyEvidence gets. */
  loc: EvidenceLocation;
  manifestSha256: string;
  load(): Promise<Files>;
  /** Replaces the bundle's content; `raw` adds tar entries with verbatim names (tar only). */
  store(files: Files, raw?: RawEntry[]): Promise<void>;
  /** Rewrites the sidecar beside the bundle so it matches what is stored now (what a forger does). */
  resealSidecar(): Promise<void>;
  /** The sidecar text as the sink wrote it. */
  sidecarText(): Promise<string>;
}

export type Kind = Place['kind'];
export const LOCAL_KINDS: Kind[] = ['directory', 'tar', 'tar.gz', 'memory'];

async function loadDir(dir: string): Promise<Files> {
  const out: Files = new Map();
  const walk = async (d: string) => {
    for (const n of await readdir(d)) {
      const f = join(d, n);
      const st = await lstat(f);
      if (st.isDirectory()) await walk(f);
      else if (st.isFile()) out.set(relative(dir, f).split(sep).join('/'), await readFile(f));
    }
  };
  await walk(dir);
  return out;
}

async function loadTar(file: string, name: string): Promise<Files> {
  const out: Files = new Map();
  const ex = extract();
  const done = (async () => {
    for await (const e of ex) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      if (e.header.type === 'file') out.set(e.header.name.slice(name.length + 1), Buffer.concat(parts));
    }
  })();
  if (file.endsWith('.gz')) await pipeline(createReadStream(file), createGunzip(), ex);
  else await pipeline(createReadStream(file), ex);
  await done;
  return out;
}

async function storeTar(file: string, name: string, files: Files, raw: RawEntry[] = []): Promise<void> {
  const p = pack();
  const w = file.endsWith('.gz')
    ? pipeline(p, createGzip(), createWriteStream(file))
    : pipeline(p, createWriteStream(file));
  for (const [path, b] of files) p.entry({ name: `${name}/${path}` }, b);
  for (const r of raw) p.entry({ name: r.name }, r.data);
  p.finalize();
  await w;
}

let seq = 0;

/** Opens, fills (writeSample) and finalizes a bundle of `kind`. */
export async function freshPlace(
  kind: Kind,
  root: string,
  s3?: S3Client,
  init: BundleInit = {},
): Promise<Place> {
  const id = init.acquisitionId ?? `acq-${kind.replace('.', '')}-${process.pid}-${++seq}`;
  const dirRoot = join(root, `${kind}-${seq}`);
  if (kind === 'memory') {
    const sink = new MemorySink();
    const w = await sink.open({ caseId: 'IR-7', ...init, acquisitionId: id });
    await writeSample(w);
    const res = await w.finalize(custodyInput);
    const b = sink.bundles.get(id) as MemoryBundle;
    return {
      kind,
      name: id,
      loc: b,
      manifestSha256: res.manifestSha256,
      load: async () => new Map([...b.files].map(([k, v]) => [k, Buffer.from(v)])),
      store: async (files) => {
        b.files.clear();
        for (const [k, v] of files) b.files.set(k, v);
      },
      resealSidecar: async () => {
        b.sidecar = `${sha256(b.files.get('manifest.json') ?? '')}  manifest.json\n${sha256(b.files.get('custody.json') ?? '')}  custody.json\n`;
      },
      sidecarText: async () => b.sidecar ?? '',
    };
  }
  if (kind === 's3') {
    if (!s3) throw new Error('s3 kind needs a client');
    const client = s3;
    const sink = new S3Sink({ client, bucket: 'forge', prefix: 'cases' });
    const w = await sink.open({ caseId: 'IR-7', ...init, acquisitionId: id });
    await writeSample(w);
    const res = await w.finalize(custodyInput);
    const base = `cases/${id}/`;
    const sidecarKey = `cases/${id}.sha256`;
    const list = async () => {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(
          new ListObjectsV2Command({ Bucket: 'forge', Prefix: base, ContinuationToken: token }),
        );
        for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return keys;
    };
    const get = async (Key: string) => {
      const o = await client.send(new GetObjectCommand({ Bucket: 'forge', Key }));
      return Buffer.from(
        await (o.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    };
    return {
      kind,
      name: id,
      loc: { s3: { client, bucket: 'forge', prefix: base } },
      manifestSha256: res.manifestSha256,
      load: async () => {
        const out: Files = new Map();
        for (const k of await list()) out.set(k.slice(base.length), await get(k));
        return out;
      },
      store: async (files) => {
        for (const k of await list()) await client.send(new DeleteObjectCommand({ Bucket: 'forge', Key: k }));
        for (const [k, v] of files) {
          await client.send(new PutObjectCommand({ Bucket: 'forge', Key: base + k, Body: v }));
        }
      },
      resealSidecar: async () => {
        const m = await get(`${base}manifest.json`);
        const c = await get(`${base}custody.json`);
        await client.send(
          new PutObjectCommand({
            Bucket: 'forge',
            Key: sidecarKey,
            Body: `${sha256(m)}  manifest.json\n${sha256(c)}  custody.json\n`,
          }),
        );
      },
      sidecarText: async () => (await get(sidecarKey)).toString('utf8'),
    };
  }
  if (kind === 'directory') {
    const sink = new DirectorySink({ root: dirRoot });
    const w = await sink.open({ caseId: 'IR-7', ...init, acquisitionId: id });
    await writeSample(w);
    const res = await w.finalize(custodyInput);
    const dir = w.location;
    return {
      kind,
      name: id,
      loc: dir,
      manifestSha256: res.manifestSha256,
      load: () => loadDir(dir),
      store: async (files) => {
        await rm(dir, { recursive: true, force: true });
        for (const [p, b] of files) {
          await mkdir(dirname(join(dir, p)), { recursive: true });
          await writeFile(join(dir, p), b);
        }
      },
      resealSidecar: async () => {
        const m = await readFile(join(dir, 'manifest.json'));
        const c = await readFile(join(dir, 'custody.json'));
        await writeFile(
          `${dir}.sha256`,
          `${sha256(m)}  ${id}/manifest.json\n${sha256(c)}  ${id}/custody.json\n`,
        );
      },
      sidecarText: () => readFile(`${dir}.sha256`, 'utf8'),
    };
  }
  const sink = new TarSink({ root: dirRoot, gzip: kind === 'tar.gz' });
  const w = await sink.open({ caseId: 'IR-7', ...init, acquisitionId: id });
  await writeSample(w);
  const res = await w.finalize(custodyInput);
  const file = w.location;
  return {
    kind,
    name: id,
    loc: file,
    manifestSha256: res.manifestSha256,
    load: () => loadTar(file, id),
    store: (files, raw) => storeTar(file, id, files, raw),
    resealSidecar: async () => {
      await writeFile(`${file}.sha256`, `${sha256(await readFile(file))}  ${basename(file)}\n`);
    },
    sidecarText: () => readFile(`${file}.sha256`, 'utf8'),
  };
}

// ---- forging helpers: what someone rewriting a bundle without the anchors would do ----

type Json = Record<string, unknown>;
export const getJson = (files: Files, name: string): Json =>
  JSON.parse((files.get(name) as Buffer).toString('utf8')) as Json;
export const putJson = (files: Files, name: string, v: unknown): void => {
  files.set(name, Buffer.from(`${JSON.stringify(v, null, 2)}\n`));
};

export interface ArtifactLike {
  path: string;
  status: 'complete' | 'truncated' | 'failed' | 'skipped';
  stored: boolean;
  sha256?: string;
  bytes: number;
  [k: string]: unknown;
}

export function artifacts(files: Files): ArtifactLike[] {
  return getJson(files, 'manifest.json').artifacts as ArtifactLike[];
}

/** Rewrites the manifest's artifact list (counts recomputed), optionally journaling the same change. */
export function setArtifacts(files: Files, list: ArtifactLike[]): void {
  const m = getJson(files, 'manifest.json');
  m.artifacts = list;
  const counts = { complete: 0, truncated: 0, failed: 0, skipped: 0 };
  for (const a of list) counts[a.status]++;
  m.counts = counts;
  putJson(files, 'manifest.json', m);
}

/** Journal lines (parsed). */
export function journal(files: Files): Json[] {
  return (files.get('journal.jsonl') as Buffer)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Json);
}

/** Replaces the journal and fixes its hash in the manifest's bundleFiles. */
export function setJournal(files: Files, lines: Json[]): void {
  const data = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  files.set('journal.jsonl', data);
  const m = getJson(files, 'manifest.json');
  m.bundleFiles = (m.bundleFiles as Json[]).map((f) =>
    f.path === 'journal.jsonl' ? { ...f, sha256: sha256(data), bytes: data.length } : f,
  );
  putJson(files, 'manifest.json', m);
}

/** Adds a stored artifact everywhere a careful forger would: file, manifest, journal. */
export function plant(files: Files, path: string, data: Buffer, storeAs: string | null = path): void {
  const rec: ArtifactLike = {
    path,
    requestedPath: path,
    status: 'complete',
    stored: true,
    sha256: sha256(data),
    bytes: data.length,
    source: { kind: 'exec' },
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
  };
  setArtifacts(files, [...artifacts(files), rec]);
  const lines = journal(files);
  const fin = lines.findIndex((l) => l.type === 'finalize');
  lines.splice(
    fin,
    0,
    { type: 'open', at: rec.startedAt, path },
    { type: 'artifact', at: rec.finishedAt, record: rec },
  );
  setJournal(files, lines);
  if (storeAs !== null) files.set(storeAs, data);
}

/** Recomputes custody.manifestSha256 and the seal (unsigned) so everything inside is consistent. */
export function reseal(files: Files): void {
  const mh = sha256(files.get('manifest.json') as Buffer);
  const c = getJson(files, 'custody.json');
  c.manifestSha256 = mh;
  putJson(files, 'custody.json', c);
  const ch = sha256(files.get('custody.json') as Buffer);
  const s = getJson(files, 'seal.json');
  s.manifestSha256 = mh;
  s.custodySha256 = ch;
  delete s.signature;
  putJson(files, 'seal.json', s);
}
