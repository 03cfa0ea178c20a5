/**
 * Handling of sensitive content: JWT tokens are reduced to their decoded header and claims,
 * environment values are hashed or redacted. Raw secrets never reach the bundle by default.
 */
import { createHash } from 'node:crypto';

/** What is kept of a token file instead of the token. */
export interface JwtRecord {
  /** SHA-256 of the exact file bytes. */
  sha256: string;
  /** File size. */
  bytes: number;
  /** Decoded JOSE header (alg, kid…), when the content is a JWT. */
  header?: Record<string, unknown> | undefined;
  /** Decoded claims (iss, sub, aud, exp, kubernetes.io…). */
  claims?: Record<string, unknown> | undefined;
  /** Why claims could not be decoded. */
  error?: string | undefined;
}

function b64urlJson(part: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(part) || part.length > 64 * 1024) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decodes the header and claims of a JWT without verifying it and without keeping the signature.
 * Adds ISO times for `exp`, `iat` and `nbf`.
 */
export function jwtRecord(content: Buffer, totalBytes = content.length, sha256?: string): JwtRecord {
  const rec: JwtRecord = {
    sha256: sha256 ?? createHash('sha256').update(content).digest('hex'),
    bytes: totalBytes,
  };
  const text = content.toString('utf8').trim();
  const parts = text.split('.');
  if (parts.length !== 3) {
    rec.error = 'not a JWT (expected three dot-separated parts)';
    return rec;
  }
  const header = b64urlJson(parts[0] ?? '');
  const claims = b64urlJson(parts[1] ?? '');
  if (!header || !claims) {
    rec.error = 'JWT header or claims are not base64url JSON';
    return rec;
  }
  for (const k of ['exp', 'iat', 'nbf']) {
    const v = claims[k];
    if (typeof v === 'number' && Number.isFinite(v)) {
      const d = new Date(v * 1000);
      if (!Number.isNaN(d.getTime())) claims[`${k}_iso`] = d.toISOString();
    }
  }
  rec.header = header;
  rec.claims = claims;
  return rec;
}

/** How environment values are kept. */
export type EnvironMode = 'hash' | 'redact' | 'raw';

/**
 * Turns a NUL-separated `environ` into JSON-friendly entries: names kept, values hashed
 * (`sha256:<hex>`), redacted or raw.
 */
export function transformEnviron(raw: Buffer, mode: EnvironMode): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const part of raw.toString('utf8').split('\0')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    let kept: string;
    if (mode === 'raw') kept = value;
    else if (mode === 'redact') kept = '<redacted>';
    else kept = `sha256:${createHash('sha256').update(value).digest('hex')}`;
    out.push({ name, value: kept });
  }
  return out;
}
