import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { IDENTITY_READ_PERMISSIONS, identityReaderClusterRoleYaml } from '../../src/entries/iam.js';
import { podIdentityContextSchema } from '../../src/entries/schemas.js';
import { ForbiddenError, NotFoundError, podIdentityContext } from '../../src/index.js';
import { KubeClient } from '../../src/kube/index.js';
import { addIdentityFixture, FakeAws, FakeCluster, type IdentityFixture } from '../../src/testing/index.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const WINDOW = { from: new Date(NOW.getTime() - 3_600_000), to: NOW };

// Everything identityReaderClusterRoleYaml() grants, plus get pods, as FakeCluster rules.
const READER_RULES = IDENTITY_READ_PERMISSIONS.map((p) => ({
  verbs: [...p.verbs],
  resources: [p.resource],
  apiGroups: [p.apiGroup],
}));

describe('podIdentityContext against FakeCluster', () => {
  let cluster: FakeCluster;
  let fx: IdentityFixture;
  let admin: KubeClient;
  let aws: FakeAws;
  const as = (user: string) =>
    new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.tokenFor(user) });

  beforeAll(async () => {
    cluster = await FakeCluster.start({
      clock: () => NOW.getTime(),
      users: [
        { name: 'reader', rules: READER_RULES },
        {
          name: 'narrow',
          // no cluster-wide rolebindings, no clusterrolebindings, no networkpolicies, no events
          rules: [
            { verbs: ['get'], resources: ['pods', 'serviceaccounts'] },
            { verbs: ['list'], resources: ['rolebindings'], namespaces: ['shop'] },
            { verbs: ['get'], resources: ['roles', 'clusterroles'] },
            { verbs: ['get', 'list'], resources: ['replicasets', 'deployments'] },
          ],
        },
      ],
    });
    fx = await addIdentityFixture(cluster, { now: NOW });
    admin = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
    aws = await FakeAws.start();
  });
  afterAll(async () => {
    await cluster?.close();
    await aws?.close();
  });

  it('collects the SA, the RBAC granted directly and through groups, owners, events and policies', async () => {
    const doc = await podIdentityContext(
      as('reader'),
      { namespace: fx.namespace, name: fx.pod },
      { window: WINDOW, now: () => NOW },
    );
    expect(doc.complete).toBe(true);
    expect(doc.skipped).toEqual([]);
    expect(doc.serviceAccount).toMatchObject({
      status: 'found',
      name: 'web',
      username: 'system:serviceaccount:shop:web',
      roleArn: fx.roleArn,
      tokenMounted: true,
    });
    expect(doc.awsRoles).toEqual([{ roleArn: fx.roleArn, source: 'irsa' }]);
    expect(doc.podIdentityAssociations.status).toBe('not-requested');

    const bound = doc.rbac.bindings.map((b) => `${b.kind}/${b.namespace ? `${b.namespace}/` : ''}${b.name}`);
    expect(bound.sort()).toEqual([...fx.grantingBindings].sort());
    // decoys: same SA name in another namespace, and another namespace's group
    expect(bound.join()).not.toContain('other');
    const viaGroup = doc.rbac.bindings.find((b) => b.name === 'all-sa-read-secrets');
    expect(viaGroup?.grantedTo).toEqual({ kind: 'Group', name: 'system:serviceaccounts:shop' });
    expect(doc.rbac.bindings.find((b) => b.name === 'dangling')?.roleStatus).toBe('missing');

    const caps = Object.fromEntries(doc.rbac.capabilities.map((c) => [c.id, c]));
    expect(caps['read-secrets']).toMatchObject({
      scopes: ['shop'],
      via: ['RoleBinding/shop/all-sa-read-secrets'],
    });
    expect(caps['exec-into-pods']).toMatchObject({ scopes: ['*'], via: ['ClusterRoleBinding/web-exec'] });
    expect(caps['list-pods']?.scopes).toEqual(['*']);
    expect(caps['cluster-admin']).toBeUndefined();
    expect(caps['escalate-rbac']).toBeUndefined();

    expect(doc.owners.chain.map((o) => `${o.kind}/${o.name}/${o.status}`)).toEqual([
      `ReplicaSet/${fx.replicaSets[1]}/found`,
      'Deployment/web/found',
    ]);
    expect(doc.owners.revisions.map((r) => [r.revision, r.images, r.ownsPod])).toEqual([
      [1, ['shop/web:1.4'], false],
      [2, ['shop/web:1.4-hotfix'], true],
    ]);
    expect(doc.owners.templateChanged).toBe(true);
    expect(doc.owners.revisions[0]?.templateSha256).not.toBe(doc.owners.revisions[1]?.templateSha256);

    expect(doc.events.items).toHaveLength(2);
    expect(doc.events.outsideWindow).toBe(1);
    expect(doc.networkPolicies.selecting.map((n) => n.name)).toEqual(['web-ingress']);
    expect(doc.networkPolicies).toMatchObject({ ingressIsolated: true, egressIsolated: false });
    // the document is JSON-clean and validates when read back
    expect(podIdentityContextSchema.parse(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
  });

  it('records each denied read as a skip with the exact RBAC rule, and keeps what it could read', async () => {
    const doc = await podIdentityContext(
      as('narrow'),
      { namespace: fx.namespace, name: fx.pod },
      { window: WINDOW },
    );
    expect(doc.complete).toBe(false);
    const byItem = Object.fromEntries(doc.skipped.map((s) => [s.item, s]));
    expect(byItem.clusterRoleBindings?.rbacRule).toEqual({
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterrolebindings'],
      verbs: ['list'],
      scope: 'cluster',
    });
    expect(byItem.clusterRoleBindings?.code).toBe('EKSF_FORBIDDEN');
    expect(byItem.roleBindings?.rbacRule?.resources).toEqual(['rolebindings']);
    expect(byItem.events?.rbacRule).toMatchObject({ resources: ['events'], verbs: ['list'] });
    expect(byItem.networkPolicies?.rbacRule).toMatchObject({ apiGroups: ['networking.k8s.io'] });
    expect(byItem.networkPolicies?.reason).toMatch(/Grant the reader "list" on networkpolicies/);
    // fell back to the pod's namespace for RoleBindings: the group grant is still found
    expect(doc.rbac.status).toBe('partial');
    expect(doc.rbac.bindings.map((b) => b.name).sort()).toEqual(['all-sa-read-secrets', 'dangling']);
    expect(doc.events.status).toBe('skipped');
    expect(doc.networkPolicies).toMatchObject({ status: 'skipped', ingressIsolated: null });
    expect(doc.owners.status).toBe('collected');
    expect(doc.serviceAccount.status).toBe('found');
  });

  it('an empty namespace: default SA missing, no owners, no bindings, nothing selected', async () => {
    await cluster.addPod({
      namespace: 'lonely',
      name: 'solo',
      containers: [{ name: 'c', image: 'busybox' }],
    });
    const doc = await podIdentityContext(admin, { namespace: 'lonely', name: 'solo' }, { window: WINDOW });
    expect(doc.serviceAccount).toMatchObject({ status: 'not-found', name: 'default', roleArn: null });
    expect(doc.awsRoles).toEqual([]);
    // only the system:authenticated grant reaches a pod of another namespace
    expect(doc.rbac.bindings.map((b) => b.name)).toEqual(['authenticated-discovery']);
    expect(doc.rbac.capabilities).toEqual([]);
    expect(doc.owners).toMatchObject({ status: 'none', chain: [], revisions: [] });
    expect(doc.networkPolicies).toMatchObject({ selecting: [], ingressIsolated: false });
    expect(doc.complete).toBe(true);
  });

  it('throws NotFoundError for a missing pod and ForbiddenError when even get pods is denied', async () => {
    await expect(podIdentityContext(admin, { namespace: 'shop', name: 'nope' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    const nobody = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.tokenFor('narrow'),
    });
    await expect(podIdentityContext(nobody, { namespace: 'kube-system', name: 'x' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(
      podIdentityContext(
        new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.tokenFor('reader') }),
        { namespace: 'shop', name: 'nope' },
      ),
    ).rejects.toBeInstanceOf(NotFoundError);
    const denied = await FakeCluster.start({ users: [{ name: 'none', rules: [] }] });
    try {
      const k = new KubeClient({
        server: denied.server,
        caData: denied.caData,
        token: denied.tokenFor('none'),
      });
      await expect(podIdentityContext(k, { namespace: 'a', name: 'b' })).rejects.toBeInstanceOf(
        ForbiddenError,
      );
    } finally {
      await denied.close();
    }
  });

  it('a forged owner: same name, other uid, is not taken for the pod owner', async () => {
    const pod = await admin.getPod(fx.namespace, fx.pod);
    const forged = structuredClone(pod);
    const ref = forged.metadata.ownerReferences?.[0];
    if (ref) ref.uid = 'not-the-real-uid';
    const doc = await podIdentityContext(admin, forged, { window: WINDOW });
    expect(doc.owners.chain).toEqual([
      { kind: 'ReplicaSet', name: fx.replicaSets[1], uid: 'not-the-real-uid', status: 'not-found' },
    ]);
    expect(doc.owners.revisions).toEqual([]);
  });

  it('a flood of bindings is bounded: the listing stops at maxBindings and the document says so', async () => {
    for (let i = 0; i < 30; i++) {
      cluster.addObject({
        kind: 'RoleBinding',
        metadata: { name: `flood-${String(i).padStart(3, '0')}`, namespace: 'zz-flood' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nothing' },
        subjects: [{ kind: 'Group', name: 'system:serviceaccounts' }],
      });
    }
    const doc = await podIdentityContext(
      admin,
      { namespace: fx.namespace, name: fx.pod },
      { window: WINDOW, maxBindings: 10 },
    );
    expect(doc.rbac.truncated).toBe(true);
    expect(doc.complete).toBe(false);
    const full = await podIdentityContext(
      admin,
      { namespace: fx.namespace, name: fx.pod },
      { window: WINDOW },
    );
    // every flood binding grants through system:serviceaccounts, each to a missing Role
    expect(full.rbac.bindings.filter((b) => b.name.startsWith('flood-'))).toHaveLength(30);
    expect(full.rbac.bindings.find((b) => b.name === 'flood-000')?.roleStatus).toBe('missing');
    for (let i = 0; i < 30; i++)
      cluster.removeObject('RoleBinding', 'zz-flood', `flood-${String(i).padStart(3, '0')}`);
  });

  it('a NetworkPolicy with an unknown selector operator selects nothing rather than guessing', async () => {
    cluster.addObject({
      kind: 'NetworkPolicy',
      metadata: { name: 'weird', namespace: fx.namespace },
      spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'Matches', values: ['w.*'] }] } },
    });
    const doc = await podIdentityContext(
      admin,
      { namespace: fx.namespace, name: fx.pod },
      { window: WINDOW },
    );
    expect(doc.networkPolicies.selecting.map((n) => n.name)).toEqual(['web-ingress']);
    cluster.removeObject('NetworkPolicy', fx.namespace, 'weird');
  });

  describe('Pod Identity associations (FakeAws EKS)', () => {
    const lookup = () => ({
      clusterName: 'prod',
      region: 'eu-west-1',
      endpoint: aws.endpoint,
      credentials: aws.credentials(),
    });

    it('found: maps the SA to the association role (and target role)', async () => {
      aws.addPodIdentityAssociation({
        clusterName: 'prod',
        region: 'eu-west-1',
        namespace: 'shop',
        serviceAccount: 'web',
        roleArn: 'arn:aws:iam::123456789012:role/shop-web-pod-identity',
        targetRoleArn: 'arn:aws:iam::999999999999:role/cross',
      });
      aws.addPodIdentityAssociation({
        clusterName: 'prod',
        region: 'eu-west-1',
        namespace: 'other',
        serviceAccount: 'web',
        roleArn: 'arn:aws:iam::123456789012:role/decoy',
      });
      const doc = await podIdentityContext(
        admin,
        { namespace: fx.namespace, name: fx.pod },
        { podIdentity: lookup() },
      );
      expect(doc.podIdentityAssociations.status).toBe('found');
      expect(doc.podIdentityAssociations.items).toHaveLength(1);
      expect(doc.awsRoles).toEqual([
        { roleArn: fx.roleArn, source: 'irsa' },
        { roleArn: 'arn:aws:iam::123456789012:role/shop-web-pod-identity', source: 'pod-identity' },
        { roleArn: 'arn:aws:iam::999999999999:role/cross', source: 'pod-identity' },
      ]);
    });

    it('empty, access denied, throttled and region-disabled are told apart', async () => {
      const empty = await podIdentityContext(
        admin,
        { namespace: 'lonely', name: 'solo' },
        { podIdentity: lookup() },
      );
      expect(empty.podIdentityAssociations).toEqual({ status: 'empty', items: [] });

      const run = async (code: string, region = 'eu-west-1') => {
        aws.failures.push({ service: 'eks', operation: 'ListPodIdentityAssociations', code });
        try {
          const d = await podIdentityContext(
            admin,
            { namespace: 'lonely', name: 'solo' },
            { podIdentity: { ...lookup(), region, client: undefined } },
          );
          return d;
        } finally {
          aws.failures.length = 0;
        }
      };
      const denied = await run('AccessDeniedException');
      expect(denied.podIdentityAssociations.status).toBe('skipped');
      expect(denied.skipped).toContainEqual(
        expect.objectContaining({
          item: 'podIdentityAssociations',
          code: 'access-denied',
          iamAction: 'eks:ListPodIdentityAssociations',
        }),
      );
      expect(denied.complete).toBe(false);
      const throttled = await run('ThrottlingException');
      expect(throttled.skipped.map((s) => s.code)).toEqual(['throttled']);
      const disabled = await run('UnrecognizedClientException', 'ap-east-1');
      expect(disabled.skipped.map((s) => s.code)).toEqual(['region-disabled']);
    });
  });
});

describe('identityReaderClusterRoleYaml', () => {
  it('grants exactly the reads of IDENTITY_READ_PERMISSIONS, read-only', () => {
    const [role] = parseAllDocuments(identityReaderClusterRoleYaml({ group: 'ir' })).map((d) => d.toJS()) as [
      { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> },
    ];
    const granted = new Set(
      role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}`))),
    );
    for (const p of IDENTITY_READ_PERMISSIONS)
      for (const v of p.verbs) expect(granted).toContain(`${v} ${p.resource}`);
    for (const g of granted) expect(g).toMatch(/^(get|list) /);
  });
});
