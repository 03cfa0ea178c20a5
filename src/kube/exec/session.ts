/**
 * The exec session: a WebSocket (`ClientWebSocket`, ./websocket.ts) speaking `v5.channel.k8s.io` /
 * `v4.channel.k8s.io`, with stdout/stderr Readables that pause the socket when not read, a stdin
 * Writable that waits on the socket's buffer, a ping/pong watchdog, and a `result` promise that
 * never rejects unobserved.
 */
import { Readable, Writable } from 'node:stream';
import {
  AbortedError,
  ConfigError,
  EksForensicsError,
  ExecIncompleteError,
  ExecProtocolError,
  TimeoutError,
  UnauthorizedError,
} from '../../errors.js';
import { abortError, withTimeout } from '../../util/index.js';
import {
  connectionError,
  httpError,
  type KubeTransport,
  MAX_ERROR_BODY_BYTES,
  readBounded,
} from '../http.js';
import type { ExecOptions, ExecResult, ExecSession } from '../types.js';
import {
  Channel,
  EXEC_PROTOCOLS,
  type ExecProtocol,
  encodeClose,
  encodeFrame,
  MAX_FRAME_BYTES,
  MAX_STATUS_BYTES,
  parseExecStatus,
} from './codec.js';
import { type ClientWebSocket, openWebSocket } from './websocket.js';

/** Buffer of each output Readable before the socket is paused. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** Largest stdin frame we send (the server accepts up to 32 MiB). */
const STDIN_FRAME_BYTES = 256 * 1024;
/** stdin writes complete immediately while the socket's send buffer is below this. */
const STDIN_HIGH_WATER = 1024 * 1024;
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

function connect(
  t: KubeTransport,
  path: string,
  token: string,
  signal: AbortSignal,
  what: string,
  protocols: readonly ExecProtocol[],
): Promise<ClientWebSocket> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  const attempt = openWebSocket({
    url: t.urlFor(path),
    protocols,
    headers: { authorization: `Bearer ${token}`, 'user-agent': 'eks-forensics' },
    tls: t.tlsRequestOptions(),
    agent: t.tls.agent,
  });
  return new Promise<ClientWebSocket>((resolve, reject) => {
    let settled = false;
    const done = (err: unknown, value?: ClientWebSocket): void => {
      if (settled) {
        value?.terminate();
        return;
      }
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        value?.terminate();
        attempt.cancel();
        reject(err);
      } else resolve(value as ClientWebSocket);
    };
    const onAbort = (): void => done(abortError(signal, what));
    const timer = setTimeout(
      () => done(new TimeoutError(`${what}: WebSocket handshake timed out after ${t.timeoutMs} ms`)),
      t.timeoutMs,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    attempt.done.then((r) => {
      if ('socket' in r) {
        const ws = r.socket;
        if (!(protocols as readonly string[]).includes(ws.protocol)) {
          done(
            new ExecProtocolError(
              `${what}: server chose subprotocol ${JSON.stringify(ws.protocol)}, not one of ${protocols.join(', ')}`,
            ),
            ws,
          );
        } else done(undefined, ws);
        return;
      }
      const f = r.failure;
      if (f.kind === 'response') {
        const code = f.response.statusCode ?? 0;
        readBounded(f.response, MAX_ERROR_BODY_BYTES).then(
          ({ body }) => {
            f.request.destroy();
            done(httpError(code, body, what));
          },
          (cause) => {
            f.request.destroy();
            done(httpError(code, Buffer.alloc(0), what, { cause }));
          },
        );
      } else if (f.kind === 'violation') {
        done(
          new ExecProtocolError(`${what}: WebSocket upgrade failed (${f.error.message})`, { cause: f.error }),
        );
      } else {
        done(connectionError(f.error, what, t, 'cannot open the exec WebSocket to'));
      }
    });
  });
}

/** Starts an exec; resolves after the upgrade. Used by {@link eks-forensics!KubeClient.exec}. */
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
  let ws: ClientWebSocket;
  try {
    let token = await t.token();
    try {
      ws = await connect(t, path, token, life.signal, what, protocols);
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      t.logger.debug({ what }, 'kube: exec got 401, refreshing token once');
      token = await t.token(true);
      ws = await connect(t, path, token, life.signal, what, protocols);
    }
  } catch (err) {
    life.dispose();
    throw err;
  }
  return new Session(
    ws,
    ws.protocol as ExecProtocol,
    life,
    o,
    { wantStdout, wantStderr, wantStdin },
    t,
    what,
  );
}

