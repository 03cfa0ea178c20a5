import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointCustody } from '../../src/collect/coverage/index.js';
import { CheckpointError, ValidationError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/index.js';
import { FakeCluster, fakeCheckpointArchives, setFakeCheckpointBehavior } from '../../src/testing/index.js';

describe('kubelet checkpoint through FakeCluster', () => {
  let cluster: FakeCluster;
  let admin: KubeClient;
  let reader: KubeClient;
  beforeAll(async () => {
    cluster = await FakeCluster.start({
      users: [
        { name: 'reader', token: 'reader-token', rules: [{ verbs: ['get', 'list'], resources: ['*'] }] },
      ],
    });
    for (const n of ['node-a', 'node-b', 'node-c', 'node-d', 'node-e']) cluster.addNode({ name: n });
    for (const [pod, node] of [
      ['web', 'node-a'],
      ['old', 'node-b'],
      ['criu', 'node-c'],
      ['gated', 'node-d'],
      ['liar', 'node-e'],
    ] as const) {
      await cluster.addPod({
        name: pod,
        nodeName: node,
        containers: [{ name: 'app', image: 'nginx', runtime: 'scripted' }],
      });
    }
    setFakeCheckpointBehavior(cluster, 'node-a', 'supported');
    setFakeCheckpointBehavior(cluster, 'node-c', 'criu-fails');
    setFakeCheckpointBehavior(cluster, 'node-d', 'gate-off');
    setFakeCheckpointBehavior(cluster, 'node-e', 'lying');
    const base = { server: cluster.server, caData: cluster.caData, retry: { attempts: 1 } };
    admin = new KubeClient({ ...base, token: cluster.adminToken });
    reader = new KubeClient({ ...base, token: 'reader-token' });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  const fail = async (p: Promise<unknown>): Promise<CheckpointError> => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(CheckpointError);
    return e as CheckpointError;
  };

  it('a supported runtime: archive path on the node, custody text says it stays there', async () => {
    const r = await admin.checkpointContainer({
      node: 'node-a',
      namespace: 'default',
      pod: 'web',
      container: 'app',
      timeoutSeconds: 30,
    });
    expect(r.archives).toHaveLength(1);
    expect(r.archives[0]).toMatch(
      /^\/var\/lib\/kubelet\/checkpoints\/checkpoint-web_default-app-\d{4}-.*\.tar$/,
    );
    expect(fakeCheckpointArchives(cluster)).toEqual(r.archives);
    const c = checkpointCustody(r);
    expect(c.location).toBe('node');
    expect(c.text).toContain(r.archives[0]);
    expect(c.text).toMatch(/NOT in this bundle/);
    expect(c.fetch.join('\n')).toMatch(/snapshot/i);
  });

  it('each missing piece is named: rbac, runtime (unimplemented and CRIU), feature gate, target', async () => {
    const rbac = await fail(
      reader.checkpointContainer({ node: 'node-a', namespace: 'default', pod: 'web', container: 'app' }),
    );
    expect(rbac.missing).toBe('rbac');
    expect(rbac.message).toMatch(/nodes\/proxy/);
    expect(rbac.httpStatus).toBe(403);
    const old = await fail(
      admin.checkpointContainer({ node: 'node-b', namespace: 'default', pod: 'old', container: 'app' }),
    );
    expect([old.missing, old.httpStatus]).toEqual(['runtime', 500]);
    expect(old.message).toMatch(/Unimplemented/);
    const criu = await fail(
      admin.checkpointContainer({ node: 'node-c', namespace: 'default', pod: 'criu', container: 'app' }),
    );
    expect(criu.missing).toBe('runtime');
    expect(criu.message).toMatch(/criu failed/);
    const gate = await fail(
      admin.checkpointContainer({ node: 'node-d', namespace: 'default', pod: 'gated', container: 'app' }),
    );
    expect(gate.missing).toBe('feature-gate');
    expect(gate.message).toMatch(/ContainerCheckpoint/);
    const noContainer = await fail(
      admin.checkpointContainer({ node: 'node-a', namespace: 'default', pod: 'web', container: 'nope' }),
    );
    expect(noContainer.missing).toBe('target');
    const wrongNode = await fail(
      admin.checkpointContainer({ node: 'node-b', namespace: 'default', pod: 'web', container: 'app' }),
    );
    expect(wrongNode.missing).toBe('target');
    const noNode = await fail(
      admin.checkpointContainer({ node: 'node-z', namespace: 'default', pod: 'web', container: 'app' }),
    );
    expect(noNode.missing).toBe('target');
    const bad = await fail(
      admin.checkpointContainer({ node: 'node-a', namespace: 'default', pod: '../x', container: 'app' }),
    );
    expect(bad.missing).toBe('target');
  });

  it('a lying kubelet answer is rejected by the schema', async () => {
    await expect(
      admin.checkpointContainer({ node: 'node-e', namespace: 'default', pod: 'liar', container: 'app' }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
