/**
 * The exec WebSocket client: the streaming frame parser against every way a byte stream can be
 * split, RFC 6455 violations a hostile server could send, and the handshake/close behaviour
 * against the `ws` server (a second, independent implementation).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  type ClientWebSocket,
  encodeClientFrame,
  type FrameEvents,
  FrameParser,
  openWebSocket,
  WebSocketViolation,
} from '../../src/kube/exec/websocket.js';

/** An unmasked server frame. */
function serverFrame(opcode: number, payload: Buffer, fin = true, rsv = 0): Buffer {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, len])
      : len < 65536
        ? Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 126, len >> 8, len & 255])
        : (() => {
            const h = Buffer.alloc(10);
            h[0] = (fin ? 0x80 : 0) | rsv | opcode;
            h[1] = 127;
            h.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
            h.writeUInt32BE(len >>> 0, 6);
            return h;
          })();
  return Buffer.concat([head, payload]);
}

type Event =
  | ['start', boolean]
  | ['data', string]
  | ['end']
  | ['ping', string]
  | ['pong']
  | ['close', number, string];

/** Records events; consecutive data of one message is merged so splits do not matter. */
function recorder(): { events: Event[]; on: FrameEvents } {
  const events: Event[] = [];
  const on: FrameEvents = {
    messageStart: (b) => events.push(['start', b]),
    messageData: (d) => {
      expect(d.length).toBeGreaterThan(0);
      const last = events[events.length - 1];
      if (last?.[0] === 'data') last[1] += d.toString('hex');
      else events.push(['data', d.toString('hex')]);
    },
    messageEnd: () => events.push(['end']),
    ping: (p) => events.push(['ping', p.toString('hex')]),
    pong: () => events.push(['pong']),
    close: (c, r) => events.push(['close', c, r.toString()]),
  };
  return { events, on };
}

function parseAll(stream: Buffer, cuts: number[], max = 1 << 20): Event[] {
  const r = recorder();
  const p = new FrameParser(r.on, max);
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    p.push(stream.subarray(prev, c));
    prev = c;
  }
  return r.events;
}

