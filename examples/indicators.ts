/**
 * First-look indicators from a triage bundle on disk (a DirectorySink folder): what a responder
 * opens first. Reads only what the collector wrote — manifest-listed files — and bounds every
 * read, since the bytes came from a possibly hostile container.
 *
 * Used by `npm run demo` and the examples; copy it into your own tooling as a starting point.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readTarEntry } from '../src/entries/codecs.js';

/** One process running from a binary that no longer exists on disk. */
export interface DeletedBinaryProcess {
  pid: number;
  exe: string;
  cmdline: string;
}

/** One established TCP connection, with the processes that hold the socket. */
export interface Connection {
  local: string;
  remote: string;
  pids: number[];
}

/** What {@link readIndicators} found for one container. */
export interface Indicators {
  container: string;
  deletedBinaries: DeletedBinaryProcess[];
  /** Content of /etc/ld.so.preload (lines), when present. */
  ldSoPreload: string[];
  /** Processes with LD_PRELOAD in their environment, with its value (kept in clear by the environment policy). */
  ldPreloadEnv: Array<{ pid: number; value: string }>;
  /** authorized_keys lines by file. */
  authorizedKeys: Array<{ path: string; lines: string[] }>;
  /** Cron entries by file (comments and blank lines left out). */
  cron: Array<{ path: string; lines: string[] }>;
  connections: Connection[];
  /** Warning events of the pod (`reason: message`). */
  warningEvents: string[];
}

const MAX_FILE = 64 * 1024;
const MAX_SHOWN = 6;
const MAX_JSON = 32 * 1024 * 1024;

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path) || statSync(path).size > MAX_JSON) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

interface FileRow {
  path: string;
  status: string;
  stream?: string;
  entry?: string;
  offset?: number;
  bytes?: number;
}

async function fileContent(bundle: string, row: FileRow): Promise<string | undefined> {
  if (row.status !== 'copied' || !row.stream) return undefined;
  const stream = join(bundle, row.stream);
  if (!existsSync(stream)) return undefined;
  let bytes: Buffer | undefined;
  if (row.stream.endsWith('.tar')) {
    bytes = await readTarEntry(createReadStream(stream), row.entry ?? '');
  } else if (row.offset !== undefined && row.bytes !== undefined) {
    const all = readFileSync(stream);
    bytes = all.subarray(row.offset, row.offset + Math.min(row.bytes, MAX_FILE));
  }
  return bytes?.subarray(0, MAX_FILE).toString('utf8');
}

