/**
 * Builds a container root filesystem on the host from a declarative file map. Paths are
 * container paths (absolute; `string` or raw bytes for non-UTF-8 names). Parent directories
 * are created as needed; a parent that is a symlink is refused, so a map can never make the
 * builder write outside the rootfs. Paths longer than the host's PATH_MAX are reached through
 * chains of short helper symlinks kept outside the rootfs.
 */
import { constants } from 'node:fs';
import {
  chmod,
  copyFile,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  rename,
  rm,
  symlink,
  unlink,
} from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { sleeperElf } from './elf.js';
import { runChecked } from './proc.js';

/** A container path: a string, or raw bytes when the name is not valid UTF-8. */
export type SandboxPath = string | Uint8Array;

/** Owner and times shared by every entry kind. */
export interface SandboxEntryMeta {
  /** Owner uid (default 0). */
  uid?: number | undefined;
  /** Owner gid (default 0). */
  gid?: number | undefined;
  /** Modification (and access) time. */
  mtime?: Date | undefined;
}

/** A regular file with content. `mode` defaults to 0644 (0755 for `executable: true`). */
export interface SandboxFileEntry extends SandboxEntryMeta {
  type?: 'file' | undefined;
  /** File content. */
  content: string | Uint8Array;
  /** Permission bits. */
  mode?: number | undefined;
  /** Shorthand for mode 0755. */
  executable?: boolean | undefined;
}

/** A directory. `mode` defaults to 0755. */
export interface SandboxDirEntry extends SandboxEntryMeta {
  type: 'dir';
  /** Permission bits. */
  mode?: number | undefined;
}

/** A symbolic link; `target` is stored verbatim (absolute targets resolve inside the container). */
export interface SandboxSymlinkEntry extends SandboxEntryMeta {
  type: 'symlink';
  /** Link target. */
  target: SandboxPath;
}

/** A hard link to another container path created earlier in the map. */
export interface SandboxHardlinkEntry {
  type: 'hardlink';
  /** Existing container path. */
  target: SandboxPath;
}

/** A named pipe (FIFO). Reading it blocks until someone writes. */
export interface SandboxFifoEntry extends SandboxEntryMeta {
  type: 'fifo';
  /** Permission bits (default 0644). */
  mode?: number | undefined;
}

/** A sparse file of `size` bytes (holes read as zeros) with optional data at offsets. */
export interface SandboxSparseEntry extends SandboxEntryMeta {
  type: 'sparse';
  /** Apparent size in bytes. */
  size: number;
  /** Data written at the given offsets. */
  data?: readonly { offset: number; content: string | Uint8Array }[] | undefined;
  /** Permission bits (default 0644). */
  mode?: number | undefined;
}

/**
 * An executable binary: a copy of static busybox (runs the applet named by argv[0]'s basename)
 * or the built-in sleeper (ignores its arguments, sleeps forever — any command line you like).
 */
export interface SandboxBinaryEntry extends SandboxEntryMeta {
  type: 'binary';
  /** Which binary. */
  binary: 'busybox' | 'sleeper';
  /** Permission bits (default 0755). */
  mode?: number | undefined;
}

/**
 * A file the runtime keeps appending to while the container runs (from the host, through a
 * descriptor opened at start, so a container cannot redirect it): `chunk` every `intervalMs`
 * until `maxBytes`.
 */
export interface SandboxGrowingEntry extends SandboxEntryMeta {
  type: 'growing';
  /** Initial content. */
  content?: string | Uint8Array | undefined;
  /** Appended each tick (default a 4 KiB log-like line block). */
  chunk?: string | Uint8Array | undefined;
  /** Tick interval (default 20 ms). */
  intervalMs?: number | undefined;
  /** Stop growing at this size (default 64 MiB). */
  maxBytes?: number | undefined;
  /** Permission bits (default 0644). */
  mode?: number | undefined;
}

