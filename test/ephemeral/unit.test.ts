/**
 * The ephemeral path without privileges: the patch body and profiles, the scan parser and the
 * choice of the target process (cgroup, shared process namespace, hostile output), error
 * classification, and the attach flow on FakeCluster with scripted containers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachDebugContainer,
  chooseTargetProcess,
  debugContainerName,
  debugContainerSpec,
  debugSecurityContext,
  EPHEMERAL_PERMISSIONS,
  type EphemeralKube,
  ephemeralPatchBody,
  ephemeralRoleYaml,
  explainPatchError,
  parseScan,
  probeNeedsDebugContainer,
  resolveEphemeralOptions,
} from '../../src/collect/ephemeral/index.js';
import { ConfigError, EphemeralContainerError, ForbiddenError, NotFoundError } from '../../src/errors.js';
import type { TargetChange } from '../../src/evidence/index.js';
import { KubeClient, type Pod } from '../../src/kube/index.js';
import { FakeCluster, type ScriptedHandler } from '../../src/testing/index.js';

const CID = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

describe('debug container spec', () => {
  it('needs the explicit opt-in', () => {
    expect(() => resolveEphemeralOptions(undefined)).toThrow(ConfigError);
    expect(() => resolveEphemeralOptions({ allowEphemeralContainer: false, image: 'busybox' })).toThrow(
      /allowEphemeralContainer: true/,
    );
    expect(() => resolveEphemeralOptions({ allowEphemeralContainer: true, image: 'bad image' })).toThrow(
      ConfigError,
    );
    expect(() =>
      resolveEphemeralOptions({ allowEphemeralContainer: true, image: 'busybox', profile: 'custom' }),
    ).toThrow(/securityContext/);
  });

  it('builds the strategic-merge patch kubectl debug --profile=general would send', () => {
    const o = resolveEphemeralOptions({ allowEphemeralContainer: true, image: 'busybox:1.36' });
    const name = debugContainerName();
    expect(name).toMatch(/^eksf-debug-[a-z0-9]{5}$/);
    const body = ephemeralPatchBody(debugContainerSpec(o, name, 'app'));
    expect(body).toEqual({
      spec: {
        ephemeralContainers: [
          {
            terminationMessagePolicy: 'File',
            resources: {},
            name,
            image: 'busybox:1.36',
            command: ['sleep', '3600'],
            targetContainerName: 'app',
            securityContext: { capabilities: { add: ['SYS_PTRACE'] } },
          },
        ],
      },
    });
  });

  it('applies the profiles like kubectl debug', () => {
    const r = (profile: 'sysadmin' | 'baseline' | 'restricted', extra = {}) =>
      debugSecurityContext(
        resolveEphemeralOptions({ allowEphemeralContainer: true, image: 'x', profile, ...extra }),
        1000,
      );
    expect(r('sysadmin')).toEqual({ privileged: true });
    expect(r('baseline')).toBeUndefined();
    expect(r('baseline', { runAsUser: 1000 })).toEqual({ runAsUser: 1000 });
    expect(r('restricted')).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
      runAsUser: 1000,
    });
    const custom = resolveEphemeralOptions({
      allowEphemeralContainer: true,
      image: 'x',
      profile: 'custom',
      securityContext: { capabilities: { add: ['SYS_PTRACE', 'DAC_READ_SEARCH'] } },
    });
    expect(debugSecurityContext(custom)).toEqual({
      capabilities: { add: ['SYS_PTRACE', 'DAC_READ_SEARCH'] },
    });
  });

  it('generates a Role with exactly the permissions it uses', () => {
    const yaml = ephemeralRoleYaml({ namespace: 'shop', group: 'ir' });
    expect(yaml).toContain('kind: Role\n');
    expect(yaml).toContain('namespace: shop');
    for (const p of EPHEMERAL_PERMISSIONS) expect(yaml).toContain(p.resource);
    expect(() => ephemeralRoleYaml({ namespace: 'Bad NS' })).toThrow(ConfigError);
  });
});

function scanText(lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

describe('finding the target process', () => {
  const base = [
    'S\tmnt\tmnt:[900]',
    'S\tpid\t40',
    '40\tmnt\tmnt:[900]',
    '40\tstat\t40 (sh) R 0 1',
    '41\tmnt\tmnt:[900]',
    '41\tcmdline\tsleep 3600',
  ];

  it('targetContainerName: PID 1 in the only other mount namespace', () => {
    const scan = parseScan(
      scanText([
        ...base,
        '1\tmnt\tmnt:[100]',
        '1\tstat\t1 (server) S 0 1',
        '1\tcmdline\t/app/server --port 8080',
        '7\tmnt\tmnt:[100]',
        '7\tstat\t7 (worker) S 1 1',
      ]),
      100,
    );
    const c = chooseTargetProcess(scan);
    expect(typeof c).toBe('object');
    if (typeof c === 'string') return;
    expect(c).toMatchObject({ pid: 1, method: 'mount-namespace', debugPids: [40, 41], targetPids: [1, 7] });
    expect(c.containerPids).toEqual([1, 7]);
  });

  it('shareProcessNamespace: pause is PID 1; the cgroup names the target container', () => {
    const lines = [
      ...base,
      '1\tmnt\tmnt:[10]',
      '1\tstat\t1 (pause) S 0 1',
      '1\tcmdline\t/pause',
      '12\tmnt\tmnt:[20]',
      '12\tstat\t12 (nginx) S 0 12',
      `12\tcgroup\t0::/kubepods.slice/cri-containerd-${OTHER}.scope`,
      '12\tcmdline\tnginx -g daemon off;',
      '30\tmnt\tmnt:[30]',
      '30\tstat\t30 (app) S 0 30',
      `30\tcgroup\t0::/kubepods.slice/cri-containerd-${CID}.scope`,
      '30\tcmdline\t/app',
      '31\tmnt\tmnt:[30]',
      '31\tstat\t31 (app) S 30 30',
      `31\tcgroup\t0::/kubepods.slice/cri-containerd-${CID}.scope`,
    ];
    const c = chooseTargetProcess(parseScan(scanText(lines), 100), { containerId: `containerd://${CID}` });
    expect(c).toMatchObject({ pid: 30, method: 'cgroup', containerPids: [30, 31] });
    // without a container ID: matched by the container's command
    const byCmd = chooseTargetProcess(parseScan(scanText(lines), 100), { command: ['/app'] });
    expect(byCmd).toMatchObject({ pid: 30, method: 'command-match' });
    // neither: ambiguous, says what to do
    const none = chooseTargetProcess(parseScan(scanText(lines), 100), {});
    expect(none).toMatch(/several containers share the PID namespace.*pass targetPid/);
    // the caller's PID wins, but never one of the debug container's
    expect(chooseTargetProcess(parseScan(scanText(lines), 100), { targetPid: 12 })).toMatchObject({
      pid: 12,
      method: 'caller',
    });
    expect(chooseTargetProcess(parseScan(scanText(lines), 100), { targetPid: 41 })).toMatch(
      /not a process outside/,
    );
  });

  it('without ptrace-read access it says which profile to use', () => {
    const scan = parseScan(scanText([...base, '1\tstat\t1 (server) S 0 1', '1\tcmdline\t/app/server']), 100);
    expect(chooseTargetProcess(scan)).toMatch(/ptrace-read access is denied.*profile 'general'/);
  });

  it('hostile scan output cannot forge processes or the debug container', () => {
    const scan = parseScan(
      scanText([
        ...base,
        '1\tmnt\tmnt:[100]',
        '1\tcmdline\tx',
        '1\tstat\t1 (evil) x) S 0 1',
        'S\tmnt\tnot-a-namespace',
        '999999999999\tmnt\tmnt:[1]',
        `2\tcmdline\t${'A'.repeat(100_000)}`,
      ]),
      100,
    );
    expect(scan.selfMnt).toBe('mnt:[900]');
    expect(scan.processes.find((p) => p.pid === 1)?.comm).toBe('evil) x');
    expect(scan.processes.some((p) => p.pid === 999999999999)).toBe(false);
    expect((scan.processes.find((p) => p.pid === 2)?.cmdline ?? '').length).toBeLessThanOrEqual(1024);
    const capped = parseScan(scanText(Array.from({ length: 50 }, (_, i) => `${i + 1}\tmnt\tmnt:[1]`)), 10);
    expect(capped.processes).toHaveLength(10);
    expect(capped.truncated).toBe(true);
  });

  it('asks for a debug container only when no shell ran, not when exec was refused', () => {
    const probe = { shell: undefined, tools: {}, features: {}, uid: undefined };
    expect(
      probeNeedsDebugContainer({ ...probe, shellErrors: ['sh: executable file not found in $PATH'] }),
    ).toBe(true);
    expect(probeNeedsDebugContainer({ ...probe, shellErrors: ['sh: pods "x" is forbidden (403)'] })).toBe(
      false,
    );
    expect(probeNeedsDebugContainer({ ...probe, shell: '/bin/sh', shellErrors: [] })).toBe(false);
  });
});

describe('errors say what to grant or change', () => {
  it('Pod Security admission', () => {
    const msg =
      'pods "web-1" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "eksf-debug-x7k2q" must not include "SYS_PTRACE" in securityContext.capabilities.add)';
    const e = explainPatchError(
      new ForbiddenError(msg, {
        httpStatus: 403,
        status: { status: 'Failure', message: msg, reason: 'Forbidden', code: 403 },
      }),
      'shop',
      'web-1',
      'eksf-debug-x7k2q',
    );
    expect(e.failure).toBe('pod-security');
    expect(e.message).toContain("profile 'baseline'");
    expect(e.message).toContain('kubectl label namespace shop pod-security.kubernetes.io/enforce=privileged');
    expect(e.podChanged).toBe(false);
  });

  it('an admission webhook is a rejection, not missing RBAC', () => {
    const e = explainPatchError(
      new ForbiddenError('admission webhook "validate.kyverno.svc" denied the request: no debug containers', {
        httpStatus: 403,
      }),
      'shop',
      'web-1',
      'n',
    );
    expect(e.failure).toBe('rejected');
    expect(e.message).toContain('validate.kyverno.svc');
    expect(e.message).not.toContain('grant in namespace');
  });

  it('RBAC 403, missing subresource, missing pod', () => {
    const f = explainPatchError(
      new ForbiddenError(
        'pods "web-1" is forbidden: User "bob" cannot patch resource "pods/ephemeralcontainers"',
        {
          httpStatus: 403,
        },
      ),
      'shop',
      'web-1',
      'n',
    );
    expect(f.failure).toBe('forbidden');
    expect(f.message).toContain('grant in namespace shop: patch on pods/ephemeralcontainers');
    const ns = explainPatchError(
      new NotFoundError('the server could not find the requested resource', {
        httpStatus: 404,
        status: { details: {} },
      }),
      'shop',
      'web-1',
      'n',
    );
    expect(ns.failure).toBe('not-supported');
    const gone = explainPatchError(
      new NotFoundError('pods "web-1" not found', {
        httpStatus: 404,
        status: { details: { name: 'web-1' } },
      }),
      'shop',
      'web-1',
      'n',
    );
    expect(gone.failure).toBe('rejected');
    expect(gone.message).toContain('no longer exists');
  });
});

describe('attach flow on FakeCluster (scripted containers)', () => {
  let cluster: FakeCluster;
  let kube: KubeClient;
  // The scripted debug container answers the scan as a shared-process-namespace pod would.
  const scanHandler: ScriptedHandler = (argv, io) => {
    const script = argv[2] ?? '';
    if (script.includes('eksf-view-ok') || argv[3] === 'eksf-ephemeral-view') {
      io.stdout.end('eksf-view-ok\n');
      return 0;
    }
    io.stdout.end(
      scanText([
        'S\tmnt\tmnt:[900]',
        'S\tpid\t50',
        '50\tmnt\tmnt:[900]',
        '1\tmnt\tmnt:[10]',
        '1\tstat\t1 (pause) S 0 1',
        '1\tcmdline\t/pause',
        '20\tmnt\tmnt:[20]',
        '20\tstat\t20 (app) S 0 20',
        `20\tcgroup\t0::/kubepods/pod1/${CID}`,
        '20\tcmdline\t/app/server',
      ]),
    );
    return 0;
  };

  beforeAll(async () => {
    cluster = await FakeCluster.start({
      ephemeralContainerRuntime: (image) => {
        if (image === 'missing.example/none:1')
          return { runtime: 'scripted', waitingReason: 'ImagePullBackOff' };
        return { runtime: 'scripted', options: { commands: { sh: scanHandler } } };
      },
    });
    kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('adds the container, records the change first, chooses the target by cgroup', async () => {
    await cluster.addPod({
      name: 'shared',
      containers: [
        { name: 'app', image: 'gcr.io/distroless/static', runtime: 'scripted', options: {} },
        { name: 'sidecar', image: 'nginx', runtime: 'scripted', options: {} },
      ],
    });
    // the target's runtime ID as the pod reports it, in the scripted scan's cgroup
    const pod = await kube.getPod('default', 'shared');
    const id = (pod.status?.containerStatuses ?? []).find((s) => s.name === 'app')?.containerID ?? '';
    const withId: Pod = {
      ...pod,
      status: {
        ...pod.status,
        containerStatuses: (pod.status?.containerStatuses ?? []).map((s) =>
          s.name === 'app' ? { ...s, containerID: `containerd://${CID}` } : s,
        ),
      },
    };
    expect(id).toMatch(/^containerd:\/\//);
    const order: string[] = [];
    const changes: TargetChange[] = [];
    const att = await attachDebugContainer(
      { allowEphemeralContainer: true, image: 'busybox:1.36', profile: 'sysadmin', pollIntervalMs: 20 },
      {
        kube,
        namespace: 'default',
        pod: 'shared',
        container: 'app',
        podObject: withId,
        recorder: {
          recordChange: (c) => {
            order.push('change');
            changes.push(c);
          },
          log: (e) => order.push(String(e.event)),
          writeArtifact: async (p) => {
            order.push(`artifact:${p.split('/').pop()}`);
            return {} as never;
          },
        },
      },
    );
    expect(att.target).toMatchObject({ pid: 20, method: 'cgroup', debugPids: [50] });
    expect(att.fs).toEqual({ root: '/proc/20/root', procBase: `/tmp/eksf-proc-${att.containerName}` });
    expect(att.capabilities).toEqual(['ALL (privileged)']);
    expect(order.indexOf('change')).toBe(order.indexOf('ephemeral-patch') + 1);
    expect(order.indexOf('change')).toBeLessThan(order.indexOf('ephemeral-running'));
    expect(order).toContain('artifact:scan.json');
    expect(changes[0]?.details).toMatchObject({
      securityContext: { privileged: true },
      targetContainerName: 'app',
    });
    const after = await kube.getPod('default', 'shared');
    expect(after.spec?.ephemeralContainers?.map((c) => c.name)).toEqual([att.containerName]);
    // a second acquisition with the same settings reuses the running debug container
    const again = await attachDebugContainer(
      { allowEphemeralContainer: true, image: 'busybox:1.36', profile: 'sysadmin', pollIntervalMs: 20 },
      { kube, namespace: 'default', pod: 'shared', container: 'app', podObject: undefined },
    );
    expect(again.reused).toBe(true);
    expect(again.containerName).toBe(att.containerName);
    expect((await kube.getPod('default', 'shared')).spec?.ephemeralContainers).toHaveLength(1);
  });

  it('image pull failure (as the kubelet reports it) gives the image-pull error', async () => {
    await cluster.addPod({
      name: 'pull',
      containers: [{ name: 'app', image: 'gcr.io/distroless/static', runtime: 'scripted', options: {} }],
    });
    // FakeCluster does not report waiting ephemeral statuses yet: add the status the kubelet would.
    const reporting: EphemeralKube = {
      exec: (o) => kube.exec(o),
      patchEphemeralContainers: (...a) => kube.patchEphemeralContainers(...a),
      async getPod(ns, name, o) {
        const p = await kube.getPod(ns, name, o);
        const statuses = (p.spec?.ephemeralContainers ?? []).map((c) => ({
          name: c.name,
          image: String(c.image),
          imageID: '',
          ready: false,
          restartCount: 0,
          state: {
            waiting: {
              reason: 'ImagePullBackOff',
              message: 'Back-off pulling image "missing.example/none:1"',
            },
          },
        }));
        return { ...p, status: { ...p.status, ephemeralContainerStatuses: statuses } };
      },
    };
    const err = await attachDebugContainer(
      {
        allowEphemeralContainer: true,
        image: 'missing.example/none:1',
        startTimeoutMs: 5000,
        pollIntervalMs: 20,
      },
      { kube: reporting, namespace: 'default', pod: 'pull', container: 'app' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EphemeralContainerError);
    const e = err as EphemeralContainerError;
    expect(e.failure).toBe('image-pull');
    expect(e.podChanged).toBe(true);
    expect(e.message).toContain(
      'cannot pull image missing.example/none:1 (ImagePullBackOff: Back-off pulling',
    );
  });

  it('a container that is not a regular container of the pod is refused before any change', async () => {
    await cluster.addPod({
      name: 'one',
      containers: [{ name: 'app', image: 'gcr.io/distroless/static', runtime: 'scripted', options: {} }],
    });
    await expect(
      attachDebugContainer(
        { allowEphemeralContainer: true, image: 'busybox:1.36' },
        { kube, namespace: 'default', pod: 'one', container: 'nope' },
      ),
    ).rejects.toThrow(/can only target one of app/);
    expect((await kube.getPod('default', 'one')).spec?.ephemeralContainers ?? []).toEqual([]);
  });
});
