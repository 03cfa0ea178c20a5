/**
 * Package databases as they arrive from the target (hostile): dpkg `status`, distroless
 * `status.d/*`, `info/*.md5sums`, and apk `installed`. Bounded parsers that keep what they can,
 * reject what is malformed or dangerous (traversal, pseudo filesystems) with a reason, and say
 * when a cap cut them short.
 *
 * rpm: `/var/lib/rpm/rpmdb.sqlite` (or Berkeley DB `Packages`) holds binary RPM headers inside a
 * database file; reading the per-file digests needs an SQLite (or BDB) reader plus an RPM header
 * parser. Neither is done here: an rpm database is detected and reported as not verified.
 */
import { z } from 'zod';

/** Digest algorithm a package database records. */
export type PackageDigestAlgo = 'md5' | 'sha1' | 'sha256';

/** One file a package claims, with the digest it recorded. */
export interface PackageFile {
  /** Absolute, normalized path. */
  path: string;
  /** Owning package. */
  package: string;
  algo: PackageDigestAlgo;
  /** Lower-case hex digest. */
  digest: string;
  /** Where the claim came from (`dpkg:<file>` or `apk`). */
  source: string;
}

/** A package the database says is installed. */
export interface InstalledPackage {
  name: string;
  version?: string | undefined;
  /** dpkg `Status` (`install ok installed`…). */
  status?: string | undefined;
}

/** Everything read from the databases of one target. */
export interface PackageDb {
  packages: InstalledPackage[];
  files: Map<string, PackageFile>;
  /** Lines or entries that were rejected, with reasons (at most `maxRejections` kept). */
  rejected: { source: string; reason: string; text?: string | undefined }[];
  rejectedCount: number;
  /** Set when a cap stopped parsing: what was not read. */
  capped: string[];
  /** Databases found that are not verified (rpm). */
  unverified: string[];
}

/** Caps of the parsers. */
export interface PackageDbLimits {
  /** File entries kept in total (default 200 000). */
  maxFiles?: number | undefined;
  /** Packages kept (default 20 000). */
  maxPackages?: number | undefined;
  /** Rejections recorded (default 200); the rest are counted. */
  maxRejections?: number | undefined;
}

/** An empty database to fill. */
export function emptyPackageDb(): PackageDb {
  return { packages: [], files: new Map(), rejected: [], rejectedCount: 0, capped: [], unverified: [] };
}

const PACKAGE_NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9+.~_-]{0,127}$/);
const HEX = { md5: /^[0-9a-f]{32}$/, sha1: /^[0-9a-f]{40}$/, sha256: /^[0-9a-f]{64}$/ } as const;
const PSEUDO = ['/proc/', '/sys/', '/dev/'];

/**
 * Normalizes a database path to an absolute path. Returns a reason instead when it has `..`,
 * `.` or empty components, a NUL, control characters, or points into /proc, /sys or /dev.
 */
export function normalizeDbPath(raw: string): { path: string } | { reason: string } {
  if (raw.length === 0 || raw.length > 4096) return { reason: 'empty or longer than 4096' };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\x00-\x1f\x7f]/.test(raw)) return { reason: 'control character in path' };
  const abs = raw.startsWith('/') ? raw : `/${raw}`;
  const parts = abs.slice(1).split('/');
  for (const p of parts) {
    if (p === '..') return { reason: 'path traversal (..)' };
    if (p === '.' || p === '') return { reason: 'non-canonical path (. or //)' };
  }
  if (PSEUDO.some((x) => abs.startsWith(x))) return { reason: 'points into a pseudo filesystem' };
  return { path: abs };
}

class Builder {
  readonly maxFiles: number;
  readonly maxPackages: number;
  readonly maxRejections: number;
  private fileCapHit = false;
  constructor(
    readonly db: PackageDb,
    limits: PackageDbLimits,
  ) {
    this.maxFiles = limits.maxFiles ?? 200_000;
    this.maxPackages = limits.maxPackages ?? 20_000;
    this.maxRejections = limits.maxRejections ?? 200;
  }
  reject(source: string, reason: string, text?: string): void {
    this.db.rejectedCount++;
    if (this.db.rejected.length < this.maxRejections) {
      this.db.rejected.push({ source, reason, ...(text !== undefined ? { text: text.slice(0, 200) } : {}) });
    }
  }
  /** False once the file cap is reached. */
  addFile(f: Omit<PackageFile, 'path'> & { rawPath: string }): boolean {
    if (this.db.files.size >= this.maxFiles) {
      if (!this.fileCapHit) {
        this.fileCapHit = true;
        this.db.capped.push(`more than ${this.maxFiles} file entries: the rest were not read`);
      }
      return false;
    }
    const n = normalizeDbPath(f.rawPath);
    if ('reason' in n) {
      this.reject(f.source, n.reason, f.rawPath);
      return true;
    }
    if (!HEX[f.algo].test(f.digest)) {
      this.reject(f.source, `not a ${f.algo} digest`, f.digest);
      return true;
    }
    const prev = this.db.files.get(n.path);
    if (prev && (prev.digest !== f.digest || prev.package !== f.package)) {
      this.reject(
        f.source,
        `claimed again (first by ${prev.package} in ${prev.source}); first claim kept`,
        n.path,
      );
      return true;
    }
    this.db.files.set(n.path, {
      path: n.path,
      package: f.package,
      algo: f.algo,
      digest: f.digest,
      source: f.source,
    });
    return true;
  }
  addPackage(p: InstalledPackage, source: string): void {
    if (!PACKAGE_NAME.safeParse(p.name).success) {
      this.reject(source, 'invalid package name', p.name);
      return;
    }
    if (this.db.packages.length >= this.maxPackages) {
      if (!this.db.capped.some((c) => c.startsWith('more than') && c.includes('packages'))) {
        this.db.capped.push(`more than ${this.maxPackages} packages: the rest were not read`);
      }
      return;
    }
    this.db.packages.push(p);
  }
}