/** One file-map entry. */
export type SandboxEntry =
  | SandboxFileEntry
  | SandboxDirEntry
  | SandboxSymlinkEntry
  | SandboxHardlinkEntry
  | SandboxFifoEntry
  | SandboxSparseEntry
  | SandboxBinaryEntry
  | SandboxGrowingEntry;

/** A file map: `{ '/etc/app.conf': { content: '…' } }`, or a list of entries with a `path` (any bytes). */
export type SandboxFileMap = Record<string, SandboxEntry> | readonly (SandboxEntry & { path: SandboxPath })[];

/** A growing file set up by {@link buildRootfs}: the runtime drives it. */
export interface GrowingFile {
  /** Append-only descriptor opened when the file was created. */
  handle: FileHandle;
  /** Its entry. */
  entry: SandboxGrowingEntry;
}

/** Normalises a file map into a list of `[components, entry]`. */
export function fileMapEntries(map: SandboxFileMap | undefined): { path: Buffer; entry: SandboxEntry }[] {
  if (!map) return [];
  const list: { path: Buffer; entry: SandboxEntry }[] = [];
  if (Array.isArray(map)) {
    for (const e of map as readonly (SandboxEntry & { path: SandboxPath })[]) {
      list.push({ path: toBuf(e.path), entry: e });
    }
  } else {
    for (const [p, entry] of Object.entries(map as Record<string, SandboxEntry>)) {
      list.push({ path: Buffer.from(p), entry });
    }
  }
  return list;
}

/** Converts a path or content to bytes. */
export function toBuf(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Splits an absolute container path into components, refusing `..` and relative paths. */
export function splitContainerPath(p: Buffer): Buffer[] {
  if (p[0] !== 0x2f)
    throw new ConfigError(`sandbox file map paths must be absolute, got ${JSON.stringify(p.toString())}`);
  const parts: Buffer[] = [];
  let start = 1;
  for (let i = 1; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      const c = p.subarray(start, i);
      start = i + 1;
      if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
      if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) {
        throw new ConfigError(
          `sandbox file map paths must not contain "..": ${JSON.stringify(p.toString())}`,
        );
      }
      if (c.includes(0)) throw new ConfigError('sandbox file map paths must not contain NUL bytes');
      parts.push(c);
    }
  }
  return parts;
}

const SLASH = Buffer.from('/');
const LONG = 3000;

/**
 * Writes entries into one rootfs. `scratch` is a host directory outside the rootfs (same
 * filesystem) for helper links and temporary nodes.
 */
export class RootfsBuilder {
  private linkSeq = 0;
  private readonly helperLinks: string[] = [];
  readonly growing: GrowingFile[] = [];

  constructor(
    readonly root: string,
    private readonly scratch: string,
    private readonly busyboxPath: string,
  ) {}

  /** A host path (kept short with helper links) for the given container components. */
  async hostPath(comps: readonly Buffer[]): Promise<Buffer> {
    let base = Buffer.from(this.root);
    let cur = base;
    for (const c of comps) {
      if (cur.length + 1 + c.length > LONG) {
        const helper = join(this.scratch, `lp${this.linkSeq++}`);
        await symlink(cur, helper);
        this.helperLinks.push(helper);
        base = Buffer.from(helper);
        cur = base;
      }
      cur = Buffer.concat([cur, SLASH, c]);
    }
    return cur;
  }

  /** Creates the parent directories of `comps` (0755, root), refusing to go through symlinks. */
  async ensureParents(comps: readonly Buffer[]): Promise<void> {
    for (let i = 1; i < comps.length; i++) {
      const hp = await this.hostPath(comps.slice(0, i));
      const st = await lstat(hp).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      if (st === null) {
        await mkdir(hp, { mode: 0o755 });
        continue;
      }
      if (st.isSymbolicLink()) {
        throw new ConfigError(
          `sandbox file map entry ${JSON.stringify(Buffer.concat(comps.flatMap((c) => [SLASH, c])).toString())} goes through a symlink (${JSON.stringify(hp.toString())}); declare real directories for its parents`,
        );
      }
      if (!st.isDirectory())
        throw new ConfigError(`sandbox file map: parent ${JSON.stringify(hp.toString())} is not a directory`);
    }
  }

