import { request } from 'node:https';
import { checkServerIdentity } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../src/testing/index.js';
import { api, collect, execPath, rawExec } from './helpers.js';

const T0 = Date.UTC(2026, 10, 22, 10, 0, 0);

describe('FakeCluster REST API', () => {
  let cluster: FakeCluster;
  let now = T0;

  beforeAll(async () => {
    cluster = await FakeCluster.start({
      clock: () => now,
      continueTokenTtlMs: 60_000,
      tlsServerName: 'api.fake.example',
      users: [
        {
          name: 'ns-reader',
          token: 'ns-reader',
          rules: [{ verbs: ['get', 'list'], resources: ['pods', 'pods/log'], namespaces: ['team-a'] }],
        },
        {
          name: 'debugger',
          token: 'debugger',
          rules: [{ verbs: ['get', 'patch'], resources: ['pods', 'pods/ephemeralcontainers'] }],
        },
      ],
    });
    cluster.addNode({
      name: 'ip-10-0-1-5.ec2.internal',
      providerID: 'aws:///us-east-1a/i-0123456789abcdef0',
      labels: { 'eks.amazonaws.com/nodegroup': 'ng-1' },
    });
    for (const ns of ['team-a', 'team-b']) {
      for (let i = 0; i < 5; i++) {
        await cluster.addPod({
          namespace: ns,
          name: `pod-${i}`,
          labels: { idx: String(i) },
          containers: [{ name: 'c', image: 'busybox' }],
        });
      }
    }
    await cluster.addPod({
      namespace: 'team-a',
      name: 'logger',
      containers: [
        {
          name: 'app',
          image: 'ghcr.io/acme/app:v2',
          logs: {
            current: [
              { time: T0 - 3600_000, text: 'old line' },
              { time: T0 - 30_000, text: 'recent line' },
              { time: T0 - 1000, text: 'newest line' },
            ],
            previous: 'crashed before\n',
          },
        },
        { name: 'sidecar', image: 'envoy', state: 'waiting', reason: 'ImagePullBackOff' },
      ],
    });
    cluster.addEvent({
      involvedObject: { kind: 'Pod', namespace: 'team-a', name: 'logger', uid: 'uid-logger' },
      reason: 'BackOff',
      type: 'Warning',
      message: 'Back-off pulling image "envoy"',
    });
    cluster.addEvent({
      involvedObject: { kind: 'Pod', namespace: 'team-a', name: 'pod-1' },
      reason: 'Pulled',
      message: 'ok',
    });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('lists pods with limit/continue and expires old tokens with 410', async () => {
    const names: string[] = [];
    let cont = '';
    let pages = 0;
    do {
      const r = await api(
        cluster,
        'GET',
        `/api/v1/pods?limit=4${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
      );
      expect(r.status).toBe(200);
      const list = JSON.parse(r.body) as {
        kind: string;
        metadata: { continue?: string; remainingItemCount?: number };
        items: Array<{ kind?: string; metadata: { namespace: string; name: string } }>;
      };
      expect(list.kind).toBe('PodList');
      expect(list.items.every((p) => p.kind === undefined)).toBe(true);
      names.push(...list.items.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
      cont = list.metadata.continue ?? '';
      pages++;
    } while (cont);
    expect(pages).toBe(3);
    expect(names).toHaveLength(11);
    expect(names[0]).toBe('team-a/logger');
    const first = JSON.parse((await api(cluster, 'GET', '/api/v1/namespaces/team-b/pods?limit=2')).body);
    expect(first.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual([
      'pod-0',
      'pod-1',
    ]);
    expect(first.metadata.remainingItemCount).toBe(3);
    now = T0 + 61_000;
    const expired = await api(
      cluster,
      'GET',
      `/api/v1/namespaces/team-b/pods?limit=2&continue=${encodeURIComponent(first.metadata.continue)}`,
    );
    now = T0;
    expect(expired.status).toBe(410);
    const body = JSON.parse(expired.body);
    expect(body.reason).toBe('Expired');
    expect(body.code).toBe(410);
    expect(body.message).toBe(
      'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
    );
    expect(typeof body.metadata.continue).toBe('string');
  });

  it('filters by label and field selectors and rejects unsupported fields', async () => {
    const r = JSON.parse(
      (await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods?labelSelector=idx%20in%20(1,3)')).body,
    );
    expect(r.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['pod-1', 'pod-3']);
    const f = JSON.parse(
      (
        await api(
          cluster,
          'GET',
          '/api/v1/pods?fieldSelector=metadata.name%3Dpod-4,metadata.namespace!%3Dteam-a',
        )
      ).body,
    );
    expect(f.items.map((p: { metadata: { namespace: string } }) => p.metadata.namespace)).toEqual(['team-b']);
    const bad = await api(cluster, 'GET', '/api/v1/pods?fieldSelector=spec.containers.image%3Dx');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).message).toBe('field label not supported: spec.containers.image');
  });

  it('serves pods with real shapes: statuses joined by name, waiting containers, imageID digests', async () => {
    const pod = JSON.parse((await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/logger')).body);
    expect(pod.kind).toBe('Pod');
    expect(pod.spec.nodeName).toBe('ip-10-0-1-5.ec2.internal');
    expect(pod.status.phase).toBe('Pending');
    const [app, sidecar] = pod.status.containerStatuses;
    expect(app.name).toBe('app');
    expect(app.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(app.image).toBe('ghcr.io/acme/app:v2');
    expect(app.imageID).toMatch(/^ghcr\.io\/acme\/app@sha256:[0-9a-f]{64}$/);
    expect(app.restartCount).toBe(1);
    expect(app.lastState.terminated.reason).toBe('Error');
    expect(sidecar).toMatchObject({
      name: 'sidecar',
      state: { waiting: { reason: 'ImagePullBackOff' } },
      ready: false,
      imageID: '',
    });
    expect(sidecar.containerID).toBeUndefined();
    const node = JSON.parse((await api(cluster, 'GET', '/api/v1/nodes/ip-10-0-1-5.ec2.internal')).body);
    expect(node.spec.providerID).toBe('aws:///us-east-1a/i-0123456789abcdef0');
    expect(node.metadata.labels['eks.amazonaws.com/nodegroup']).toBe('ng-1');
    const nodes = JSON.parse((await api(cluster, 'GET', '/api/v1/nodes')).body);
    expect(nodes.kind).toBe('NodeList');
    const missing = await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/ghost');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).message).toBe('pods "ghost" not found');
  });

  it('answers RBAC 403s with the real message, cluster-scoped and namespaced', async () => {
    const other = await api(cluster, 'GET', '/api/v1/namespaces/team-b/pods', { token: 'ns-reader' });
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'pods is forbidden: User "ns-reader" cannot list resource "pods" in API group "" in the namespace "team-b"',
      reason: 'Forbidden',
      details: { kind: 'pods' },
      code: 403,
    });
    const all = await api(cluster, 'GET', '/api/v1/pods', { token: 'ns-reader' });
    expect(JSON.parse(all.body).message).toBe(
      'pods is forbidden: User "ns-reader" cannot list resource "pods" in API group "" at the cluster scope',
    );
    expect((await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods', { token: 'ns-reader' })).status).toBe(
      200,
    );
    expect((await api(cluster, 'GET', '/api/v1/pods', { token: null })).status).toBe(401);
  });

  it('SelfSubjectAccessReview answers from the same rules', async () => {
    const ask = async (token: string, attrs: Record<string, string>): Promise<{ allowed: boolean }> => {
      const r = await api(cluster, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        token,
        body: JSON.stringify({
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: attrs },
        }),
      });
      expect(r.status).toBe(201);
      const body = JSON.parse(r.body);
      expect(body.kind).toBe('SelfSubjectAccessReview');
      expect(body.spec.resourceAttributes).toEqual(attrs);
      return body.status;
    };
    expect(
      (await ask('ns-reader', { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'team-a' }))
        .allowed,
    ).toBe(true);
    expect(
      (await ask('ns-reader', { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'team-b' }))
        .allowed,
    ).toBe(false);
    expect(
      (await ask('ns-reader', { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'team-a' }))
        .allowed,
    ).toBe(false);
    expect(
      (
        await ask(cluster.adminToken, {
          verb: 'create',
          resource: 'pods',
          subresource: 'exec',
          namespace: 'x',
        })
      ).allowed,
    ).toBe(true);
  });

  it('serves logs with since/tail/timestamps/limitBytes/previous and the kubelet errors', async () => {
    const base = '/api/v1/namespaces/team-a/pods/logger/log?container=app';
    const text = async (q: string): Promise<string> => {
      const r = await api(cluster, 'GET', `${base}${q}`);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/plain');
      return r.body;
    };
    expect(await text('')).toBe('old line\nrecent line\nnewest line\n');
    expect(await text('&sinceSeconds=60')).toBe('recent line\nnewest line\n');
    expect(await text(`&sinceTime=${encodeURIComponent(new Date(T0 - 5000).toISOString())}`)).toBe(
      'newest line\n',
    );
    expect(await text('&tailLines=1&timestamps=true')).toBe('2026-11-22T09:59:59.000000000Z newest line\n');
    expect(await text('&limitBytes=5')).toBe('old l');
    expect(await text('&previous=true')).toBe('crashed before\n');
    const waiting = await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/logger/log?container=sidecar');
    expect(waiting.status).toBe(400);
    expect(JSON.parse(waiting.body).message).toBe(
      'container "sidecar" in pod "logger" is waiting to start: ImagePullBackOff',
    );
    const noPrev = await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/pod-1/log?previous=1');
    expect(JSON.parse(noPrev.body).message).toBe(
      'previous terminated container "c" in pod "pod-1" not found',
    );
    const choose = await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/logger/log');
    expect(JSON.parse(choose.body).message).toBe(
      'a container name must be specified for pod logger, choose one of: [app sidecar]',
    );
    const invalid = await api(cluster, 'GET', `${base}&limitBytes=0`);
    expect(invalid.status).toBe(422);
    expect(JSON.parse(invalid.body).reason).toBe('Invalid');
  });

  it('lists events with involvedObject field selectors', async () => {
    const byUid = JSON.parse(
      (
        await api(
          cluster,
          'GET',
          '/api/v1/namespaces/team-a/events?fieldSelector=involvedObject.uid%3Duid-logger',
        )
      ).body,
    );
    expect(byUid.kind).toBe('EventList');
    expect(byUid.items).toHaveLength(1);
    expect(byUid.items[0]).toMatchObject({
      reason: 'BackOff',
      type: 'Warning',
      involvedObject: { name: 'logger', kind: 'Pod' },
    });
    const byName = JSON.parse(
      (
        await api(
          cluster,
          'GET',
          '/api/v1/namespaces/team-a/events?fieldSelector=involvedObject.name%3Dpod-1',
        )
      ).body,
    );
    expect(byName.items.map((e: { reason: string }) => e.reason)).toEqual(['Pulled']);
  });

  it('serves discovery and /version', async () => {
    const v = JSON.parse((await api(cluster, 'GET', '/version')).body);
    expect(v.gitVersion).toBe('v1.33.0-eks-fake');
    const core = JSON.parse((await api(cluster, 'GET', '/api/v1')).body);
    expect(core.resources.map((r: { name: string }) => r.name)).toContain('pods/exec');
    const groups = JSON.parse((await api(cluster, 'GET', '/apis')).body);
    expect(groups.groups.map((g: { name: string }) => g.name)).toEqual([
      'authentication.k8s.io',
      'authorization.k8s.io',
    ]);
  });

  it('kubeconfig carries the CA, token, namespace and tls-server-name', () => {
    const kc = cluster.kubeconfig({
      user: 'ns-reader',
      namespace: 'team-a',
      tlsServerName: 'api.fake.example',
    });
    expect(kc).toContain(`server: ${cluster.server}`);
    expect(kc).toContain(`certificate-authority-data: ${Buffer.from(cluster.caData).toString('base64')}`);
    expect(kc).toContain('token: ns-reader');
    expect(kc).toContain('namespace: team-a');
    expect(kc).toContain('tls-server-name: api.fake.example');
    expect(() => cluster.tokenFor('nobody')).toThrow(/no user "nobody"/);
  });

  it('adds ephemeral containers by strategic merge patch, runs them, rejects changes', async () => {
    await cluster.addPod({
      namespace: 'team-a',
      name: 'distroless',
      containers: [
        {
          name: 'app',
          image: 'gcr.io/distroless/static',
          options: {
            commands: {
              id: async (_a, io) => {
                io.stdout.write(`${io.container.name}\n`);
                return 0;
              },
            },
          },
        },
      ],
    });
    const path = '/api/v1/namespaces/team-a/pods/distroless/ephemeralcontainers';
    const patch = JSON.stringify({
      spec: {
        ephemeralContainers: [
          { name: 'debugger-abcde', image: 'busybox', targetContainerName: 'app', stdin: true, tty: true },
        ],
      },
    });
    const denied = await api(cluster, 'PATCH', path, {
      token: 'ns-reader',
      body: patch,
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
    });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).message).toBe(
      'pods "distroless" is forbidden: User "ns-reader" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "team-a"',
    );
    const r = await api(cluster, 'PATCH', path, {
      token: 'debugger',
      body: patch,
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
    });
    expect(r.status).toBe(200);
    const pod = JSON.parse(r.body);
    expect(pod.metadata.generation).toBe(2);
    expect(pod.spec.ephemeralContainers[0]).toMatchObject({
      name: 'debugger-abcde',
      image: 'busybox',
      targetContainerName: 'app',
      terminationMessagePolicy: 'File',
    });
    let status: { state?: { running?: unknown } } | undefined;
    for (let i = 0; i < 50 && !status?.state?.running; i++) {
      const p = JSON.parse((await api(cluster, 'GET', '/api/v1/namespaces/team-a/pods/distroless')).body);
      status = p.status.ephemeralContainerStatuses?.[0];
      if (!status?.state?.running) await new Promise((res) => setTimeout(res, 20));
    }
    expect(status?.state?.running).toBeDefined();
    const s = await rawExec(
      cluster,
      execPath('distroless', ['id'], { container: 'debugger-abcde', stdout: '1' }, 'team-a'),
    );
    await s.closed;
    expect(collect(s.frames, 1)).toBe('debugger-abcde\n');
    const dup = await api(cluster, 'PATCH', path, {
      body: patch,
      headers: { 'Content-Type': 'application/merge-patch+json' },
    });
    expect(dup.status).toBe(422);
    const change = await api(cluster, 'PATCH', path, {
      body: JSON.stringify({ spec: { ephemeralContainers: [{ name: 'debugger-abcde', image: 'alpine' }] } }),
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
    });
    expect(change.status).toBe(422);
    expect(JSON.parse(change.body).message).toContain('may not be removed or changed');
    const badTarget = await api(cluster, 'PATCH', path, {
      body: JSON.stringify({
        spec: { ephemeralContainers: [{ name: 'dbg2', image: 'busybox', targetContainerName: 'nope' }] },
      }),
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
    });
    expect(JSON.parse(badTarget.body).message).toBe(
      'Pod "distroless" is invalid: spec.ephemeralContainers[1].targetContainerName: Not found: "nope"',
    );
  });

  it('the certificate covers 127.0.0.1, localhost and options.tlsServerName only', async () => {
    const get = (servername: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(
          `${cluster.server}/version`,
          {
            ca: cluster.caData,
            servername,
            headers: { Authorization: `Bearer ${cluster.adminToken}`, Host: servername },
            checkServerIdentity: (_host, cert) => checkServerIdentity(servername, cert),
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await get('api.fake.example')).toBe(200);
    expect(await get('localhost')).toBe(200);
    await expect(get('other.example')).rejects.toThrow(/altnames/);
  });

  it('a container whose runtime stops reports terminated and refuses exec', async () => {
    await cluster.addPod({
      namespace: 'team-b',
      name: 'dead',
      containers: [{ name: 'c', image: 'x', options: { running: false } }],
    });
    const pod = JSON.parse((await api(cluster, 'GET', '/api/v1/namespaces/team-b/pods/dead')).body);
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    expect(pod.status.phase).toBe('Succeeded');
    const s = await rawExec(cluster, execPath('dead', ['x'], { stdout: '1' }, 'team-b'));
    await s.closed;
    expect(JSON.parse(collect(s.frames, 3)).reason).toBe('InternalError');
  });

  it('close() is idempotent and stops serving', async () => {
    const c = await FakeCluster.start();
    await c.close();
    await c.close();
    await expect(api(c, 'GET', '/version')).rejects.toThrow();
  });
});