/** Session message states below any channel number: between messages; a binary message whose channel byte has not arrived. */
const Msg = { None: -2, AwaitChannel: -1 } as const;

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
  /** Channel of the message in progress, or a {@link Msg} state. */
  #channel: number = Msg.None;
  /** Status-channel bytes of the message in progress. */
  #status: Buffer[] = [];
  #statusBytes = 0;
  readonly #want: { wantStdout: boolean; wantStderr: boolean; wantStdin: boolean };
  readonly #ws: ClientWebSocket;
  readonly #life: { signal: AbortSignal; dispose: () => void };
  readonly #what: string;
  readonly #onLifeAbort: () => void;

  constructor(
    ws: ClientWebSocket,
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
    this.#want = want;
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
      this.#ws.ping();
    }, pingEvery);
    this.#pinger.unref();
    t.logger.debug({ what, protocol }, 'kube: exec started');
    ws.start(
      {
        messageStart: (binary) => this.#messageStart(binary),
        messageData: (data) => this.#messageData(data),
        messageEnd: () => this.#messageEnd(),
        pong: () => {
          this.#lastSeen = Date.now();
        },
        violation: (err) =>
          this.#finish(
            new ExecProtocolError(`${what}: the server broke the WebSocket protocol (${err.message})`, {
              cause: err,
            }),
          ),
        error: (err) =>
          this.#finish(
            new ExecIncompleteError(
              `${what}: the connection failed (${err.code ?? err.message}) before the exit status`,
              { cause: err },
            ),
          ),
        closed: (code, reason) =>
          this.#finish(
            new ExecIncompleteError(
              `${what}: the connection closed (code ${code}${reason.length ? ` ${reason.toString('utf8').slice(0, 200)}` : ''}) without an exit status; the command's outcome is unknown and its output may be truncated`,
            ),
          ),
      },
      MAX_FRAME_BYTES,
    );
  }

  #messageStart(binary: boolean): void {
    if (this.#finished) return;
    this.#lastSeen = Date.now();
    if (!binary) {
      this.#finish(
        new ExecProtocolError(`${this.#what}: the server sent a text frame on a binary channel protocol`),
      );
      return;
    }
    this.#channel = Msg.AwaitChannel;
  }

  /** Payload bytes of the current message, straight from the socket's read buffer (no copy). */
  #messageData(data: Buffer): void {
    if (this.#finished) return;
    let payload = data;
    if (this.#channel === Msg.AwaitChannel) {
      this.#channel = payload[0] as number;
      payload = payload.subarray(1);
      if (payload.length === 0) return;
    }
    const channel = this.#channel;
    if (channel === Channel.Stdout) {
      if (!this.#want.wantStdout) return;
      this.#stdoutBytes += payload.length;
      if (this.stdout.destroyed) return;
      if (!this.stdout.push(payload)) {
        this.#stdoutFull = true;
        this.#ws.pause();
      }
    } else if (channel === Channel.Stderr) {
      if (!this.#want.wantStderr) return;
      this.#stderrBytes += payload.length;
      if (this.stderr.destroyed) return;
      if (!this.stderr.push(payload)) {
        this.#stderrFull = true;
        this.#ws.pause();
      }
    } else if (channel === Channel.Error) {
      this.#statusBytes += payload.length;
      if (this.#statusBytes > MAX_STATUS_BYTES) {
        this.#finish(
          new ExecProtocolError(
            `${this.#what}: exec status frame is over the ${MAX_STATUS_BYTES}-byte limit`,
          ),
        );
        return;
      }
      this.#status.push(payload);
    }
    // Any other channel (resize echo, 255, unknown) is ignored, as kube-apiserver does.
  }

  #messageEnd(): void {
    const channel = this.#channel;
    this.#channel = Msg.None;
    if (this.#finished || channel !== Channel.Error) return;
    const parts = this.#status;
    this.#status = [];
    this.#statusBytes = 0;
    if (parts.length === 0) return;
    let outcome: ReturnType<typeof parseExecStatus>;
    try {
      outcome = parseExecStatus(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
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
        if (this.#finished || !ws.isOpen) {
          cb(closedError());
          return;
        }
        let last: Buffer | undefined;
        for (let off = 0; off < chunk.length; off += STDIN_FRAME_BYTES) {
          last = encodeFrame(Channel.Stdin, chunk.subarray(off, off + STDIN_FRAME_BYTES));
          if (off + STDIN_FRAME_BYTES < chunk.length) ws.send(last);
        }
        if (!last) {
          cb();
          return;
        }
        if (ws.bufferedAmount < STDIN_HIGH_WATER) {
          ws.send(last);
          cb();
        } else {
          ws.send(last, (err) => cb(err ? closedError() : null));
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
        if (this.#finished || !ws.isOpen) {
          cb(closedError());
          return;
        }
        ws.send(encodeClose(Channel.Stdin), (err) => cb(err ? closedError() : null));
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
      this.#ws.close(1000);
    } else {
      const err =
        outcome instanceof EksForensicsError
          ? outcome
          : new ExecProtocolError(`${this.#what}: unexpected failure`, { cause: outcome });
      this.#reject(err);
      this.#ws.terminate();
    }
  }
}
