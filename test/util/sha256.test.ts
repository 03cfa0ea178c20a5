import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Sha256, terminateHashWorkers } from '../../src/util/sha256.js';

const ref = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

async function feed(h: Sha256, data: Uint8Array, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    const wait = h.update(data.subarray(off, off + chunk));
    if (wait) await wait;
  }
}

describe('Sha256 (hashing moved off the caller thread)', () => {
  const big = randomBytes(5 * 1024 * 1024 + 13);

  it.each([
    ['empty', 0, 1],
    ['one byte', 1, 1],
    ['just under the offload threshold', 1024 * 1024 - 1, 65536],
    ['exactly the threshold', 1024 * 1024, 65536],
    ['5 MiB in odd chunks', big.length, 77_777],
    ['5 MiB in one chunk', big.length, big.length],
    ['5 MiB in 512 KiB chunks (slot-sized)', big.length, 512 * 1024],
  ])('digests %s like node:crypto', async (_name, size, chunk) => {
    const data = big.subarray(0, size);
    for (const expectedBytes of [undefined, size, 0, 100 * 1024 * 1024]) {
      const h = new Sha256({ expectedBytes, offload: true });
      await feed(h, data, chunk);
      expect(await h.digest()).toBe(ref(data));
    }
  });

  it('keeps the digest when the caller changes its buffer after each awaited update', async () => {
    const h = new Sha256({ expectedBytes: big.length, offload: true });
    const reused = Buffer.alloc(65536);
    for (let off = 0; off < big.length; off += reused.length) {
      const n = big.copy(reused, 0, off, off + reused.length);
      const wait = h.update(reused.subarray(0, n));
      if (wait) await wait;
    }
    expect(await h.digest()).toBe(ref(big));
  });

  it.each([0, 3, 1024 * 1024 - 1, 1024 * 1024, 2 * 1024 * 1024 + 5])(
    'reverts to a mark taken after %i bytes, however much came after it',
    async (before) => {
      for (const after of [0, 10, 1024 * 1024, 3 * 1024 * 1024 + 1]) {
        for (const expectedBytes of [undefined, 8 * 1024 * 1024]) {
          const h = new Sha256({ expectedBytes, offload: true });
          await feed(h, big.subarray(0, before), 65536);
          h.mark();
          await feed(h, randomBytes(after), 65536);
          h.revert();
          await feed(h, big.subarray(before, before + 100), 7);
          expect(await h.digest(), `before=${before} after=${after} hint=${expectedBytes}`).toBe(
            ref(big.subarray(0, before + 100)),
          );
        }
      }
    },
  );

  it('marks again after a revert and reverts to the new mark', async () => {
    const h = new Sha256({ offload: true });
    await feed(h, big.subarray(0, 2 * 1024 * 1024), 65536);
    h.mark();
    await feed(h, randomBytes(100), 100);
    h.revert();
    await feed(h, big.subarray(2 * 1024 * 1024, 3 * 1024 * 1024), 65536);
    h.mark();
    await feed(h, randomBytes(2 * 1024 * 1024), 65536);
    h.revert();
    expect(await h.digest()).toBe(ref(big.subarray(0, 3 * 1024 * 1024)));
  });

  it('refuses misuse instead of hashing the wrong bytes', async () => {
    const h = new Sha256({ offload: true });
    expect(() => h.revert()).toThrow(/without a mark/);
    // Fill the worker's slots until an update has to wait, then call again without waiting.
    let pending: Promise<void> | undefined;
    for (let i = 0; i < 200 && !pending; i++) pending = h.update(big.subarray(0, 1024 * 1024));
    expect(pending, 'a full worker ring makes update() wait').toBeDefined();
    if (pending) {
      expect(() => h.update(Buffer.from('x'))).toThrow(/still pending/);
      expect(() => h.digest()).toThrow(/still pending/);
      await pending;
    }
    await h.digest();
    expect(() => h.update(Buffer.from('x'))).toThrow(/after digest/);
  });

  it('runs more large hashes at once than there are worker sessions, all correct', async () => {
    const datas = Array.from({ length: 12 }, (_, i) => big.subarray(i, 2 * 1024 * 1024 + i * 1000));
    const digests = await Promise.all(
      datas.map(async (d) => {
        const h = new Sha256({ expectedBytes: d.length, offload: true });
        await feed(h, d, 100_000);
        return h.digest();
      }),
    );
    expect(digests).toEqual(datas.map((d) => ref(d)));
  });

  it('gives back the sessions of disposed hashes, so later hashes still go to a worker', async () => {
    for (let i = 0; i < 20; i++) {
      const h = new Sha256({ expectedBytes: 4 * 1024 * 1024, offload: true });
      await feed(h, big.subarray(0, 1024 * 1024), 65536);
      h.dispose();
      h.dispose();
    }
    const h = new Sha256({ expectedBytes: big.length, offload: true });
    await feed(h, big, 65536);
    expect(await h.digest()).toBe(ref(big));
  });

  it('hashes on the caller thread when told not to offload', async () => {
    const h = new Sha256({ offload: false, expectedBytes: big.length });
    await feed(h, big, 65536);
    expect(await h.digest()).toBe(ref(big));
  });

  it.each(['digest', 'abandon'])('never keeps the process alive (%s): the script exits by itself', (mode) => {
    const child = fileURLToPath(new URL('./sha256-exit-child.mts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, mode], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.error, 'the child did not exit within 20 s').toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(mode === 'abandon' ? 'abandoned' : ref(Buffer.alloc(8 << 20, 7)));
  });

  it('rejects (never digests) when its worker dies mid-hash; later hashes get new workers', async () => {
    const h = new Sha256({ offload: true });
    await feed(h, big.subarray(0, 3 << 20), 65536);
    await terminateHashWorkers();
    const rest = (async () => {
      await feed(h, big.subarray(0, 1 << 20), 65536);
      return h.digest();
    })();
    await expect(rest).rejects.toThrow(/hashing worker thread exited/);
    const g = new Sha256({ offload: true, expectedBytes: big.length });
    await feed(g, big, 65536);
    expect(await g.digest()).toBe(ref(big));
  });
});
