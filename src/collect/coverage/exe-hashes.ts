/**
 * SHA-256 of every running executable and mapped file, deduplicated by device + inode, capped,
 * hashed on our side. Two execs: an inventory (`exe` link and `maps` per process) and a pull that
 * reads each object once, preferring the kernel's handle (`/proc/<pid>/exe`,
 * `/proc/<pid>/map_files/<range>`) over the path, which may now name another file.
 */
import { createHash } from 'node:crypto';
import { demuxFrames, type FrameEvent, newFrameKey } from '../frames.js';
import { type CoverageExec, sendStdin, settle } from './exec.js';
import { hex, parseMaps } from './memory-maps.js';

const PRELUDE = [
  'IFS= read -r K || exit 97',
  'exec </dev/null',
  'e() { printf "\\n%s E %s\\n" "$K" "$1"; }',
  'b() { printf "\\n%s B %s\\n" "$K" "$1"; }',
];

/**
 * Inventory. Positional args: `mapsPages maxProcs`. Frames: `<pid> E` (exe link target, empty
 * without readlink), `<pid> M` (maps), `cap` when more processes exist than `maxProcs`.
 */
export const EXE_INVENTORY_SCRIPT = [
  ...PRELUDE,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  'C=$1; X=$2; B=${3:-/proc}; n=0',
  'for d in "$B"/[0-9]*; do',
  '  [ -d "$d" ] || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  p=${d##*/}',
  // this exec's own shell and its wrapper are gone by the time the pull reads their handles
  '  case $p in "$$"|"$PPID") continue;; esac',
  '  n=$((n+1)); if [ "$n" -gt "$X" ]; then b cap; e 0; break; fi',
  '  b "$p E"; readlink "$d/exe" 2>/dev/null; e $?',
  '  b "$p M"; dd if="$d/maps" bs=4096 count="$C" 2>/dev/null; e $?',
  'done',
].join('\n');

/**
 * Pull. Positional args: `blocks` then pairs `primary fallback` (`-` for none). Frames:
 * `<i> A` bytes of the primary, `<i> B` bytes of the fallback, `<i> N` neither could be opened.
 */
export const EXE_PULL_SCRIPT = [
  ...PRELUDE,
  'C=$1; shift; i=0',
  'while [ "$#" -ge 2 ]; do',
  '  a=$1; f=$2; shift 2',
  '  if dd if="$a" bs=65536 count=0 2>/dev/null; then b "$i A"; dd if="$a" bs=65536 count="$C" 2>/dev/null; e $?',
  '  elif [ "$f" != - ] && [ -f "$f" ] && [ ! -L "$f" ]; then b "$i B"; dd if="$f" bs=65536 count="$C" 2>/dev/null; e $?',
  '  else b "$i N"; e 0; fi',
  '  i=$((i+1))',
  'done',
].join('\n');

/** argv of the inventory exec. */
export function exeInventoryArgv(
  shell: string,
  mapsPages = 256,
  maxProcesses = 4096,
  procBase = '/proc',
): string[] {
  if (!/^\/[A-Za-z0-9._/-]{0,255}$/.test(procBase) || procBase.split('/').includes('..'))
    throw new RangeError(`invalid proc base ${procBase}`);
  for (const [n, v] of [
    ['mapsPages', mapsPages],
    ['maxProcesses', maxProcesses],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 1_000_000) throw new RangeError(`invalid ${n} ${v}`);
  }
  return [
    shell,
    '-c',
    EXE_INVENTORY_SCRIPT,
    'eksf-exeinv',
    String(mapsPages),
    String(maxProcesses),
    procBase,
  ];
}

/** One mapped object (file identity = device + inode). */
export interface MappedObject {
  /** `major:minor` as maps lists it, then `:inode`. */
  key: string;
  dev: string;
  inode: string;
  /** Paths it was mapped under (kernel's view, ` (deleted)` kept), at most 8. */
  paths: string[];
  /** Pids mapping it, at most 64. */
  pids: number[];
  /** True when it is some process's executable. */
  executable: boolean;
  /** True when a path ends in ` (deleted)`. */
  deleted: boolean;
  /** Kernel handle to read (`/proc/<pid>/exe` or `/proc/<pid>/map_files/<range>`). */
  primary: string;
  /** Path fallback when the handle cannot be opened (`-` when none is safe). */
  fallback: string;
}

/** The inventory, deduplicated. */
export interface ExeInventory {
  objects: MappedObject[];
  /** Processes seen. */
  processes: number;
  /** Caps that cut the inventory. */
  capped: string[];
  problems: string[];
}

