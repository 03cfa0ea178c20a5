/**
 * Installed-file integrity: read the package databases, list executables in bin/lib directories,
 * pull the files and hash them on our side, and compare. Three execs per target, each a constant
 * script; paths travel as positional arguments or are printed by the target inside frames, never
 * interpolated. Read-only in the target.
 */
import { createHash } from 'node:crypto';
import type { FrameEvent } from '../frames.js';
import {
  emptyPackageDb,
  md5sumsPackage,
  normalizeDbPath,
  type PackageDb,
  type PackageDbLimits,
  type PackageDigestAlgo,
  type PackageFile,
  parseApkInstalled,
  parseDpkgStatus,
  parseMd5sums,
} from './integrity-db.js';

const PRELUDE = [
  'IFS= read -r K || exit 97',
  'exec </dev/null',
  'e() { printf "\\n%s E %s\\n" "$K" "$1"; }',
  'b() { printf "\\n%s B %s\\n" "$K" "$1"; }',
];

/**
 * Reads the package databases. Positional arg: blocks of 64 KiB read at most per file. Frames:
 * `S` dpkg status, `D` a `status.d` entry, `M` an `info/*.md5sums`, `A` apk installed, `P` an rpm
 * database seen (no content); each body is `<path>\0<content>`.
 */
export const INTEGRITY_DB_SCRIPT = [
  ...PRELUDE,
  'C=$1',
  'o() { b "$1"; printf "%s\\0" "$2"; dd if="$2" bs=65536 count="$C" 2>/dev/null; e $?; }',
  '[ -f /var/lib/dpkg/status ] && o S /var/lib/dpkg/status',
  'for f in /var/lib/dpkg/status.d/*; do [ -f "$f" ] && o D "$f"; done',
  'for f in /var/lib/dpkg/info/*.md5sums; do [ -f "$f" ] && o M "$f"; done',
  '[ -f /lib/apk/db/installed ] && o A /lib/apk/db/installed',
  'for f in /var/lib/rpm/rpmdb.sqlite /var/lib/rpm/Packages /usr/lib/sysimage/rpm/rpmdb.sqlite; do [ -e "$f" ] && { b P; printf "%s\\0" "$f"; e 0; }; done',
  'exit 0',
].join('\n');

/** Directories whose executables and libraries are checked. */
export const INTEGRITY_DIRS: readonly string[] = [
  '/bin',
  '/sbin',
  '/usr/bin',
  '/usr/sbin',
  '/usr/local/bin',
  '/usr/local/sbin',
  '/lib',
  '/lib64',
  '/usr/lib',
  '/usr/lib64',
  '/usr/local/lib',
];

/**
 * Lists executables and shared objects: NUL-separated paths of regular files with an execute bit or
 * a `.so` name. Positional args: the directories (constants, see {@link INTEGRITY_DIRS}).
 */
export const INTEGRITY_LIST_SCRIPT =
  'for d in "$@"; do [ -d "$d" ] && [ ! -L "$d" ] && find "$d" -xdev -type f \\( -perm -100 -o -perm -010 -o -perm -001 -o -name "*.so" -o -name "*.so.*" \\) -print0 2>/dev/null; done; exit 0';

/**
 * Pulls files as frames. Positional args: `blocks path…` (64 KiB blocks at most per file). Frames:
 * `<i> F` regular file bytes, `<i> L` a symlink (not followed), `<i> N` absent or not a regular file.
 */
export const INTEGRITY_PULL_SCRIPT = [
  ...PRELUDE,
  'C=$1; shift; i=0',
  'for p in "$@"; do',
  '  if [ -L "$p" ]; then b "$i L"; e 0',
  '  elif [ -f "$p" ]; then b "$i F"; dd if="$p" bs=65536 count="$C" 2>/dev/null; e $?',
  '  else b "$i N"; e 0; fi',
  '  i=$((i+1))',
  'done',
].join('\n');

/** argv of the database read (send the frame key line on stdin). */
export function integrityDbArgv(shell: string, blocksPerFile = 256): string[] {
  if (!Number.isInteger(blocksPerFile) || blocksPerFile < 1 || blocksPerFile > 65_536) {
    throw new RangeError(`invalid block cap ${blocksPerFile}`);
  }
  return [shell, '-c', INTEGRITY_DB_SCRIPT, 'eksf-pkgdb', String(blocksPerFile)];
}

