/**
 * KubeClient REST against a tiny local HTTP(S) server scripted per test: error mapping, retries,
 * token refresh, TLS (CA as base64 PEM, tlsServerName), bounds, pagination, logs.
 */
import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  ApiUnavailableError,
  BadRequestError,
  ForbiddenError,
  LimitExceededError,
  NotFoundError,
  TimeoutError,
  TlsTrustError,
  UnauthorizedError,
  ValidationError,
} from '../../src/errors.js';
import { KubeClient, parseForbidden } from '../../src/kube/index.js';
import { generatePki } from '../../src/testing/fake-cluster/pki.js';
import { countingAgent } from '../support/agents.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
  servername?: string | false | null | undefined;
}

function status(code: number, reason: string, message: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
    ...extra,
  });
}

function pod(name: string, uid = `uid-${name}`) {
  return {
    metadata: { name, namespace: 'default', uid },
    spec: { containers: [{ name: 'app', image: 'nginx' }], nodeName: 'n1' },
    status: {
      phase: 'Running',
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'nginx', imageID: 'x' }],
    },
  };
}

class TinyServer {
  handler: Handler = (_q, res) => res.end('{}');
  seen: Seen[] = [];
  server!: http.Server;
  url = '';
  async start(tls?: { cert: string; key: string }): Promise<void> {
    const onReq = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization,
          contentType: req.headers['content-type'],
          body,
          servername: (req.socket as TLSSocket).servername,
        });
        this.handler(req, res, body);
      });
    };
    this.server = tls
      ? https.createServer({ cert: tls.cert, key: tls.key }, onReq)
      : http.createServer(onReq);
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const json = (res: http.ServerResponse, code: number, body: string, headers: Record<string, string> = {}) => {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(body);
};

describe('parseForbidden', () => {
  it('parses verb, resource, subresource, group, namespace and user', () => {
    expect(
      parseForbidden(
        'pods "x" is forbidden: User "alice" cannot get resource "pods/exec" in API group "" in the namespace "ns"',
      ),
    ).toEqual({
      user: 'alice',
      verb: 'get',
      resource: 'pods',
      subresource: 'exec',
      apiGroup: '',
      namespace: 'ns',
    });
    expect(
      parseForbidden(
        'nodes "n1" is forbidden: User "system:serviceaccount:a:b" cannot get resource "nodes" in API group "" at the cluster scope',
      ),
    ).toEqual({ user: 'system:serviceaccount:a:b', verb: 'get', resource: 'nodes', apiGroup: '' });
    expect(parseForbidden('pods "x" is forbidden: no reason')).toEqual({});
  });
});