/** Decodes the inventory exec (hostile: per-frame caps, strict pids, maps parsed strictly). */
export async function decodeExeInventory(
  events: AsyncIterable<FrameEvent>,
  caps: { maxObjects?: number | undefined; maxMapsBytes?: number | undefined } = {},
): Promise<ExeInventory & { stoppedEarly: boolean }> {
  const maxObjects = caps.maxObjects ?? 2000;
  const maxMaps = caps.maxMapsBytes ?? 1024 * 1024;
  const objects = new Map<string, MappedObject>();
  const capped: string[] = [];
  const problems: string[] = [];
  const exeOf = new Map<number, string>();
  const pids = new Set<number>();
  let cur: { pid: number; kind: 'E' | 'M'; chunks: Buffer[]; bytes: number; over: boolean } | undefined;
  let stoppedEarly = false;
  let objectCap = false;
  const take = (pid: number, maps: string): void => {
    const exe = exeOf.get(pid);
    for (const r of parseMaps(maps).regions) {
      if (r.inode === '0' || !r.path.startsWith('/')) continue;
      const key = `${r.dev}:${r.inode}`;
      let o = objects.get(key);
      const isExe = exe !== undefined && r.path === exe;
      if (!o) {
        if (objects.size >= maxObjects) {
          objectCap = true;
          continue;
        }
        const deleted = r.path.endsWith(' (deleted)');
        o = {
          key,
          dev: r.dev,
          inode: r.inode,
          paths: [],
          pids: [],
          executable: false,
          deleted,
          primary: isExe ? `/proc/${pid}/exe` : `/proc/${pid}/map_files/${hex(r.start)}-${hex(r.end)}`,
          fallback: deleted || r.path.includes('\n') ? '-' : r.path,
        };
        objects.set(key, o);
      }
      // the handle of the oldest process (lowest pid) outlives the short-lived ones (an exec's shell)
      const held = Number(/^\/proc\/(\d+)\//.exec(o.primary)?.[1] ?? Number.MAX_SAFE_INTEGER);
      if (isExe && (!o.executable || pid < held)) {
        o.executable = true;
        o.primary = `/proc/${pid}/exe`;
      } else if (!isExe && !o.executable && pid < held) {
        o.primary = `/proc/${pid}/map_files/${hex(r.start)}-${hex(r.end)}`;
      }
      if (!o.paths.includes(r.path) && o.paths.length < 8) o.paths.push(r.path);
      if (!o.pids.includes(pid) && o.pids.length < 64) o.pids.push(pid);
    }
  };
  for await (const ev of events) {
    if (ev.type === 'error') {
      problems.push(`inventory stream: ${ev.reason}`);
      stoppedEarly = true;
      break;
    }
    if (ev.type === 'begin') {
      if (ev.header.length === 1 && ev.header[0] === 'cap') {
        capped.push('more processes than the cap');
        cur = undefined;
        continue;
      }
      const [p, k] = ev.header;
      if (!/^\d{1,7}$/.test(p ?? '') || (k !== 'E' && k !== 'M') || ev.header.length !== 2) {
        problems.push(`unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 40))}`);
        stoppedEarly = true;
        break;
      }
      cur = { pid: Number(p), kind: k, chunks: [], bytes: 0, over: false };
      pids.add(cur.pid);
      if (pids.size > 1_000_000) break;
    } else if (ev.type === 'data' && cur) {
      const cap = cur.kind === 'E' ? 4096 : maxMaps;
      const keep = Math.max(0, Math.min(cap - cur.bytes, ev.chunk.length));
      if (keep > 0) cur.chunks.push(Buffer.from(ev.chunk.subarray(0, keep)));
      cur.bytes += keep;
      if (keep < ev.chunk.length) cur.over = true;
    } else if (ev.type === 'end' && cur) {
      const text = Buffer.concat(cur.chunks).toString('latin1');
      if (cur.kind === 'E') {
        if (ev.rc === 0 && text.startsWith('/')) exeOf.set(cur.pid, text.replace(/\n$/, ''));
      } else {
        if (cur.over) capped.push(`maps of pid ${cur.pid} cut at ${maxMaps} bytes`);
        take(cur.pid, text);
      }
      cur = undefined;
    }
  }
  if (objectCap) capped.push(`more than ${maxObjects} distinct mapped files: the rest are not hashed`);
  return {
    objects: [...objects.values()],
    processes: pids.size,
    capped: capped.slice(0, 100),
    problems,
    stoppedEarly,
  };
}

/** argv batches of the pull (frame key on stdin); each object gives `primary fallback`. */
export function exePullArgv(
  shell: string,
  objects: readonly MappedObject[],
  blocks = 1024,
  batch = 200,
): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < objects.length; i += batch) {
    const args: string[] = [];
    for (const o of objects.slice(i, i + batch)) {
      if (!/^\/proc\/\d{1,7}\/(exe|map_files\/[0-9a-f]{1,16}-[0-9a-f]{1,16})$/.test(o.primary)) {
        throw new RangeError(`invalid handle ${o.primary}`);
      }
      if (o.fallback !== '-' && (!o.fallback.startsWith('/') || o.fallback.includes('\n'))) {
        throw new RangeError('invalid fallback path');
      }
      args.push(o.primary, o.fallback);
    }
    out.push([shell, '-c', EXE_PULL_SCRIPT, 'eksf-exepull', String(blocks), ...args]);
  }
  return out;
}