/** argv of the executable listing (no stdin). */
export function integrityListArgv(shell: string, dirs: readonly string[] = INTEGRITY_DIRS): string[] {
  for (const d of dirs)
    if (!/^\/[A-Za-z0-9/_.-]{1,200}$/.test(d) || d.includes('..')) throw new RangeError(`invalid dir ${d}`);
  return [shell, '-c', INTEGRITY_LIST_SCRIPT, 'eksf-execlist', ...dirs];
}

/** Most argv bytes of one pull exec (the API server carries argv in the URL). */
export const PULL_ARGV_BYTES = 96 * 1024;

/**
 * argv batches of the pull (send the frame key line on stdin to each). Paths must be normalized
 * absolute paths ({@link normalizeDbPath}); each is a positional argument, never part of the script.
 */
export function integrityPullArgv(shell: string, paths: readonly string[], blocksPerFile = 1024): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const p of paths) {
    if ('reason' in normalizeDbPath(p) || !p.startsWith('/'))
      throw new RangeError(`invalid path ${JSON.stringify(p)}`);
    if (cur.length > 0 && bytes + p.length + 1 > PULL_ARGV_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += p.length + 1;
  }
  if (cur.length > 0) out.push(cur);
  return out.map((batch) => [
    shell,
    '-c',
    INTEGRITY_PULL_SCRIPT,
    'eksf-pull',
    String(blocksPerFile),
    ...batch,
  ]);
}

/** Caps of the database decoder. */
export interface IntegrityDbCaps extends PackageDbLimits {
  /** Database files read at most (default 20 000). */
  maxDbFiles?: number | undefined;
  /** Bytes of all database files together (default 128 MiB). */
  maxDbBytes?: number | undefined;
}

/**
 * Decodes the database read into a {@link PackageDb}. Hostile: file count and total bytes capped
 * (then reading stops, `stoppedEarly` says to abort the exec), each file parsed with bounds.
 */
export async function decodePackageDb(
  events: AsyncIterable<FrameEvent>,
  caps: IntegrityDbCaps = {},
): Promise<{
  db: PackageDb;
  stoppedEarly: boolean;
  files: { kind: string; path: string; bytes: number; rc: number | null }[];
}> {
  const maxFiles = caps.maxDbFiles ?? 20_000;
  const maxBytes = caps.maxDbBytes ?? 128 * 1024 * 1024;
  const db = emptyPackageDb();
  const files: { kind: string; path: string; bytes: number; rc: number | null }[] = [];
  let cur: { kind: string; chunks: Buffer[]; bytes: number } | undefined;
  let total = 0;
  let stoppedEarly = false;
  const finish = (rc: number | null): void => {
    if (!cur) return;
    const body = Buffer.concat(cur.chunks);
    const k = cur.kind;
    cur = undefined;
    const nul = body.indexOf(0);
    if (nul < 0 || nul > 4096) {
      db.rejected.push({ source: 'stream', reason: 'frame without a path' });
      db.rejectedCount++;
      return;
    }
    const path = body.subarray(0, nul).toString('utf8');
    const content = body.subarray(nul + 1).toString('utf8');
    files.push({ kind: k, path, bytes: body.length - nul - 1, rc });
    const name = path.slice(path.lastIndexOf('/') + 1);
    const source = `dpkg:${path}`;
    if (rc !== 0) {
      db.rejected.push({ source, reason: `reader exited ${rc}: content may be incomplete` });
      db.rejectedCount++;
    }
    if (k === 'S') parseDpkgStatus(content, source, db, caps);
    else if (k === 'D' || k === 'M') {
      if (name.endsWith('.md5sums')) {
        const pkg = md5sumsPackage(name);
        if (pkg) parseMd5sums(content, pkg, source, db, caps);
        else {
          db.rejected.push({ source, reason: 'md5sums file name is not <package>.md5sums' });
          db.rejectedCount++;
        }
      } else if (k === 'D') parseDpkgStatus(content, source, db, caps);
    } else if (k === 'A') parseApkInstalled(content, db, caps);
    else if (k === 'P')
      db.unverified.push(`rpm database ${path}: per-file digests not verified (needs an RPM header reader)`);
  };
  for await (const ev of events) {
    if (ev.type === 'error') {
      db.capped.push(`database stream: ${ev.reason}`);
      stoppedEarly = true;
      break;
    }
    if (ev.type === 'begin') {
      const kind = ev.header.join(' ');
      if (!['S', 'D', 'M', 'A', 'P'].includes(kind)) {
        db.capped.push(`database stream: unexpected frame ${JSON.stringify(kind.slice(0, 20))}`);
        stoppedEarly = true;
        break;
      }
      if (files.length >= maxFiles) {
        db.capped.push(`more than ${maxFiles} database files: the rest were not read`);
        stoppedEarly = true;
        break;
      }
      cur = { kind, chunks: [], bytes: 0 };
    } else if (ev.type === 'data' && cur) {
      total += ev.chunk.length;
      if (total > maxBytes) {
        db.capped.push(`database files larger than ${maxBytes} bytes together: the rest were not read`);
        stoppedEarly = true;
        cur = undefined;
        break;
      }
      cur.chunks.push(Buffer.from(ev.chunk));
      cur.bytes += ev.chunk.length;
    } else if (ev.type === 'end') {
      finish(ev.rc);
    }
  }
  return { db, stoppedEarly, files };
}

