/**
 * The exec session: a `ws` WebSocket speaking `v5.channel.k8s.io` / `v4.channel.k8s.io`, with
 * stdout/stderr Readables that pause the socket when not read, a stdin Writable that waits on the
 * socket's buffer, a ping/pong watchdog, and a `result` promise that never rejects unobserved.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
import { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import {
  AbortedError,
  ApiUnavailableError,
  ConfigError,
  EksForensicsError,
  ExecIncompleteError,
  ExecProtocolError,
  TimeoutError,
  UnauthorizedError,
} from '../../errors.js';
import { abortError, withTimeout } from '../../util/index.js';
import { httpError, type KubeTransport, MAX_ERROR_BODY_BYTES, readBounded } from '../http.js';
import type { ExecOptions, ExecResult, ExecSession } from '../types.js';
import {
  Channel,
  decodeFrame,
  EXEC_PROTOCOLS,
  type ExecProtocol,
  encodeClose,
  encodeFrame,
  MAX_FRAME_BYTES,
  parseExecStatus,
} from './codec.js';

/** Buffer of each output Readable before the socket is paused. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** Largest stdin frame we send (the server accepts up to 32 MiB). */
const STDIN_FRAME_BYTES = 256 * 1024;
/** stdin writes complete immediately while the socket's send buffer is below this. */
const STDIN_HIGH_WATER = 1024 * 1024;
const CLOSE_GRACE_MS = 2000;
const noop = (): void => {};