const lines = (text: string | undefined): string[] =>
  (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

const CRON_RE = /^(\/etc\/crontab$|\/etc\/cron\.d\/|\/etc\/crontabs\/|\/var\/spool\/cron\/)/;

/** Decodes `0100007F:115C` (and the IPv6 form) from /proc/net/tcp{,6}. */
function decodeAddr(hex: string): string {
  const [ip = '', port = '0'] = hex.split(':');
  const p = Number.parseInt(port, 16);
  if (ip.length === 8) {
    const b = Buffer.from(ip, 'hex').reverse();
    return `${b.join('.')}:${p}`;
  }
  if (ip.length === 32) {
    const words: Buffer[] = [];
    for (let i = 0; i < 32; i += 8) words.push(Buffer.from(ip.slice(i, i + 8), 'hex').reverse());
    const b = Buffer.concat(words);
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
      return `${[...b.subarray(12)].join('.')}:${p}`;
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return `[${groups.join(':')}]:${p}`;
  }
  return `?:${p}`;
}

/** Reads the first-look indicators of one container from a bundle folder. */
export async function readIndicators(bundle: string, container: string): Promise<Indicators> {
  const base = join(bundle, 'containers', container);
  const out: Indicators = {
    container,
    deletedBinaries: [],
    ldSoPreload: [],
    ldPreloadEnv: [],
    authorizedKeys: [],
    cron: [],
    connections: [],
    warningEvents: [],
  };
  type Proc = {
    pid: number;
    cmdline?: string;
    exe?: string;
    exeDeleted?: boolean;
    collector?: boolean;
    fds?: Record<string, string>;
  };
  const procs =
    readJson<{ processes: Proc[] }>(join(base, 'proc', 'processes.json'))?.processes.filter(
      (p) => !p.collector,
    ) ?? [];
  const socketOwners = new Map<string, number[]>();
  for (const p of procs) {
    if (p.exeDeleted)
      out.deletedBinaries.push({ pid: p.pid, exe: p.exe ?? '?', cmdline: (p.cmdline ?? '').slice(0, 160) });
    for (const target of Object.values(p.fds ?? {})) {
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1]) socketOwners.set(m[1], [...(socketOwners.get(m[1]) ?? []), p.pid]);
    }
    const env = readJson<{ variables: Array<{ name: string; value: string }> }>(
      join(base, 'proc', String(p.pid), 'environ.json'),
    );
    const ld = env?.variables.find((v) => v.name === 'LD_PRELOAD');
    if (ld) out.ldPreloadEnv.push({ pid: p.pid, value: ld.value });
  }
  for (const table of ['tcp', 'tcp6']) {
    const path = join(base, 'proc', 'system', 'net', table);
    if (!existsSync(path) || statSync(path).size > MAX_JSON) continue;
    for (const row of readFileSync(path, 'utf8').split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue; // 01 = ESTABLISHED
      out.connections.push({
        local: decodeAddr(f[1] ?? ''),
        remote: decodeAddr(f[2] ?? ''),
        pids: socketOwners.get(f[9] ?? '') ?? [],
      });
    }
  }
  const rows = readJson<{ files: FileRow[] }>(join(base, 'files', 'index.json'))?.files ?? [];
  for (const row of rows) {
    if (row.path === '/etc/ld.so.preload') out.ldSoPreload = lines(await fileContent(bundle, row));
    else if (row.path.endsWith('/.ssh/authorized_keys') || row.path.endsWith('/.ssh/authorized_keys2')) {
      out.authorizedKeys.push({ path: row.path, lines: lines(await fileContent(bundle, row)) });
    } else if (CRON_RE.test(row.path)) {
      const l = lines(await fileContent(bundle, row));
      if (l.length) out.cron.push({ path: row.path, lines: l });
    }
  }
  const events = readJson<Array<{ type?: string; reason?: string; message?: string }>>(
    join(bundle, 'pod', 'events.json'),
  );
  for (const e of Array.isArray(events) ? events : []) {
    if (e.type === 'Warning')
      out.warningEvents.push(`${e.reason ?? '?'}: ${(e.message ?? '').slice(0, 160)}`);
  }
  return out;
}

/** How many indicators were found (0 = nothing to look at first). */
export function indicatorCount(i: Indicators): number {
  return (
    i.deletedBinaries.length +
    i.ldSoPreload.length +
    i.ldPreloadEnv.length +
    i.authorizedKeys.reduce((n, k) => n + k.lines.length, 0) +
    i.cron.reduce((n, c) => n + c.lines.length, 0) +
    i.connections.length +
    i.warningEvents.length
  );
}

/** Human lines for a terminal, indented. */
export function formatIndicators(i: Indicators, indent = '    '): string[] {
  const out: string[] = [];
  const byExe = new Map<string, DeletedBinaryProcess[]>();
  for (const p of i.deletedBinaries) byExe.set(p.exe, [...(byExe.get(p.exe) ?? []), p]);
  for (const [exe, ps] of [...byExe].slice(0, MAX_SHOWN)) {
    const pids = ps.map((p) => p.pid).join(', ');
    out.push(`deleted binary ${exe} runs as pid ${pids}: ${ps[0]?.cmdline ?? ''}`);
  }
  if (byExe.size > MAX_SHOWN) {
    out.push(
      `… ${byExe.size - MAX_SHOWN} more deleted binaries in containers/${i.container}/proc/processes.json`,
    );
  }
  if (i.ldSoPreload.length) out.push(`/etc/ld.so.preload: ${i.ldSoPreload.join(', ')}`);
  for (const l of i.ldPreloadEnv) out.push(`LD_PRELOAD=${l.value.slice(0, 120)} in process ${l.pid}`);
  for (const k of i.authorizedKeys) for (const l of k.lines) out.push(`${k.path}: ${l.slice(0, 100)}`);
  for (const c of i.cron) for (const l of c.lines) out.push(`cron ${c.path}: ${l.slice(0, 120)}`);
  for (const c of i.connections.slice(0, MAX_SHOWN)) {
    out.push(
      `TCP established ${c.local} -> ${c.remote}${c.pids.length ? ` (pid ${c.pids.join(', ')})` : ''}`,
    );
  }
  if (i.connections.length > MAX_SHOWN) {
    out.push(
      `… ${i.connections.length - MAX_SHOWN} more connections in containers/${i.container}/proc/system/net/`,
    );
  }
  for (const e of i.warningEvents) out.push(`event ${e}`);
  return out.map((l) => `${indent}${l}`);
}
