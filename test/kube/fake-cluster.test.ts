/**
 * KubeClient ↔ FakeCluster over real sockets (HTTPS + WebSocket), on the scripted and host runtimes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  BadRequestError,
  ExecFailedError,
  ExecIncompleteError,
  ExecProtocolError,
  ForbiddenError,
  NotFoundError,
  TimeoutError,
  TlsTrustError,
  UnauthorizedError,
} from '../../src/errors.js';
import { type ExecSession, KubeClient } from '../../src/kube/index.js';
import { FakeCluster } from '../../src/testing/index.js';
import { countingAgent } from '../support/agents.js';

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

async function collect(s: ExecSession) {
  const read = async (r: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const [stdout, stderr] = await Promise.all([read(s.stdout), read(s.stderr)]);
  const result = await s.result;
  return { stdout, stderr, exitCode: result.exitCode, result };
}

describe('KubeClient against FakeCluster', () => {
  let cluster: FakeCluster;
  let kube: KubeClient;
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    cluster = await FakeCluster.start({
      users: [
        { name: 'reader', rules: [{ verbs: ['get', 'list'], resources: ['pods', 'pods/log'] }] },
        {
          name: 'exec-user',
          rules: [{ verbs: ['get', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] }],
        },
      ],
      maxPageSize: 2,
    });
    kube = new KubeClient({ server: cluster.server, caData: cluster.caData, token: cluster.adminToken });
    cluster.addNode({ name: 'node-a', providerID: 'aws:///us-east-1a/i-0abc' });
    await cluster.addPod({
      name: 'scripted',
      nodeName: 'node-a',
      labels: { app: 'web' },
      containers: [
        {
          name: 'app',
          image: 'nginx:1.27',
          runtime: 'scripted',
          logs: { current: 'hello log\nsecond line\n' },
          options: {
            commands: {
              both: (_argv, io) => {
                io.stdout.write('to stdout\n');
                io.stderr.write('to stderr\n');
                return 0;
              },
              exit: (argv) => Number(argv[1]),
              cat: async (_argv, io) => {
                await pipeline(io.stdin, io.stdout, { end: false });
                return 0;
              },
            },
          },
        },
        { name: 'down', image: 'busybox', runtime: 'scripted', options: { running: false } },
      ],
    });
    await cluster.addPod({
      name: 'host',
      nodeName: 'node-a',
      containers: [{ name: 'sh', image: 'debian:12', runtime: 'host' }],
    });
    for (let i = 0; i < 3; i++) {
      await cluster.addPod({
        namespace: 'other',
        name: `filler-${i}`,
        containers: [{ name: 'c', image: 'x' }],
      });
    }
  });
  afterAll(async () => {
    await cluster?.close();
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  });
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, 10));
    expect(unhandled).toEqual([]);
  });

  describe('REST', () => {
    it('lists pods across namespaces through pagination and filters by label', async () => {
      const all: string[] = [];
      for await (const p of kube.listPods({ limit: 2 }))
        all.push(`${p.metadata.namespace}/${p.metadata.name}`);
      expect(all.sort()).toEqual([
        'default/host',
        'default/scripted',
        'other/filler-0',
        'other/filler-1',
        'other/filler-2',
      ]);
      const pages = cluster.requests.filter((r) => r.url.startsWith('/api/v1/pods?'));
      expect(pages.length).toBeGreaterThanOrEqual(3);
      const web: string[] = [];
      for await (const p of kube.listPods({ namespace: 'default', labelSelector: 'app=web' }))
        web.push(p.metadata.name ?? '');
      expect(web).toEqual(['scripted']);
    });

    it('gets a pod with container statuses and a node', async () => {
      const pod = await kube.getPod('default', 'scripted');
      expect(pod.spec?.containers.map((c) => c.name)).toEqual(['app', 'down']);
      expect(pod.status?.containerStatuses?.find((c) => c.name === 'app')?.containerID).toMatch(/:\/\//);
      const node = await kube.getNode('node-a');
      expect(node.spec?.providerID).toBe('aws:///us-east-1a/i-0abc');
      await expect(kube.getPod('default', 'nope')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('streams logs', async () => {
      const stream = await kube.podLogs({ namespace: 'default', pod: 'scripted', container: 'app' });
      let text = '';
      for await (const c of stream) text += c.toString();
      expect(text).toBe('hello log\nsecond line\n');
      const ts = await kube.podLogs({
        namespace: 'default',
        pod: 'scripted',
        container: 'app',
        timestamps: true,
      });
      let t2 = '';
      for await (const c of ts) t2 += c.toString();
      expect(t2).toMatch(/^\d{4}-\d\d-\d\dT\S+ hello log\n/);
    });

    it('lists events by pod uid', async () => {
      const pod = await kube.getPod('default', 'scripted');
      const uid = pod.metadata.uid ?? '';
      cluster.addEvent({
        involvedObject: { kind: 'Pod', namespace: 'default', name: 'scripted', uid },
        reason: 'Pulled',
        message: 'ok',
      });
      cluster.addEvent({
        involvedObject: { kind: 'Pod', namespace: 'default', name: 'host', uid: 'other' },
        reason: 'X',
        message: 'no',
      });
      const ev = await kube.podEvents({ namespace: 'default', uid });
      expect(ev.map((e) => e.reason)).toEqual(['Pulled']);
    });

    it('answers who-am-I and can-I from the same RBAC', async () => {
      const reader = new KubeClient({
        server: cluster.server,
        caData: cluster.caData,
        token: cluster.tokenFor('reader'),
      });
      const me = await reader.selfSubjectReview();
      expect(me.username).toBe('reader');
      expect(me.groups).toContain('system:authenticated');
      expect(
        await reader.canI({ verb: 'get', resource: 'pods', subresource: 'log', namespace: 'default' }),
      ).toMatchObject({
        allowed: true,
      });
      expect(
        (await reader.canI({ verb: 'get', resource: 'pods', subresource: 'exec', namespace: 'default' }))
          .allowed,
      ).toBe(false);
      const err = await reader.getNode('node-a').catch((e) => e);
      expect(err).toBeInstanceOf(ForbiddenError);
      expect(err.denied).toMatchObject({ user: 'reader', verb: 'get', resource: 'nodes' });
    });

    it('adds an ephemeral container with a strategic merge patch', async () => {
      const pod = await kube.patchEphemeralContainers('default', 'scripted', [
        { name: 'debugger-abcde', image: 'busybox:1.36', targetContainerName: 'app', command: ['sh'] },
      ]);
      expect(pod.spec?.ephemeralContainers?.map((c) => [c.name, c.targetContainerName])).toEqual([
        ['debugger-abcde', 'app'],
      ]);
    });
  });

  describe.each(['scripted', 'host'] as const)('exec on the %s runtime', (rt) => {
    const pod = rt;
    const container = rt === 'scripted' ? 'app' : 'sh';
    const cmd = (scripted: string[], host: string[]) => (rt === 'scripted' ? scripted : host);

    it('separates stdout and stderr', async () => {
      const s = await kube.exec({
        namespace: 'default',
        pod,
        container,
        command: cmd(['both'], ['sh', '-c', 'echo to stdout; echo to stderr >&2']),
      });
      const r = await collect(s);
      expect(r).toMatchObject({ stdout: 'to stdout\n', stderr: 'to stderr\n', exitCode: 0 });
      expect(r.result.protocol).toBe('v5.channel.k8s.io');
      expect(r.result.stdoutBytes).toBe(10);
    });

    it.each([0, 1, 42])('reports exit code %i', async (code) => {
      const s = await kube.exec({
        namespace: 'default',
        pod,
        container,
        command: cmd(['exit', String(code)], ['sh', '-c', `exit ${code}`]),
      });
      expect((await collect(s)).exitCode).toBe(code);
    });

    it('sends stdin and delivers EOF with v5 CLOSE', async () => {
      const input = randomBytes(3 * 1024 * 1024 + 17);
      const s = await kube.exec({ namespace: 'default', pod, container, command: ['cat'], stdin: true });
      const hash = createHash('sha256');
      const reading = (async () => {
        for await (const c of s.stdout) hash.update(c as Buffer);
      })();
      s.stdin?.end(input);
      await reading;
      expect((await s.result).exitCode).toBe(0);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
    });

    it('chunks a late consumer keeps stay intact while later reads arrive', async () => {
      // Reads land in slabs that are never written twice: a reused read buffer would overwrite
      // the chunks held here before they are compared.
      const input = randomBytes(4 * 1024 * 1024 + 5);
      const s = await kube.exec({ namespace: 'default', pod, container, command: ['cat'], stdin: true });
      s.stdin?.end(input);
      await new Promise((r) => setTimeout(r, 300));
      const kept: Buffer[] = [];
      for await (const c of s.stdout) kept.push(c as Buffer);
      expect((await s.result).exitCode).toBe(0);
      expect(kept.length).toBeGreaterThan(8);
      expect(Buffer.concat(kept).equals(input)).toBe(true);
    });

    it('AbortSignal closes the session and rejects result', async () => {
      const ac = new AbortController();
      const s = await kube.exec({
        namespace: 'default',
        pod,
        container,
        command: cmd(['cat'], ['sleep', '30']),
        stdin: rt === 'scripted',
        signal: ac.signal,
      });
      setTimeout(() => ac.abort(), 100);
      const err = await s.result.catch((e) => e);
      expect(err).toBeInstanceOf(AbortedError);
      expect(err).not.toBeInstanceOf(TimeoutError);
    });

    it('timeoutMs closes the session with TimeoutError', async () => {
      const t0 = Date.now();
      const s = await kube.exec({
        namespace: 'default',
        pod,
        container,
        command: cmd(['cat'], ['sleep', '30']),
        stdin: rt === 'scripted',
        timeoutMs: 300,
      });
      await expect(s.result).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    it('a missing executable is ExecFailedError', async () => {
      const s = await kube.exec({ namespace: 'default', pod, container, command: ['no-such-binary-xyz'] });
      const err = await s.result.catch((e) => e);
      expect(err).toBeInstanceOf(ExecFailedError);
      expect(err.status.reason).toBe('InternalError');
    });
  });

  it("exec goes through the caller's agent when one is given", async () => {
    const { agent, created } = countingAgent();
    const viaAgent = new KubeClient({
      server: cluster.server,
      caData: cluster.caData,
      token: cluster.adminToken,
      agent,
    });
    const input = randomBytes(2 * 1024 * 1024);
    const s = await viaAgent.exec({
      namespace: 'default',
      pod: 'host',
      container: 'sh',
      command: ['cat'],
      stdin: true,
    });
    s.stdin?.end(input);
    const kept: Buffer[] = [];
    for await (const c of s.stdout) kept.push(c as Buffer);
    expect((await s.result).exitCode).toBe(0);
    expect(Buffer.concat(kept).equals(input)).toBe(true);
    expect(created()).toBe(1);
  });

  describe('exec verifies the server like REST does', () => {
    const execWith = (o: Partial<ConstructorParameters<typeof KubeClient>[0]>) =>
      new KubeClient({
        server: cluster.server,
        token: cluster.adminToken,
        retry: { attempts: 1 },
        ...o,
      }).exec({
        namespace: 'default',
        pod: 'scripted',
        container: 'app',
        command: ['both'],
      });

    it('refuses a server certificate that does not chain to the given CA', async () => {
      const err = await execWith({}).catch((e) => e);
      expect(err).toBeInstanceOf(TlsTrustError);
      expect(String(err.message)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|unable to verify|self[- ]signed/i);
    });

    it('checks the certificate against tlsServerName (wrong name refused, right name accepted)', async () => {
      const err = await execWith({ caData: cluster.caData, tlsServerName: 'wrong.example' }).catch((e) => e);
      expect(err).toBeInstanceOf(TlsTrustError);
      expect(String(err.cause?.message ?? err.cause)).toMatch(/wrong\.example/);
      const s = await execWith({ caData: cluster.caData, tlsServerName: 'localhost' });
      expect((await collect(s)).exitCode).toBe(0);
    });
  });

  describe('errors before the upgrade', () => {
    it('401 for a bad token, with the Status', async () => {
      const bad = new KubeClient({ server: cluster.server, caData: cluster.caData, token: 'wrong' });
      const err = await bad
        .exec({ namespace: 'default', pod: 'scripted', container: 'app', command: ['both'] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(UnauthorizedError);
      expect(err.status.code).toBe(401);
    });

    it('401 then a refreshed token succeeds', async () => {
      let n = 0;
      const k = new KubeClient({
        server: cluster.server,
        caData: cluster.caData,
        token: async () => (n++ === 0 ? 'expired' : cluster.adminToken),
      });
      const s = await k.exec({ namespace: 'default', pod: 'scripted', container: 'app', command: ['both'] });
      expect((await collect(s)).exitCode).toBe(0);
      expect(n).toBe(2);
    });

    it('403 with the denied verb/resource parsed', async () => {
      const reader = new KubeClient({
        server: cluster.server,
        caData: cluster.caData,
        token: cluster.tokenFor('reader'),
      });
      const err = await reader
        .exec({ namespace: 'default', pod: 'scripted', container: 'app', command: ['both'] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(ForbiddenError);
      expect(err.denied).toMatchObject({
        user: 'reader',
        verb: 'get',
        resource: 'pods',
        subresource: 'exec',
        namespace: 'default',
      });
      expect(err.status.reason).toBe('Forbidden');
    });

    it('404 for a missing pod and 400 for a wrong container', async () => {
      const e404 = await kube.exec({ namespace: 'default', pod: 'nope', command: ['x'] }).catch((e) => e);
      expect(e404).toBeInstanceOf(NotFoundError);
      expect(e404.status.message).toBe('pods "nope" not found');
      const e400 = await kube
        .exec({ namespace: 'default', pod: 'scripted', container: 'zzz', command: ['x'] })
        .catch((e) => e);
      expect(e400).toBeInstanceOf(BadRequestError);
      expect(e400.message).toContain('container zzz is not valid for pod scripted');
      const e400b = await kube
        .exec({ namespace: 'default', pod: 'scripted', command: ['x'] })
        .catch((e) => e);
      expect(e400b).toBeInstanceOf(BadRequestError);
    });
  });

  it('v4 (legacy path): output and status arrive; stdin.end() fails clearly instead of losing them', async () => {
    const s = await kube.exec({
      namespace: 'default',
      pod: 'host',
      command: ['sh', '-c', 'head -c 5 ; echo " done"; echo warn >&2; exit 3'],
      stdin: true,
      protocols: ['v4.channel.k8s.io'],
    });
    expect(s.protocol).toBe('v4.channel.k8s.io');
    expect(s.canCloseStdin).toBe(false);
    const ended = new Promise((resolve) => s.stdin?.once('error', resolve));
    s.stdin?.write('hello');
    s.stdin?.end();
    expect(await ended).toBeInstanceOf(ExecProtocolError);
    const r = await collect(s);
    expect(r).toMatchObject({ stdout: 'hello done\n', stderr: 'warn\n', exitCode: 3 });
    expect(r.result.protocol).toBe('v4.channel.k8s.io');
  });

  it('container not running → ExecFailedError after the upgrade', async () => {
    const s = await kube.exec({ namespace: 'default', pod: 'scripted', container: 'down', command: ['ls'] });
    const err = await s.result.catch((e) => e);
    expect(err).toBeInstanceOf(ExecFailedError);
    expect(err.status.message).toMatch(/container not found|not running/);
  });

  it('a stopped container → ExecFailedError after the upgrade', async () => {
    await cluster.addPod({ name: 'stopme', containers: [{ name: 'c', image: 'x', runtime: 'host' }] });
    await cluster.stopContainer('default', 'stopme', 'c');
    const s = await kube.exec({ namespace: 'default', pod: 'stopme', command: ['true'] });
    await expect(s.result).rejects.toBeInstanceOf(ExecFailedError);
  });
});

describe('server killed mid-stream', () => {
  it('gives ExecIncompleteError, never exit 0', async () => {
    const cluster = await FakeCluster.start();
    try {
      await cluster.addPod({ name: 'h', containers: [{ name: 'c', image: 'x', runtime: 'host' }] });
      const kube = new KubeClient({
        server: cluster.server,
        caData: cluster.caData,
        token: cluster.adminToken,
      });
      const s = await kube.exec({
        namespace: 'default',
        pod: 'h',
        command: ['sh', '-c', 'echo started; exec sleep 30'],
      });
      let got = '';
      for await (const c of s.stdout) {
        got += c.toString();
        if (got.includes('started')) break;
      }
      await cluster.close();
      const err = await s.result.catch((e) => e);
      expect(err).toBeInstanceOf(ExecIncompleteError);
      expect(err.message).toMatch(/without an exit status|connection failed/);
    } finally {
      await cluster.close();
    }
  });
});
