/**
 * The exec upgrade: `GET /api/v1/namespaces/<ns>/pods/<pod>/exec` with a WebSocket upgrade is
 * authenticated, authorized, checked like the real server, and handed to an `ExecSession` on a
 * process of the container's runtime. Failures are answered on the raw socket.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { authorizeOrThrow, type ClusterContext } from './context.js';
import { chooseProtocol, ExecSession, V5 } from './exec.js';
import {
  badRequest,
  HttpStatus,
  methodNotAllowed,
  noSuchResource,
  notFound,
  queryBool,
  status,
  writeRawStatus,
} from './http.js';
import { execPreflight } from './pods.js';
import { type RequestAttributes, unauthorizedStatus } from './rbac.js';
import type { FakeRequestRecord } from './types.js';

/** The request property the WebSocket server's `handleProtocols` reads the chosen subprotocol from. */
export interface UpgradeRequest extends IncomingMessage {
  fakeProtocol?: string;
}

function firstProtocolHeader(req: IncomingMessage): string | undefined {
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if ((req.rawHeaders[i] ?? '').toLowerCase() === 'sec-websocket-protocol') return req.rawHeaders[i + 1];
  }
  return undefined;
}

/** Handles an HTTP upgrade (only exec is served over WebSocket). */
export function serveUpgrade(
  cluster: ClusterContext,
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  record: (rec: FakeRequestRecord) => void,
): void {
  const { state, auth, options } = cluster;
  let recordStatus = 101;
  const user = auth.authenticate(req.headers.authorization);
  const finish = (code: number): void => {
    recordStatus = code;
    record({
      method: req.method ?? '',
      url: req.url ?? '',
      user: user?.username,
      status: recordStatus,
      accept: req.headers.accept,
    });
  };
  try {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec\/?$/.exec(url.pathname);
    if (!m) throw noSuchResource();
    let namespace: string;
    let name: string;
    try {
      namespace = decodeURIComponent(m[1] ?? '');
      name = decodeURIComponent(m[2] ?? '');
    } catch {
      throw badRequest('invalid escape in request path');
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') throw methodNotAllowed();
    if (!user) throw new HttpStatus(401, unauthorizedStatus());
    const attrs: RequestAttributes = {
      verb: method === 'GET' ? 'get' : 'create',
      resource: 'pods',
      subresource: 'exec',
      namespace,
      name,
      apiGroup: '',
    };
    authorizeOrThrow(cluster, user, attrs);
    if (
      method === 'GET' &&
      options.execRequiresCreate &&
      !auth.authorize(user, { ...attrs, verb: 'create' }).allowed
    ) {
      throw status(403, 'Forbidden', `pods "${name}" is forbidden: `, { name, kind: 'pods' });
    }
    const pod = state.pods.get(`${namespace}/${name}`);
    if (!pod) throw notFound('pods', name);
    const c = execPreflight(pod, url.searchParams);
    if (method === 'POST' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      throw badRequest(
        'FakeCluster serves exec over WebSocket only (v5.channel.k8s.io or the legacy channel.k8s.io protocols), not SPDY',
      );
    }
    const choice = chooseProtocol(firstProtocolHeader(req));
    if ('reject' in choice) {
      finish(403);
      writeRawStatus(socket, 403, '');
      return;
    }
    const running = c.state === 'running' && c.runtimeContainer?.running() === true;
    if (!running && choice.protocol !== V5) {
      finish(500);
      writeRawStatus(socket, 500, `container not found ("${c.name}")`);
      return;
    }
    (req as UpgradeRequest).fakeProtocol = choice.protocol;
    const q = url.searchParams;
    const streams = {
      stdin: queryBool(q, 'stdin'),
      stdout: queryBool(q, 'stdout'),
      stderr: queryBool(q, 'stderr'),
      tty: queryBool(q, 'tty'),
    };
    const command = q.getAll('command');
    wss.handleUpgrade(req, socket, head, (ws) => {
      finish(101);
      const session = new ExecSession(ws, socket, choice.protocol, streams);
      if (!running || !c.runtimeContainer) {
        session.notRunning(c.name);
        return;
      }
      const controller = new AbortController();
      ws.once('close', () => controller.abort());
      const proc = c.runtimeContainer.exec({
        command,
        stdin: streams.stdin,
        tty: streams.tty,
        signal: controller.signal,
      });
      state.track(
        session.run(proc, command).catch((err: unknown) => {
          state.logger.error({ err: String(err) }, 'exec session failed');
          ws.terminate();
        }),
      );
    });
  } catch (err) {
    if (err instanceof HttpStatus) {
      finish(err.code);
      writeRawStatus(socket, err.code, err.body);
      return;
    }
    finish(500);
    writeRawStatus(socket, 500, String(err));
  }
}
