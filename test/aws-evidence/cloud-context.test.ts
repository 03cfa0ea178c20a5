/**
 * collectCloudContext into a real bundle (MemorySink): every part is a hashed artifact whose
 * manifest status tells the truth (a denied part is `failed`, a cut one `truncated`, GuardDuty
 * off is a complete "off"), and a part altered after the fact fails verification.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUD_CONTEXT_PATHS } from '../../src/entries/codecs.js';
import { ConfigError } from '../../src/entries/errors.js';
import { type Manifest, verifyEvidence } from '../../src/evidence/index.js';
import { collectCloudContext } from '../../src/index.js';
import { FakeAws } from '../../src/testing/index.js';
import { TestWriter } from './support.js';

const REGION = 'eu-west-1';
const ROLE = 'arn:aws:iam::123456789012:role/shop-web';
const NOW = new Date('2026-12-01T12:00:00Z');
const WINDOW = { from: new Date(NOW.getTime() - 3_600_000), to: NOW };
const POD = { namespace: 'shop', name: 'web-1', uid: 'u-1' };
const FARGATE = {
  name: 'fargate-ip-10-0-0-1.ec2.internal',
  labels: { 'eks.amazonaws.com/compute-type': 'fargate' },
};

describe('collectCloudContext into a bundle', () => {
  let aws: FakeAws;
  const base = (w: TestWriter) => ({
    bundle: w,
    pod: POD,
    node: FARGATE,
    clusterName: 'prod',
    region: REGION,
    credentials: aws.credentials(),
    endpoints: { cloudtrail: aws.endpoint, guardduty: aws.endpoint },
    window: WINDOW,
    retry: { baseDelayMs: 1, maxDelayMs: 2, attempts: 2 },
    identity: {
      kind: 'PodIdentityContext',
      complete: true,
      skipped: [],
      awsRoles: [{ roleArn: ROLE, source: 'irsa' as const }],
      owners: { chain: [{ kind: 'ReplicaSet', name: 'web-abc', uid: null, status: 'found' as const }] },
    } as never,
  });
  const manifestOf = async (w: TestWriter) => {
    await w.writer.finalize({ caseId: 'IR-TEST' });
    const bundle = w.sink.bundles.get(w.acquisitionId);
    if (!bundle) throw new Error('no bundle');
    const m = JSON.parse(bundle.files.get('manifest.json')?.toString('utf8') ?? '{}') as Manifest;
    return { bundle, byPath: new Map(m.artifacts.map((a) => [a.requestedPath, a])) };
  };

  beforeAll(async () => {
    aws = await FakeAws.start();
    for (let i = 0; i < 30; i++) {
      aws.addCloudTrailEvent({
        region: REGION,
        eventName: 'AssumeRoleWithWebIdentity',
        eventSource: 'sts.amazonaws.com',
        eventTime: new Date(NOW.getTime() - (i + 1) * 60_000),
        resources: [{ type: 'AWS::IAM::Role', name: ROLE }],
        sourceIPAddress: '52.1.2.3',
      });
    }
  });
  afterAll(() => aws?.close());

  it('writes each part with an honest status; a Fargate node is skipped with the reason', async () => {
    const w = await TestWriter.open();
    aws.failures.push({ service: 'guardduty', operation: 'ListDetectors', code: 'AccessDeniedException' });
    let r: Awaited<ReturnType<typeof collectCloudContext>>;
    try {
      r = await collectCloudContext({ ...base(w), cloudTrail: { maxEvents: 5 } });
    } finally {
      aws.failures.length = 0;
    }
    expect(r.node?.status).toBe('skipped');
    expect(r.cloudTrail?.status).toBe('partial');
    expect(r.guardDuty?.status).toBe('failed');
    const { bundle, byPath } = await manifestOf(w);
    expect(byPath.get(CLOUD_CONTEXT_PATHS.node)?.status).toBe('complete');
    expect(byPath.get(CLOUD_CONTEXT_PATHS.cloudTrail)).toMatchObject({ status: 'truncated' });
    expect(byPath.get(CLOUD_CONTEXT_PATHS.cloudTrail)?.reason).toMatch(/maxEvents/);
    expect(byPath.get(CLOUD_CONTEXT_PATHS.guardDuty)?.status).toBe('failed');
    expect(byPath.get(CLOUD_CONTEXT_PATHS.guardDuty)?.reason).toMatch(
      /guardduty:ListDetectors: access-denied/,
    );
    // the failed part is still stored, with what went wrong, and is hashed like the rest
    expect(byPath.get(CLOUD_CONTEXT_PATHS.guardDuty)?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const report = await verifyEvidence(bundle, { acceptUnanchored: true });
    expect(report.problems ?? []).toEqual([]);
  });

  it('GuardDuty off in the region is a complete answer, not a failure', async () => {
    const w = await TestWriter.open();
    const r = await collectCloudContext({
      ...base(w),
      region: 'ca-central-1',
      cloudTrail: false,
      nodeContext: false,
    });
    expect(r.guardDuty?.status).toBe('disabled');
    expect(r.cloudTrail).toBeUndefined();
    const { byPath } = await manifestOf(w);
    expect(byPath.get(CLOUD_CONTEXT_PATHS.guardDuty)?.status).toBe('complete');
    expect([...byPath.keys()].sort()).toEqual(
      [CLOUD_CONTEXT_PATHS.guardDuty, CLOUD_CONTEXT_PATHS.identity].sort(),
    );
  });

  it('a part altered after the fact fails verification', async () => {
    const w = await TestWriter.open();
    await collectCloudContext({ ...base(w), guardDuty: false, nodeContext: false });
    const { bundle, byPath } = await manifestOf(w);
    expect((await verifyEvidence(bundle, { acceptUnanchored: true })).status).toBe('valid');
    const stored = byPath.get(CLOUD_CONTEXT_PATHS.cloudTrail)?.path as string;
    const text = bundle.files.get(stored)?.toString('utf8') ?? '';
    expect(text).toContain('52.1.2.3');
    bundle.files.set(stored, Buffer.from(text.replaceAll('52.1.2.3', '10.0.0.9')));
    expect((await verifyEvidence(bundle, { acceptUnanchored: true })).status).toBe('invalid');
  });

  it('rejects a window that ends before it starts, and a pod without a name', async () => {
    const w = await TestWriter.open();
    await expect(
      collectCloudContext({ ...base(w), window: { from: WINDOW.to, to: WINDOW.from } }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(collectCloudContext({ ...base(w), pod: { metadata: {} } })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });
});
