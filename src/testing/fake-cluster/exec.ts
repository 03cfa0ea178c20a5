/**
 * The server side of exec over WebSocket (kube-apiserver's v5 translator and the legacy
 * kubelet/CRI server), on top of a runtime's exec'd process.
 *
 * @module
 */
import type { Duplex, Readable } from 'node:stream';
import WebSocket from 'ws';
import type { RuntimeExecExit, RuntimeExecProcess } from '../runtime.js';
import type { KubeJsonObject } from './types.js';

/** Protocols the v5 translator accepts. */
export const V5 = 'v5.channel.k8s.io';
/** Protocols of the legacy (kubelet / CRI streaming) WebSocket server, besides `""`. */
export const LEGACY_PROTOCOLS = [
  'channel.k8s.io',
  'base64.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
] as const;
/** The largest frame the server accepts (x/net `DefaultMaxPayloadBytes`). */
export const MAX_FRAME_BYTES = 32 << 20;

/**
 * Output bytes per frame: 32 KiB, as kube-apiserver sends them (its io.Copy buffer). Not a
 * contract, but what clients meet in practice, so throughput figures against FakeCluster carry
 * over: a client's per-message cost counts as it would against EKS.
 */
const FRAME_PAYLOAD = 32 * 1024;
const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 * 1024;
/** Spare frame buffers kept per session (returned once the socket has written them): enough for a full backlog. */
const SPARE_FRAMES = Math.ceil(HIGH_WATER / FRAME_PAYLOAD) + 4;
/** Room left before the channel byte for the WebSocket header (at most 10 bytes unmasked). */
const HEAD = 10;
/** WebSocket opcodes of the messages a session sends (RFC 6455 §5.2). */
const TEXT = 0x1;
const BINARY = 0x2;

/**
 * Writes the header of an unmasked, final server frame (RFC 6455 §5.2) of `length` payload bytes
 * so that it ends at `end` in `buf`; returns where it starts.
 */
function writeServerHeader(buf: Buffer, end: number, opcode: number, length: number): number {
  let start: number;
  if (length < 126) {
    start = end - 2;
    buf[start + 1] = length;
  } else if (length < 65536) {
    start = end - 4;
    buf[start + 1] = 126;
    buf.writeUInt16BE(length, start + 2);
  } else {
    start = end - 10;
    buf[start + 1] = 127;
    buf.writeUInt32BE(Math.floor(length / 2 ** 32), start + 2);
    buf.writeUInt32BE(length >>> 0, start + 6);
  }
  buf[start] = 0x80 | opcode;
  return start;
}

