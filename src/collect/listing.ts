/**
 * Parsing of the listing (NUL-separated names) and `stat -c` output, and bodyfile rendering.
 * All input is hostile: names are never trusted to be well-formed, stat records are aligned with
 * the names that were asked for so a crafted file name cannot inject records.
 */

/** One listed path with what is known about it. */
export interface ListedEntry {
  /** Container path (without the root prefix). */
  path: string;
  /** `f` regular, `d` directory, `l` symlink, `o` other (device, fifo, socket), `?` unknown. */
  type: 'f' | 'd' | 'l' | 'o' | '?';
  /** Inode number. */
  inode?: number | undefined;
  /** Full st_mode. */
  mode?: number | undefined;
  /** Hard-link count. */
  nlink?: number | undefined;
  /** Owner uid. */
  uid?: number | undefined;
  /** Owner gid. */
  gid?: number | undefined;
  /** Size in bytes when listed. */
  size?: number | undefined;
  /** Access time (epoch seconds). */
  atime?: number | undefined;
  /** Modification time (epoch seconds). */
  mtime?: number | undefined;
  /** Status-change time (epoch seconds). */
  ctime?: number | undefined;
  /** Birth time (epoch seconds), where `stat` and the filesystem give it. */
  birth?: number | undefined;
  /** Whether the name can be sent back as an exec argument (valid UTF-8, no NUL). */
  requestable: boolean;
}

/** Result of {@link parseListing}. */
export interface ListingParse {
  /** Entries in listing order (deduplicated). */
  entries: ListedEntry[];
  /** Records that were not paths under the root (ignored), e.g. garbage. */
  rejected: number;
  /** Whether the entry cap stopped the parse. */
  capped: boolean;
}

/** Parses the listing script's output. Paths outside `rootPrefix` are rejected. */
export function parseListing(raw: Buffer, rootPrefix: string, maxEntries: number): ListingParse {
  const entries: ListedEntry[] = [];
  const seen = new Set<string>();
  let type: ListedEntry['type'] = '?';
  let rejected = 0;
  let capped = false;
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(0, start);
    if (end < 0) end = raw.length;
    const rec = raw.subarray(start, end);
    start = end + 1;
    if (rec.length === 0) continue;
    if (rec[0] === 0x54 /* T */ && rec.length === 2) {
      const t = String.fromCharCode(rec[1] as number);
      type = t === 'f' || t === 'd' || t === 'l' || t === 'o' ? t : '?';
      continue;
    }
    const text = rec.toString('utf8');
    const requestable = Buffer.from(text, 'utf8').equals(rec);
    let path = text;
    if (rootPrefix) {
      if (!(text === rootPrefix || text.startsWith(`${rootPrefix}/`))) {
        rejected++;
        continue;
      }
      path = text.slice(rootPrefix.length) || '/';
    }
    if (!path.startsWith('/') || path.split('/').includes('..')) {
      rejected++;
      continue;
    }
    path = path.replace(/\/{2,}/g, '/');
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    if (seen.has(path)) continue;
    if (entries.length >= maxEntries) {
      capped = true;
      break;
    }
    seen.add(path);
    entries.push({ path, type, requestable });
  }
  return { entries, rejected, capped };
}

/** The nine numeric fields, then birth time (`%W`: seconds, `0` when unknown, or the letter back from a `stat` without it). */
const STAT_PREFIX =
  /(\d+)\|([0-9a-fA-F]+)\|(\d+)\|(\d+)\|(\d+)\|(\d+)\|(\d+)\|(\d+)\|(\d+)\|(\d{1,12}|[^|\n\d][^|\n]{0,15})\|/y;

/** Type letter from a raw st_mode. */
export function typeFromMode(mode: number): ListedEntry['type'] {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'f';
    case 0o040000:
      return 'd';
    case 0o120000:
      return 'l';
    default:
      return 'o';
  }
}

/**
 * Applies `stat -c '%i|%f|%h|%u|%g|%s|%X|%Y|%Z|%W|%n'` output to `entries` (in the order their full
 * paths were passed). A record is accepted only when its name is exactly the next expected name.
 * Returns how many entries got metadata.
 */