/** Decodes the NUL-separated executable listing (bounded: at most `maxEntries`, 4 KiB per path). */
export async function decodeExecutableList(
  source: AsyncIterable<Uint8Array>,
  maxEntries = 100_000,
): Promise<{ paths: string[]; capped: boolean; rejected: number }> {
  const paths: string[] = [];
  let rejected = 0;
  let carry = Buffer.alloc(0);
  for await (const raw of source) {
    carry = carry.length === 0 ? Buffer.from(raw) : Buffer.concat([carry, raw]);
    let at = carry.indexOf(0);
    while (at >= 0) {
      const p = carry.subarray(0, at).toString('utf8');
      carry = carry.subarray(at + 1);
      const n = normalizeDbPath(p);
      if ('path' in n) paths.push(n.path);
      else rejected++;
      if (paths.length >= maxEntries) return { paths, capped: true, rejected };
      at = carry.indexOf(0);
    }
    if (carry.length > 4096) return { paths, capped: true, rejected: rejected + 1 };
  }
  return { paths, capped: false, rejected };
}

/** A pulled file, hashed here. */
export interface PulledFile {
  path: string;
  kind: 'file' | 'symlink' | 'absent';
  bytes: number;
  md5?: string | undefined;
  sha1?: string | undefined;
  sha256?: string | undefined;
  /** False when the cap cut the file or the reader failed: its hash is not comparable. */
  whole: boolean;
  reason?: string | undefined;
}

/**
 * Decodes one pull exec. `paths` is the batch in order; `capBytes` is blocks × 64 KiB (a file that
 * reaches it is not whole). Frames out of order stop decoding.
 */
export async function decodePulledFiles(
  events: AsyncIterable<FrameEvent>,
  paths: readonly string[],
  capBytes: number,
  /** Digest each path's package recorded (aligned with `paths`); SHA-256 is always computed. Default: md5 and sha1 for all. */
  algos?: readonly (PackageDigestAlgo | undefined)[],
  /** Bytes this pull may read in all; past it the current file is cut (not whole) and decoding stops. */
  budgetBytes = Number.POSITIVE_INFINITY,
): Promise<{ files: PulledFile[]; problem?: string | undefined; budgetSpent?: boolean | undefined }> {
  const files: PulledFile[] = [];
  let spent = 0;
  let cur:
    | { f: PulledFile; h: { n: 'md5' | 'sha1' | 'sha256'; h: ReturnType<typeof createHash> }[] }
    | undefined;
  for await (const ev of events) {
    if (ev.type === 'error') {
      if (cur) {
        // the stream broke inside this file: no digest is claimed for a prefix
        cur.f.whole = false;
        cur.f.reason = `stream broke inside the file after ${cur.f.bytes} bytes`;
      }
      return { files, problem: ev.reason };
    }
    if (ev.type === 'begin') {
      const [i, t] = ev.header;
      const path = paths[files.length];
      if (i !== String(files.length) || path === undefined || !['F', 'L', 'N'].includes(t ?? '')) {
        return { files, problem: `unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 40))}` };
      }
      const f: PulledFile = {
        path,
        kind: t === 'F' ? 'file' : t === 'L' ? 'symlink' : 'absent',
        bytes: 0,
        whole: true,
      };
      const want = algos ? algos[files.length] : undefined;
      const names: ('md5' | 'sha1' | 'sha256')[] =
        t !== 'F'
          ? []
          : algos
            ? want && want !== 'sha256'
              ? [want, 'sha256']
              : ['sha256']
            : ['md5', 'sha1', 'sha256'];
      cur = { f, h: names.map((n) => ({ n, h: createHash(n) })) };
      files.push(f);
    } else if (ev.type === 'data' && cur) {
      const room = Math.min(capBytes - cur.f.bytes, budgetBytes - spent);
      const piece = ev.chunk.subarray(0, Math.max(0, room));
      for (const x of cur.h) x.h.update(piece);
      cur.f.bytes += piece.length;
      spent += piece.length;
      if (ev.chunk.length > piece.length) {
        cur.f.whole = false;
        cur.f.reason = 'more bytes than the cap';
        if (spent >= budgetBytes) {
          cur.f.reason = `cut at the target's ${budgetBytes}-byte budget`;
          return { files, budgetSpent: true };
        }
      }
    } else if (ev.type === 'end' && cur) {
      for (const x of cur.h) cur.f[x.n] = x.h.digest('hex');
      if (ev.rc !== 0) {
        cur.f.whole = false;
        cur.f.reason = `reader exited ${ev.rc}`;
      } else if (cur.f.kind === 'file' && cur.f.bytes >= capBytes) {
        cur.f.whole = false;
        cur.f.reason = `cut at the ${capBytes}-byte cap`;
      }
      cur = undefined;
    }
  }
  if (cur) {
    cur.f.whole = false;
    cur.f.reason = 'stream ended inside the file';
    return { files, problem: 'stream ended inside a frame' };
  }
  return { files };
}

