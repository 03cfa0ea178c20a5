/**
 * `pod-state` records who the pod is (`pod/identity-context.json`, API only): complete when every
 * identity read was granted, `truncated` with the exact RBAC rule when one was denied.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCollector } from '../../src/collect/index.js';
import { DirectorySink, verifyEvidence } from '../../src/evidence/index.js';
import { KubeClient } from '../../src/kube/index.js';
import { addIdentityFixture, FakeCluster, type IdentityFixture } from '../../src/testing/index.js';

interface Row {
  path: string;
  status: string;
  reason?: string;
}

describe('pod-state: identity context in the bundle', () => {
  let cluster: FakeCluster;
  let fx: IdentityFixture;
  let dir: string;
  beforeAll(async () => {
    cluster = await FakeCluster.start({
      users: [
        {
          name: 'narrow',
          // pods, events, logs and the service account, but no RBAC bindings at all
          rules: [
            { verbs: ['get', 'list'], resources: ['pods', 'pods/log', 'events', 'serviceaccounts', 'nodes'] },
            { verbs: ['get', 'list'], resources: ['replicasets', 'deployments'] },
          ],
        },
      ],
    });
    fx = await addIdentityFixture(cluster);
    dir = mkdtempSync(join(tmpdir(), 'eksf-identity-'));
  });
  afterAll(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function acquire(token: string) {
    const kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token });
    const sink = new DirectorySink({ root: dir, fsyncArtifacts: false });
    const c = new ArtifactCollector({ sink, profiles: ['pod-state'] });
    const pod = await kube.getPod(fx.namespace, fx.pod);
    const container = pod.spec?.containers[0]?.name ?? 'app';
    const r = (await c.acquire({ kube, namespace: fx.namespace, pod: fx.pod, container })).targets[0];
    const loc = r?.location as string;
    const rows = (JSON.parse(readFileSync(join(loc, 'manifest.json'), 'utf8')) as { artifacts: Row[] })
      .artifacts;
    const doc = JSON.parse(readFileSync(join(loc, 'pod/identity-context.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    return { r, loc, row: rows.find((x) => x.path === 'pod/identity-context.json'), doc };
  }

  it('with every read granted: the service account, its IAM role and the bindings that grant it, complete', async () => {
    const { r, loc, row, doc } = await acquire(cluster.adminToken);
    expect(row?.status, row?.reason).toBe('complete');
    const text = JSON.stringify(doc);
    expect(text).toContain(fx.roleArn);
    expect(text).toContain(fx.serviceAccount);
    for (const b of fx.grantingBindings) expect(text).toContain(b.split('/').pop() as string);
    expect((doc.skipped as unknown[]).length).toBe(0);
    const v = await verifyEvidence(loc, { expectedManifestSha256: r?.manifestSha256 });
    expect(v.status).toBe('valid');
  });

  it('a reader without RBAC reads: truncated, never complete, with the rule to grant', async () => {
    const { r, row } = await acquire(cluster.tokenFor('narrow'));
    expect(row?.status).toBe('truncated');
    expect(row?.reason).toMatch(/rolebindings/);
    expect(row?.reason).toMatch(/Grant the reader/);
    expect(r?.status).toBe('partial');
  });
  it('a collector given a signing key writes bundles that verify anchored on the pinned public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const kube = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
    });
    const c = new ArtifactCollector({
      sink: new DirectorySink({ root: dir, fsyncArtifacts: false }),
      profiles: ['pod-state'],
      signingKey: privateKey,
    });
    const pod = await kube.getPod(fx.namespace, fx.pod);
    const r = (
      await c.acquire({
        kube,
        namespace: fx.namespace,
        pod: fx.pod,
        container: pod.spec?.containers[0]?.name ?? 'web',
      })
    ).targets[0];
    const v = await verifyEvidence(r?.location as string, { publicKey });
    expect(v.status).toBe('valid');
    expect(v.anchors).toContain('signature');
    // another key does not vouch for it
    const other = generateKeyPairSync('ed25519').publicKey;
    expect((await verifyEvidence(r?.location as string, { publicKey: other })).status).not.toBe('valid');
  });
});