describe('KubeClient REST over http', () => {
  const s = new TinyServer();
  beforeAll(() => s.start());
  afterAll(() => s.stop());
  afterEach(() => {
    s.seen = [];
  });
  const client = (extra: Partial<ConstructorParameters<typeof KubeClient>[0]> = {}) =>
    new KubeClient({ server: s.url, token: 'tok-1', retry: { baseDelayMs: 5 }, ...extra });

  it('gets a pod, validating and keeping unknown fields', async () => {
    s.handler = (_q, res) => json(res, 200, JSON.stringify({ ...pod('web'), extraField: { a: 1 } }));
    const p = await client().getPod('default', 'web');
    expect(p.metadata.name).toBe('web');
    expect((p as Record<string, unknown>).extraField).toEqual({ a: 1 });
    expect(s.seen[0]?.url).toBe('/api/v1/namespaces/default/pods/web');
    expect(s.seen[0]?.auth).toBe('Bearer tok-1');
  });

  it('asks the token provider again once on 401, then succeeds', async () => {
    const calls: unknown[] = [];
    let n = 0;
    const provider = async (o?: { forceRefresh?: boolean }) => {
      calls.push(o);
      n++;
      return `tok-${n}`;
    };
    s.handler = (req, res) =>
      req.headers.authorization === 'Bearer tok-1'
        ? json(res, 401, status(401, 'Unauthorized', 'Unauthorized'))
        : json(res, 200, JSON.stringify(pod('web')));
    const p = await client({ token: provider }).getPod('default', 'web');
    expect(p.metadata.name).toBe('web');
    expect(calls).toEqual([undefined, { forceRefresh: true }]);
    expect(s.seen.map((x) => x.auth)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
  });

  it('gives UnauthorizedError with the Status when the refreshed token fails too (no token in message)', async () => {
    s.handler = (_q, res) => json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const err = await client({ token: 'k8s-aws-v1.c2VjcmV0' })
      .getPod('default', 'web')
      .catch((e) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err.httpStatus).toBe(401);
    expect(err.status.reason).toBe('Unauthorized');
    expect(err.message).not.toContain('c2VjcmV0');
    expect(s.seen).toHaveLength(2);
  });

  it('maps 403 to ForbiddenError with the denied verb/resource parsed', async () => {
    const msg =
      'pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"';
    s.handler = (_q, res) =>
      json(res, 403, status(403, 'Forbidden', msg, { details: { name: 'web', kind: 'pods' } }));
    const err = await client()
      .getPod('default', 'web')
      .catch((e) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err.denied).toEqual({
      user: 'bob',
      verb: 'get',
      resource: 'pods',
      apiGroup: '',
      namespace: 'default',
    });
    expect(err.status.details.name).toBe('web');
    expect(err.message).toContain('Grant "get" on "pods"');
    expect(s.seen).toHaveLength(1);
  });

  it('maps 404, 400 and 422 with the Status attached and does not retry them', async () => {
    s.handler = (_q, res) => json(res, 404, status(404, 'NotFound', 'pods "web" not found'));
    const e404 = await client()
      .getPod('default', 'web')
      .catch((e) => e);
    expect(e404).toBeInstanceOf(NotFoundError);
    expect(e404.status.message).toBe('pods "web" not found');
    s.handler = (_q, res) =>
      json(res, 400, status(400, 'BadRequest', 'container x is not valid for pod web'));
    const e400 = await client()
      .getPod('default', 'web')
      .catch((e) => e);
    expect(e400).toBeInstanceOf(BadRequestError);
    s.handler = (_q, res) => json(res, 422, status(422, 'Invalid', 'bad'));
    expect(
      await client()
        .getPod('default', 'web')
        .catch((e) => e),
    ).toBeInstanceOf(BadRequestError);
    expect(s.seen).toHaveLength(3);
  });

  it('keeps a non-JSON error body as text', async () => {
    s.handler = (_q, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found\n');
    };
    const err = await client()
      .getNode('n1')
      .catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('404 page not found');
  });

  it('retries 503 and 500 on idempotent calls, then succeeds', async () => {
    let n = 0;
    s.handler = (_q, res) => {
      n++;
      if (n === 1) json(res, 503, status(503, 'ServiceUnavailable', 'busy'));
      else if (n === 2) json(res, 500, status(500, 'InternalError', 'oops'));
      else json(res, 200, JSON.stringify(pod('web')));
    };
    const p = await client().getPod('default', 'web');
    expect(p.metadata.name).toBe('web');
    expect(s.seen).toHaveLength(3);
  });

  it('gives up after the configured attempts with ApiUnavailableError', async () => {
    s.handler = (_q, res) => json(res, 500, status(500, 'InternalError', 'always'));
    const err = await client({ retry: { attempts: 3, baseDelayMs: 1 } })
      .getPod('default', 'web')
      .catch((e) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect(err.attempts).toBe(3);
    expect(err.status.message).toBe('always');
    expect(s.seen).toHaveLength(3);
  });

  it('honours Retry-After on 429', async () => {
    let n = 0;
    s.handler = (_q, res) =>
      ++n === 1
        ? json(res, 429, status(429, 'TooManyRequests', 'slow down'), { 'retry-after': '1' })
        : json(res, 200, JSON.stringify(pod('web')));
    const t0 = Date.now();
    await client().getPod('default', 'web');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(s.seen).toHaveLength(2);
  });

  it('retries a connection reset on idempotent calls', async () => {
    let n = 0;
    s.handler = (req, res) => {
      if (++n === 1) req.socket.destroy();
      else json(res, 200, JSON.stringify(pod('web')));
    };
    const p = await client().getPod('default', 'web');
    expect(p.metadata.name).toBe('web');
    expect(n).toBe(2);
  });

  it('retries a connection that breaks in the middle of the body', async () => {
    let n = 0;
    s.handler = (_q, res) => {
      if (++n === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"metadata":');
        setTimeout(() => res.socket?.destroy(), 10);
      } else json(res, 200, JSON.stringify(pod('web')));
    };
    const p = await client().getPod('default', 'web');
    expect(p.metadata.name).toBe('web');
    expect(n).toBe(2);
  });

  it('never retries the ephemeral-container PATCH, and sends a strategic merge patch', async () => {
    s.handler = (_q, res) => json(res, 500, status(500, 'InternalError', 'nope'));
    const err = await client()
      .patchEphemeralContainers('default', 'web', [
        { name: 'dbg', image: 'busybox', targetContainerName: 'app' },
      ])
      .catch((e) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect(s.seen).toHaveLength(1);
    expect(s.seen[0]?.method).toBe('PATCH');
    expect(s.seen[0]?.url).toBe('/api/v1/namespaces/default/pods/web/ephemeralcontainers');
    expect(s.seen[0]?.contentType).toBe('application/strategic-merge-patch+json');
    expect(JSON.parse(s.seen[0]?.body ?? '')).toEqual({
      spec: {
        ephemeralContainers: [
          {
            name: 'dbg',
            image: 'busybox',
            targetContainerName: 'app',
            terminationMessagePolicy: 'File',
            resources: {},
          },
        ],
      },
    });
  });

  it('turns malformed and hostile bodies into ValidationError / LimitExceededError', async () => {
    s.handler = (_q, res) => json(res, 200, '{"metadata": {"name": ');
    expect(
      await client()
        .getPod('default', 'web')
        .catch((e) => e),
    ).toBeInstanceOf(ValidationError);
    s.handler = (_q, res) =>
      json(res, 200, JSON.stringify({ metadata: { name: 42 }, spec: { containers: 'x' } }));
    const v = await client()
      .getPod('default', 'web')
      .catch((e) => e);
    expect(v).toBeInstanceOf(ValidationError);
    expect(v.issues.length).toBeGreaterThan(0);
    s.handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('{}');
      };
      res.on('error', () => {});
      pump();
    };
    const l = await client({ maxResponseBytes: 1024 * 1024 })
      .getPod('default', 'web')
      .catch((e) => e);
    expect(l).toBeInstanceOf(LimitExceededError);
    expect(l.limit).toBe('maxResponseBytes');
  });

  it('times out a request that never answers', async () => {
    s.handler = () => {};
    const t0 = Date.now();
    const err = await client({ timeoutMs: 300 })
      .getPod('default', 'web')
      .catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('aborts through the call signal and the client signal', async () => {
    s.handler = () => {};
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await client()
      .getPod('default', 'web', { signal: ac.signal })
      .catch((e) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(err).not.toBeInstanceOf(TimeoutError);
    const ac2 = new AbortController();
    ac2.abort();
    expect(
      await client({ signal: ac2.signal })
        .getNode('n1')
        .catch((e) => e),
    ).toBeInstanceOf(AbortedError);
  });

  it('lists pods page by page', async () => {
    s.handler = (req, res) => {
      const u = new URL(req.url ?? '', 'http://x');
      const c = u.searchParams.get('continue');
      const page = c === null ? 0 : Number(c);
      const items = [pod(`p${page * 2}`), pod(`p${page * 2 + 1}`)];
      json(
        res,
        200,
        JSON.stringify({ kind: 'PodList', metadata: { continue: page < 2 ? String(page + 1) : '' }, items }),
      );
    };
    const names: string[] = [];
    for await (const p of client().listPods({ namespace: 'default', limit: 2, labelSelector: 'app=web' })) {
      names.push(p.metadata.name ?? '');
    }
    expect(names).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
    expect(s.seen[0]?.url).toBe('/api/v1/namespaces/default/pods?limit=2&labelSelector=app%3Dweb');
    expect(s.seen[1]?.url).toContain('continue=1');
  });

  it('lists all namespaces and resumes with the inconsistent continue token of a 410', async () => {
    s.handler = (req, res) => {
      const c = new URL(req.url ?? '', 'http://x').searchParams.get('continue');
      if (c === null) json(res, 200, JSON.stringify({ metadata: { continue: 'old' }, items: [pod('a')] }));
      else if (c === 'old')
        json(
          res,
          410,
          status(410, 'Expired', 'The provided continue parameter is too old', {
            metadata: { continue: 'fresh' },
          }),
        );
      else json(res, 200, JSON.stringify({ metadata: {}, items: [pod('b')] }));
    };
    const names: string[] = [];
    for await (const p of client().listPods()) names.push(p.metadata.name ?? '');
    expect(names).toEqual(['a', 'b']);
    expect(s.seen.map((x) => new URL(x.url, 'http://x').searchParams.get('continue'))).toEqual([
      null,
      'old',
      'fresh',
    ]);
    expect(s.seen[0]?.url.startsWith('/api/v1/pods?')).toBe(true);
  });

  it('restarts the list on a 410 without a token, skipping pods already yielded', async () => {
    let first = true;
    s.handler = (req, res) => {
      const c = new URL(req.url ?? '', 'http://x').searchParams.get('continue');
      if (c === null) json(res, 200, JSON.stringify({ metadata: { continue: 't1' }, items: [pod('a')] }));
      else if (first) {
        first = false;
        json(res, 410, status(410, 'Expired', 'too old'));
      } else json(res, 200, JSON.stringify({ metadata: {}, items: [pod('b')] }));
    };
    const names: string[] = [];
    for await (const p of client().listPods({ namespace: 'default' })) names.push(p.metadata.name ?? '');
    expect(names).toEqual(['a', 'b']);
    expect(s.seen).toHaveLength(4);
  });

  it('streams pod logs with the query options and backpressure', async () => {
    s.handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('line 1\nline 2\n');
    };
    const stream = await client().podLogs({
      namespace: 'default',
      pod: 'web',
      container: 'app',
      previous: true,
      timestamps: true,
      sinceTime: new Date('2026-01-02T03:04:05Z'),
      limitBytes: 1000,
    });
    let text = '';
    for await (const c of stream) text += c.toString();
    expect(text).toBe('line 1\nline 2\n');
    const q = new URL(s.seen[0]?.url ?? '', 'http://x').searchParams;
    expect(Object.fromEntries(q)).toEqual({
      container: 'app',
      previous: 'true',
      timestamps: 'true',
      sinceTime: '2026-01-02T03:04:05.000Z',
      limitBytes: '1000',
    });
  });

  it('maps a log error answer (400 waiting to start) before streaming', async () => {
    s.handler = (_q, res) =>
      json(
        res,
        400,
        status(400, 'BadRequest', 'container "app" in pod "web" is waiting to start: ContainerCreating'),
      );
    const err = await client()
      .podLogs({ namespace: 'default', pod: 'web', container: 'app', sinceSeconds: 60 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toContain('waiting to start');
  });

  it('destroys a log stream with AbortedError on abort', async () => {
    s.handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
    };
    const ac = new AbortController();
    const stream = await client().podLogs({
      namespace: 'default',
      pod: 'web',
      container: 'app',
      signal: ac.signal,
    });
    const got: string[] = [];
    const err = await (async () => {
      try {
        for await (const c of stream) {
          got.push(c.toString());
          ac.abort();
        }
      } catch (e) {
        return e;
      }
    })();
    expect(got).toEqual(['first\n']);
    expect(err).toBeInstanceOf(AbortedError);
  });

  it('lists events by involvedObject uid', async () => {
    s.handler = (_q, res) =>
      json(
        res,
        200,
        JSON.stringify({
          metadata: {},
          items: [{ metadata: { name: 'e1' }, reason: 'Pulled', involvedObject: { uid: 'u1' } }],
        }),
      );
    const ev = await client().podEvents({ namespace: 'default', uid: 'u1' });
    expect(ev.map((e) => e.reason)).toEqual(['Pulled']);
    const q = new URL(s.seen[0]?.url ?? '', 'http://x').searchParams;
    expect(q.get('fieldSelector')).toBe('involvedObject.uid=u1');
    expect(s.seen[0]?.url.startsWith('/api/v1/namespaces/default/events?')).toBe(true);
  });

  it('asks SelfSubjectReview and SelfSubjectAccessReview', async () => {
    s.handler = (req, res, body) => {
      if (req.url?.includes('selfsubjectreviews')) {
        json(
          res,
          201,
          JSON.stringify({
            kind: 'SelfSubjectReview',
            status: { userInfo: { username: 'alice', groups: ['g'] } },
          }),
        );
      } else {
        const spec = JSON.parse(body).spec.resourceAttributes;
        json(res, 201, JSON.stringify({ status: { allowed: spec.subresource === 'exec', reason: 'rbac' } }));
      }
    };
    const me = await client().selfSubjectReview();
    expect(me).toEqual({ username: 'alice', groups: ['g'], extra: {} });
    const r = await client().canI({ verb: 'get', resource: 'pods', subresource: 'exec', namespace: 'ns' });
    expect(r).toEqual({ allowed: true, reason: 'rbac' });
    expect(JSON.parse(s.seen[1]?.body ?? '')).toEqual({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {
        resourceAttributes: {
          verb: 'get',
          resource: 'pods',
          group: '',
          subresource: 'exec',
          namespace: 'ns',
        },
      },
    });
  });

  it('rejects names that would change the path', async () => {
    await expect(client().getPod('default', '../nodes/x')).rejects.toThrow(/not a valid Kubernetes name/);
  });
});

describe('KubeClient REST over https', () => {
  const s = new TinyServer();
  let caPem = '';
  beforeAll(async () => {
    const pki = await generatePki(['kube.tunnel.internal']);
    caPem = pki.caCert;
    await s.start({ cert: pki.serverCert, key: pki.serverKey });
    s.handler = (_q, res) => json(res, 200, JSON.stringify({ metadata: { name: 'n1' } }));
  });
  afterAll(() => s.stop());

  it('accepts the CA as base64 PEM (as EKS gives it)', async () => {
    const kube = new KubeClient({ server: s.url, caData: Buffer.from(caPem).toString('base64'), token: 't' });
    expect((await kube.getNode('n1')).metadata.name).toBe('n1');
  });

  it('refuses a server whose certificate is not signed by the CA', async () => {
    const other = await generatePki();
    const kube = new KubeClient({ server: s.url, caData: other.caCert, token: 't', retry: { attempts: 1 } });
    const err = await kube.getNode('n1').catch((e) => e);
    expect(err).toBeInstanceOf(TlsTrustError);
    expect(err.problem).toBe('untrusted-ca');
  });

  it('sends tlsServerName as SNI and checks the certificate against it', async () => {
    s.seen = [];
    const kube = new KubeClient({
      server: s.url,
      caData: caPem,
      token: 't',
      tlsServerName: 'kube.tunnel.internal',
    });
    expect((await kube.getNode('n1')).metadata.name).toBe('n1');
    expect(s.seen[0]?.servername).toBe('kube.tunnel.internal');
    const wrong = new KubeClient({
      server: s.url,
      caData: caPem,
      token: 't',
      tlsServerName: 'wrong.example',
      retry: { attempts: 1 },
    });
    const err = await wrong.getNode('n1').catch((e) => e);
    expect(err).toBeInstanceOf(TlsTrustError);
    expect(err.message).toMatch(/tlsServerName/);
    expect(String(err.cause?.message ?? err.cause)).toMatch(/wrong\.example/);
  });

  it('exec sends tlsServerName as SNI on its own connection, and no SNI to an IP address', async () => {
    const prev = s.handler;
    s.handler = (_q, res) => json(res, 403, status(403, 'Forbidden', 'pods "p" is forbidden'));
    try {
      s.seen = [];
      const named = new KubeClient({
        server: s.url,
        caData: caPem,
        token: 't',
        tlsServerName: 'kube.tunnel.internal',
      });
      const err = await named.exec({ namespace: 'ns', pod: 'p', command: ['x'] }).catch((e) => e);
      expect(err).toBeInstanceOf(ForbiddenError);
      expect(s.seen[0]?.url).toMatch(/\/pods\/p\/exec\?/);
      expect(s.seen[0]?.servername).toBe('kube.tunnel.internal');
      s.seen = [];
      // 127.0.0.1 is in the certificate: no SNI is sent to an IP address (RFC 6066 §3).
      const byIp = new KubeClient({ server: s.url, caData: caPem, token: 't' });
      await expect(byIp.exec({ namespace: 'ns', pod: 'p', command: ['x'] })).rejects.toBeInstanceOf(
        ForbiddenError,
      );
      expect(s.seen[0]?.servername).toBeFalsy();
    } finally {
      s.handler = prev;
    }
  });

  it('uses a custom agent', async () => {
    const { agent, created } = countingAgent();
    const kube = new KubeClient({ server: s.url, caData: caPem, token: 't', agent });
    expect((await kube.getNode('n1')).metadata.name).toBe('n1');
    expect(created()).toBe(1);
  });
});
