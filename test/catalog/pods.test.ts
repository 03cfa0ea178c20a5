import { describe, expect, it } from 'vitest';
import {
  computeTypeOf,
  DEFAULT_VISIBILITY,
  imageDigestOf,
  reachabilityOf,
  resolveVisibility,
  toPodInfo,
} from '../../src/entries/codecs.js';
import { podSchema } from '../../src/entries/schemas.js';
import type { Pod } from '../../src/entries/types.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function pod(json: unknown): Pod {
  return podSchema.parse(json);
}

describe('pod mapping', () => {
  it('extracts digests from every imageID form', () => {
    expect(imageDigestOf(`docker-pullable://nginx@${D1}`)).toBe(D1);
    expect(imageDigestOf(`docker.io/library/nginx@${D1}`)).toBe(D1);
    expect(imageDigestOf(D1)).toBe(D1);
    expect(imageDigestOf('', `registry/app@${D2}`)).toBe(D2);
    expect(imageDigestOf(undefined, 'nginx:1.27')).toBeUndefined();
  });

  it('joins statuses to specs by name, not by index, and labels init/sidecar/ephemeral', () => {
    const p = pod({
      metadata: { name: 'p', namespace: 'default', uid: 'u1' },
      spec: {
        nodeName: 'ip-10-0-0-1.ec2.internal',
        initContainers: [
          { name: 'init', image: 'busybox' },
          { name: 'proxy', image: 'envoy', restartPolicy: 'Always' },
        ],
        containers: [
          { name: 'a', image: 'app-a' },
          { name: 'b', image: 'app-b' },
        ],
        ephemeralContainers: [{ name: 'dbg', image: 'busybox', targetContainerName: 'a' }],
      },
      status: {
        // deliberately in the opposite order of the spec
        containerStatuses: [
          {
            name: 'b',
            restartCount: 7,
            imageID: `x@${D2}`,
            containerID: 'containerd://bbb',
            state: { waiting: { reason: 'CrashLoopBackOff' } },
          },
          {
            name: 'a',
            restartCount: 1,
            imageID: `x@${D1}`,
            containerID: 'containerd://aaa',
            state: { running: { startedAt: '2026-11-22T10:00:00Z' } },
            ready: true,
          },
        ],
        initContainerStatuses: [
          { name: 'proxy', restartCount: 0, state: { running: {} } },
          { name: 'init', restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
        ],
        ephemeralContainerStatuses: [{ name: 'dbg', restartCount: 0, state: { running: {} } }],
      },
    });
    const info = toPodInfo(p, DEFAULT_VISIBILITY);
    const m = new Map(info.containers.map((c) => [c.name, c]));
    expect(info.containers.map((c) => `${c.kind}:${c.name}`)).toEqual([
      'init:init',
      'sidecar:proxy',
      'container:a',
      'container:b',
      'ephemeral:dbg',
    ]);
    expect(m.get('a')).toMatchObject({
      imageDigest: D1,
      containerId: 'containerd://aaa',
      restartCount: 1,
      state: 'running',
      ready: true,
    });
    expect(m.get('b')).toMatchObject({
      imageDigest: D2,
      restartCount: 7,
      state: 'waiting',
      stateReason: 'CrashLoopBackOff',
    });
    expect(m.get('init')).toMatchObject({ state: 'terminated', exitCode: 0, stateReason: 'Completed' });
    expect(m.get('dbg')?.targetContainerName).toBe('a');
    expect(info.computeType).toBe('EC2');
  });

  it('compute type: Fargate from node name, pod label or node label; unknown when unscheduled', () => {
    const base = { metadata: { name: 'p', namespace: 'x' }, spec: { containers: [{ name: 'c' }] } };
    expect(
      computeTypeOf(pod({ ...base, spec: { ...base.spec, nodeName: 'fargate-ip-10-1-2-3.ec2.internal' } })),
    ).toBe('Fargate');
    expect(
      computeTypeOf(
        pod({
          ...base,
          metadata: { ...base.metadata, labels: { 'eks.amazonaws.com/fargate-profile': 'fp' } },
          spec: { ...base.spec, nodeName: 'n' },
        }),
      ),
    ).toBe('Fargate');
    expect(
      computeTypeOf(pod({ ...base, spec: { ...base.spec, nodeName: 'n' } }), {
        'eks.amazonaws.com/compute-type': 'fargate',
      }),
    ).toBe('Fargate');
    expect(computeTypeOf(pod({ ...base, spec: { ...base.spec, nodeName: 'n' } }))).toBe('EC2');
    expect(computeTypeOf(pod(base))).toBe('unknown');
  });

  it('visibility: system namespaces and distroless images hidden with reasons; both lists configurable', () => {
    const sys = pod({
      metadata: { name: 'x', namespace: 'tigera-operator' },
      spec: { containers: [{ name: 'c', image: 'op' }] },
    });
    expect(toPodInfo(sys, DEFAULT_VISIBILITY)).toMatchObject({ hidden: true });
    const custom = resolveVisibility({
      hiddenNamespaces: ['secret-ns'],
      hiddenImages: [/^registry\.internal\//],
    });
    expect(toPodInfo(sys, custom).hidden).toBe(false);
    const mixed = pod({
      metadata: { name: 'm', namespace: 'default' },
      spec: {
        containers: [
          { name: 'shell', image: 'debian' },
          { name: 'dl', image: 'gcr.io/distroless/java21' },
        ],
      },
    });
    const info = toPodInfo(mixed, DEFAULT_VISIBILITY);
    expect(info.hidden).toBe(false);
    expect(info.containers.find((c) => c.name === 'dl')).toMatchObject({ hidden: true });
    expect(info.containers.find((c) => c.name === 'dl')?.hiddenReason).toMatch(/distroless/);
    const internal = pod({
      metadata: { name: 'i', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'registry.internal/app' }] },
    });
    expect(toPodInfo(internal, custom).hidden).toBe(true);
  });

  it('reachability explains CIDR limits and private-only endpoints', () => {
    expect(reachabilityOf({ public: true, private: false, publicCidrs: ['0.0.0.0/0'] }).kind).toBe('public');
    expect(reachabilityOf({ public: true, private: true, publicCidrs: ['10.1.0.0/16'] }).reason).toMatch(
      /10\.1\.0\.0\/16/,
    );
    const priv = reachabilityOf({ public: false, private: true, publicCidrs: [] }, 'vpc-123');
    expect(priv.kind).toBe('private-only');
    expect(priv.reason).toMatch(/vpc-123/);
  });
});