describe('FrameParser', () => {
  const big = randomBytes(70_000);
  const stream = Buffer.concat([
    serverFrame(2, Buffer.from([1, 0x61, 0x62])),
    serverFrame(2, Buffer.alloc(0)),
    serverFrame(2, Buffer.concat([Buffer.from([1]), big])),
    serverFrame(2, Buffer.from([2, 0x65]), false),
    serverFrame(9, Buffer.from('hi')),
    serverFrame(0, Buffer.from([0x66]), false),
    serverFrame(10, Buffer.alloc(0)),
    serverFrame(0, Buffer.from([0x67]), true),
    serverFrame(2, Buffer.alloc(200, 7)),
    serverFrame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
    serverFrame(2, Buffer.from([1, 1])),
  ]);
  const whole = parseAll(stream, []);

  it('reports messages, control frames and the close, and ignores what follows the close', () => {
    expect(whole.map((e) => e[0])).toEqual([
      'start',
      'data',
      'end',
      'start',
      'end',
      'start',
      'data',
      'end',
      'start',
      'data',
      'ping',
      'data',
      'pong',
      'data',
      'end',
      'start',
      'data',
      'end',
      'close',
    ]);
    expect(whole[whole.length - 1]).toEqual(['close', 1000, 'bye']);
    expect(whole[6]).toEqual(['data', Buffer.concat([Buffer.from([1]), big]).toString('hex')]);
  });

  it('gives the same events however the stream is split (byte by byte, and 200 random splits)', () => {
    const bytewise = parseAll(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    );
    const norm = (ev: Event[]) => {
      // Data interrupted by a control frame is reported in pieces; join pieces of one message.
      const out: Event[] = [];
      for (const e of ev) {
        const last = out[out.length - 1];
        if (e[0] === 'data' && last?.[0] === 'data') last[1] += e[1];
        else out.push([...e] as Event);
      }
      return out;
    };
    expect(norm(bytewise)).toEqual(norm(whole));
    for (let i = 0; i < 200; i++) {
      const n = 1 + Math.floor(Math.random() * 12);
      const cuts = Array.from({ length: n }, () => Math.floor(Math.random() * stream.length)).sort(
        (a, b) => a - b,
      );
      expect(norm(parseAll(stream, cuts))).toEqual(norm(whole));
    }
  });

  it('hands over views of the input, never copies of payload data', () => {
    const payload = Buffer.concat([Buffer.from([1]), randomBytes(1000)]);
    const input = serverFrame(2, payload);
    const seen: Buffer[] = [];
    const p = new FrameParser({ ...recorder().on, messageData: (d) => seen.push(d) }, 1 << 20);
    p.push(input);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.buffer).toBe(input.buffer);
  });

  it.each([
    ['a reserved bit', serverFrame(2, Buffer.from([1]), true, 0x40), /reserved bit/],
    ['a masked server frame', Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5]), /masked/],
    ['an unknown data opcode', serverFrame(3, Buffer.alloc(1)), /unknown data opcode 3/],
    ['an unknown control opcode', serverFrame(11, Buffer.alloc(0)), /unknown control opcode 11/],
    ['a fragmented control frame', serverFrame(9, Buffer.alloc(1), false), /fragmented control/],
    ['a control frame over 125 bytes', serverFrame(9, Buffer.alloc(126)), /control frame of 126/],
    ['a continuation outside a message', serverFrame(0, Buffer.alloc(1)), /continuation/],
    [
      'a new message inside a fragmented one',
      Buffer.concat([serverFrame(2, Buffer.alloc(1), false), serverFrame(2, Buffer.alloc(1))]),
      /inside a fragmented/,
    ],
    ['a 1-byte close payload', serverFrame(8, Buffer.from([3])), /1-byte/],
    ['an invalid close code', serverFrame(8, Buffer.from([0x03, 0xed])), /invalid code 1005/],
    ['a 2^63 length', Buffer.from([0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /over 2\^53/],
  ])('rejects %s', (_name, bytes, message) => {
    const p = new FrameParser(recorder().on, 1 << 20);
    let err: unknown;
    try {
      p.push(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebSocketViolation);
    expect((err as Error).message).toMatch(message);
  });

  it('bounds a message by the sum of its fragments, from the headers alone', () => {
    const p = new FrameParser(recorder().on, 1000);
    p.push(serverFrame(2, Buffer.alloc(600), false));
    // Only the header of the second fragment: rejected before any of its payload arrives.
    expect(() => p.push(Buffer.from([0x80, 126, 0x01, 0xf4]))).toThrow(/more than 1000 bytes/);
  });
});

describe('encodeClientFrame', () => {
  it('masks with a fresh key per frame and round-trips through the mask', () => {
    for (const len of [0, 1, 5, 125, 126, 65535, 65536, 70_001]) {
      const payload = randomBytes(len);
      const f = encodeClientFrame(2, payload);
      expect(f[0]).toBe(0x82);
      expect((f[1] as number) & 0x80).toBe(0x80);
      const code = (f[1] as number) & 0x7f;
      const at = code < 126 ? 2 : code === 126 ? 4 : 10;
      const key = f.subarray(at, at + 4);
      const body = f.subarray(at + 4);
      expect(body.length).toBe(len);
      const unmasked = Buffer.from(body.map((b, i) => b ^ (key[i & 3] as number)));
      expect(unmasked.equals(payload)).toBe(true);
    }
    const keys = new Set(
      Array.from({ length: 50 }, () => encodeClientFrame(2, Buffer.alloc(1)).subarray(2, 6).toString('hex')),
    );
    expect(keys.size).toBeGreaterThan(45);
  });
});

