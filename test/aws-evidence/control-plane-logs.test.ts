import {
  CloudWatchLogsClient,
  CloudWatchLogsServiceException,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsRequestError, ConfigError } from '../../src/entries/errors.js';
import { AbortedError, exportControlPlaneLogs } from '../../src/index.js';
import { skipWithoutPeer } from '../support/peers.js';
import { type Moto, motoConfig, motoMissing, recentHour, startMoto, TestWriter } from './support.js';

const skip = skipWithoutPeer('moto_server', motoMissing());

const CLUSTER = 'ir-cluster';
const GROUP = `/aws/eks/${CLUSTER}/cluster`;
const T0 = recentHour(3);
/** The authenticator's own time field (`time="…Z"`). */
const T0_TEXT = new Date(T0).toISOString().replace('.000Z', 'Z');
const WINDOW = { startTime: T0, endTime: T0 + 3_600_000 };
const ALICE = 'arn:aws:iam::111122223333:user/alice';
const BOB = 'arn:aws:sts::111122223333:assumed-role/ops/bob';

interface AuditSpec {
  verb: string;
  resource: string;
  subresource?: string;
  ns?: string;
  name?: string;
  user: string;
  arn?: string;
  podToken?: string;
}

function audit(i: number, a: AuditSpec): string {
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `audit-${i}`,
    stage: 'ResponseComplete',
    verb: a.verb,
    requestURI: `/api/v1/${a.ns ? `namespaces/${a.ns}/` : ''}${a.resource}${a.name ? `/${a.name}` : ''}`,
    user: {
      username: a.user,
      groups: ['system:authenticated'],
      extra: {
        ...(a.arn ? { arn: [a.arn], canonicalArn: [a.arn], accessKeyId: [`AKIA${i}`] } : {}),
        ...(a.podToken
          ? {
              'authentication.kubernetes.io/pod-name': [a.podToken],
              'authentication.kubernetes.io/pod-uid': ['uid-api-1'],
            }
          : {}),
      },
    },
    sourceIPs: ['10.0.0.1'],
    userAgent: 'kubectl/v1.30',
    objectRef: {
      resource: a.resource,
      subresource: a.subresource,
      namespace: a.ns,
      name: a.name,
      apiVersion: 'v1',
    },
    responseStatus: { code: 200 },
  });
}

// Audit events in the window; ids reflect what filters must keep.
const AUDIT: AuditSpec[] = [
  {
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    ns: 'web',
    name: 'api-1',
    user: ALICE,
    arn: ALICE,
  }, // 0 api-1 alice
  { verb: 'get', resource: 'pods', ns: 'web', name: 'api-2', user: BOB, arn: BOB }, // 1 api-2 bob
  { verb: 'get', resource: 'pods', subresource: 'log', ns: 'web', name: 'api-1', user: BOB, arn: BOB }, // 2 api-1 bob
  { verb: 'list', resource: 'secrets', ns: 'web', user: 'system:serviceaccount:web:api', podToken: 'api-1' }, // 3 by api-1
  { verb: 'get', resource: 'configmaps', ns: 'kube-system', name: 'aws-auth', user: ALICE, arn: ALICE }, // 4 alice
  { verb: 'delete', resource: 'pods', ns: 'other', name: 'api-1', user: BOB, arn: BOB }, // 5 other ns
  {
    verb: 'patch',
    resource: 'pods',
    subresource: 'ephemeralcontainers',
    ns: 'web',
    name: 'api-1',
    user: ALICE,
    arn: ALICE,
  }, // 6
];

