/**
 * The `pod-state` profile's API phase records the pod's identity context
 * (`pod/identity-context.json`); an incomplete one is `truncated` with the skipped items, so the
 * target is `partial`, never a false `complete`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCollector, type TargetReport } from '../../src/collect/index.js';
import { type Manifest, MemorySink } from '../../src/evidence/index.js';
import { type PodIdentityContext, podIdentityContextSchema } from '../../src/index.js';
import { KubeClient } from '../../src/kube/index.js';
import { addIdentityFixture, FakeCluster, type IdentityFixture } from '../../src/testing/index.js';

describe('pod-state records the identity context', () => {
  let cluster: FakeCluster;
  let fx: IdentityFixture;
  beforeAll(async () => {
    cluster = await FakeCluster.start({
      users: [
        {
          name: 'minimal',
          // what clusterRoleYaml() grants, without the identity reads
          rules: [
            { verbs: ['get', 'list'], resources: ['pods'] },
            { verbs: ['get', 'create'], resources: ['pods/exec'] },
            { verbs: ['get'], resources: ['pods/log'] },
            { verbs: ['list'], resources: ['events'] },
          ],
        },
      ],
    });
    fx = await addIdentityFixture(cluster);
  });
  afterAll(() => cluster?.close());

  async function acquire(token: string) {
    const sink = new MemorySink();
    const kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token });
    const collector = new ArtifactCollector({ sink, profiles: ['pod-state'] });
    const report = await collector.acquire({ kube, namespace: fx.namespace, pod: fx.pod, container: 'web' });
    const t = report.targets[0] as TargetReport;
    const files = sink.bundles.get(t.acquisitionId as string)?.files;
    const manifest = JSON.parse(files?.get('manifest.json')?.toString('utf8') ?? '{}') as Manifest;
    const entry = manifest.artifacts.find((a) => a.requestedPath === 'pod/identity-context.json');
    const body = entry ? files?.get(entry.path)?.toString('utf8') : undefined;
    return { t, entry, doc: body ? (JSON.parse(body) as PodIdentityContext) : undefined };
  }

  it('with the reads granted: complete, and the document names the role and the group grant', async () => {
    const { t, entry, doc } = await acquire(cluster.adminToken);
    expect(t.status, JSON.stringify(t.reasons)).toBe('complete');
    expect(entry?.status).toBe('complete');
    expect(entry?.source).toMatchObject({ kind: 'api', profile: 'pod-state', item: 'pod-api' });
    expect(podIdentityContextSchema.parse(doc).serviceAccount.roleArn).toBe(fx.roleArn);
    expect(doc?.rbac.bindings.map((b) => b.name)).toContain('all-sa-read-secrets');
  });

  it('with the minimal ClusterRole: truncated with the skipped reads, target partial', async () => {
    const { t, entry, doc } = await acquire(cluster.tokenFor('minimal'));
    expect(entry?.status).toBe('truncated');
    expect(entry?.reason).toMatch(/identity context incomplete: serviceAccount \(EKSF_FORBIDDEN\)/);
    expect(doc?.complete).toBe(false);
    expect(doc?.skipped.find((s) => s.item === 'clusterRoleBindings')?.rbacRule?.resources).toEqual([
      'clusterrolebindings',
    ]);
    expect(t.status).toBe('partial');
  });
});
