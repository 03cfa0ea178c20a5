import { request } from 'node:https';
import { connect } from 'node:tls';
import WebSocket from 'ws';
import type { FakeCluster } from '../../src/testing/index.js';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request against the cluster. */
export function api(
  cluster: FakeCluster,
  method: string,
  path: string,
  opts: { token?: string | null; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const token = opts.token === undefined ? cluster.adminToken : opts.token;
  const url = new URL(path, cluster.server);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: cluster.caData,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...(opts.headers ?? {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Frame {
  channel: number;
  data: Buffer;
  text: boolean;
}

export interface RawExec {
  ws: WebSocket;
  protocol: string;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
}

export function execPath(
  pod: string,
  command: string[],
  params: Record<string, string> = {},
  ns = 'default',
): string {
  const q = new URLSearchParams(params);
  for (const c of command) q.append('command', c);
  return `/api/v1/namespaces/${ns}/pods/${pod}/exec?${q.toString()}`;
}

/** Opens a raw exec WebSocket; rejects with the HTTP answer when the upgrade is refused. */
export function rawExec(
  cluster: FakeCluster,
  path: string,
  protocols: string[] = ['v5.channel.k8s.io'],
  token: string = cluster.adminToken,
): Promise<RawExec> {
  const url = `${cluster.server.replace('https://', 'wss://')}${path}`;
  const ws = new WebSocket(url, protocols, {
    ca: cluster.caData,
    headers: { Authorization: `Bearer ${token}` },
  });
  const frames: Frame[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) frames.push({ channel: data[0] ?? -1, data: data.subarray(1), text: false });
    else {
      const s = data.toString('latin1');
      frames.push({ channel: s.charCodeAt(0) - 48, data: Buffer.from(s.slice(1), 'base64'), text: true });
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, protocol: ws.protocol, frames, closed }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const answer: HttpAnswer = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        };
        reject(Object.assign(new Error(`upgrade refused: ${answer.status}`), { answer }));
        ws.terminate();
      });
    });
    ws.once('error', reject);
  });
}

/** Expects the upgrade to be refused and returns the HTTP answer. */
export async function refused(p: Promise<RawExec>): Promise<HttpAnswer> {
  try {
    const r = await p;
    r.ws.terminate();
  } catch (err) {
    const answer = (err as { answer?: HttpAnswer }).answer;
    if (answer) return answer;
    throw err;
  }
  throw new Error('upgrade unexpectedly succeeded');
}

export function collect(frames: Frame[], channel: number): string {
  return Buffer.concat(frames.filter((f) => f.channel === channel).map((f) => f.data)).toString('utf8');
}

/** Sends a hand-written HTTP/1.1 request over TLS and returns the raw response text. */
export function rawHttp(cluster: FakeCluster, head: string): Promise<string> {
  const port = Number(new URL(cluster.server).port);
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: cluster.caData, servername: 'localhost' }, () =>
      s.write(head),
    );
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      if (text.startsWith('HTTP/1.1 101')) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
  });
}