async function seed(endpoint: string): Promise<void> {
  const logs = new CloudWatchLogsClient(motoConfig(endpoint));
  await logs.send(new CreateLogGroupCommand({ logGroupName: GROUP }));
  const put = async (stream: string, events: Array<{ timestamp: number; message: string }>) => {
    await logs.send(new CreateLogStreamCommand({ logGroupName: GROUP, logStreamName: stream }));
    await logs.send(
      new PutLogEventsCommand({ logGroupName: GROUP, logStreamName: stream, logEvents: events }),
    );
  };
  const auditA = AUDIT.slice(0, 4).map((a, i) => ({ timestamp: T0 + 1000 * (i + 1), message: audit(i, a) }));
  const auditB = AUDIT.slice(4).map((a, j) => ({ timestamp: T0 + 1000 * (j + 5), message: audit(j + 4, a) }));
  // outside the window
  auditA.unshift({ timestamp: T0 - 60_000, message: audit(100, AUDIT[0] as AuditSpec) });
  // malformed: one mentions the pod, one does not, one JSON that is no audit event
  auditB.push({
    timestamp: T0 + 20_000,
    message:
      '{"kind":"Event","verb":"get","objectRef":{"namespace":"web","name":"api-1" TRUNCATED /api/v1/namespaces/web/pods/api-1',
  });
  auditB.push({ timestamp: T0 + 21_000, message: 'garbage line' });
  auditB.push({ timestamp: T0 + 22_000, message: '{"hello":"world"}' });
  await put('kube-apiserver-audit-0123456789abcdef0123456789abcdef', auditA);
  await put('kube-apiserver-audit-fedcba9876543210fedcba9876543210', auditB);
  await put('authenticator-0123456789abcdef0123456789abcdef', [
    {
      timestamp: T0 + 500,
      message: `time="${T0_TEXT}" level=info msg="access granted" arn="${ALICE}" client="127.0.0.1:1" groups="[]" method=POST path=/authenticate uid="aws-iam-authenticator:111122223333:AIDA1" username="${ALICE}"`,
    },
    {
      timestamp: T0 + 600,
      message: `time="${T0_TEXT}" level=info msg="STS response" accesskeyid=AKIA2 accountid=111122223333 arn="${BOB}" client="127.0.0.1:2" method=POST path=/authenticate session=bob userid=AROA2`,
    },
    {
      timestamp: T0 + 700,
      message: `time="${T0_TEXT}" level=info msg="access granted" arn="arn:aws:iam::111122223333:user/alice-admin" username="alice-admin"`,
    },
  ]);
  await put('kube-apiserver-0123456789abcdef0123456789abcdef', [
    {
      timestamp: T0 + 800,
      message:
        'I1120 10:00:00.000 1 httplog.go:132] "HTTP" verb="GET" URI="/api/v1/namespaces/web/pods/api-1" latency="2ms"',
    },
    {
      timestamp: T0 + 900,
      message:
        'I1120 10:00:00.000 1 httplog.go:132] "HTTP" verb="GET" URI="/api/v1/namespaces/web/pods/api-2" latency="2ms"',
    },
  ]);
  logs.destroy();
}

function auditIds(w: TestWriter): string[] {
  return w
    .lines('aws/control-plane-logs/kube-apiserver-audit.jsonl')
    .map((l) => {
      if (l.malformed) return `malformed:${String(l.message).slice(0, 12)}`;
      return (JSON.parse(String(l.message)) as { auditID: string }).auditID;
    })
    .sort();
}