export function applyStatOutput(
  out: string,
  expected: readonly { full: string; entry: ListedEntry }[],
): number {
  let pos = 0;
  let applied = 0;
  for (const { full, entry } of expected) {
    STAT_PREFIX.lastIndex = pos;
    const m = STAT_PREFIX.exec(out);
    if (!m) continue;
    const after = STAT_PREFIX.lastIndex;
    if (!out.startsWith(`${full}\n`, after)) continue;
    const nums = m.slice(1, 10).map((v, i) => (i === 1 ? Number.parseInt(v, 16) : Number(v)));
    const birth = /^\d+$/.test(m[10] ?? '') ? Number(m[10]) : 0;
    entry.birth = birth > 0 ? birth : undefined;
    entry.inode = nums[0];
    entry.mode = nums[1];
    entry.nlink = nums[2];
    entry.uid = nums[3];
    entry.gid = nums[4];
    entry.size = nums[5];
    entry.atime = nums[6];
    entry.mtime = nums[7];
    entry.ctime = nums[8];
    entry.type = typeFromMode(entry.mode ?? 0);
    pos = after + full.length + 1;
    applied++;
  }
  return applied;
}

function modeString(mode: number | undefined, type: ListedEntry['type']): string {
  if (mode === undefined) return `${type === '?' ? '-' : type}?????????`;
  const t = { f: '-', d: 'd', l: 'l', o: '?', '?': '?' }[typeFromMode(mode)] ?? '?';
  const rwx = 'rwxrwxrwx';
  let s = t;
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? rwx[i] : '-';
  if (mode & 0o4000) s = `${s.slice(0, 3)}${mode & 0o100 ? 's' : 'S'}${s.slice(4)}`;
  if (mode & 0o2000) s = `${s.slice(0, 6)}${mode & 0o010 ? 's' : 'S'}${s.slice(7)}`;
  if (mode & 0o1000) s = `${s.slice(0, 9)}${mode & 0o001 ? 't' : 'T'}`;
  return s;
}

/** Escapes a name for one bodyfile field (`|`, backslash, control characters). */
export function escapeBodyName(name: string): string {
  let out = '';
  for (const ch of name) {
    const c = ch.codePointAt(0) as number;
    if (ch === '|' || ch === '\\' || c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/** Renders entries as a TSK 3.x bodyfile: `MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime`. */
export function renderBodyfile(entries: readonly ListedEntry[]): string {
  const lines: string[] = [];
  for (const e of entries) {
    const f = (v: number | undefined) => (v === undefined ? '' : String(v));
    lines.push(
      `0|${escapeBodyName(e.path)}|${f(e.inode)}|${modeString(e.mode, e.type)}|${f(e.uid)}|${f(e.gid)}|${f(e.size)}|${f(e.atime)}|${f(e.mtime)}|${f(e.ctime)}|${e.birth ?? 0}`,
    );
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** What the metadata listing shows without reading any content (UAC's bodyfile-derived lists). */
export interface MetadataFindings {
  /** Container start (epoch seconds), when the pod status gave it. */
  containerStartedAt?: number | undefined;
  /** Files modified or changed (mtime/ctime) at or after the container started: drift from the image. */
  changedSinceStart: string[];
  /** Set-user-ID files. */
  setuid: string[];
  /** Set-group-ID files. */
  setgid: string[];
  /** World-writable regular files and directories without the sticky bit. */
  worldWritable: string[];
  /** Executable regular files under /tmp, /var/tmp, /dev/shm, /run, /home, /root. */
  executablesInWritableDirs: string[];
  /** Lists cut at this many entries each. */
  cap: number;
}

/** Derives drift, SUID/SGID, world-writable and dropped-executable lists from a stat'ed listing. */
export function metadataFindings(
  entries: readonly ListedEntry[],
  startedAt: number | undefined,
  cap = 5000,
): MetadataFindings {
  const f: MetadataFindings = {
    containerStartedAt: startedAt,
    changedSinceStart: [],
    setuid: [],
    setgid: [],
    worldWritable: [],
    executablesInWritableDirs: [],
    cap,
  };
  const add = (list: string[], p: string) => {
    if (list.length < cap) list.push(p);
  };
  for (const e of entries) {
    if (e.mode === undefined) continue;
    const t = typeFromMode(e.mode);
    if (
      startedAt !== undefined &&
      ((e.mtime ?? 0) >= startedAt || (e.ctime ?? 0) >= startedAt) &&
      t !== 'd'
    ) {
      add(f.changedSinceStart, e.path);
    }
    if (t === 'f' && e.mode & 0o4000) add(f.setuid, e.path);
    if (t === 'f' && e.mode & 0o2000) add(f.setgid, e.path);
    if ((t === 'f' || t === 'd') && e.mode & 0o002 && !(t === 'd' && e.mode & 0o1000))
      add(f.worldWritable, e.path);
    if (t === 'f' && e.mode & 0o111 && /^\/(tmp|var\/tmp|dev\/shm|run|home|root)\//.test(e.path)) {
      add(f.executablesInWritableDirs, e.path);
    }
  }
  return f;
}