/** Canonical path under usr-merge (`/bin/x` and `/usr/bin/x` are one file when `/bin` → `usr/bin`). */
export function usrMergedPath(p: string): string {
  for (const d of ['/bin/', '/sbin/', '/lib/', '/lib64/', '/lib32/', '/libx32/'])
    if (p.startsWith(d)) return `/usr${p}`;
  return p;
}

/** Options of {@link planIntegrityPull}. */
export interface IntegrityPlanOptions {
  /** Directories checked (default {@link INTEGRITY_DIRS}). */
  dirs?: readonly string[] | undefined;
  /** Files pulled at most (default 5000). */
  maxFiles?: number | undefined;
}

/**
 * Which files to pull: the database's files under the checked directories, then the listed
 * executables no package claims; capped (what is left out is returned as `notChecked`).
 */
export function planIntegrityPull(
  db: PackageDb,
  executables: readonly string[],
  opts: IntegrityPlanOptions = {},
): { pull: string[]; notChecked: string[] } {
  const dirs = opts.dirs ?? INTEGRITY_DIRS;
  const max = opts.maxFiles ?? 5000;
  const inDirs = (p: string): boolean => dirs.some((d) => p.startsWith(`${d}/`));
  const claimed = new Set<string>();
  for (const p of db.files.keys()) claimed.add(usrMergedPath(p));
  const want: string[] = [];
  for (const f of db.files.values()) if (inDirs(f.path)) want.push(f.path);
  for (const e of executables) if (!claimed.has(usrMergedPath(e))) want.push(e);
  const unique = [...new Set(want)];
  return { pull: unique.slice(0, max), notChecked: unique.slice(max) };
}

/** One integrity result row. */
export interface IntegrityRow {
  path: string;
  verdict: 'ok' | 'modified' | 'missing' | 'replaced-by-symlink' | 'unpackaged-executable' | 'not-checked';
  package?: string | undefined;
  algo?: PackageDigestAlgo | undefined;
  expected?: string | undefined;
  actual?: string | undefined;
  sha256?: string | undefined;
  bytes?: number | undefined;
  reason?: string | undefined;
}

/** `files/integrity.json`. */
export interface IntegrityReport {
  status: 'complete' | 'partial';
  reasons: string[];
  packages: number;
  filesInDb: number;
  checked: number;
  counts: Record<IntegrityRow['verdict'], number>;
  /** Rows other than `ok` (capped at `maxRows`), then `ok` rows only as a count. */
  rows: IntegrityRow[];
  rejected: PackageDb['rejected'];
  rejectedCount: number;
  unverified: string[];
}

/** A finding for the acquisition's findings list. */
export interface IntegrityFinding {
  severity: 'high' | 'medium' | 'info';
  kind: 'modified-packaged-file' | 'missing-packaged-file' | 'unpackaged-executable' | 'integrity-incomplete';
  path?: string | undefined;
  text: string;
}

