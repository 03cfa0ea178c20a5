/**
 * Exec client against a scripted `ws` server in the test: hostile and edge-case frames, v4
 * negotiation, pre-upgrade errors, watchdog, limits — things a well-behaved server never does.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  AbortedError,
  ExecFailedError,
  ExecIncompleteError,
  ExecProtocolError,
  ForbiddenError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
} from '../../src/errors.js';
import { encodeStatusPayload, KubeClient, nonZeroExitStatus, successStatus } from '../../src/kube/index.js';

type Script = (ws: WebSocket, req: http.IncomingMessage) => void;
interface Upgrade {
  protocols?: (offered: Set<string>) => string | false;
  reject?: { code: number; body: string; contentType?: string };
  autoPong?: boolean;
}

const frame = (ch: number, data: string | Buffer = '') =>
  Buffer.concat([Buffer.from([ch]), typeof data === 'string' ? Buffer.from(data) : data]);

class WsServer {
  server!: http.Server;
  url = '';
  script: Script = () => {};
  upgrade: (req: http.IncomingMessage) => Upgrade = () => ({});
  requests: http.IncomingMessage[] = [];
  sockets = new Set<Socket>();
  async start(): Promise<void> {
    this.server = http.createServer((_q, res) => res.end());
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      this.requests.push(req);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const u = this.upgrade(req);
      if (u.reject) {
        const body = Buffer.from(u.reject.body);
        socket.end(
          `HTTP/1.1 ${u.reject.code} X\r\nContent-Type: ${u.reject.contentType ?? 'application/json'}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${u.reject.body}`,
        );
        return;
      }
      const wss = new WebSocketServer({
        noServer: true,
        autoPong: u.autoPong ?? true,
        handleProtocols:
          u.protocols ?? ((set) => (set.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false)),
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => {});
        this.script(ws, req);
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    for (const so of this.sockets) so.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

describe('exec protocol edge cases (scripted ws server)', () => {
  const s = new WsServer();
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    await s.start();
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await s.stop();
  });
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, 20));
    expect(unhandled).toEqual([]);
    s.upgrade = () => ({});
    s.requests = [];
  });
  const kube = (token: ConstructorParameters<typeof KubeClient>[0]['token'] = 'tok') =>
    new KubeClient({ server: s.url, token, timeoutMs: 5000 });
  const text = async (r: NodeJS.ReadableStream) => {
    let out = '';
    for await (const c of r) out += c.toString();
    return out;
  };

  it('offers v5 then v4, sends kubectl-style query, ignores the opening frame and unknown channels', async () => {
    s.script = (ws) => {
      ws.send(frame(1));
      ws.send(frame(7, 'ignored'));
      ws.send(frame(255, Buffer.from([0])));
      ws.send(Buffer.alloc(0));
      ws.send(frame(1, 'out'));
      ws.send(frame(2, 'err'));
      ws.send(frame(3));
      ws.send(frame(3, encodeStatusPayload(successStatus())));
      ws.close(1000);
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', container: 'c', command: ['ls', '-l'] });
    const [out, err, res] = await Promise.all([text(session.stdout), text(session.stderr), session.result]);
    expect(out).toBe('out');
    expect(err).toBe('err');
    expect(res).toMatchObject({ exitCode: 0, protocol: 'v5.channel.k8s.io', stdoutBytes: 3, stderrBytes: 3 });
    const req = s.requests[0];
    expect(req?.headers['sec-websocket-protocol']).toBe('v5.channel.k8s.io,v4.channel.k8s.io');
    expect(req?.url).toBe(
      '/api/v1/namespaces/ns/pods/p/exec?command=ls&command=-l&container=c&stdout=true&stderr=true',
    );
    expect(req?.method).toBe('GET');
    expect(req?.headers.authorization).toBe('Bearer tok');
  });

  it('reports exit code 42', async () => {
    s.script = (ws) => {
      ws.send(frame(1));
      ws.send(frame(3, encodeStatusPayload(nonZeroExitStatus(42))));
      ws.close(1000);
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['false'] });
    expect((await session.result).exitCode).toBe(42);
  });

  it('socket closed without a status → ExecIncompleteError, never exit 0; streams end with what arrived', async () => {
    s.script = (ws) => {
      ws.send(frame(1, 'partial'));
      ws.close(1000);
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'] });
    expect(await text(session.stdout)).toBe('partial');
    await expect(session.result).rejects.toBeInstanceOf(ExecIncompleteError);
  });

  it('TCP reset mid-stream → ExecIncompleteError', async () => {
    s.script = (ws) => {
      ws.send(frame(1, 'x'));
      setTimeout(() => ws.terminate(), 20);
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'] });
    session.stdout.resume();
    await expect(session.result).rejects.toBeInstanceOf(ExecIncompleteError);
  });

  it('unobserved failing result does not become an unhandled rejection', async () => {
    s.script = (ws) => ws.terminate();
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'] });
    await new Promise((r) => setTimeout(r, 100));
    expect(session.stdout.readableEnded || session.stdout.destroyed || session.stdout.readable).toBe(true);
  });

  it.each([
    ['bad status JSON', frame(3, '{"status":'), ExecProtocolError],
    ['exit code > 255', frame(3, encodeStatusPayload(nonZeroExitStatus(300))), ExecProtocolError],
    [
      'huge status',
      frame(3, JSON.stringify({ status: 'Success', message: 'x'.repeat(70_000) })),
      ExecProtocolError,
    ],
    [
      'InternalError',
      frame(
        3,
        encodeStatusPayload({
          status: 'Failure',
          reason: 'InternalError',
          message: 'Internal error occurred: boom',
          code: 500,
        }),
      ),
      ExecFailedError,
    ],
  ])('hostile status: %s', async (_n, status, cls) => {
    s.script = (ws) => {
      ws.send(frame(1));
      ws.send(status);
      setTimeout(() => ws.close(1000), 50);
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['x'] });
    const err = await session.result.catch((e) => e);
    expect(err).toBeInstanceOf(cls);
  });

  it('destroying stdout discards the rest without stalling the session', async () => {
    s.script = (ws) => {
      ws.send(frame(1));
      for (let i = 0; i < 160; i++) ws.send(frame(1, Buffer.alloc(32 * 1024, 0x62)));
      ws.send(frame(2, 'tail'));
      ws.send(frame(3, encodeStatusPayload(successStatus())), () => ws.close(1000));
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['x'], pongTimeoutMs: 60_000 });
    session.stdout.once('data', () => session.stdout.destroy());
    const err = text(session.stderr);
    const r = await session.result;
    expect(r.stdoutBytes).toBe(160 * 32 * 1024);
    expect(await err).toBe('tail');
  });

  it('chunks a late consumer keeps stay intact while later reads arrive (plain TCP)', async () => {
    const input = randomBytes(8 * 1024 * 1024);
    s.script = (ws) => {
      ws.send(frame(1));
      for (let off = 0; off < input.length; off += 32 * 1024)
        ws.send(frame(1, input.subarray(off, off + 32 * 1024)));
      ws.send(frame(3, encodeStatusPayload(successStatus())), () => ws.close(1000));
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['x'] });
    await new Promise((r) => setTimeout(r, 300));
    const kept: Buffer[] = [];
    for await (const c of session.stdout) kept.push(c as Buffer);
    expect((await session.result).stdoutBytes).toBe(input.length);
    expect(Buffer.concat(kept).equals(input)).toBe(true);
  });

  it('text frames are a protocol error', async () => {
    s.script = (ws) => ws.send('1hello');
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['x'] });
    await expect(session.result).rejects.toBeInstanceOf(ExecProtocolError);
  });

  it('a frame over 32 MiB is rejected as a protocol error', async () => {
    s.script = (ws) => ws.send(frame(1, Buffer.alloc(32 * 1024 * 1024 + 10)));
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['x'] });
    session.stdout.resume();
    await expect(session.result).rejects.toBeInstanceOf(ExecProtocolError);
  });

  it('v5: stdin.end() sends [255,0] and the session continues to the status', async () => {
    s.script = (ws) => {
      const got: Buffer[] = [];
      ws.on('message', (d: Buffer) => {
        if (d[0] === 255) {
          expect([...d]).toEqual([255, 0]);
          ws.send(frame(1, Buffer.concat(got)));
          ws.send(frame(3, encodeStatusPayload(successStatus())));
          ws.close(1000);
        } else if (d[0] === 0) got.push(d.subarray(1));
      });
      ws.send(frame(1));
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'], stdin: true });
    expect(session.canCloseStdin).toBe(true);
    session.stdin?.write('hello ');
    session.stdin?.end('world');
    expect(await text(session.stdout)).toBe('hello world');
    expect((await session.result).exitCode).toBe(0);
    expect(s.requests[0]?.url).toContain('stdin=true');
  });

  it('v4: stdin.end() fails clearly, the socket stays open and output/status still arrive', async () => {
    s.upgrade = () => ({ protocols: (set) => (set.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
    s.script = (ws) => {
      ws.on('message', (d: Buffer) => {
        if (d[0] === 0) {
          ws.send(frame(1, d.subarray(1)));
          setTimeout(() => {
            ws.send(frame(3, encodeStatusPayload(successStatus())));
            ws.close(1000);
          }, 100);
        }
      });
      ws.send(frame(1));
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'], stdin: true });
    expect(session.protocol).toBe('v4.channel.k8s.io');
    expect(session.canCloseStdin).toBe(false);
    const endErr = new Promise(
      (resolve) => session.stdin?.end('data', () => {}) && session.stdin?.once('error', resolve),
    );
    const out = text(session.stdout);
    expect(await endErr).toBeInstanceOf(ExecProtocolError);
    expect(await out).toBe('data');
    expect((await session.result).exitCode).toBe(0);
  });

  it('stdin has backpressure: a server that stops reading stops the writer', async () => {
    let serverSocket: { pause(): void; resume(): void } | undefined;
    let received = 0;
    s.script = (ws) => {
      serverSocket = ws; // ws's public pause()/resume() stop and restart reading the socket
      ws.on('message', (d: Buffer) => {
        if (d[0] === 0) received += d.length - 1;
        if (d[0] === 255) {
          ws.send(frame(3, encodeStatusPayload(successStatus())));
          ws.close(1000);
        }
      });
      ws.send(frame(1));
      serverSocket.pause();
    };
    const session = await kube().exec({ namespace: 'ns', pod: 'p', command: ['cat'], stdin: true });
    const stdin = session.stdin;
    if (!stdin) throw new Error('no stdin');
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let accepted = 0;
    const writer = (async () => {
      for (let i = 0; i < 256; i++) {
        if (!stdin.write(chunk)) await once(stdin, 'drain');
        accepted += chunk.length;
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    // Kernel socket buffers + ws send buffer + one Writable buffer: nowhere near 256 MiB.
    expect(accepted).toBeLessThan(48 * 1024 * 1024);
    serverSocket?.resume();
    await writer;
    stdin.end();
    expect((await session.result).exitCode).toBe(0);
    expect(received).toBe(256 * 1024 * 1024);
  });

  it('pre-upgrade 401 refreshes the token once, then succeeds', async () => {
    s.upgrade = (req) =>
      req.headers.authorization === 'Bearer t1'
        ? {
            reject: {
              code: 401,
              body: '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}',
            },
          }
        : {};
    s.script = (ws) => {
      ws.send(frame(3, encodeStatusPayload(successStatus())));
      ws.close(1000);
    };
    let n = 0;
    const session = await kube(async () => `t${++n}`).exec({ namespace: 'ns', pod: 'p', command: ['x'] });
    expect((await session.result).exitCode).toBe(0);
    expect(n).toBe(2);
  });

  it('pre-upgrade errors carry the Status body (401 twice, 403 parsed, 404) and a raw 403 with an empty body', async () => {
    const st = (code: number, reason: string, message: string) =>
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        code,
      });
    s.upgrade = () => ({ reject: { code: 401, body: st(401, 'Unauthorized', 'Unauthorized') } });
    const e401 = await kube()
      .exec({ namespace: 'ns', pod: 'p', command: ['x'] })
      .catch((e) => e);
    expect(e401).toBeInstanceOf(UnauthorizedError);
    expect(e401.status.reason).toBe('Unauthorized');
    const msg =
      'pods "p" is forbidden: User "u" cannot get resource "pods/exec" in API group "" in the namespace "ns"';
    s.upgrade = () => ({ reject: { code: 403, body: st(403, 'Forbidden', msg) } });
    const e403 = await kube()
      .exec({ namespace: 'ns', pod: 'p', command: ['x'] })
      .catch((e) => e);
    expect(e403).toBeInstanceOf(ForbiddenError);
    expect(e403.denied).toEqual({
      user: 'u',
      verb: 'get',
      resource: 'pods',
      subresource: 'exec',
      apiGroup: '',
      namespace: 'ns',
    });
    expect(e403.message).not.toContain('Unexpected server response');
    s.upgrade = () => ({ reject: { code: 404, body: st(404, 'NotFound', 'pods "p" not found') } });
    const e404 = await kube()
      .exec({ namespace: 'ns', pod: 'p', command: ['x'] })
      .catch((e) => e);
    expect(e404).toBeInstanceOf(NotFoundError);
    expect(e404.status.message).toBe('pods "p" not found');
    s.upgrade = () => ({ reject: { code: 403, body: '', contentType: 'text/plain' } });
    const raw = await kube()
      .exec({ namespace: 'ns', pod: 'p', command: ['x'] })
      .catch((e) => e);
    expect(raw).toBeInstanceOf(ForbiddenError);
    expect(raw.status).toBeUndefined();
  });

  it('a server that answers neither data nor pongs trips the watchdog', async () => {
    s.upgrade = () => ({ autoPong: false });
    s.script = (ws) => ws.send(frame(1));
    const session = await kube().exec({
      namespace: 'ns',
      pod: 'p',
      command: ['sleep', '100'],
      pingIntervalMs: 50,
      pongTimeoutMs: 200,
    });
    const t0 = Date.now();
    const err = await session.result.catch((e) => e);
    expect(err).toBeInstanceOf(ExecIncompleteError);
    expect(err.message).toMatch(/no data or pong/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('pongs keep a quiet session alive', async () => {
    s.script = (ws) => {
      ws.send(frame(1));
      setTimeout(() => {
        ws.send(frame(3, encodeStatusPayload(successStatus())));
        ws.close(1000);
      }, 500);
    };
    const session = await kube().exec({
      namespace: 'ns',
      pod: 'p',
      command: ['sleep'],
      pingIntervalMs: 50,
      pongTimeoutMs: 200,
    });
    expect((await session.result).exitCode).toBe(0);
  });

  it('AbortSignal and timeoutMs close the socket and reject result', async () => {
    let closed = 0;
    s.script = (ws) => {
      ws.send(frame(1, 'x'));
      ws.on('close', () => closed++);
    };
    const ac = new AbortController();
    const a = await kube().exec({ namespace: 'ns', pod: 'p', command: ['sleep'], signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const ea = await a.result.catch((e) => e);
    expect(ea).toBeInstanceOf(AbortedError);
    expect(ea).not.toBeInstanceOf(TimeoutError);
    const b = await kube().exec({ namespace: 'ns', pod: 'p', command: ['sleep'], timeoutMs: 150 });
    const eb = await b.result.catch((e) => e);
    expect(eb).toBeInstanceOf(TimeoutError);
    await expect(text(b.stdout)).rejects.toBeInstanceOf(TimeoutError);
    const c = await kube().exec({ namespace: 'ns', pod: 'p', command: ['sleep'] });
    c.abort();
    expect(await c.result.catch((e) => e)).toBeInstanceOf(AbortedError);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(3);
  });

  it('an already-aborted signal rejects exec() itself', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      kube().exec({ namespace: 'ns', pod: 'p', command: ['x'], signal: ac.signal }),
    ).rejects.toBeInstanceOf(AbortedError);
  });
});
