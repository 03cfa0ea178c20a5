/**
 * Just enough of Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) to read
 * the SelfSubjectAccessReview and SelfSubjectReview bodies kubectl sends.
 *
 * @module
 */

/** Content type kubectl uses for built-in types. */
export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Fields = Map<number, Buffer[]>;

function readVarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  let p = pos;
  for (;;) {
    const b = buf[p];
    if (b === undefined) throw new Error('truncated varint');
    p += 1;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, p];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

/** Decodes one message level: length-delimited fields by number (other wire types skipped). */
export function decodeFields(buf: Buffer): Fields {
  const out: Fields = new Map();
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    pos = p1;
    if (wire === 0) {
      pos = readVarint(buf, pos)[1];
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      if (p2 + len > buf.length) throw new Error('truncated field');
      const list = out.get(field) ?? [];
      list.push(buf.subarray(p2, p2 + len));
      out.set(field, list);
      pos = p2 + len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Fields, n: number): string | undefined => f.get(n)?.[0]?.toString('utf8');

/** Unwraps the `k8s\0` + runtime.Unknown envelope; returns the raw object bytes. */
export function unwrapEnvelope(body: Buffer): Buffer {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new Error('missing protobuf magic');
  const unknown = decodeFields(body.subarray(4));
  return unknown.get(2)?.[0] ?? Buffer.alloc(0);
}

/** Decodes a SelfSubjectAccessReview body into its JSON `spec`. */
export function decodeAccessReviewSpec(body: Buffer): Record<string, unknown> {
  const obj = decodeFields(unwrapEnvelope(body));
  const specBuf = obj.get(2)?.[0];
  const spec: Record<string, unknown> = {};
  if (!specBuf) return spec;
  const s = decodeFields(specBuf);
  const ra = s.get(1)?.[0];
  if (ra) {
    const f = decodeFields(ra);
    const names = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
    const attrs: Record<string, string> = {};
    names.forEach((name, i) => {
      const v = str(f, i + 1);
      if (v !== undefined && v !== '') attrs[name] = v;
    });
    spec.resourceAttributes = attrs;
  }
  const nra = s.get(2)?.[0];
  if (nra) {
    const f = decodeFields(nra);
    const attrs: Record<string, string> = {};
    const path = str(f, 1);
    const verb = str(f, 2);
    if (path) attrs.path = path;
    if (verb) attrs.verb = verb;
    spec.nonResourceAttributes = attrs;
  }
  return spec;
}