/** A hashed object (`processes/executables.json`). */
export interface ExeHash extends MappedObject {
  sha256?: string | undefined;
  bytes: number;
  /** Which source was read: the kernel handle, the path (may differ from what is mapped), or none. */
  via: 'handle' | 'path' | 'none';
  /** False when the read was cut by the cap or the reader failed: the hash is of a prefix. */
  whole: boolean;
  reason?: string | undefined;
}

/** Decodes one pull exec for `objects` (the batch, in order). */
export async function decodeExePull(
  events: AsyncIterable<FrameEvent>,
  objects: readonly MappedObject[],
  capBytes: number,
  budgetBytes = Number.POSITIVE_INFINITY,
): Promise<{ hashes: ExeHash[]; problem?: string | undefined; budgetSpent?: boolean | undefined }> {
  const hashes: ExeHash[] = [];
  let spent = 0;
  let cur: { h: ExeHash; hash: ReturnType<typeof createHash> } | undefined;
  for await (const ev of events) {
    if (ev.type === 'error') {
      if (cur) {
        // the stream broke inside this file: whatever was read is a prefix, and no hash is claimed
        cur.h.whole = false;
        cur.h.reason = `stream broke inside the file after ${cur.h.bytes} bytes; no hash`;
      }
      return { hashes, problem: ev.reason };
    }
    if (ev.type === 'begin') {
      const [i, k] = ev.header;
      const o = objects[hashes.length];
      if (!o || i !== String(hashes.length) || !['A', 'B', 'N'].includes(k ?? '')) {
        return { hashes, problem: `unexpected frame ${JSON.stringify(ev.header.join(' ').slice(0, 40))}` };
      }
      const h: ExeHash = {
        ...o,
        bytes: 0,
        via: k === 'A' ? 'handle' : k === 'B' ? 'path' : 'none',
        whole: k !== 'N',
      };
      if (k === 'N') h.reason = 'neither the kernel handle nor the path could be read';
      if (k === 'B') h.reason = 'read by path: the file there now may differ from the one mapped';
      hashes.push(h);
      cur = { h, hash: createHash('sha256') };
    } else if (ev.type === 'data' && cur) {
      const room = Math.min(capBytes - cur.h.bytes, budgetBytes - spent);
      const piece = ev.chunk.subarray(0, Math.max(0, room));
      cur.hash.update(piece);
      cur.h.bytes += piece.length;
      spent += piece.length;
      if (piece.length < ev.chunk.length) cur.h.whole = false;
      if (spent >= budgetBytes && piece.length < ev.chunk.length) {
        // the target's byte budget is spent: this hash is of a prefix, the rest is not read
        cur.h.reason = `cut at the target's ${budgetBytes}-byte budget: hash of a prefix`;
        cur.h.sha256 = cur.hash.digest('hex');
        return { hashes, budgetSpent: true };
      }
    } else if (ev.type === 'end' && cur) {
      if (cur.h.via !== 'none') cur.h.sha256 = cur.hash.digest('hex');
      if (ev.rc !== 0) {
        cur.h.whole = false;
        cur.h.reason = `reader exited ${ev.rc}`;
      } else if (cur.h.bytes >= capBytes) {
        cur.h.whole = false;
        cur.h.reason = `cut at the ${capBytes}-byte cap: hash of a prefix`;
      }
      cur = undefined;
    }
  }
  if (cur) {
    cur.h.whole = false;
    cur.h.reason = 'stream ended inside the file';
    return { hashes, problem: 'stream ended inside a frame' };
  }
  return { hashes };
}