describe.skipIf(skip)('exportControlPlaneLogs against moto_server', () => {
  let moto: Moto;
  let logs: CloudWatchLogsClient;

  beforeAll(async () => {
    moto = await startMoto();
    await seed(moto.endpoint);
    logs = new CloudWatchLogsClient(motoConfig(moto.endpoint));
  });
  afterAll(async () => {
    logs?.destroy();
    await moto?.close();
  });

  it('exports every audit and authenticator event in the window, page by page', async () => {
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: CLUSTER,
      ...WINDOW,
      limits: { pageSize: 3 },
    });
    expect(r.status).toBe('complete');
    expect(r.logGroupName).toBe(GROUP);
    const a = r.streams.find((s) => s.type === 'audit');
    expect(a?.logStreams).toHaveLength(2);
    expect(a?.exported).toBe(10); // 7 events + 3 malformed, not the one before the window
    expect(a?.malformed).toBe(3);
    expect(a?.pages).toBeGreaterThan(2);
    expect(auditIds(w)).toEqual([
      'audit-0',
      'audit-1',
      'audit-2',
      'audit-3',
      'audit-4',
      'audit-5',
      'audit-6',
      'malformed:garbage line',
      'malformed:{"hello":"wo',
      'malformed:{"kind":"Eve',
    ]);
    const lines = w.lines('aws/control-plane-logs/kube-apiserver-audit.jsonl');
    expect(lines[0]).toMatchObject({
      logStream: expect.stringMatching(/^kube-apiserver-audit-/),
      time: expect.any(String),
    });
    const auth = w.lines('aws/control-plane-logs/authenticator.jsonl');
    expect(auth).toHaveLength(3);
    expect(w.artifact('aws/control-plane-logs/authenticator.jsonl')?.record.status).toBe('complete');
    expect(w.records.has('aws/control-plane-logs/kube-apiserver.jsonl')).toBe(false);
    // streamed: more than one chunk for the audit artifact
    expect(w.chunks).toBeGreaterThan(3);
    expect(w.logs.some((l) => l.event === 'stream-exported' && l.type === 'audit')).toBe(true);
  });

  it('filters to a pod: pod events, the pod token’s own requests, and the actors’ authenticator lines', async () => {
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit', 'authenticator', 'api'],
      filter: { namespace: 'web', pod: 'api-1' },
    });
    expect(r.status).toBe('complete');
    expect(auditIds(w)).toEqual(['audit-0', 'audit-2', 'audit-3', 'audit-6', 'malformed:{"kind":"Eve']);
    const a = r.streams.find((s) => s.type === 'audit');
    expect(a?.scanned).toBe(10);
    expect(a?.malformed).toBe(3);
    expect(r.actorIdentities).toEqual(expect.arrayContaining([ALICE, BOB]));
    expect(w.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record.target).toEqual({
      namespace: 'web',
      pod: 'api-1',
    });
    const auth = w.lines('aws/control-plane-logs/authenticator.jsonl').map((l) => String(l.message));
    expect(auth).toHaveLength(2); // alice and bob, not alice-admin
    expect(auth.some((m) => m.includes('alice-admin'))).toBe(false);
    const api = w.lines('aws/control-plane-logs/kube-apiserver.jsonl').map((l) => String(l.message));
    expect(api).toHaveLength(1);
    expect(api[0]).toContain('pods/api-1');
  });

  it('filters to a user and to a namespace', async () => {
    const w = await TestWriter.open();
    await exportControlPlaneLogs({ bundle: w, logs, clusterName: CLUSTER, ...WINDOW, filter: { user: BOB } });
    expect(auditIds(w)).toEqual(['audit-1', 'audit-2', 'audit-5']);
    const auth = w.lines('aws/control-plane-logs/authenticator.jsonl');
    expect(auth).toHaveLength(1);
    expect(String(auth[0]?.message)).toContain('STS response');

    const w2 = await TestWriter.open();
    await exportControlPlaneLogs({
      bundle: w2,
      logs,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
      filter: { namespace: 'kube-system' },
    });
    expect(auditIds(w2)).toEqual(['audit-4']);
  });

  it('stops at maxEventsPerStream and records the truncation', async () => {
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
      limits: { maxEventsPerStream: 4, pageSize: 2 },
    });
    expect(r.status).toBe('partial');
    const a = r.streams[0];
    expect(a?.status).toBe('truncated');
    expect(a?.exported).toBe(4);
    expect(a?.reason).toMatch(/maxEventsPerStream \(4\)/);
    const rec = w.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record;
    expect(rec?.status).toBe('truncated');
    expect(rec?.reason).toMatch(/maxEventsPerStream/);
    expect(w.lines('aws/control-plane-logs/kube-apiserver-audit.jsonl')).toHaveLength(4);
  });

  it('retries throttled calls with backoff, then names the IAM action on AccessDenied', async () => {
    const throttled = new CloudWatchLogsClient(motoConfig(moto.endpoint));
    let throttles = 2;
    throttled.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'FilterLogEventsCommand' && throttles-- > 0) {
          throw new CloudWatchLogsServiceException({
            name: 'ThrottlingException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
            message: 'Rate exceeded',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'testThrottle' },
    );
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs: throttled,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
      retry: { baseDelayMs: 5 },
    });
    expect(r.status).toBe('complete');
    expect(r.streams[0]?.exported).toBe(10);
    expect(w.logs.filter((l) => l.event === 'throttled')).toHaveLength(2);
    throttled.destroy();

    const denied = new CloudWatchLogsClient(motoConfig(moto.endpoint));
    denied.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'FilterLogEventsCommand') {
          throw new CloudWatchLogsServiceException({
            name: 'AccessDeniedException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
            message: 'User is not authorized to perform: logs:FilterLogEvents',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'testDeny' },
    );
    const w2 = await TestWriter.open();
    const r2 = await exportControlPlaneLogs({
      bundle: w2,
      logs: denied,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
    });
    expect(r2.status).toBe('failed');
    const err = r2.streams[0]?.error;
    expect(err).toBeInstanceOf(AwsRequestError);
    expect((err as AwsRequestError).failure).toBe('access-denied');
    expect((err as AwsRequestError).operation).toBe('logs:FilterLogEvents');
    expect(err?.message).toContain('logs:FilterLogEvents');
    expect(w2.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record.status).toBe('failed');
    denied.destroy();
  });

  it('stops at maxBytesPerStream, on a repeated nextToken, and at timeoutMs — each recorded as truncation', async () => {
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({
      bundle: w,
      logs,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
      limits: { maxBytesPerStream: 2_000 },
    });
    const a = r.streams[0];
    expect(a?.status).toBe('truncated');
    expect(a?.reason).toMatch(/maxBytesPerStream \(2000\)/);
    expect(a?.bytes).toBeLessThanOrEqual(2_000);
    expect(w.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.body.length).toBe(a?.bytes);
    expect(a?.exported).toBeGreaterThan(0);
    expect(a?.exported).toBeLessThan(10);

    // a server that keeps answering the same nextToken
    const looping = new CloudWatchLogsClient(motoConfig(moto.endpoint));
    let calls = 0;
    looping.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'FilterLogEventsCommand') {
          calls++;
          (out.output as { nextToken?: string }).nextToken = 'same-token';
        }
        return out;
      },
      { step: 'initialize', name: 'testLoop' },
    );
    const w2 = await TestWriter.open();
    const r2 = await exportControlPlaneLogs({
      bundle: w2,
      logs: looping,
      clusterName: CLUSTER,
      ...WINDOW,
      types: ['audit'],
    });
    looping.destroy();
    expect(calls).toBe(2);
    expect(r2.streams[0]?.status).toBe('truncated');
    expect(r2.streams[0]?.reason).toMatch(/nextToken it had already returned/);

    // a slow server and a short time bound
    const slow = new CloudWatchLogsClient(motoConfig(moto.endpoint));
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'FilterLogEventsCommand')
          await new Promise((res) => setTimeout(res, 150));
        return next(args);
      },
      { step: 'initialize', name: 'testSlow' },
    );
    const w3 = await TestWriter.open();
    const r3 = await exportControlPlaneLogs({
      bundle: w3,
      logs: slow,
      clusterName: CLUSTER,
      ...WINDOW,
      limits: { timeoutMs: 400, pageSize: 1 },
    });
    slow.destroy();
    expect(r3.status).toBe('partial');
    expect(r3.streams[0]?.status).toBe('truncated');
    expect(r3.streams[0]?.reason).toMatch(/timeoutMs reached/);
    expect(r3.streams[0]?.exported).toBeGreaterThan(0);
    expect(r3.streams[0]?.exported).toBeLessThan(10);
    expect(r3.streams[1]).toMatchObject({ type: 'authenticator', status: 'skipped' });
    expect(w3.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record.status).toBe('truncated');
  });

  it('throws AbortedError when the caller aborts', async () => {
    const ac = new AbortController();
    const w = await TestWriter.open();
    const p = exportControlPlaneLogs({ bundle: w, logs, clusterName: CLUSTER, ...WINDOW, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
  });

  it('notes a cluster without control-plane logging, with the command that enables it', async () => {
    const eks = new EKSClient(motoConfig(moto.endpoint));
    await eks.send(
      new CreateClusterCommand({
        name: 'quiet',
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: { subnetIds: [] },
      }),
    );
    const w = await TestWriter.open();
    const r = await exportControlPlaneLogs({ bundle: w, logs, eks, clusterName: 'quiet', ...WINDOW });
    expect(r.status).toBe('not-enabled');
    expect(r.loggingEnabled).toEqual({ audit: false, authenticator: false });
    expect(r.enableCommand).toBe(
      `aws eks update-cluster-config --region us-east-1 --name quiet --logging '{"clusterLogging":[{"types":["audit","authenticator"],"enabled":true}]}'`,
    );
    expect(r.notes.join('\n')).toContain('/aws/eks/quiet/cluster does not exist');
    expect(r.notes.join('\n')).toContain(r.enableCommand);
    expect(w.artifact('aws/control-plane-logs/kube-apiserver-audit.jsonl')?.record.status).toBe('skipped');

    // logging on for audit only: authenticator is named as not enabled, audit still exported
    await eks.send(
      new CreateClusterCommand({
        name: CLUSTER,
        roleArn: 'arn:aws:iam::123456789012:role/eks',
        resourcesVpcConfig: { subnetIds: [] },
        logging: { clusterLogging: [{ types: ['audit'], enabled: true }] },
      }),
    );
    const w2 = await TestWriter.open();
    const r2 = await exportControlPlaneLogs({ bundle: w2, logs, eks, clusterName: CLUSTER, ...WINDOW });
    expect(r2.loggingEnabled).toEqual({ audit: true, authenticator: false });
    expect(r2.enableCommand).toContain('"types":["authenticator"]');
    expect(r2.streams.find((s) => s.type === 'audit')?.exported).toBe(10);
    eks.destroy();
  });

  it('rejects bad options', async () => {
    const w = await TestWriter.open();
    await expect(
      exportControlPlaneLogs({ bundle: w, logs, clusterName: 'bad name', ...WINDOW }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      exportControlPlaneLogs({ bundle: w, logs, clusterName: CLUSTER, startTime: 2, endTime: 1 }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      exportControlPlaneLogs({ bundle: w, logs, clusterName: CLUSTER, ...WINDOW, filter: { pod: 'x' } }),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});
