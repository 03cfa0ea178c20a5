/**
 * A small RFC 6455 WebSocket client made for exec streams.
 *
 * General-purpose clients (`ws`, browsers) hand over whole messages, so every message that spans
 * more than one socket read is copied into a fresh buffer first. An exec stream is gigabytes of
 * binary messages of up to a few hundred KiB each, and that copy, plus the garbage it leaves,
 * costs about a third of the client's CPU. Here {@link FrameParser} hands over payload bytes
 * as views of the socket's own read buffers as they arrive. Nothing is reassembled and nothing is
 * buffered beyond one frame header, so memory is bounded by the socket's read size, however large
 * a message claims to be.
 *
 * When the connection is ours (no caller agent), it is opened with Node's `onread` option: TLS
 * decrypts each record straight into the free end of a slab (up to 256 KiB) and the parser runs on that
 * view, so a read costs neither its own buffer allocation nor a stream event. A slab is never
 * written twice: every view handed out stays valid for as long as it is referenced.
 *
 * Client-to-server frames are masked with fresh random keys as the RFC requires. Pings are
 * answered, and the close handshake is done from both sides. No extensions are offered, so any
 * reserved bit set by the server is a protocol violation.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** How long a close handshake may take before the connection is dropped. */
const CLOSE_GRACE_MS = 2000;
/** Pongs are not queued behind more than this many unsent bytes. */
const MAX_PONG_BACKLOG = 64 * 1024;

/** WebSocket opcodes (RFC 6455 §5.2). */
const Op = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;

/** The peer broke RFC 6455; `reason` says how. Mapped by the exec session to ExecProtocolError. */
export class WebSocketViolation extends Error {
  override readonly name = 'WebSocketViolation';
}

/** What {@link FrameParser} reports, in wire order. */
export interface FrameEvents {
  /** A data message starts (`binary` false: a text message). */
  messageStart(binary: boolean): void;
  /** Bytes of the current message's payload: a view of the socket's read buffer, never empty. */
  messageData(data: Buffer): void;
  /** The current message is complete. */
  messageEnd(): void;
  /** A ping arrived (payload ≤ 125 bytes). */
  ping(payload: Buffer): void;
  /** A pong arrived. */
  pong(): void;
  /** A close frame arrived: status code (1005 when the frame carried none) and reason bytes. */
  close(code: number, reason: Buffer): void;
}

/** Parser states: reading a frame header, a frame payload, or stopped after a close frame. */
const State = { Header: 0, Payload: 1, Done: 2 } as const;

/**
 * Incremental parser of server-to-client frames. Feed it socket reads in order with
 * {@link FrameParser.push}; it calls {@link FrameEvents} synchronously and throws
 * {@link WebSocketViolation} on the first violation (the caller must then drop the connection).
 * Stops parsing after a close frame.
 */
export class FrameParser {
  readonly #on: FrameEvents;
  readonly #maxMessageBytes: number;
  #state: number = State.Header;
  /** Header bytes gathered so far (a header is 2 to 10 bytes from a server: never masked). */
  readonly #head = Buffer.alloc(10);
  #headFill = 0;
  #opcode = 0;
  #fin = false;
  #left = 0;
  /** Opcode of the fragmented data message in progress, or -1. */
  #fragmented = -1;
  #messageBytes = 0;
  /** Control frame payload gathered so far (≤ 125 bytes). */
  #control: Buffer[] = [];