function* lines(text: string): Generator<string> {
  let pos = 0;
  while (pos <= text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    yield text.slice(pos, nl);
    pos = nl + 1;
  }
}

/**
 * Parses dpkg `status` (or one `status.d/<pkg>` file): stanzas with `Package`, `Status`,
 * `Version` and `Conffiles` (conffile md5s are recorded too, under `/etc` usually).
 */
export function parseDpkgStatus(
  text: string,
  source: string,
  db: PackageDb,
  limits: PackageDbLimits = {},
): void {
  const b = new Builder(db, limits);
  let cur: { name?: string; version?: string; status?: string; conffiles: string[] } = { conffiles: [] };
  let inConffiles = false;
  const flush = (): void => {
    if (cur.name !== undefined) {
      const installed = cur.status === undefined || /\binstalled$/.test(cur.status);
      if (installed) {
        b.addPackage({ name: cur.name, version: cur.version, status: cur.status }, source);
        for (const c of cur.conffiles) {
          const m = /^(\S+) ([0-9a-f]{32})(?: obsolete| remove-on-upgrade)*$/.exec(c.trim());
          if (!m) {
            if (!/ newconffile$/.test(c)) b.reject(source, 'malformed Conffiles line', c);
            continue;
          }
          if (
            !b.addFile({
              rawPath: m[1] as string,
              package: cur.name,
              algo: 'md5',
              digest: m[2] as string,
              source,
            })
          )
            break;
        }
      }
    } else if (cur.version !== undefined || cur.status !== undefined) {
      b.reject(source, 'stanza without Package');
    }
    cur = { conffiles: [] };
    inConffiles = false;
  };
  for (const line of lines(text)) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (inConffiles && cur.conffiles.length < 10_000) cur.conffiles.push(line);
      continue;
    }
    inConffiles = false;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      b.reject(source, 'not a field line', line);
      continue;
    }
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (field === 'Package') cur.name = value;
    else if (field === 'Version') cur.version = value.slice(0, 256);
    else if (field === 'Status') cur.status = value.slice(0, 128);
    else if (field === 'Conffiles') inConffiles = true;
  }
  flush();
}

/** Package name from an `info/<pkg>[:arch].md5sums` or `status.d/<pkg>.md5sums` file name. */
export function md5sumsPackage(fileName: string): string | undefined {
  const m = /^([A-Za-z0-9][A-Za-z0-9+.~_-]{0,127})(?::[a-z0-9-]{1,32})?\.md5sums$/.exec(fileName);
  return m?.[1];
}

/** Parses one `md5sums` file: `<md5>  <path without leading slash>` per line. */
export function parseMd5sums(
  text: string,
  pkg: string,
  source: string,
  db: PackageDb,
  limits: PackageDbLimits = {},
): void {
  const b = new Builder(db, limits);
  for (const line of lines(text)) {
    if (line === '') continue;
    const m = /^([0-9a-f]{32}) [ *](.+)$/.exec(line);
    if (!m) {
      b.reject(source, 'malformed md5sums line', line);
      continue;
    }
    if (!b.addFile({ rawPath: m[2] as string, package: pkg, algo: 'md5', digest: m[1] as string, source }))
      return;
  }
}

/**
 * Parses apk `lib/apk/db/installed`: `P:` package, `V:` version, `F:` directory, `R:` file,
 * `Z:Q1<base64 SHA-1>` checksum of the file named by the preceding `R:`.
 */
export function parseApkInstalled(text: string, db: PackageDb, limits: PackageDbLimits = {}): void {
  const source = 'apk:lib/apk/db/installed';
  const b = new Builder(db, limits);
  let pkg: string | undefined;
  let version: string | undefined;
  let dir = '';
  let file: string | undefined;
  const flushPkg = (): void => {
    if (pkg !== undefined) b.addPackage({ name: pkg, version }, source);
    pkg = undefined;
    version = undefined;
    dir = '';
    file = undefined;
  };
  for (const line of lines(text)) {
    if (line === '') {
      flushPkg();
      continue;
    }
    const tag = line.slice(0, 2);
    const value = line.slice(2);
    if (tag === 'P:') pkg = value;
    else if (tag === 'V:') version = value.slice(0, 256);
    else if (tag === 'F:') {
      dir = value;
      file = undefined;
    } else if (tag === 'R:') file = value;
    else if (tag === 'Z:' && file !== undefined) {
      const m = /^Q1([A-Za-z0-9+/]{27}=)$/.exec(value);
      const name = pkg ?? '?';
      if (!m) {
        b.reject(source, 'Z: is not Q1 + base64 SHA-1', line);
      } else if (
        !b.addFile({
          rawPath: dir ? `${dir}/${file}` : file,
          package: name,
          algo: 'sha1',
          digest: Buffer.from(m[1] as string, 'base64').toString('hex'),
          source,
        })
      ) {
        return;
      }
      file = undefined;
    } else if (!/^[A-Za-z]:/.test(line)) {
      b.reject(source, 'not a tag line', line);
    }
  }
  flushPkg();
}
