import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../src/testing/index.js';
import { execPath, rawExec } from './helpers.js';

const GIB = 1 << 30;
// Client and server share this process; measured 40–55 MiB, ~740 MiB when the server ignores backpressure.
const MEMORY_BOUND = 96 * 1024 * 1024;

describe('FakeCluster exec backpressure', () => {
  let cluster: FakeCluster;
  beforeAll(async () => {
    cluster = await FakeCluster.start();
    await cluster.addPod({ name: 'gen', containers: [{ name: 'c', image: 'busybox', runtime: 'host' }] });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it(`a slow reader of 1 GiB keeps memory growth under ${MEMORY_BOUND / 2 ** 20} MiB`, async () => {
    global.gc?.();
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
        setTimeout(
          () => {
            if (long) growthWhileStalled = process.memoryUsage().rss - before;
            s.ws.resume();
          },
          long ? 1500 : 30,
        );
      }
    });
    const closed = await s.closed;
    clearInterval(sampler);
    expect(closed.code).toBe(1000);
    expect(received).toBe(GIB);
    expect(status).toBe('{"metadata":{},"status":"Success"}');
    const growth = peak - baseline;
    process.stdout.write(
      `fake-cluster backpressure: 1 GiB streamed, peak RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB, growth during 1.5 s stall ${(growthWhileStalled / 2 ** 20).toFixed(1)} MiB\n`,
    );
    expect(growthWhileStalled).toBeLessThan(16 * 1024 * 1024);
    expect(growth).toBeLessThan(MEMORY_BOUND);
  }, 120_000);
});