function buildPath(o: ExecOptions): string {
  const q = new URLSearchParams();
  for (const arg of o.command) q.append('command', arg);
  if (o.container) q.set('container', o.container);
  const tty = o.tty === true;
  const wantStdout = o.stdout !== false;
  const wantStderr = o.stderr !== false && !tty;
  if (o.stdin) q.set('stdin', 'true');
  if (wantStdout) q.set('stdout', 'true');
  if (wantStderr) q.set('stderr', 'true');
  if (tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(o.pod)}/exec?${q}`;
}

/** Events that arrived between the upgrade and the session attaching its listeners. */
interface Early {
  messages: Array<[Buffer, boolean]>;
  closed?: { code: number; reason: Buffer } | undefined;
}

function connect(
  t: KubeTransport,
  path: string,
  token: string,
  signal: AbortSignal,
  what: string,
  protocols: readonly ExecProtocol[],
): Promise<{ ws: WebSocket; early: Early }> {
  return new Promise<{ ws: WebSocket; early: Early }>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal, what));
      return;
    }
    let settled = false;
    // ws hands these options to https.request, so TLS's checkServerIdentity semantics apply
    // (@types/ws types that field differently).
    const options: Omit<WebSocket.ClientOptions, 'checkServerIdentity'> &
      Pick<RequestOptions, 'checkServerIdentity' | 'servername'> = {
      headers: { authorization: `Bearer ${token}`, 'user-agent': 'eks-forensics' },
      ...t.tlsRequestOptions(),
      ...(t.tls.agent ? { agent: t.tls.agent } : {}),
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: t.timeoutMs,
      skipUTF8Validation: true,
      followRedirects: false,
    };
    const ws = new WebSocket(t.urlFor(path, true), [...protocols], options as WebSocket.ClientOptions);
    ws.on('error', noop);
    const early: Early = { messages: [] };
    const done = (err: unknown, value?: WebSocket) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      if (err !== undefined) {
        if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
        reject(err);
      } else resolve({ ws: value as WebSocket, early });
    };
    const onAbort = () => done(abortError(signal, what));
    const onOpen = () => {
      if (!(EXEC_PROTOCOLS as readonly string[]).includes(ws.protocol)) {
        done(
          new ExecProtocolError(
            `${what}: server chose subprotocol ${JSON.stringify(ws.protocol)}, not v5/v4`,
          ),
        );
        return;
      }
      // Hold the socket until the session has its listeners; keep anything already parsed.
      ws.pause();
      ws.on('message', (data: Buffer, isBinary: boolean) => early.messages.push([data, isBinary]));
      ws.once('close', (code: number, reason: Buffer) => {
        early.closed = { code, reason };
      });
      done(undefined, ws);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    ws.once('open', onOpen);
    ws.on('unexpected-response', (req, res: IncomingMessage) => {
      const code = res.statusCode ?? 0;
      readBounded(res, MAX_ERROR_BODY_BYTES).then(
        ({ body }) => {
          req.destroy();
          done(httpError(code, body, what));
        },
        (cause) => {
          req.destroy();
          done(httpError(code, Buffer.alloc(0), what, { cause }));
        },
      );
    });
    ws.once('error', (err: Error & { code?: string }) => {
      if (settled) return;
      if (/handshake has timed out/i.test(err.message)) {
        done(
          new TimeoutError(`${what}: WebSocket handshake timed out after ${t.timeoutMs} ms`, { cause: err }),
        );
      } else if (/subprotocol/i.test(err.message)) {
        done(
          new ExecProtocolError(`${what}: subprotocol negotiation failed (${err.message})`, { cause: err }),
        );
      } else {
        done(
          new ApiUnavailableError(
            `${what}: cannot open the exec WebSocket to ${t.url.host} (${err.code ?? err.message})`,
            {
              cause: err,
            },
          ),
        );
      }
    });
    ws.once('close', () =>
      done(new ApiUnavailableError(`${what}: the connection closed during the handshake`)),
    );
  });
}

/** Starts an exec; resolves after the upgrade. Used by {@link KubeClient.exec}. */
export async function startExec(t: KubeTransport, o: ExecOptions): Promise<ExecSession> {
  if (!Array.isArray(o.command) || o.command.length === 0 || o.command.some((c) => typeof c !== 'string')) {
    throw new ConfigError('exec: command must be a non-empty array of strings');
  }
  const tty = o.tty === true;
  const wantStdout = o.stdout !== false;
  const wantStderr = o.stderr !== false && !tty;
  const wantStdin = o.stdin === true;
  if (!wantStdout && !wantStderr && !wantStdin) {
    throw new ConfigError('exec: ask for at least one of stdin, stdout, stderr');
  }
  const protocols = o.protocols ?? EXEC_PROTOCOLS;
  if (protocols.length === 0 || protocols.some((p) => !(EXEC_PROTOCOLS as readonly string[]).includes(p))) {
    throw new ConfigError(`exec: protocols must be a non-empty subset of ${EXEC_PROTOCOLS.join(', ')}`);
  }
  const what = `exec in ${o.namespace}/${o.pod}${o.container ? `/${o.container}` : ''}`;
  const path = buildPath(o);
  const life = withTimeout(t.combineSignal(o.signal), o.timeoutMs, what);
  let conn: { ws: WebSocket; early: Early };
  try {
    let token = await t.token();
    try {
      conn = await connect(t, path, token, life.signal, what, protocols);
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      t.logger.debug({ what }, 'kube: exec got 401, refreshing token once');
      token = await t.token(true);
      conn = await connect(t, path, token, life.signal, what, protocols);
    }
  } catch (err) {
    life.dispose();
    throw err;
  }
  const { ws, early } = conn;
  ws.removeAllListeners('message');
  ws.removeAllListeners('close');
  return new Session(
    ws,
    early,
    ws.protocol as ExecProtocol,
    life,
    o,
    { wantStdout, wantStderr, wantStdin },
    t,
    what,
  );
}

class Session implements ExecSession {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable | null;
  readonly protocol: ExecProtocol;
  readonly canCloseStdin: boolean;
  readonly result: Promise<ExecResult>;
  #resolve!: (r: ExecResult) => void;
  #reject!: (e: unknown) => void;
  #finished = false;
  #stdoutFull = false;
  #stderrFull = false;
  #stdoutBytes = 0;
  #stderrBytes = 0;
  #lastSeen = Date.now();
  #pinger: NodeJS.Timeout;
  readonly #ws: WebSocket;
  readonly #life: { signal: AbortSignal; dispose: () => void };
  readonly #what: string;
  readonly #onLifeAbort: () => void;

  constructor(
    ws: WebSocket,
    early: Early,
    protocol: ExecProtocol,
    life: { signal: AbortSignal; dispose: () => void },
    o: ExecOptions,
    want: { wantStdout: boolean; wantStderr: boolean; wantStdin: boolean },
    t: KubeTransport,
    what: string,
  ) {
    this.#ws = ws;
    this.#life = life;
    this.#what = what;
    this.protocol = protocol;
    this.canCloseStdin = protocol === 'v5.channel.k8s.io';
    this.result = new Promise<ExecResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.result.catch(noop);

    this.stdout = new Readable({ highWaterMark: OUTPUT_HIGH_WATER, read: () => this.#drained('stdout') });
    this.stderr = new Readable({ highWaterMark: OUTPUT_HIGH_WATER, read: () => this.#drained('stderr') });
    this.stdout.on('error', noop);
    this.stderr.on('error', noop);
    // A consumer that destroys a stream stops reading it: drop its data instead of stalling the socket.
    this.stdout.on('close', () => this.#drained('stdout'));
    this.stderr.on('close', () => this.#drained('stderr'));
    if (!want.wantStdout) this.stdout.push(null);
    if (!want.wantStderr) this.stderr.push(null);
    this.stdin = want.wantStdin ? this.#makeStdin() : null;

    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary, want));
    ws.on('pong', () => {
      this.#lastSeen = Date.now();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.#finish(
        new ExecIncompleteError(
          `${what}: the connection closed (code ${code}${reason.length ? ` ${reason.toString('utf8').slice(0, 200)}` : ''}) without an exit status; the command's outcome is unknown and its output may be truncated`,
        ),
      );
    });
    ws.on('error', (err: Error & { code?: string }) => {
      const e =
        typeof err.code === 'string' && err.code.startsWith('WS_ERR')
          ? new ExecProtocolError(`${what}: the server broke the WebSocket protocol (${err.message})`, {
              cause: err,
            })
          : new ExecIncompleteError(
              `${what}: the connection failed (${err.code ?? err.message}) before the exit status`,
              {
                cause: err,
              },
            );
      this.#finish(e);
    });

    this.#onLifeAbort = () => this.#finish(abortError(life.signal, what), true);
    if (life.signal.aborted) queueMicrotask(this.#onLifeAbort);
    else life.signal.addEventListener('abort', this.#onLifeAbort, { once: true });

    const pingEvery = Math.max(10, o.pingIntervalMs ?? 5000);
    const pongTimeout = Math.max(pingEvery, o.pongTimeoutMs ?? 60_000);
    this.#pinger = setInterval(() => {
      const now = Date.now();
      if (this.#ws.isPaused) {
        this.#lastSeen = now;
        return;
      }
      if (now - this.#lastSeen > pongTimeout) {
        this.#finish(
          new ExecIncompleteError(
            `${what}: no data or pong from the server for ${pongTimeout} ms; the connection looks dead, the outcome is unknown`,
          ),
        );
        return;
      }
      if (this.#ws.readyState === WebSocket.OPEN) this.#ws.ping(undefined, undefined, noop);
    }, pingEvery);
    this.#pinger.unref();
    t.logger.debug({ what, protocol }, 'kube: exec started');
    for (const [data, isBinary] of early.messages) this.#onMessage(data, isBinary, want);
    if (early.closed) ws.emit('close', early.closed.code, early.closed.reason);
    else if (!this.#stdoutFull && !this.#stderrFull) ws.resume();
  }

  #onMessage(
    data: Buffer,
    isBinary: boolean,
    want: { wantStdout: boolean; wantStderr: boolean; wantStdin: boolean },
  ): void {
    if (this.#finished) return;
    this.#lastSeen = Date.now();
    if (!isBinary) {
      this.#finish(
        new ExecProtocolError(`${this.#what}: the server sent a text frame on a binary channel protocol`),
      );
      return;
    }
    const frame = decodeFrame(data);
    if (frame === null) return;
    const { channel, payload } = frame;
    if (channel === Channel.Stdout) {
      if (!want.wantStdout || payload.length === 0) return;
      this.#stdoutBytes += payload.length;
      if (this.stdout.destroyed) return;
      if (!this.stdout.push(payload)) {
        this.#stdoutFull = true;
        this.#ws.pause();
      }
    } else if (channel === Channel.Stderr) {
      if (!want.wantStderr || payload.length === 0) return;
      this.#stderrBytes += payload.length;
      if (this.stderr.destroyed) return;
      if (!this.stderr.push(payload)) {
        this.#stderrFull = true;
        this.#ws.pause();
      }
    } else if (channel === Channel.Error) {
      if (payload.length === 0) return;
      let outcome: ReturnType<typeof parseExecStatus>;
      try {
        outcome = parseExecStatus(payload);
      } catch (err) {
        this.#finish(err);
        return;
      }
      this.#finish({
        exitCode: outcome.exitCode,
        status: outcome.status,
        protocol: this.protocol,
        stdoutBytes: this.#stdoutBytes,
        stderrBytes: this.#stderrBytes,
      });
    }
    // Any other channel (resize echo, 255, unknown) is ignored, as kube-apiserver does.
  }

  #drained(which: 'stdout' | 'stderr'): void {
    if (which === 'stdout') this.#stdoutFull = false;
    else this.#stderrFull = false;
    if (!this.#stdoutFull && !this.#stderrFull && this.#ws.isPaused && !this.#finished) {
      this.#lastSeen = Date.now();
      this.#ws.resume();
    }
  }

  #makeStdin(): Writable {
    const ws = this.#ws;
    const closedError = () =>
      new ExecIncompleteError(`${this.#what}: cannot write to stdin, the exec session has ended`);
    const w = new Writable({
      highWaterMark: STDIN_HIGH_WATER,
      write: (chunk: Buffer, _enc, cb) => {
        if (this.#finished || ws.readyState !== WebSocket.OPEN) {
          cb(closedError());
          return;
        }
        let last: Buffer | undefined;
        for (let off = 0; off < chunk.length; off += STDIN_FRAME_BYTES) {
          last = encodeFrame(Channel.Stdin, chunk.subarray(off, off + STDIN_FRAME_BYTES));
          if (off + STDIN_FRAME_BYTES < chunk.length) ws.send(last, { binary: true }, noop);
        }
        if (!last) {
          cb();
          return;
        }
        if (ws.bufferedAmount < STDIN_HIGH_WATER) {
          ws.send(last, { binary: true }, noop);
          cb();
        } else {
          ws.send(last, { binary: true }, (err) => cb(err ? closedError() : null));
        }
      },
      final: (cb) => {
        if (!this.canCloseStdin) {
          cb(
            new ExecProtocolError(
              `${this.#what}: the server negotiated ${this.protocol}, which cannot signal end of stdin without closing the whole session (and losing the output and exit status). stdin stays open; the command must end by itself, or abort the session. Use a cluster that speaks v5.channel.k8s.io (Kubernetes >= 1.30) for stdin EOF.`,
            ),
          );
          return;
        }
        if (this.#finished || ws.readyState !== WebSocket.OPEN) {
          cb(closedError());
          return;
        }
        ws.send(encodeClose(Channel.Stdin), { binary: true }, (err) => cb(err ? closedError() : null));
      },
    });
    w.on('error', noop);
    return w;
  }

  abort(reason?: unknown): void {
    const err =
      reason instanceof AbortedError
        ? reason
        : new AbortedError(`${this.#what} was aborted`, reason === undefined ? {} : { cause: reason });
    this.#finish(err, true);
  }

  #finish(outcome: ExecResult | unknown, destroyStreams = false): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#pinger);
    this.#life.signal.removeEventListener('abort', this.#onLifeAbort);
    this.#life.dispose();
    const ok =
      outcome !== null && typeof outcome === 'object' && 'exitCode' in outcome && !(outcome instanceof Error);
    for (const s of [this.stdout, this.stderr]) {
      if (s.readableEnded || s.destroyed) continue;
      if (destroyStreams && outcome instanceof Error) s.destroy(outcome);
      else s.push(null);
    }
    if (this.stdin && !this.stdin.destroyed && !ok) this.stdin.destroy();
    if (ok) {
      this.#resolve(outcome as ExecResult);
      if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
        this.#ws.close(1000);
        const t = setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS);
        t.unref();
        this.#ws.once('close', () => clearTimeout(t));
      }
    } else {
      const err =
        outcome instanceof EksForensicsError
          ? outcome
          : new ExecProtocolError(`${this.#what}: unexpected failure`, { cause: outcome });
      this.#reject(err);
      if (this.#ws.readyState !== WebSocket.CLOSED) this.#ws.terminate();
    }
  }
}
