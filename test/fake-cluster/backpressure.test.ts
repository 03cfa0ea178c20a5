import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../src/testing/index.js';
import { execPath, rawExec } from './helpers.js';

const MIB = 1024 * 1024;
const GIB = 1 << 30;
/**
 * What client and server (one process) may keep reachable while the reader stalls: socket and
 * frame buffers on both sides. Without backpressure it is hundreds of MiB (~740 MiB measured).
 */
const RETAINED_BOUND = 16 * MIB;
/**
 * Peak RSS growth ceiling: the retained bound plus dead buffers V8 has not swept yet (40–55 MiB on
 * Node 20, 98 MiB seen on Node 24), far below the ~740 MiB of a server that ignores backpressure.
 */
const MEMORY_BOUND = 160 * MIB;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Reachable bytes: garbage collected twice, with a pause for the ArrayBuffer sweeper in between. */
async function liveBytes(): Promise<number> {
  gc();
  await sleep(100);
  gc();
  await sleep(100);
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
}

describe('FakeCluster exec backpressure', () => {
  let cluster: FakeCluster;
  beforeAll(async () => {
    cluster = await FakeCluster.start();
    await cluster.addPod({ name: 'gen', containers: [{ name: 'c', image: 'busybox', runtime: 'host' }] });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it(`a slow reader of 1 GiB keeps what is reachable under ${RETAINED_BOUND / MIB} MiB`, async () => {
    const liveBase = await liveBytes();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const s = await rawExec(
      cluster,
      execPath('gen', ['head', '-c', String(GIB), '/dev/zero'], { stdout: '1' }),
    );
    let received = 0;
    let nextPause = 64 << 20;
    let stalledAt = -1;
    let growthWhileStalled = 0;
    let reachableWhileStalled = 0;
    let status = '';
    // Drop the helper's frame collector: it would keep every byte.
    s.ws.removeAllListeners('message');
    s.ws.on('message', (d: Buffer) => {
      if (d[0] === 1) received += d.length - 1;
      if (d[0] === 3) status = d.subarray(1).toString();
      if (received >= nextPause) {
        nextPause += 64 << 20;
        s.ws.pause();
        // One long stall (the consumer stops reading), then short throttling pauses.
        const long = stalledAt < 0;
        if (long) stalledAt = received;
        const before = process.memoryUsage().rss;
        if (long) {
          void (async () => {
            await sleep(500);
            reachableWhileStalled = (await liveBytes()) - liveBase;
            await sleep(800);
            growthWhileStalled = process.memoryUsage().rss - before;
            s.ws.resume();
          })();
        } else setTimeout(() => s.ws.resume(), 30);
      }
    });
    const closed = await s.closed;
    clearInterval(sampler);
    expect(closed.code).toBe(1000);
    expect(received).toBe(GIB);
    expect(status).toBe('{"metadata":{},"status":"Success"}');
    const growth = peak - baseline;
    process.stdout.write(
      `fake-cluster backpressure: 1 GiB streamed, peak RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB, growth during 1.5 s stall ${(growthWhileStalled / 2 ** 20).toFixed(1)} MiB, reachable during the stall +${(reachableWhileStalled / 2 ** 20).toFixed(1)} MiB (${process.version})\n`,
    );
    expect(reachableWhileStalled).toBeLessThan(RETAINED_BOUND);
    expect(growthWhileStalled).toBeLessThan(16 * MIB);
    expect(growth).toBeLessThan(MEMORY_BOUND);
  }, 120_000);
});