describe('ClientWebSocket against the ws server', () => {
  let server: http.Server;
  let url: URL;
  const sockets = new Set<Socket>();
  let onConnection: (ws: WebSocket) => void = () => {};
  let rawUpgrade: ((socket: Socket, req: http.IncomingMessage) => void) | undefined;
  beforeAll(async () => {
    server = http.createServer((_q, res) => res.end());
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (set) => [...set][0] ?? false });
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      if (rawUpgrade) {
        rawUpgrade(socket, req);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => {});
        onConnection(ws);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const open = async (): Promise<ClientWebSocket> => {
    const r = await openWebSocket({ url, protocols: ['p1', 'p2'], headers: {}, tls: {} }).done;
    if (!('socket' in r)) throw new Error(`no upgrade: ${r.failure.kind}`);
    return r.socket;
  };

  it('answers pings, exchanges masked messages both ways, and closes cleanly with 1000', async () => {
    const got: Buffer[] = [];
    const serverClosed = new Promise<number>((resolve) => {
      onConnection = (ws) => {
        ws.on('message', (d: Buffer) => {
          got.push(d);
          ws.ping(Buffer.from('p'));
        });
        ws.on('pong', (d: Buffer) => {
          ws.send(Buffer.concat([Buffer.from('echo:'), d]));
        });
        ws.on('close', (code: number) => resolve(code));
      };
    });
    const ws = await open();
    expect(ws.protocol).toBe('p1');
    const messages: string[] = [];
    let current = '';
    const closed = new Promise<number>((resolve) =>
      ws.start(
        {
          messageStart: () => {
            current = '';
          },
          messageData: (d) => {
            current += d.toString();
          },
          messageEnd: () => {
            messages.push(current);
            ws.close(1000);
          },
          pong: () => {},
          violation: (e) => {
            throw e;
          },
          error: (e) => {
            throw e;
          },
          closed: (code) => resolve(code),
        },
        1 << 20,
      ),
    );
    ws.send(Buffer.from('hello'));
    expect(await serverClosed).toBe(1000);
    expect(await closed).toBe(1000);
    expect(got.map(String)).toEqual(['hello']);
    expect(messages).toEqual(['echo:p']);
  });

  it('refuses an upgrade with a wrong Sec-WebSocket-Accept', async () => {
    rawUpgrade = (socket) =>
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\nSec-WebSocket-Protocol: p1\r\n\r\n',
      );
    try {
      const r = await openWebSocket({ url, protocols: ['p1'], headers: {}, tls: {} }).done;
      expect('failure' in r && r.failure.kind).toBe('violation');
      if ('failure' in r && r.failure.kind === 'violation') {
        expect(r.failure.error.message).toMatch(/Sec-WebSocket-Accept/);
      }
    } finally {
      rawUpgrade = undefined;
    }
  });

  it('a server flooding pings without reading cannot grow the send buffer', async () => {
    let serverSocket: Socket | undefined;
    rawUpgrade = (socket, req) => {
      serverSocket = socket;
      const accept = createHash('sha1')
        .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: p1\r\n\r\n`,
      );
      // Never read what the client sends back.
      socket.pause();
      const ping = serverFrame(9, Buffer.alloc(125, 1));
      socket.write(Buffer.concat(Array.from({ length: 40_000 }, () => ping)));
      socket.write(serverFrame(2, Buffer.from('done')));
    };
    try {
      const ws = await open();
      await new Promise<void>((resolve, reject) =>
        ws.start(
          {
            messageStart: () => {},
            messageData: () => {},
            messageEnd: () => resolve(),
            pong: () => {},
            violation: reject,
            error: reject,
            closed: () => {},
          },
          1 << 20,
        ),
      );
      const peak = ws.bufferedAmount;
      // 40,000 pongs of 131 bytes would be 5 MiB; what is unsent stays near the cap.
      expect(peak).toBeLessThan(256 * 1024);
      ws.terminate();
    } finally {
      rawUpgrade = undefined;
      serverSocket?.destroy();
    }
  });

  it('reports a non-101 answer as a response, with its body readable', async () => {
    rawUpgrade = (socket) =>
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
    try {
      const r = await openWebSocket({ url, protocols: ['p1'], headers: {}, tls: {} }).done;
      if (!('failure' in r) || r.failure.kind !== 'response') throw new Error('expected a response');
      expect(r.failure.response.statusCode).toBe(403);
      let body = '';
      for await (const c of r.failure.response) body += String(c);
      expect(body).toBe('nope');
    } finally {
      rawUpgrade = undefined;
    }
  });
});
