/**
 * A client that stops reading a never-ending output and then goes away must not leave the
 * FakeCluster session (and so `close()`) hanging. With the sandbox runtime the output pipe stays
 * open while any process in the container holds it, so output paused for backpressure has to be
 * resumed (and discarded) for the session to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../src/kube/index.js';
import { FakeCluster } from '../../src/testing/index.js';
import { createSandboxRuntime } from '../../src/testing/sandbox/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { sandboxMissing } from './support.js';

const skip = skipWithoutPeer('bwrap', sandboxMissing());

describe.skipIf(skip)('a reader that stops and disconnects (sandbox runtime)', () => {
  let cluster: FakeCluster | undefined;
  beforeAll(async () => {
    cluster = await FakeCluster.start({ runtimes: { sandbox: await createSandboxRuntime() } });
    await cluster.addPod({
      name: 'gen',
      containers: [{ name: 'c', image: 'busybox', runtime: 'sandbox' }],
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('close() returns promptly after the client aborts a backed-up exec', async () => {
    const c = cluster as FakeCluster;
    const kube = new KubeClient({ server: c.server, caData: c.caData, token: c.adminToken });
    const s = await kube.exec({ namespace: 'default', pod: 'gen', container: 'c', command: ['yes'] });
    let received = 0;
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        received += d.length;
        if (received > 4 << 20) {
          s.stdout.off('data', onData);
          s.stdout.pause();
          resolve();
        }
      };
      s.stdout.on('data', onData);
    });
    // The server's backlog builds up and it pauses the container's output; then the client leaves.
    await new Promise((r) => setTimeout(r, 500));
    s.abort();
    await s.result.catch(() => {});
    const t0 = Date.now();
    await c.close();
    cluster = undefined;
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 60_000);
});