  constructor(on: FrameEvents, maxMessageBytes: number) {
    this.#on = on;
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** True once a close frame was parsed (later bytes are ignored). */
  get closed(): boolean {
    return this.#state === State.Done;
  }

  /** Parses one read. Throws {@link WebSocketViolation}. */
  push(chunk: Buffer): void {
    let off = 0;
    const end = chunk.length;
    while (off < end && this.#state !== State.Done) {
      if (this.#state === State.Header) {
        off = this.#readHeader(chunk, off);
        continue;
      }
      const n = Math.min(this.#left, end - off);
      const part = off === 0 && n === end ? chunk : chunk.subarray(off, off + n);
      off += n;
      this.#left -= n;
      if (this.#opcode >= Op.Close) this.#control.push(part);
      else if (n > 0) this.#on.messageData(part);
      if (this.#left === 0) this.#frameEnd();
    }
  }

  /** Consumes header bytes from `chunk` at `off`; returns the new offset. */
  #readHeader(chunk: Buffer, off: number): number {
    const head = this.#head;
    if (this.#headFill < 2) {
      const n = Math.min(2 - this.#headFill, chunk.length - off);
      chunk.copy(head, this.#headFill, off, off + n);
      this.#headFill += n;
      off += n;
      if (this.#headFill < 2) return off;
    }
    const b0 = head[0] as number;
    const b1 = head[1] as number;
    const code = b1 & 0x7f;
    const size = code < 126 ? 2 : code === 126 ? 4 : 10;
    if (this.#headFill < size) {
      const n = Math.min(size - this.#headFill, chunk.length - off);
      chunk.copy(head, this.#headFill, off, off + n);
      this.#headFill += n;
      off += n;
      if (this.#headFill < size) return off;
    }
    this.#headFill = 0;
    if (b0 & 0x70) throw new WebSocketViolation('a reserved bit is set (no extension was negotiated)');
    if (b1 & 0x80) throw new WebSocketViolation('the server masked a frame');
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    let length: number;
    if (code < 126) length = code;
    else if (code === 126) length = head.readUInt16BE(2);
    else {
      const high = head.readUInt32BE(2);
      if (high > 0x1fffff) throw new WebSocketViolation('a frame length over 2^53 bytes');
      length = high * 2 ** 32 + head.readUInt32BE(6);
    }
    if (opcode >= Op.Close) {
      if (opcode > Op.Pong) throw new WebSocketViolation(`unknown control opcode ${opcode}`);
      if (!fin) throw new WebSocketViolation('a fragmented control frame');
      if (length > 125) throw new WebSocketViolation(`a control frame of ${length} bytes (limit 125)`);
      this.#control = [];
    } else if (opcode === Op.Continuation) {
      if (this.#fragmented < 0) throw new WebSocketViolation('a continuation frame outside a message');
    } else if (opcode === Op.Text || opcode === Op.Binary) {
      if (this.#fragmented >= 0) throw new WebSocketViolation('a new message inside a fragmented one');
      this.#messageBytes = 0;
      this.#on.messageStart(opcode === Op.Binary);
    } else {
      throw new WebSocketViolation(`unknown data opcode ${opcode}`);
    }
    if (opcode < Op.Close) {
      this.#messageBytes += length;
      if (this.#messageBytes > this.#maxMessageBytes) {
        throw new WebSocketViolation(
          `a message of more than ${this.#maxMessageBytes} bytes (limit ${this.#maxMessageBytes})`,
        );
      }
      if (!fin && opcode !== Op.Continuation) this.#fragmented = opcode;
    }
    this.#opcode = opcode;
    this.#fin = fin;
    this.#left = length;
    this.#state = State.Payload;
    if (length === 0) this.#frameEnd();
    return off;
  }

  #frameEnd(): void {
    this.#state = State.Header;
    const opcode = this.#opcode;
    if (opcode < Op.Close) {
      if (this.#fin) {
        this.#fragmented = -1;
        this.#on.messageEnd();
      }
      return;
    }
    const payload = this.#control.length === 1 ? (this.#control[0] as Buffer) : Buffer.concat(this.#control);
    this.#control = [];
    if (opcode === Op.Ping) this.#on.ping(payload);
    else if (opcode === Op.Pong) this.#on.pong();
    else {
      if (payload.length === 1) throw new WebSocketViolation('a close frame with a 1-byte payload');
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (payload.length >= 2 && !validCloseCode(code)) {
        throw new WebSocketViolation(`a close frame with invalid code ${code}`);
      }
      this.#state = State.Done;
      this.#on.close(code, payload.subarray(2));
    }
  }
}

function validCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** Random bytes for masking keys, drawn from the CSPRNG in batches. */
const maskPool = { buf: Buffer.alloc(0), off: 0 };
function maskKey(): Buffer {
  if (maskPool.off + 4 > maskPool.buf.length) {
    maskPool.buf = randomFillSync(Buffer.allocUnsafe(4096));
    maskPool.off = 0;
  }
  const key = maskPool.buf.subarray(maskPool.off, maskPool.off + 4);
  maskPool.off += 4;
  return key;
}

/** One masked client frame (FIN set): header, key and masked payload in a single buffer. */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = Buffer.allocUnsafe(6 + extra + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  const key = maskKey();
  const at = 2 + extra;
  key.copy(out, at);
  const data = at + 4;
  const k0 = key[0] as number;
  const k1 = key[1] as number;
  const k2 = key[2] as number;
  const k3 = key[3] as number;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    out[data + i] = (payload[i] as number) ^ k0;
    out[data + i + 1] = (payload[i + 1] as number) ^ k1;
    out[data + i + 2] = (payload[i + 2] as number) ^ k2;
    out[data + i + 3] = (payload[i + 3] as number) ^ k3;
  }
  for (; i < len; i++) out[data + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return out;
}

/** What {@link openWebSocket} needs. */
export interface WebSocketOpenOptions {
  /** `https:` or `http:` URL of the endpoint. */
  url: URL;
  /** Subprotocols offered, in order of preference. */
  protocols: readonly string[];
  /** Extra request headers (authorization, user-agent). */
  headers: Record<string, string>;
  /** TLS options for `https.request`. */
  tls: Pick<https.RequestOptions, 'ca' | 'servername' | 'checkServerIdentity' | 'rejectUnauthorized'>;
  /** The caller's agent (e.g. a proxy agent); none: a dedicated connection. */
  agent?: http.Agent | undefined;
}

/** How an upgrade attempt ended, when it did not upgrade. */
export type UpgradeFailure =
  | { kind: 'response'; response: http.IncomingMessage; request: http.ClientRequest }
  | { kind: 'error'; error: Error & { code?: string } }
  | { kind: 'violation'; error: WebSocketViolation };

/** A started upgrade: `done` settles with the socket or how it failed; `cancel` drops it. */
export interface UpgradeAttempt {
  done: Promise<{ socket: ClientWebSocket } | { failure: UpgradeFailure }>;
  cancel(): void;
}

/**
 * Sends the HTTP upgrade request. Never rejects: failures are values, so the caller can map
 * each to its own error (status codes, timeouts, aborts) without losing the response body.
 */
export function openWebSocket(o: WebSocketOpenOptions): UpgradeAttempt {
  const key = randomBytes(16).toString('base64');
  const secure = o.url.protocol === 'https:' || o.url.protocol === 'wss:';
  const options: https.RequestOptions = {
    method: 'GET',
    host: o.url.hostname.replace(/^\[|\]$/g, ''),
    port: o.url.port || (secure ? 443 : 80),
    path: `${o.url.pathname}${o.url.search}`,
    headers: {
      ...o.headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': key,
      'sec-websocket-protocol': o.protocols.join(','),
    },
    ...(secure ? o.tls : {}),
  };
  // Without a caller agent the connection is ours, so its reads can land in our slabs.
  const reads = o.agent ? undefined : new ReadRouter();
  if (reads) options.createConnection = (opts) => reads.connect(opts, secure);
  else options.agent = o.agent;
  const req = secure ? https.request(options) : http.request(options);
  let cancelled = false;
  const done = new Promise<{ socket: ClientWebSocket } | { failure: UpgradeFailure }>((resolve) => {
    let settled = false;
    const settle = (v: { socket: ClientWebSocket } | { failure: UpgradeFailure }): void => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    req.on('error', (error: Error & { code?: string }) => settle({ failure: { kind: 'error', error } }));
    req.on('response', (response) => settle({ failure: { kind: 'response', response, request: req } }));
    req.on('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const fail = (why: string): void => {
        socket.destroy();
        settle({ failure: { kind: 'violation', error: new WebSocketViolation(why) } });
      };
      if (cancelled) {
        socket.destroy();
        return;
      }
      if (String(res.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
        fail('the upgrade response does not name websocket');
        return;
      }
      const expected = createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      if (res.headers['sec-websocket-accept'] !== expected) {
        fail('the upgrade response has a wrong Sec-WebSocket-Accept');
        return;
      }
      if (res.headers['sec-websocket-extensions']) {
        fail('the server enabled an extension that was not offered');
        return;
      }
      const protocol = String(res.headers['sec-websocket-protocol'] ?? '');
      settle({ socket: new ClientWebSocket(socket, head, protocol, reads) });
    });
    req.end();
  });
  return {
    done,
    cancel: () => {
      cancelled = true;
      req.destroy();
    },
  };
}

/** Reads land in slabs: the first is small (most execs print little), each next one twice the size, up to the last. */
const FIRST_SLAB_BYTES = 32 * 1024;
const MAX_SLAB_BYTES = 256 * 1024;
/** A slab with less room than one TLS record's plaintext is retired. */
const MIN_READ_ROOM = 16 * 1024;

/**
 * Owns the `onread` callback of a connection we open. Reads are placed one after another in a
 * slab, and a new slab is taken when the room left is under one TLS record; so each read is a
 * view nobody else will write to. Until the upgrade, reads are emitted as `'data'` so that Node's
 * HTTP client parses the response; after it they go to the {@link ClientWebSocket}.
 */
class ReadRouter {
  /** Takes one read; returning false stops the socket reading. */
  target: (view: Buffer) => boolean = (view) => {
    this.socket?.emit('data', view);
    return true;
  };
  socket: Socket | undefined;
  #slab = Buffer.allocUnsafeSlow(FIRST_SLAB_BYTES);
  #fill = 0;

  /** Where the next read goes: the free end of the slab (asked for after every read). */
  readonly #room = (): Buffer => {
    if (this.#slab.length - this.#fill < MIN_READ_ROOM) {
      this.#slab = Buffer.allocUnsafeSlow(Math.min(MAX_SLAB_BYTES, this.#slab.length * 2));
      this.#fill = 0;
    }
    return this.#slab.subarray(this.#fill);
  };

  readonly #onRead = (n: number, buf: Uint8Array): boolean => {
    if (buf.buffer === this.#slab.buffer) this.#fill = buf.byteOffset + n;
    return this.target(Buffer.from(buf.buffer, buf.byteOffset, n));
  };

  connect(opts: https.RequestOptions, secure: boolean): Socket {
    const onread = { buffer: this.#room, callback: this.#onRead };
    // http.request has resolved host and port; only these and our TLS options are passed on.
    const host = opts.host ?? 'localhost';
    const base = { host, port: Number(opts.port), onread };
    if (secure) {
      // As https.Agent does: SNI carries the host name, never an IP address.
      const servername = opts.servername ?? (net.isIP(host) ? undefined : host);
      const t: tls.ConnectionOptions = { ...base, rejectUnauthorized: opts.rejectUnauthorized !== false };
      if (opts.ca !== undefined) t.ca = opts.ca;
      if (servername) t.servername = servername;
      if (opts.checkServerIdentity) t.checkServerIdentity = opts.checkServerIdentity;
      this.socket = tls.connect(t);
    } else {
      this.socket = net.connect(base);
    }
    return this.socket;
  }
}

/** Receives the events of a {@link ClientWebSocket}. */
export interface WebSocketHandler extends Omit<FrameEvents, 'close' | 'ping'> {
  /** The peer broke the protocol; the socket is being destroyed. */
  violation(error: WebSocketViolation): void;
  /** The TCP connection failed (reset, TLS error). */
  error(error: Error & { code?: string }): void;
  /**
   * The connection is gone. `code`: the close frame's code, or 1006 if the connection ended
   * without one. Called exactly once, last.
   */
  closed(code: number, reason: Buffer): void;
}

/** An upgraded connection. Reads stay paused until {@link ClientWebSocket.start}. */
export class ClientWebSocket {
  /** The subprotocol the server chose ('' if none). */
  readonly protocol: string;
  readonly #socket: Socket;
  #head: Buffer | undefined;
  #parser: FrameParser | undefined;
  #closeSent = false;
  #closeCode = 1006;
  #closeReason: Buffer = Buffer.alloc(0);
  #gone = false;
  #paused = false;
  #graceTimer: NodeJS.Timeout | undefined;
  /** Set on connections opened with `onread`: reads arrive through it, not as `'data'` events. */
  readonly #reads: ReadRouter | undefined;
  /** Reads kept aside while not started or paused (`onread` connections only). */
  readonly #held: Buffer[] = [];
  #feed: ((chunk: Buffer) => void) | undefined;

  constructor(socket: Socket, head: Buffer, protocol: string, reads?: ReadRouter) {
    this.#socket = socket;
    this.#head = head;
    this.protocol = protocol;
    this.#reads = reads;
    if (reads) reads.target = (view) => this.#hold(view);
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('error', () => {});
  }

  /** Keeps a read nobody takes yet and stops the socket reading. */
  #hold(view: Buffer): boolean {
    if (!this.#gone) this.#held.push(view);
    return false;
  }

  /** Parses held reads until none is left or the handler pauses again. */
  #drainHeld(): void {
    const feed = this.#feed;
    while (feed && !this.#paused && this.#held.length > 0) feed(this.#held.shift() as Buffer);
  }

  /** True while reading is paused. */
  get isPaused(): boolean {
    return this.#paused;
  }

  /** True while frames can still be sent. */
  get isOpen(): boolean {
    return !this.#gone && !this.#closeSent && !this.#socket.destroyed && this.#socket.writable;
  }

  /** Bytes handed to the socket and not yet written. */
  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  /**
   * Starts reading: bytes that came with the upgrade are parsed first, then the socket's.
   * `maxMessageBytes` bounds one message (a violation beyond it).
   */
  start(handler: WebSocketHandler, maxMessageBytes: number): void {
    const socket = this.#socket;
    const parser = new FrameParser(
      {
        messageStart: (binary) => handler.messageStart(binary),
        messageData: (data) => handler.messageData(data),
        messageEnd: () => handler.messageEnd(),
        pong: () => handler.pong(),
        ping: (payload) => {
          // A server that floods pings but does not read must not grow our send buffer: while
          // pongs back up, later pings go unanswered (RFC 6455 §5.5.3 lets an endpoint answer
          // only the most recent ping).
          if (this.isOpen && socket.writableLength < MAX_PONG_BACKLOG) {
            socket.write(encodeClientFrame(Op.Pong, payload));
          }
        },
        close: (code, reason) => {
          this.#closeCode = code;
          this.#closeReason = Buffer.from(reason);
          // Echo the close (RFC 6455 §5.5.1), then end our side; the server closes TCP.
          if (!this.#closeSent) this.#sendClose(code === 1005 ? undefined : code);
          socket.end();
          this.#armGrace();
        },
      },
      maxMessageBytes,
    );
    this.#parser = parser;
    const feed = (chunk: Buffer): void => {
      if (this.#gone || parser.closed) return;
      try {
        parser.push(chunk);
      } catch (err) {
        if (!(err instanceof WebSocketViolation)) throw err;
        handler.violation(err);
        this.terminate();
      }
    };
    socket.on('error', (err: Error & { code?: string }) => {
      if (!this.#gone) handler.error(err);
    });
    let reported = false;
    const gone = (): void => {
      this.#gone = true;
      if (this.#graceTimer) clearTimeout(this.#graceTimer);
      if (reported) return;
      reported = true;
      handler.closed(this.#closeCode, this.#closeReason);
    };
    socket.once('close', gone);
    socket.on('end', () => {
      // The server half-closed; finish our side too.
      socket.end();
    });
    const head = this.#head;
    this.#head = undefined;
    if (head && head.length > 0) feed(head);
    this.#feed = feed;
    const reads = this.#reads;
    if (reads) {
      this.#drainHeld();
      reads.target = (view) => {
        if (this.#paused) return this.#hold(view);
        feed(view);
        return !this.#paused;
      };
    }
    if (socket.destroyed) {
      // Gone before anyone listened ('close' may already have been emitted): report it once.
      queueMicrotask(gone);
      return;
    }
    if (reads) {
      if (!this.#paused) socket.resume();
    } else {
      socket.on('data', feed);
      if (this.#paused) socket.pause();
    }
  }

  /** Sends one binary message. `cb` runs once the socket has taken the bytes (or failed). */
  send(payload: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (!this.isOpen) {
      if (cb) queueMicrotask(() => cb(new Error('the WebSocket is closed')));
      return false;
    }
    return this.#socket.write(encodeClientFrame(Op.Binary, payload), cb);
  }

  /** Sends a ping (payload empty). */
  ping(): void {
    if (this.isOpen) this.#socket.write(encodeClientFrame(Op.Ping, Buffer.alloc(0)));
  }

  /** Stops reading from the socket (the peer's sends back up in TCP). */
  pause(): void {
    this.#paused = true;
    if (this.#parser) this.#socket.pause();
  }

  /** Resumes reading. */
  resume(): void {
    this.#paused = false;
    if (!this.#parser) return;
    this.#drainHeld();
    if (!this.#paused) this.#socket.resume();
  }

  /**
   * Starts the close handshake with `code`; the connection is dropped if the server has not
   * closed within `graceMs`.
   */
  close(code = 1000, graceMs = CLOSE_GRACE_MS): void {
    if (this.#gone) return;
    if (!this.#closeSent) this.#sendClose(code);
    // Keep reading so the server's close frame (and TCP close) can arrive.
    this.resume();
    this.#armGrace(graceMs);
  }

  /** Drops the connection at once. */
  terminate(): void {
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  #sendClose(code: number | undefined): void {
    this.#closeSent = true;
    if (this.#socket.destroyed || !this.#socket.writable) return;
    const payload = Buffer.alloc(code === undefined ? 0 : 2);
    if (code !== undefined) payload.writeUInt16BE(code, 0);
    this.#socket.write(encodeClientFrame(Op.Close, payload));
  }

  #armGrace(ms = CLOSE_GRACE_MS): void {
    if (this.#graceTimer || this.#gone) return;
    this.#graceTimer = setTimeout(() => this.terminate(), ms);
    this.#graceTimer.unref();
  }
}
