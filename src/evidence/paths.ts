/**
 * Paths inside a bundle. Artifact paths are built by our code but embed names from the target
 * (container names, file paths), so every one goes through {@link sanitizeBundlePath} and a
 * {@link PathAllocator} before anything is written.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { BUNDLE_FILES } from './types.js';

/** Length caps (UTF-8 bytes). */
export const PATH_LIMITS = Object.freeze({
  /** Per path component; 255 is NAME_MAX on Linux filesystems. */
  component: 200,
  /** Whole relative path; leaves room for an S3 prefix within the 1024-byte key limit. */
  total: 700,
});

const RESERVED_TOP = new Set<string>([...Object.values(BUNDLE_FILES)].map((n) => n.toLowerCase()));

// C0/C1 controls, DEL, backslash, and the bidi/invisible format characters that make names lie on screen.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\\\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff0-\uffff]/gu;
// Lone surrogates cannot be encoded to UTF-8 faithfully.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const utf8Len = (s: string): number => Buffer.byteLength(s, 'utf8');

function pct(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code >= 0xd800 && code <= 0xdfff) return `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return [...Buffer.from(ch, 'utf8')]
    .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('');
}

function shortHash(s: string, n = 16): string {
  return createHash('sha256').update(s, 'utf8').digest('hex').slice(0, n);
}

/** Cuts `s` to at most `max` UTF-8 bytes without splitting a code point. */
function cutUtf8(s: string, max: number): string {
  let out = '';
  let len = 0;
  for (const ch of s) {
    const l = utf8Len(ch);
    if (len + l > max) break;
    out += ch;
    len += l;
  }
  return out;
}

function sanitizeComponent(raw: string): string {
  let c = raw.normalize('NFC');
  c = c.replace(/%/g, '%25');
  c = c.replace(LONE_SURROGATE, pct);
  c = c.replace(UNSAFE, pct);
  if (c === '.' || c === '..') c = c.replace(/\./g, '%2E');
  // Trailing dots/spaces vanish on Windows and confuse humans; encode them.
  c = c.replace(/[. ]+$/u, (m) => [...m].map(pct).join(''));
  if (utf8Len(c) > PATH_LIMITS.component) {
    const dot = c.lastIndexOf('.');
    const ext = dot > 0 && c.length - dot <= 16 ? c.slice(dot) : '';
    const keep = PATH_LIMITS.component - utf8Len(ext) - 18;
    c = `${cutUtf8(c.slice(0, c.length - ext.length), keep)}~${shortHash(c)}${ext}`;
  }
  return c;
}

/**
 * Turns a requested artifact path into a safe, relative, `/`-separated bundle path.
 *
 * Rules: `\` is not a separator (it is encoded); empty and `.` components are dropped; a leading
 * `/` is ignored (paths are always relative to the bundle); `..` becomes `%2E%2E`; NUL, control,
 * bidi-override and zero-width characters, `\`, lone surrogates and `%` itself are
 * percent-encoded (UTF-8 bytes), so distinct inputs stay distinct; each component is NFC-normalized
 * (so `é` composed and decomposed are the same file) and capped at {@link PATH_LIMITS}.component
 * bytes (longer ones keep a prefix, a hash of the whole component and the extension); a path
 * longer than {@link PATH_LIMITS}.total bytes becomes `_long/<hash>/<last component>`. Top-level
 * names the bundle itself uses (manifest.json…) get a `_` prefix.
 *
 * @throws ConfigError when nothing usable is left (e.g. `""`, `/`, `./.`).
 * @example sanitizeBundlePath('containers/../../etc/passwd') // 'containers/%2E%2E/%2E%2E/etc/passwd'
 */
export function sanitizeBundlePath(requested: string): string {
  if (typeof requested !== 'string') throw new ConfigError('artifact path must be a string');
  const parts = requested
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .map(sanitizeComponent);
  if (parts.length === 0) {
    throw new ConfigError(
      `artifact path ${JSON.stringify(requested)} has no usable component; pass a file name`,
    );
  }
  const first = parts[0] ?? '';
  if (RESERVED_TOP.has(first.toLowerCase()) || first.startsWith('_long')) parts[0] = `_${first}`;
  let out = parts.join('/');
  if (utf8Len(out) > PATH_LIMITS.total) {
    const last = sanitizeComponent(cutUtf8(parts[parts.length - 1] ?? '', 120));
    out = `_long/${shortHash(out, 32)}/${last}`;
  }
  return out;
}

/** Key under which two paths collide on a case-insensitive, normalization-insensitive filesystem. */
export function collisionKey(path: string): string {
  return path.normalize('NFKC').toLowerCase().normalize('NFC');
}

function withSuffix(component: string, n: number): string {
  const dot = component.lastIndexOf('.');
  if (dot > 0) return `${component.slice(0, dot)}~${n}${component.slice(dot)}`;
  return `${component}~${n}`;
}

/**
 * Hands out unique bundle paths. A path that collides with an earlier one (exactly, by case or
 * Unicode compatibility form, or a file where a directory is needed and vice versa) gets a `~N`
 * suffix on the colliding component, N counting from 2. The result depends only on the order of
 * calls, so it is deterministic for a given acquisition order.
 */
export class PathAllocator {
  readonly #files = new Set<string>();
  readonly #dirs = new Set<string>();

  /** Reserves `path` (already sanitized or not) and returns the unique sanitized path. */
  allocate(requested: string): string {
    const parts = sanitizeBundlePath(requested).split('/');
    for (let i = 0; i < parts.length; i++) {
      const isLast = i === parts.length - 1;
      const base = parts[i] ?? '';
      for (let n = 2; ; n++) {
        const prefix = collisionKey(parts.slice(0, i + 1).join('/'));
        const clash = isLast ? this.#files.has(prefix) || this.#dirs.has(prefix) : this.#files.has(prefix);
        if (!clash) break;
        parts[i] = withSuffix(base, n);
      }
    }
    for (let i = 0; i < parts.length - 1; i++) this.#dirs.add(collisionKey(parts.slice(0, i + 1).join('/')));
    const out = parts.join('/');
    this.#files.add(collisionKey(out));
    return out;
  }

  /** Marks a path as taken without sanitizing it (for the bundle's own files). */
  reserve(path: string): void {
    this.#files.add(collisionKey(path));
  }
}
