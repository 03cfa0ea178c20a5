/**
 * CloudTrail LookupEvents and GuardDuty findings through the real AWS SDK clients against
 * FakeAws (moto has neither): found, empty, access denied, throttled (passing and lasting),
 * disabled in region, bounds, and hostile records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifySource } from '../../src/entries/codecs.js';
import { cloudTrailActivity, guardDutyFindings } from '../../src/index.js';
import { FakeAws } from '../../src/testing/index.js';

const REGION = 'eu-west-1';
const ROLE = 'arn:aws:iam::123456789012:role/shop-web';
const NODE_ROLE = 'arn:aws:iam::123456789012:role/eks-node';
const T0 = new Date('2026-12-01T10:00:00Z');
const at = (min: number) => new Date(T0.getTime() + min * 60_000);
const FAST = { baseDelayMs: 1, maxDelayMs: 5 };

describe('cloudTrailActivity (FakeAws LookupEvents)', () => {
  let aws: FakeAws;
  const base = () => ({
    region: REGION,
    endpoint: aws.endpoint,
    credentials: aws.credentials(),
    startTime: at(-60),
    endTime: at(120),
    retry: FAST,
  });

  beforeAll(async () => {
    aws = await FakeAws.start();
    // an IRSA session issued to the pod (from the NAT), then 60 calls with it; 3 from elsewhere
    aws.addCloudTrailEvent({
      region: REGION,
      eventName: 'AssumeRoleWithWebIdentity',
      eventSource: 'sts.amazonaws.com',
      eventTime: at(0),
      username: 'system:serviceaccount:shop:web',
      resources: [{ type: 'AWS::IAM::Role', name: ROLE }],
      sourceIPAddress: '52.1.2.3',
      userAgent: 'aws-sdk-js/3.0',
      userIdentity: { type: 'WebIdentityUser', userName: 'system:serviceaccount:shop:web' },
      responseElements: { credentials: { accessKeyId: 'ASIAPODSESSION000001', expiration: 'x' } },
    });
    for (let i = 0; i < 60; i++) {
      const outside = i % 20 === 7;
      aws.addCloudTrailEvent({
        region: REGION,
        eventName: outside ? 'ListBuckets' : 'GetObject',
        eventSource: 's3.amazonaws.com',
        eventTime: at(1 + i),
        accessKeyId: 'ASIAPODSESSION000001',
        username: 'botocore-session-1',
        sourceIPAddress: outside ? '203.0.113.9' : i % 2 ? '52.1.2.3' : '10.0.3.17',
        userAgent: outside ? 'curl/8.5.0' : 'aws-sdk-js/3.0',
      });
    }
    // node role: calls named by the instance id
    aws.addCloudTrailEvent({
      region: REGION,
      eventName: 'DescribeInstances',
      eventSource: 'ec2.amazonaws.com',
      eventTime: at(30),
      username: 'i-0abc1234def567890',
      accessKeyId: 'ASIANODE000000000001',
      sourceIPAddress: '198.51.100.77',
      userAgent: 'python-requests/2.31',
    });
    // a decoy in another region and one outside the window
    aws.addCloudTrailEvent({
      region: 'us-east-1',
      eventName: 'GetObject',
      eventSource: 's3.amazonaws.com',
      eventTime: at(5),
      accessKeyId: 'ASIAPODSESSION000001',
    });
    aws.addCloudTrailEvent({
      region: REGION,
      eventName: 'GetObject',
      eventSource: 's3.amazonaws.com',
      eventTime: at(-600),
      accessKeyId: 'ASIAPODSESSION000001',
    });
  });
  afterAll(() => aws?.close());

  it('found: follows the role session by access key, pages, summarizes and flags outside sources', async () => {
    const r = await cloudTrailActivity({
      ...base(),
      podRoleArns: [ROLE],
      nodeInstanceId: 'i-0abc1234def567890',
      nodeRoleArn: NODE_ROLE,
      knownSources: { cidrs: ['10.0.0.0/16'], ips: ['52.1.2.3'] },
    });
    expect(r.status).toBe('complete');
    expect(r.sessions).toEqual([
      {
        accessKeyId: 'ASIAPODSESSION000001',
        roleArn: ROLE,
        sessionName: null,
        issuedAt: at(0).toISOString(),
      },
    ]);
    const byKey = r.lookups.find((l) => l.attribute === 'AccessKeyId=ASIAPODSESSION000001');
    expect(byKey).toMatchObject({ pages: 2, events: 60, truncated: false });
    expect(r.events).toHaveLength(1 + 60 + 1);
    expect(r.flagged.map((e) => [e.eventName, e.sourceIPAddress, e.userAgent])).toEqual(
      expect.arrayContaining([
        ['ListBuckets', '203.0.113.9', 'curl/8.5.0'],
        ['DescribeInstances', '198.51.100.77', 'python-requests/2.31'],
      ]),
    );
    expect(r.flagged).toHaveLength(4);
    const outside = r.sources.find((s) => s.sourceIPAddress === '203.0.113.9');
    expect(outside).toMatchObject({
      sourceClass: 'outside',
      count: 3,
      userAgents: ['curl/8.5.0'],
      principals: ['pod-role'],
    });
    expect(r.sources.find((s) => s.sourceIPAddress === '10.0.3.17')?.sourceClass).toBe('known');
    expect(r.events.find((e) => e.eventName === 'DescribeInstances')?.principal).toBe('node-role');
    expect(JSON.parse(r.events[0]?.cloudTrailEvent ?? '{}').eventName).toBeTypeOf('string');
  });

  it('empty: a role with no events; without known sources nothing is flagged, and it says so', async () => {
    const none = await cloudTrailActivity({
      ...base(),
      podRoleArns: ['arn:aws:iam::123456789012:role/quiet'],
    });
    expect(none).toMatchObject({ status: 'complete', events: [], sessions: [], flagged: [] });
    const unknown = await cloudTrailActivity({ ...base(), nodeInstanceId: 'i-0abc1234def567890' });
    expect(unknown.flagged).toEqual([]);
    expect(unknown.events[0]?.sourceClass).toBe('unknown');
    expect(unknown.notes.join()).toMatch(/no knownSources/);
  });

  it('access denied and region disabled: recorded per lookup, status failed, nothing thrown', async () => {
    aws.failures.push({ service: 'cloudtrail', code: 'AccessDeniedException' });
    try {
      const r = await cloudTrailActivity({ ...base(), podRoleArns: [ROLE] });
      expect(r.status).toBe('failed');
      expect(r.lookups[0]?.failure?.kind).toBe('access-denied');
      expect(r.notes.join()).toMatch(/cloudtrail:LookupEvents/);
    } finally {
      aws.failures.length = 0;
    }
    aws.failures.push({ service: 'cloudtrail', code: 'UnrecognizedClientException' });
    try {
      const r = await cloudTrailActivity({ ...base(), region: 'ap-east-1', podRoleArns: [ROLE] });
      expect(r.lookups[0]?.failure?.kind).toBe('region-disabled');
    } finally {
      aws.failures.length = 0;
    }
  });

  it('throttled: retried with backoff and recorded; lasting throttling leaves the lookup failed', async () => {
    aws.failures.push({ service: 'cloudtrail', code: 'ThrottlingException', times: 2 });
    const ok = await cloudTrailActivity({ ...base(), podRoleArns: [ROLE] });
    expect(ok.status).toBe('complete');
    expect(ok.retries.map((r) => [r.action, r.attempt, r.awsCode])).toEqual([
      ['cloudtrail:LookupEvents', 1, 'ThrottlingException'],
      ['cloudtrail:LookupEvents', 2, 'ThrottlingException'],
    ]);
    expect(ok.events).toHaveLength(61);
    aws.failures.push({ service: 'cloudtrail', code: 'ThrottlingException' });
    try {
      const bad = await cloudTrailActivity({
        ...base(),
        podRoleArns: [ROLE],
        retry: { ...FAST, attempts: 3 },
      });
      expect(bad.status).toBe('failed');
      expect(bad.lookups[0]?.failure?.kind).toBe('throttled');
      expect(bad.retries).toHaveLength(2);
    } finally {
      aws.failures.length = 0;
    }
  });

  it('bounded: maxEvents and maxPagesPerLookup cut and say so (partial, never complete)', async () => {
    const r = await cloudTrailActivity({ ...base(), podRoleArns: [ROLE], maxEvents: 10 });
    expect(r.status).toBe('partial');
    expect(r.events).toHaveLength(10);
    expect(r.notes.join()).toMatch(/maxEvents/);
    const p = await cloudTrailActivity({ ...base(), podRoleArns: [ROLE], maxPagesPerLookup: 1 });
    expect(p.status).toBe('partial');
    expect(p.lookups.find((l) => l.attribute.startsWith('AccessKeyId'))?.truncated).toBe(true);
  });

  it('hostile records: a CloudTrailEvent that is not JSON is kept with empty fields, not trusted', async () => {
    const other = await FakeAws.start();
    try {
      other.addCloudTrailEvent({
        region: REGION,
        eventName: 'GetObject',
        eventSource: 's3.amazonaws.com',
        eventTime: at(3),
        username: 'i-0ffffffffffffffff',
        sourceIPAddress: 'x'.repeat(5000),
      });
      const r = await cloudTrailActivity({
        ...base(),
        endpoint: other.endpoint,
        nodeInstanceId: 'i-0ffffffffffffffff',
        knownSources: { cidrs: ['10.0.0.0/8'] },
      });
      expect(r.events[0]?.sourceIPAddress?.length).toBeLessThanOrEqual(2048);
      expect(r.events[0]?.sourceClass).toBe('aws-service');
      expect(r.flagged).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('classifySource handles IPv4/IPv6 CIDRs, AWS service names and junk', () => {
    const known = { cidrs: ['10.0.0.0/16', '2600:1f18::/32', 'bogus', '10.1.0.0/99'], ips: ['52.1.2.3'] };
    expect(classifySource('10.0.255.1', known)).toBe('known');
    expect(classifySource('10.1.0.1', known)).toBe('outside');
    expect(classifySource('2600:1f18:aa::1', known)).toBe('known');
    expect(classifySource('2001:db8::1', known)).toBe('outside');
    expect(classifySource('eks.amazonaws.com', known)).toBe('aws-service');
    expect(classifySource(null, known)).toBe('unknown');
  });
});

describe('guardDutyFindings (FakeAws GuardDuty)', () => {
  let aws: FakeAws;
  const base = () => ({ endpoint: aws.endpoint, credentials: aws.credentials(), retry: FAST });
  beforeAll(async () => {
    aws = await FakeAws.start();
    aws.addGuardDutyDetector({
      region: REGION,
      features: ['EKS_AUDIT_LOGS', 'RUNTIME_MONITORING'],
      findings: [
        {
          type: 'Execution:Kubernetes/ExecInKubeSystemPod',
          severity: 5,
          title: 'exec in kube-system',
          resource: { resourceType: 'EKSCluster', eksClusterDetails: { name: 'prod' } },
        },
        {
          type: 'CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed',
          severity: 8,
          title: 'secrets read by web',
          resource: {
            resourceType: 'EKSCluster',
            eksClusterDetails: { name: 'prod' },
            kubernetesDetails: {
              kubernetesWorkloadDetails: { name: 'web', namespace: 'shop', type: 'deployments' },
            },
          },
        },
        {
          type: 'UnauthorizedAccess:Runtime/MetadataDiscovery',
          severity: 6,
          title: 'IMDS probed',
          resource: { resourceType: 'Instance', instanceDetails: { instanceId: 'i-0abc1234def567890' } },
        },
        {
          type: 'Recon:EC2/PortProbeUnprotectedPort',
          severity: 2,
          title: 'another cluster',
          resource: { resourceType: 'EKSCluster', eksClusterDetails: { name: 'staging' } },
        },
      ],
    });
    aws.addGuardDutyDetector({ region: 'us-west-2', features: [] });
  });
  afterAll(() => aws?.close());

  it('found: cluster and node findings, highest severity first, the pod’s own marked', async () => {
    const r = await guardDutyFindings({
      ...base(),
      region: REGION,
      clusterName: 'prod',
      instanceId: 'i-0abc1234def567890',
      pod: { namespace: 'shop', name: 'web-7c9b5d6f8-x2k9q', ownerNames: ['web-7c9b5d6f8', 'web'] },
    });
    expect(r.status).toBe('collected');
    expect(r.features).toEqual(['EKS_AUDIT_LOGS', 'RUNTIME_MONITORING']);
    expect(r.findings.map((f) => [f.type, f.matchedBy, f.concernsPod])).toEqual([
      ['CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed', ['cluster'], true],
      ['UnauthorizedAccess:Runtime/MetadataDiscovery', ['instance'], false],
      ['Execution:Kubernetes/ExecInKubeSystemPod', ['cluster'], false],
    ]);
  });

  it('empty and disabled-in-region are told apart', async () => {
    const empty = await guardDutyFindings({ ...base(), region: 'us-west-2', clusterName: 'prod' });
    expect(empty).toMatchObject({ status: 'collected', findings: [] });
    expect(empty.notes.join()).toMatch(/neither EKS Protection/);
    const off = await guardDutyFindings({ ...base(), region: 'ca-central-1', clusterName: 'prod' });
    expect(off).toMatchObject({ status: 'disabled', detectorId: null, findings: [] });
    expect(off.notes[0]).toMatch(/GuardDuty is not enabled in ca-central-1/);
    aws.failures.push({ service: 'guardduty', code: 'UnrecognizedClientException' });
    try {
      const optIn = await guardDutyFindings({ ...base(), region: 'ap-east-1', clusterName: 'prod' });
      expect(optIn.status).toBe('failed');
      expect(optIn.failures[0]?.kind).toBe('region-disabled');
    } finally {
      aws.failures.length = 0;
    }
  });

  it('access denied: ListDetectors fails the step; ListFindings denied leaves it partial', async () => {
    aws.failures.push({ service: 'guardduty', operation: 'ListDetectors', code: 'AccessDeniedException' });
    try {
      const r = await guardDutyFindings({ ...base(), region: REGION, clusterName: 'prod' });
      expect(r.status).toBe('failed');
      expect(r.failures[0]).toMatchObject({ action: 'guardduty:ListDetectors', kind: 'access-denied' });
    } finally {
      aws.failures.length = 0;
    }
    aws.failures.push({ service: 'guardduty', operation: 'ListFindings', code: 'AccessDeniedException' });
    try {
      const r = await guardDutyFindings({ ...base(), region: REGION, clusterName: 'prod' });
      expect(r.status).toBe('partial');
      expect(r.findings).toEqual([]);
    } finally {
      aws.failures.length = 0;
    }
  });

  it('throttled: retried and recorded', async () => {
    aws.failures.push({
      service: 'guardduty',
      operation: 'GetFindings',
      code: 'TooManyRequestsException',
      status: 429,
      times: 1,
    });
    const r = await guardDutyFindings({ ...base(), region: REGION, clusterName: 'prod' });
    expect(r.status).toBe('collected');
    expect(r.retries).toHaveLength(1);
    expect(r.findings).toHaveLength(2);
  });

  it('bounded by maxFindings (partial)', async () => {
    const r = await guardDutyFindings({ ...base(), region: REGION, clusterName: 'prod', maxFindings: 1 });
    expect(r.status).toBe('partial');
    expect(r.findings).toHaveLength(1);
  });
});
