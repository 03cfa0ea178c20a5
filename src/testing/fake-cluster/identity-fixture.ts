/**
 * A ready-made identity scene for {@link FakeCluster}: a pod of a Deployment whose service
 * account maps to an IAM role, granted rights directly, through its namespace group and through
 * `system:authenticated`, next to decoys that must not be attributed to it.
 *
 * @module
 */
import type { FakeCluster } from './fake-cluster.js';
import type { KubeJsonObject } from './types.js';

/** Options of {@link addIdentityFixture}. */
export interface IdentityFixtureOptions {
  /** Namespace of the pod. Default `shop`. */
  namespace?: string | undefined;
  /** Service account. Default `web`. */
  serviceAccount?: string | undefined;
  /** IAM role in the IRSA annotation. Default `arn:aws:iam::123456789012:role/shop-web`. */
  roleArn?: string | undefined;
  /** Node the pod runs on (must exist, or the first node is used). */
  nodeName?: string | undefined;
  /** Time events are stamped around (default now). */
  now?: Date | undefined;
}

/** What {@link addIdentityFixture} created. */
export interface IdentityFixture {
  /** Namespace. */
  namespace: string;
  /** Pod name. */
  pod: string;
  /** Service account name. */
  serviceAccount: string;
  /** IAM role of the IRSA annotation. */
  roleArn: string;
  /** Deployment name. */
  deployment: string;
  /** ReplicaSets, oldest first; the pod belongs to the last. */
  replicaSets: string[];
  /** Bindings that grant the service account (kind/namespace/name), for assertions. */
  grantingBindings: string[];
}

const RBAC = 'rbac.authorization.k8s.io/v1';
const group = (name: string) => ({ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name });

function template(sa: string, image: string): KubeJsonObject {
  return {
    metadata: { labels: { app: 'web' } },
    spec: { serviceAccountName: sa, containers: [{ name: 'web', image }] },
  };
}

/**
 * Adds the identity scene to a cluster and returns the names. The pod's service account is
 * granted: `get/list secrets` in its namespace through the group `system:serviceaccounts:<ns>`,
 * `create pods/exec` cluster-wide directly, discovery through `system:authenticated`, and a
 * binding to a Role that no longer exists. Decoys: an account of the same name in another
 * namespace bound to cluster-admin, and a group binding of that other namespace.
 */
