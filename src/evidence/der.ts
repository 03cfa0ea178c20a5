/**
 * A small, strict DER reader: just enough ASN.1 to check RFC 3161 timestamp tokens (CMS
 * SignedData) and the X.509 fields node:crypto does not expose. Input is hostile: every length is
 * bounds-checked, indefinite lengths are refused, nesting is bounded.
 *
 * @internal
 * @module
 */

/** One DER element. `raw` is the whole TLV, `value` its contents (both views into the input). */
export interface Der {
  tag: number;
  raw: Buffer;
  value: Buffer;
}

/** Thrown for anything that is not well-formed DER. */
export class DerError extends Error {}

/** Reads the element at `offset`; returns it and the offset after it. */
export function readDer(buf: Buffer, offset = 0): { el: Der; next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated DER element');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let len = buf[offset + 1] as number;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (offset + 2 + n > buf.length) throw new DerError('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if (len < 0x80 || (n > 1 && (buf[offset + 2] as number) === 0))
      throw new DerError('non-minimal DER length');
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > buf.length) throw new DerError('DER element runs past its container');
  return {
    el: { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + hdr, end) },
    next: end,
  };
}

/** Parses exactly one element filling `buf`. */
export function parseDer(buf: Buffer): Der {
  const { el, next } = readDer(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after DER element');
  return el;
}

/** The children of a constructed element. */
export function children(el: Der): Der[] {
  if (!(el.tag & 0x20)) throw new DerError(`element with tag 0x${el.tag.toString(16)} is not constructed`);
  const out: Der[] = [];
  let off = 0;
  while (off < el.value.length) {
    if (out.length > 10_000) throw new DerError('too many DER elements');
    const { el: c, next } = readDer(el.value, off);
    out.push(c);
    off = next;
  }
  return out;
}

/** Checks the tag and returns the element. */
export function expectTag(el: Der | undefined, tag: number, what: string): Der {
  if (!el || el.tag !== tag) {
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got ${el ? `0x${el.tag.toString(16)}` : 'nothing'}`,
    );
  }
  return el;
}

/** Decodes an OBJECT IDENTIFIER to dotted form. */
export function oid(el: Der | undefined, what = 'OID'): string {
  const v = expectTag(el, 0x06, what).value;
  if (v.length === 0) throw new DerError(`${what}: empty OID`);
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i] as number;
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`${what}: OID arc too large`);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const first = n < 80 ? Math.floor(n / 40) : 2;
        parts.push(first, n - first * 40);
      } else parts.push(n);
      n = 0;
    } else if (i === v.length - 1) throw new DerError(`${what}: truncated OID`);
  }
  return parts.join('.');
}

/** Encodes a DER element from a tag and contents. */
export function encodeDer(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const len = body.length;
  let hdr: Buffer;
  if (len < 0x80) hdr = Buffer.from([tag, len]);
  else {
    const bytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
    hdr = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([hdr, body]);
}

/** Encodes a dotted OID. */
export function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const first = (arcs[0] ?? 0) * 40 + (arcs[1] ?? 0);
  const bytes: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const enc: number[] = [arc & 0x7f];
    for (let a = Math.floor(arc / 128); a > 0; a = Math.floor(a / 128)) enc.unshift((a & 0x7f) | 0x80);
    bytes.push(...enc);
  }
  return encodeDer(0x06, Buffer.from(bytes));
}

/** Parses a GeneralizedTime (`YYYYMMDDHHMMSS[.f]Z`) to a Date. */
export function generalizedTime(el: Der | undefined, what: string): Date {
  const s = expectTag(el, 0x18, what).value.toString('latin1');
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{1,9})?Z$/.exec(s);
  if (!m) throw new DerError(`${what}: ${JSON.stringify(s)} is not a DER GeneralizedTime`);
  const ms = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const d = new Date(
    Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms),
  );
  if (Number.isNaN(d.getTime())) throw new DerError(`${what}: invalid date`);
  return d;
}