/** Picks the subprotocol like kube-apiserver: `v5` if offered, else the legacy server's choice. */
export function chooseProtocol(firstHeaderLine: string | undefined): { protocol: string } | { reject: true } {
  if (firstHeaderLine === undefined) return { protocol: '' };
  const offered = firstHeaderLine
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (offered.includes(V5)) return { protocol: V5 };
  for (const p of offered) {
    if ((LEGACY_PROTOCOLS as readonly string[]).includes(p)) return { protocol: p };
  }
  return { reject: true };
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** `apierrors.NewInternalError(err)` without kind/apiVersion, as written on channel 3. */
export function internalErrorStatus(err: string): KubeJsonObject {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${err}`,
    reason: 'InternalError',
    details: { causes: [{ message: err }] },
    code: 500,
  };
}

/** The channel-3 status for how a process ended. */
export function exitStatus(
  exit: RuntimeExecExit,
  protocol: string,
  command: readonly string[],
): KubeJsonObject {
  const v5 = protocol === V5;
  if (exit.kind === 'error') {
    const kubeletErr = `error executing command in container: ${exit.message}`;
    // The translator re-wraps the kubelet's InternalError once more.
    return internalErrorStatus(v5 ? `Internal error occurred: ${kubeletErr}` : kubeletErr);
  }
  const code = exit.kind === 'exited' ? exit.exitCode : 128 + (SIGNALS[exit.signal] ?? 9);
  if (code === 0) return { metadata: {}, status: 'Success' };
  const inner = v5
    ? `command terminated with exit code ${code}`
    : `error executing command [${command.join(' ')}], exit code ${code}`;
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${inner}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** What the client asked for. */
export interface ExecStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/**
 * Runs one exec session on an upgraded socket. `proc` undefined = the container is not running.
 *
 * `ws` (public API only) does the handshake, reads the client's frames, answers pings and does the
 * close handshake. The session's own messages are framed here and written to `socket`, the
 * connection the server handed to `ws.handleUpgrade`: a frame buffer with room for the header
 * before the channel byte goes to TLS as one buffer, where `ws.send` would hand over a header +
 * payload pair that TLS copies into one again (a large, garbage-heavy cost at gigabytes). Frames
 * are whole and written one at a time, and `ws` (no compression negotiated) writes its control
 * frames synchronously, so the two never interleave inside a frame; `ws.close` is called only once
 * the session's frames are written.
 */
export class ExecSession {
  private readonly base64: boolean;
  private readonly v5: boolean;
  private readonly binaryStatus: boolean;
  private closed = false;
  private stdinClosed = false;
  private readonly paused = new Set<Readable>();
  private readonly spare: Buffer[] = [];
  /**
   * Frames waiting to be written to the socket, one write in flight at a time: a socket that
   * drains several queued writes at once hands them to TLS as one `writev`, which copies them all
   * into a fresh buffer (a large, garbage-heavy cost under backpressure).
   */
  private readonly rawQueue: Array<{ buf: Buffer; done: () => void }> = [];
  private rawQueued = 0;
  private rawBusy = false;
  /** Run once the queue is empty. */
  private readonly afterWritten: Array<() => void> = [];

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly protocol: string,
    private readonly streams: ExecStreams,
  ) {
    this.base64 = protocol.includes('base64');
    this.v5 = protocol === V5;
    this.binaryStatus = protocol === V5 || protocol.startsWith('v4.');
    ws.on('close', () => {
      this.closed = true;
    });
    ws.on('error', () => {
      this.closed = true;
    });
  }

  /** Bytes handed to the socket or waiting in the queue. */
  private get buffered(): number {
    return this.socket.writableLength + this.rawQueued;
  }

  /** Resumes output paused for backpressure once the backlog is under LOW_WATER. */
  private resumeIfDrained(): void {
    if (this.paused.size > 0 && this.buffered < LOW_WATER) {
      for (const s of this.paused) s.resume();
      this.paused.clear();
    }
  }

  /** Sends one message: the channel byte, then `payload` (base64 text on the base64 protocols). */
  private send(channel: number, payload: Buffer, cb?: () => void): void {
    const done = (): void => {
      this.resumeIfDrained();
      cb?.();
    };
    let data: Buffer;
    if (this.base64) data = Buffer.from(`${channel}${payload.toString('base64')}`, 'latin1');
    else {
      data = Buffer.allocUnsafe(payload.length + 1);
      data[0] = channel;
      payload.copy(data, 1);
    }
    const frame = Buffer.allocUnsafe(HEAD + data.length);
    data.copy(frame, HEAD);
    const start = writeServerHeader(frame, HEAD, this.base64 ? TEXT : BINARY, data.length);
    this.enqueue(frame.subarray(start), done);
  }

  /**
   * Sends the message `frame[HEAD, end)` (channel byte, then output); `frame` is reused for later
   * output once the socket has written it. The header goes into the room before the channel byte.
   */
  private sendFrame(frame: Buffer, end: number): void {
    const done = (): void => {
      if (this.spare.length < SPARE_FRAMES) this.spare.push(frame);
      this.resumeIfDrained();
    };
    if (this.base64) {
      // Encoded into a buffer of its own at once, so the frame can be reused.
      this.send(frame[HEAD] as number, frame.subarray(HEAD + 1, end));
      done();
      return;
    }
    const start = writeServerHeader(frame, HEAD, BINARY, end - HEAD);
    this.enqueue(frame.subarray(start, end), done);
  }

  /**
   * Queues one whole frame for the socket. Once the session is closed, or `ws` has started the
   * close handshake (nothing may follow a close frame), frames are dropped but `done` still runs:
   * it recycles buffers and resumes paused output, which must drain to its end.
   */
  private enqueue(buf: Buffer, done: () => void): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) {
      this.closed = true;
      queueMicrotask(done);
      return;
    }
    this.rawQueue.push({ buf, done });
    this.rawQueued += buf.length;
    if (!this.rawBusy) this.writeNextRaw();
  }

  /** Closes (handshake by `ws`) once every queued frame is written: a close frame is the last. */
  private closeWhenWritten(): void {
    if (this.rawBusy) this.afterWritten.push(() => this.ws.close(1000));
    else this.ws.close(1000);
  }

  private writeNextRaw(): void {
    if (this.ws.readyState !== WebSocket.OPEN && this.rawQueue.length > 0) {
      // The close handshake has begun (the client's close was answered): nothing may follow it.
      this.closed = true;
      const dropped = this.rawQueue.splice(0);
      this.rawQueued = 0;
      for (const d of dropped) d.done();
    }
    const item = this.rawQueue.shift();
    if (!item) {
      this.rawBusy = false;
      for (const f of this.afterWritten.splice(0)) f();
      return;
    }
    this.rawBusy = true;
    this.rawQueued -= item.buf.length;
    this.socket.write(item.buf, (err) => {
      if (err) {
        // The socket is gone: drop the backlog, but let every frame's callback run.
        this.closed = true;
        const dropped = this.rawQueue.splice(0);
        this.rawQueued = 0;
        item.done();
        for (const d of dropped) d.done();
      } else item.done();
      this.writeNextRaw();
    });
  }

  /** Sends the opening empty frame on the lowest writable channel. */
  open(): void {
    const channel = this.streams.stdout ? 1 : this.streams.stderr && !this.streams.tty ? 2 : 3;
    this.send(channel, Buffer.alloc(0));
  }

  /**
   * Forwards a process output as frames: chunks are copied into frame buffers of up to
   * FRAME_PAYLOAD bytes, sent when full or once the current burst of reads is over (next
   * event-loop turn), so an interactive trickle is not delayed and a bulk stream gets big frames.
   */
  private pump(stream: Readable, channel: number, wanted: boolean): Promise<void> {
    return new Promise((resolve) => {
      let frame: Buffer | undefined;
      let fill = HEAD + 1;
      let scheduled: NodeJS.Immediate | undefined;
      const flush = (): void => {
        if (scheduled) clearImmediate(scheduled);
        scheduled = undefined;
        if (frame === undefined || fill <= HEAD + 1) return;
        const f = frame;
        const n = fill;
        frame = undefined;
        fill = HEAD + 1;
        this.sendFrame(f, n);
      };
      const finish = (): void => {
        flush();
        this.paused.delete(stream);
        resolve();
      };
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
      stream.on('data', (chunk: Buffer) => {
        if (!wanted || this.closed) return;
        let off = 0;
        while (off < chunk.length) {
          if (frame === undefined) {
            frame = this.spare.pop() ?? Buffer.allocUnsafeSlow(HEAD + 1 + FRAME_PAYLOAD);
            frame[HEAD] = channel;
            fill = HEAD + 1;
          }
          const n = chunk.copy(frame, fill, off);
          fill += n;
          off += n;
          if (fill === frame.length) flush();
        }
        if (fill > HEAD + 1 && scheduled === undefined) scheduled = setImmediate(flush);
        if (this.buffered > HIGH_WATER) {
          stream.pause();
          this.paused.add(stream);
        }
      });
    });
  }

  private onMessage(proc: RuntimeExecProcess | undefined, data: Buffer, isBinary: boolean): void {
    let channel: number;
    let payload: Buffer;
    if (this.base64) {
      if (isBinary || data.length === 0) return;
      const text = data.toString('latin1');
      channel = text.charCodeAt(0) - 48;
      if (channel < 0 || channel > 9) return;
      const b64 = text.slice(1);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return;
      payload = Buffer.from(b64, 'base64');
    } else {
      if (data.length === 0) return;
      channel = data[0] ?? 0;
      payload = data.subarray(1);
    }
    if (channel === 255 && this.v5) {
      const target = payload[0];
      if (payload.length !== 1 || target === undefined || target >= 5) {
        this.abort(proc);
        return;
      }
      if (target === 0) this.closeStdin(proc);
      return;
    }
    if (channel === 0) {
      const stdin = proc?.stdin;
      if (!stdin || this.stdinClosed || payload.length === 0) return;
      if (!stdin.write(payload)) {
        this.ws.pause();
        const resume = (): void => {
          stdin.off('drain', resume);
          stdin.off('close', resume);
          this.ws.resume();
        };
        stdin.once('drain', resume);
        stdin.once('close', resume);
      }
    }
    // Channel 4 (resize) is accepted and ignored; anything else is dropped.
  }

  private closeStdin(proc: RuntimeExecProcess | undefined): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    proc?.stdin?.end();
  }

  private abort(proc: RuntimeExecProcess | undefined): void {
    proc?.kill('SIGKILL');
    if (!this.closed) this.ws.close(1000);
    this.closed = true;
  }

  private finish(status: KubeJsonObject): void {
    if (this.closed) return;
    if (this.binaryStatus) {
      this.send(3, Buffer.from(JSON.stringify(status)));
    } else if (status.status !== 'Success' && typeof status.message === 'string') {
      this.send(3, Buffer.from(status.message));
    }
    this.closeWhenWritten();
  }

  /** Reports that the container is not running (InternalError after the upgrade) and closes. */
  notRunning(container: string): void {
    this.open();
    this.finish(internalErrorStatus(`unable to upgrade connection: container not found ("${container}")`));
  }

  /** Streams a started process until it ends, then writes its status and closes. */
  async run(proc: RuntimeExecProcess, command: readonly string[]): Promise<void> {
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(proc, data, isBinary));
    this.ws.on('close', () => {
      // Output paused for backpressure must flow again (and be discarded) so the streams can end.
      for (const stream of this.paused) stream.resume();
      this.paused.clear();
      proc.stdin?.destroy();
      proc.kill('SIGKILL');
    });
    proc.stdin?.on('error', () => {});
    this.open();
    const outputs = Promise.all([
      this.pump(proc.stdout, 1, this.streams.stdout),
      this.pump(proc.stderr, 2, this.streams.stderr && !this.streams.tty),
    ]);
    const [exit] = await Promise.all([proc.result, outputs]);
    // Input nobody will read any more must not keep the socket paused (the close handshake needs it).
    this.stdinClosed = true;
    proc.stdin?.destroy();
    this.ws.resume();
    this.finish(exitStatus(exit, this.protocol, command));
  }
}
