/**
 * HTTP plumbing shared by FakeCluster's routes: Status errors as kube-apiserver writes them,
 * query parsing with Go's rules, and JSON / raw responses.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { decodeAccessReviewSpec, PROTOBUF_CONTENT_TYPE } from './protobuf.js';
import type { KubeJsonObject } from './types.js';

/** An HTTP answer with a Status body (thrown inside handlers). */
export class HttpStatus extends Error {
  constructor(
    readonly code: number,
    readonly body: KubeJsonObject,
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${code}`);
  }
}

/** A `Failure` Status with the given code, reason and message. */
export function status(code: number, reason: string, message: string, details?: KubeJsonObject): HttpStatus {
  const body: KubeJsonObject = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
  };
  if (details) body.details = details;
  body.code = code;
  return new HttpStatus(code, body);
}

/** 400 BadRequest. */
export const badRequest = (message: string): HttpStatus => status(400, 'BadRequest', message);

/** 404 for a named object: `pods "x" not found`. */
export const notFound = (resource: string, name: string): HttpStatus =>
  status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });

/** 404 for a path the server does not serve at all. */
export const noSuchResource = (): HttpStatus =>
  status(404, 'NotFound', 'the server could not find the requested resource', {});

/** 405 with the apiserver's generic message. */
export const methodNotAllowed = (): HttpStatus =>
  status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

/** 422 Invalid with one cause. */
export function invalid(
  kind: string,
  name: string,
  field: string,
  reason: string,
  detail: string,
): HttpStatus {
  return status(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: ${detail}`, {
    name,
    kind,
    causes: [{ reason, message: detail, field }],
  });
}

/** Go's `Convert_Slice_string_To_bool`: absent → false, `0`/`false` → false, anything else → true. */
export function queryBool(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null) return false;
  return !(v === '0' || v.toLowerCase() === 'false');
}

/** An integer query parameter, or 400 when it is not one. */
export function queryInt(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`invalid ${key} parameter: ${JSON.stringify(v)}`);
  return Number(v);
}

const APPLICATION_JSON = 'application/json';

/** Writes a JSON body with the apiserver's headers. */
export function writeJson(res: ServerResponse, code: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(code, {
    'Content-Type': APPLICATION_JSON,
    'Content-Length': String(data.length),
    'Cache-Control': 'no-cache, private',
    'Audit-Id': randomUUID(),
  });
  res.end(data);
}

/** Answers a failed upgrade on the raw socket and closes it. */
export function writeRawStatus(socket: Duplex, code: number, body: KubeJsonObject | string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : APPLICATION_JSON;
  const reason: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    500: 'Internal Server Error',
  };
  const head =
    `HTTP/1.1 ${code} ${reason[code] ?? 'Error'}\r\n` +
    (text.length > 0 ? `Content-Type: ${type}\r\nCache-Control: no-cache, private\r\n` : '') +
    `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + text);
}

/** Reads a request body up to `max` bytes (413 beyond). */
export async function readRaw(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw status(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${max}`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON body, or the protobuf access-review spec kubectl sends. */
export async function readBody(req: IncomingMessage, max: number): Promise<unknown> {
  const raw = await readRaw(req, max);
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  if (type === PROTOBUF_CONTENT_TYPE) {
    // kubectl sends built-in types as protobuf; only the access reviews are needed here.
    try {
      return { spec: decodeAccessReviewSpec(raw) };
    } catch (err) {
      throw badRequest(`the body of the request was in an unknown format: ${String(err)}`);
    }
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the body of the request was in an unknown format: ${String(err)}`);
  }
}