/** Options of {@link hashExecutables}. */
export interface HashExecutablesOptions {
  exec: CoverageExec;
  shell: string;
  /** Distinct objects hashed at most (default 2000); executables and deleted files first. */
  maxObjects?: number | undefined;
  /** 64 KiB blocks read per object at most (default 1024 = 64 MiB). */
  blocksPerObject?: number | undefined;
  /** Bytes read at most for the target (default 1 GiB); later batches are not read. */
  maxBytes?: number | undefined;
  /** Processes inventoried at most (default 4096). */
  maxProcesses?: number | undefined;
  /**
   * Where the target's processes are listed (default `/proc`; through an ephemeral debug container,
   * its view of the target's processes only, so the debug container's own binaries are left out).
   */
  procBase?: string | undefined;
}

/** Result of {@link hashExecutables}. */
export interface ExecutableHashes {
  status: 'complete' | 'partial';
  reasons: string[];
  processes: number;
  hashes: ExeHash[];
  /** Objects left out by the byte cap. */
  notHashed: MappedObject[];
  bytes: number;
}

/** Inventory, dedup, pull, hash: SHA-256 of every running executable and mapped file. */
export async function hashExecutables(opts: HashExecutablesOptions): Promise<ExecutableHashes> {
  const reasons: string[] = [];
  const key = newFrameKey();
  const inv = await opts.exec(
    exeInventoryArgv(opts.shell, 256, opts.maxProcesses ?? 4096, opts.procBase ?? '/proc'),
    { stdin: true },
  );
  const s1 = await sendStdin(inv, `${key}\n`);
  if (s1) reasons.push(`inventory stdin: ${s1}`);
  const inventory = await decodeExeInventory(demuxFrames(inv.stdout, key), { maxObjects: opts.maxObjects });
  if (inventory.stoppedEarly) inv.abort(new Error('inventory abandoned'));
  const e1 = await settle(inv);
  if (!inventory.stoppedEarly && (e1.error || e1.exitCode !== 0))
    reasons.push(`inventory: ${e1.error ?? `exit ${e1.exitCode}`}`);
  reasons.push(...inventory.capped, ...inventory.problems);
  const ordered = [...inventory.objects].sort(
    (a, b) => Number(b.executable) - Number(a.executable) || Number(b.deleted) - Number(a.deleted),
  );
  const blocks = opts.blocksPerObject ?? 1024;
  const capBytes = blocks * 65536;
  const maxBytes = opts.maxBytes ?? 1024 * 1024 * 1024;
  const hashes: ExeHash[] = [];
  const notHashed: MappedObject[] = [];
  let bytes = 0;
  const batch = 100;
  for (let i = 0; i < ordered.length; i += batch) {
    const part = ordered.slice(i, i + batch);
    if (bytes >= maxBytes) {
      notHashed.push(...part);
      continue;
    }
    const argv = exePullArgv(opts.shell, part, blocks, batch)[0] as string[];
    const k = newFrameKey();
    const s = await opts.exec(argv, { stdin: true });
    const st = await sendStdin(s, `${k}\n`);
    if (st) reasons.push(`pull stdin: ${st}`);
    const got = await decodeExePull(demuxFrames(s.stdout, k), part, capBytes, maxBytes - bytes);
    if (got.problem || got.budgetSpent) s.abort(new Error('pull abandoned'));
    const end = await settle(s);
    if (got.budgetSpent) reasons.push(`byte cap of ${maxBytes} reached: the remaining files were not read`);
    else if (got.problem) reasons.push(`pull: ${got.problem}`);
    else if (end.error || end.exitCode !== 0) reasons.push(`pull: ${end.error ?? `exit ${end.exitCode}`}`);
    for (const h of got.hashes) bytes += h.bytes;
    hashes.push(...got.hashes);
    notHashed.push(...part.slice(got.hashes.length));
    if (got.budgetSpent) bytes = maxBytes;
  }
  if (notHashed.length > 0)
    reasons.push(`${notHashed.length} mapped files not hashed (byte cap or cut stream)`);
  const weak = hashes.filter((h) => !h.whole || h.via !== 'handle').length;
  if (weak > 0) reasons.push(`${weak} hashes are of a prefix, by path, or missing (see each entry)`);
  return {
    status: reasons.length === 0 ? 'complete' : 'partial',
    reasons,
    processes: inventory.processes,
    hashes,
    notHashed,
    bytes,
  };
}