  /** Removes whatever is at a host path (not following symlinks), unless it is a directory. */
  private async clear(hp: Buffer): Promise<'dir' | 'none'> {
    const st = await lstat(hp).catch(() => null);
    if (st === null) return 'none';
    if (st.isDirectory()) return 'dir';
    await unlink(hp);
    return 'none';
  }

  /** Writes one entry. */
  async add(path: Buffer, entry: SandboxEntry): Promise<void> {
    const comps = splitContainerPath(path);
    if (comps.length === 0) throw new ConfigError('sandbox file map: cannot replace "/"');
    await this.ensureParents(comps);
    const hp = await this.hostPath(comps);
    const existing = await this.clear(hp);
    const type = entry.type ?? 'file';
    if (existing === 'dir' && type !== 'dir') {
      await rm(hp, { recursive: true, force: true });
    }
    switch (entry.type) {
      case undefined:
      case 'file':
        await this.writeNew(hp, toBuf(entry.content), entry.mode ?? (entry.executable ? 0o755 : 0o644));
        break;
      case 'dir':
        if (existing !== 'dir') await mkdir(hp);
        await chmod(hp, entry.mode ?? 0o755);
        break;
      case 'symlink':
        await symlink(toBuf(entry.target), hp);
        break;
      case 'hardlink': {
        const target = await this.hostPath(splitContainerPath(toBuf(entry.target)));
        await link(target, hp);
        return;
      }
      case 'fifo': {
        const tmp = join(this.scratch, `fifo${this.linkSeq++}`);
        await runChecked(this.busyboxPath, ['mkfifo', '-m', (entry.mode ?? 0o644).toString(8), tmp]);
        await rename(tmp, hp);
        break;
      }
      case 'sparse': {
        const fh = await open(hp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          await fh.truncate(entry.size);
          for (const d of entry.data ?? []) await fh.write(toBuf(d.content), 0, undefined, d.offset);
        } finally {
          await fh.close();
        }
        await chmod(hp, entry.mode ?? 0o644);
        break;
      }
      case 'binary':
        if (entry.binary === 'busybox') {
          await copyFile(this.busyboxPath, hp, constants.COPYFILE_EXCL);
          await chmod(hp, entry.mode ?? 0o755);
        } else {
          await this.writeNew(hp, sleeperElf(), entry.mode ?? 0o755);
        }
        break;
      case 'growing':
        await this.writeNew(hp, toBuf(entry.content ?? ''), entry.mode ?? 0o644);
        this.growing.push({
          handle: await open(hp, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW),
          entry,
        });
        break;
    }
    if (entry.uid !== undefined || entry.gid !== undefined) await lchown(hp, entry.uid ?? 0, entry.gid ?? 0);
    if (entry.mtime) await lutimes(hp, entry.mtime, entry.mtime);
  }

  private async writeNew(hp: Buffer, content: Buffer, mode: number): Promise<void> {
    const fh = await open(
      hp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await fh.writeFile(content);
    } finally {
      await fh.close();
    }
    await chmod(hp, mode);
  }

  /** Copies a host file (following links) to a container path. */
  async copyHostFile(hostFile: string, path: Buffer, mode: number): Promise<void> {
    const comps = splitContainerPath(path);
    await this.ensureParents(comps);
    const hp = await this.hostPath(comps);
    await this.clear(hp);
    await copyFile(hostFile, hp, constants.COPYFILE_EXCL);
    await chmod(hp, mode);
  }

  /** Removes helper links (the rootfs itself stays). */
  async done(): Promise<void> {
    for (const l of this.helperLinks.splice(0)) await unlink(l).catch(() => undefined);
  }
}