/**
 * Compares pulled files with the database. A verdict needs a whole file: a cut read is
 * `not-checked`, never `ok`. Findings: modified (high), missing (medium), unpackaged executable
 * (medium; info under `/usr/local`).
 */
export function compareIntegrity(
  db: PackageDb,
  pulled: readonly PulledFile[],
  extra: { notChecked?: readonly string[]; problems?: readonly string[]; maxRows?: number } = {},
): { report: IntegrityReport; findings: IntegrityFinding[] } {
  const byCanon = new Map<string, PackageFile>();
  for (const f of db.files.values()) byCanon.set(usrMergedPath(f.path), f);
  const rows: IntegrityRow[] = [];
  const findings: IntegrityFinding[] = [];
  const counts: IntegrityReport['counts'] = {
    ok: 0,
    modified: 0,
    missing: 0,
    'replaced-by-symlink': 0,
    'unpackaged-executable': 0,
    'not-checked': 0,
  };
  const maxRows = extra.maxRows ?? 10_000;
  const add = (r: IntegrityRow): void => {
    counts[r.verdict]++;
    if (r.verdict !== 'ok' && rows.length < maxRows) rows.push(r);
  };
  for (const p of pulled) {
    const claim = db.files.get(p.path) ?? byCanon.get(usrMergedPath(p.path));
    if (!claim) {
      if (p.kind !== 'file') continue;
      add({
        path: p.path,
        verdict: 'unpackaged-executable',
        sha256: p.sha256,
        bytes: p.bytes,
        ...(p.whole ? {} : { reason: p.reason }),
      });
      findings.push({
        severity: p.path.startsWith('/usr/local/') ? 'info' : 'medium',
        kind: 'unpackaged-executable',
        path: p.path,
        text: `${p.path}: executable or library no package claims${p.sha256 ? ` (sha256 ${p.sha256})` : ''}`,
      });
      continue;
    }
    const base = { path: p.path, package: claim.package, algo: claim.algo, expected: claim.digest };
    if (p.kind === 'absent') {
      add({ ...base, verdict: 'missing' });
      findings.push({
        severity: 'medium',
        kind: 'missing-packaged-file',
        path: p.path,
        text: `${p.path} (package ${claim.package}) is missing`,
      });
      continue;
    }
    if (p.kind === 'symlink') {
      add({ ...base, verdict: 'replaced-by-symlink' });
      findings.push({
        severity: 'high',
        kind: 'modified-packaged-file',
        path: p.path,
        text: `${p.path} (package ${claim.package}) is now a symlink`,
      });
      continue;
    }
    if (!p.whole) {
      add({ ...base, verdict: 'not-checked', bytes: p.bytes, reason: p.reason });
      continue;
    }
    const actual = claim.algo === 'md5' ? p.md5 : claim.algo === 'sha1' ? p.sha1 : p.sha256;
    if (actual === claim.digest) add({ ...base, verdict: 'ok', actual, sha256: p.sha256, bytes: p.bytes });
    else {
      add({ ...base, verdict: 'modified', actual, sha256: p.sha256, bytes: p.bytes });
      findings.push({
        severity: 'high',
        kind: 'modified-packaged-file',
        path: p.path,
        text: `${p.path} differs from package ${claim.package} (${claim.algo} ${claim.digest} expected, ${actual} found; sha256 ${p.sha256})`,
      });
    }
  }
  for (const p of extra.notChecked ?? []) add({ path: p, verdict: 'not-checked', reason: 'file cap' });
  const reasons = [...db.capped, ...(extra.problems ?? []), ...db.unverified];
  if (counts['not-checked'] > 0)
    reasons.push(`${counts['not-checked']} files not checked (caps or cut reads)`);
  if (db.rejectedCount > 0) reasons.push(`${db.rejectedCount} database entries rejected`);
  if (db.packages.length === 0 && db.files.size === 0)
    reasons.push('no package database found: only unpackaged executables are reported');
  if (reasons.length > 0)
    findings.push({ severity: 'info', kind: 'integrity-incomplete', text: reasons.join('; ') });
  return {
    report: {
      status: reasons.length === 0 ? 'complete' : 'partial',
      reasons,
      packages: db.packages.length,
      filesInDb: db.files.size,
      checked: pulled.length,
      counts,
      rows,
      rejected: db.rejected,
      rejectedCount: db.rejectedCount,
      unverified: db.unverified,
    },
    findings,
  };
}
