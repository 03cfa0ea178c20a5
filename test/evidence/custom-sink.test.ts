/**
 * The sink extension point: an out-of-tree sink (examples/custom-sink/kv-sink.ts, written against
 * the public sink kit only) passes the same conformance suite as the built-in sinks, verifies
 * through its BundleSource, and cannot make an altered or partly hidden bundle verify.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvSink, KvStore } from '../../examples/custom-sink/kv-sink.js';
import type { BundleSource } from '../../src/entries/sink-kit.js';
import { DirectorySink, MemorySink, TarSink, verifyEvidence } from '../../src/index.js';
import { runSinkConformance } from '../../src/testing/index.js';

const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'eksf-conformance-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const failures = (r: Awaited<ReturnType<typeof runSinkConformance>>) => r.filter((x) => !x.ok);

describe('sink conformance', () => {
  it('the out-of-tree key/value sink passes, tamper check included', async () => {
    const store = new KvStore();
    const sink = new KvSink(store, 'evidence');
    const results = await runSinkConformance(
      () => ({ sink, locate: (id) => ({ source: sink.source(id) }) }),
      {
        tamper: async (id, _loc, path) => {
          const key = `evidence/${id}/${path}`;
          const v = store.objects.get(key) as Buffer;
          store.objects.set(key, Buffer.concat([v, Buffer.from('x')]));
        },
      },
    );
    expect(failures(results)).toEqual([]);
    expect(results.length).toBe(4);
  });

  it('DirectorySink, TarSink and MemorySink pass the same suite', async () => {
    const dir = scratch();
    const d = await runSinkConformance(
      () => ({ sink: new DirectorySink({ root: dir }), locate: (_i, l) => l }),
      {
        tamper: async (_id, loc, path) => writeFileSync(join(loc, path), 'altered\n'),
      },
    );
    expect(failures(d)).toEqual([]);
    const t = await runSinkConformance(() => ({
      sink: new TarSink({ root: scratch() }),
      locate: (_i, l) => l,
    }));
    expect(failures(t)).toEqual([]);
    const mem = new MemorySink();
    const m = await runSinkConformance(() => ({
      sink: mem,
      locate: (id) => mem.bundles.get(id) as NonNullable<ReturnType<typeof mem.bundles.get>>,
    }));
    expect(failures(m)).toEqual([]);
  });

  it('a conformance check fails for a sink that loses bytes (the suite can fail)', async () => {
    const store = new KvStore();
    const sink = new KvSink(store, 'lossy');
    const real = store.put.bind(store);
    // a broken store: silently drops the last byte of every large object
    store.put = async (key, value) => real(key, value.length > 1_000_000 ? value.subarray(0, -1) : value);
    const results = await runSinkConformance(() => ({ sink, locate: (id) => ({ source: sink.source(id) }) }));
    expect(failures(results).map((r) => r.name)).toContain(
      'a finalized bundle verifies valid with its manifest hash, each artifact as written',
    );
  });
});

describe('verifying a third-party bundle through its source', () => {
  async function bundle() {
    const store = new KvStore();
    const sink = new KvSink(store, 'ev');
    const w = await sink.open({ acquisitionId: 'acq-kv-1' });
    await w.writeArtifact('containers/app/proc/1/status', 'Name:\tsh\n', { source: { kind: 'exec' } });
    await w.writeArtifact('pod/pod.json', '{"kind":"Pod"}\n', { source: { kind: 'api' } });
    const fin = await w.finalize();
    return { store, sink, fin };
  }

  it('verifies valid with the manifest hash, unanchored without one', async () => {
    const { sink, fin } = await bundle();
    const ok = await verifyEvidence(
      { source: sink.source('acq-kv-1') },
      { expectedManifestSha256: fin.manifestSha256 },
    );
    expect(ok.status).toBe('valid');
    expect(ok.kind).toBe('custom');
    const bare = await verifyEvidence({ source: sink.source('acq-kv-1') });
    expect(bare.status).toBe('unanchored');
  });

  it('a source that hides an object does not verify', async () => {
    const { sink, fin } = await bundle();
    const honest = sink.source('acq-kv-1');
    const lying: BundleSource = {
      ...honest,
      list: async () => (await honest.list()).filter((e) => e.path !== 'pod/pod.json'),
      read: async (p) => (p === 'pod/pod.json' ? undefined : honest.read(p)),
    };
    const r = await verifyEvidence({ source: lying }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r.status).not.toBe('valid');
    expect(r.problems.some((p) => p.code === 'missing' && p.path === 'pod/pod.json')).toBe(true);
  });

  it('a source that adds a path outside the bundle, or names another place, is invalid', async () => {
    const { sink, fin } = await bundle();
    const honest = sink.source('acq-kv-1');
    const escaping: BundleSource = {
      ...honest,
      list: async () => [...(await honest.list()), { path: '../other/manifest.json', bytes: 10 }],
    };
    const r1 = await verifyEvidence({ source: escaping }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r1.status).toBe('invalid');
    // a source whose claimed place and location disagree is not believed on either
    const inconsistent: BundleSource = { ...honest, location: 'kv://ev/acq-kv-2' };
    const r0 = await verifyEvidence({ source: inconsistent }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r0.status).toBe('invalid');
    expect(r0.problems.filter((p) => p.code === 'identity').length).toBeGreaterThan(0);
    const replayed: BundleSource = { ...honest, placeName: 'acq-kv-2', location: 'kv://ev/acq-kv-2' };
    const r2 = await verifyEvidence({ source: replayed }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r2.status).toBe('invalid');
    expect(r2.problems.some((p) => p.code === 'identity')).toBe(true);
  });

  it('a source whose reads throw or flood is bounded and not valid', async () => {
    const { sink, fin } = await bundle();
    const honest = sink.source('acq-kv-1');
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) yield Buffer.alloc(1 << 20, 0x7b);
    }
    const flooding: BundleSource = {
      ...honest,
      read: async (p) => (p === 'manifest.json' ? endless() : honest.read(p)),
    };
    const r = await verifyEvidence({ source: flooding }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r.status).toBe('invalid');
    const throwing: BundleSource = { ...honest, list: async () => Promise.reject(new Error('store down')) };
    const r2 = await verifyEvidence({ source: throwing }, { expectedManifestSha256: fin.manifestSha256 });
    expect(r2.status).not.toBe('valid');
  });
});