export async function addIdentityFixture(
  cluster: FakeCluster,
  options: IdentityFixtureOptions = {},
): Promise<IdentityFixture> {
  const ns = options.namespace ?? 'shop';
  const sa = options.serviceAccount ?? 'web';
  const roleArn = options.roleArn ?? 'arn:aws:iam::123456789012:role/shop-web';
  const now = (options.now ?? new Date()).getTime();
  const add = (o: KubeJsonObject) => cluster.addObject(o);

  add({
    kind: 'ServiceAccount',
    metadata: { name: sa, namespace: ns, annotations: { 'eks.amazonaws.com/role-arn': roleArn } },
  });
  add({ kind: 'ServiceAccount', metadata: { name: sa, namespace: 'other' } });
  add({
    kind: 'Role',
    apiVersion: RBAC,
    metadata: { name: 'secret-reader', namespace: ns },
    rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }],
  });
  add({
    kind: 'RoleBinding',
    metadata: { name: 'all-sa-read-secrets', namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-reader' },
    subjects: [group(`system:serviceaccounts:${ns}`)],
  });
  add({
    kind: 'ClusterRole',
    metadata: { name: 'pod-exec' },
    rules: [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
    ],
  });
  add({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'web-exec' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-exec' },
    subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
  });
  add({
    kind: 'ClusterRole',
    metadata: { name: 'basic-discovery' },
    rules: [{ nonResourceURLs: ['/api', '/apis', '/version'], verbs: ['get'] }],
  });
  add({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'authenticated-discovery' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'basic-discovery' },
    subjects: [group('system:authenticated')],
  });
  add({
    kind: 'RoleBinding',
    metadata: { name: 'dangling', namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deleted-role' },
    subjects: [
      { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccount:${ns}:${sa}` },
    ],
  });
  // decoys
  add({
    kind: 'ClusterRole',
    metadata: { name: 'cluster-admin' },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
  });
  add({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'other-admin' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: sa, namespace: 'other' }],
  });
  add({
    kind: 'RoleBinding',
    metadata: { name: 'other-group', namespace: 'other' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [group('system:serviceaccounts:other')],
  });

  const dep = add({
    kind: 'Deployment',
    metadata: { name: 'web', namespace: ns, annotations: { 'deployment.kubernetes.io/revision': '2' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: template(sa, 'shop/web:1.4-hotfix'),
    },
  });
  const depUid = (dep.metadata as { uid: string }).uid;
  const owner = (kind: string, name: string, uid: string, apiVersion: string) => [
    { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true },
  ];
  const replicaSets: string[] = [];
  let current: KubeJsonObject | undefined;
  for (const [rev, hash, image] of [
    ['1', '6d4f8b7c9', 'shop/web:1.4'],
    ['2', '7c9b5d6f8', 'shop/web:1.4-hotfix'],
  ] as const) {
    const t = template(sa, image);
    (t.metadata as { labels: Record<string, string> }).labels['pod-template-hash'] = hash;
    current = add({
      kind: 'ReplicaSet',
      metadata: {
        name: `web-${hash}`,
        namespace: ns,
        labels: { app: 'web', 'pod-template-hash': hash },
        annotations: { 'deployment.kubernetes.io/revision': rev },
        ownerReferences: owner('Deployment', 'web', depUid, 'apps/v1'),
      },
      spec: {
        replicas: rev === '2' ? 1 : 0,
        selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } },
        template: t,
      },
    });
    replicaSets.push(`web-${hash}`);
  }
  const rsMeta = (current as KubeJsonObject).metadata as { name: string; uid: string };
  const podName = `${rsMeta.name}-x2k9q`;
  await cluster.addPod({
    namespace: ns,
    name: podName,
    labels: { app: 'web', 'pod-template-hash': '7c9b5d6f8' },
    ownerReferences: owner('ReplicaSet', rsMeta.name, rsMeta.uid, 'apps/v1'),
    serviceAccountName: sa,
    ...(options.nodeName ? { nodeName: options.nodeName } : {}),
    containers: [{ name: 'web', image: 'shop/web:1.4-hotfix' }],
  });

  add({
    kind: 'NetworkPolicy',
    metadata: { name: 'web-ingress', namespace: ns },
    spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{}] },
  });
  add({
    kind: 'NetworkPolicy',
    metadata: { name: 'db-only', namespace: ns },
    spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress', 'Egress'] },
  });
  cluster.addEvent({
    namespace: ns,
    involvedObject: { kind: 'Deployment', namespace: ns, name: 'web' },
    reason: 'ScalingReplicaSet',
    message: `Scaled up replica set ${rsMeta.name} to 1`,
    firstTimestamp: new Date(now - 10 * 60_000),
    source: { component: 'deployment-controller' },
  });
  cluster.addEvent({
    namespace: ns,
    involvedObject: { kind: 'Pod', namespace: ns, name: podName },
    reason: 'Pulled',
    message: 'Container image "shop/web:1.4-hotfix" already present on machine',
    firstTimestamp: new Date(now - 9 * 60_000),
  });
  cluster.addEvent({
    namespace: ns,
    involvedObject: { kind: 'Pod', namespace: ns, name: 'web-old' },
    reason: 'Killing',
    message: 'Stopping container web',
    firstTimestamp: new Date(now - 3 * 86_400_000),
  });
  return {
    namespace: ns,
    pod: podName,
    serviceAccount: sa,
    roleArn,
    deployment: 'web',
    replicaSets,
    grantingBindings: [
      `RoleBinding/${ns}/all-sa-read-secrets`,
      'ClusterRoleBinding/web-exec',
      'ClusterRoleBinding/authenticated-discovery',
      `RoleBinding/${ns}/dangling`,
    ],
  };
}
