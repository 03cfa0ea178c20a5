/**
 * File rows of the content phase: which listed files each item selects, and the one place that
 * turns what a tar entry or a frame delivered into a row's status.
 */
import { compileExcludes, compileGlob, isExcluded } from '../../glob.js';
import type { ListedEntry } from '../../listing.js';
import type { FileContentMode, ProfileSpec } from '../../schema.js';
import { jwtRecord } from '../../sensitive.js';

/** One file of the content phase (a row of files/index.json). */
export interface FileRow {
  path: string;
  items: string[];
  mode: FileContentMode;
  type: ListedEntry['type'];
  listedSize?: number | undefined;
  take: number;
  status: 'copied' | 'hashed' | 'claims' | 'link' | 'skipped' | 'failed' | 'truncated';
  reason?: string | undefined;
  sha256?: string | undefined;
  bytes?: number | undefined;
  stream?: string | undefined;
  entry?: string | undefined;
  offset?: number | undefined;
  linkTarget?: string | undefined;
}

/** Content mode of a batch. */
export type ReadContentMode = 'copy' | 'hash' | 'jwt';

/** Selects rows from the listing for every `file` item; rows that cannot be read go to `skipped`. */
export function selectRows(
  specs: readonly ProfileSpec[],
  listing: ReadonlyMap<string, ListedEntry>,
  copySensitive: boolean,
): { rows: Map<string, FileRow>; skipped: FileRow[] } {
  const rows = new Map<string, FileRow>();
  const skipped: FileRow[] = [];
  for (const s of specs) {
    for (const item of s.items) {
      if (item.kind !== 'file') continue;
      let mode: FileContentMode = item.content ?? 'copy';
      if (item.sensitive && copySensitive && mode !== 'metadata') mode = 'copy';
      if (mode === 'metadata') continue;
      const globs = item.paths.map((p) => compileGlob(p, item.maxDepth ?? 8));
      const excludes = compileExcludes(item.exclude);
      const maxSize = item.maxFileSize ?? 10 * 1024 * 1024;
      let count = 0;
      for (const e of listing.values()) {
        if (e.type === 'd' || e.type === 'o') continue;
        if (!globs.some((g) => g.matches(e.path)) || isExcluded(e.path, excludes)) continue;
        const existing = rows.get(e.path);
        if (existing) {
          if (!existing.items.includes(item.id)) existing.items.push(item.id);
          continue;
        }
        const row: FileRow = {
          path: e.path,
          items: [item.id],
          mode,
          type: e.type,
          listedSize: e.size,
          take: 0,
          status: 'skipped',
        };
        if (!e.requestable) {
          row.reason = 'name is not valid UTF-8: cannot be passed to exec';
          skipped.push(row);
          continue;
        }
        if (++count > (item.maxFiles ?? 5000)) {
          row.reason = `item ${item.id} matched more than ${item.maxFiles ?? 5000} files`;
          skipped.push(row);
          continue;
        }
        if (e.size !== undefined && e.size > maxSize && e.type === 'f') {
          row.reason = `larger than maxFileSize (${e.size} > ${maxSize} bytes): metadata only`;
          skipped.push(row);
          continue;
        }
        row.take = e.type === 'l' ? 0 : Math.min(e.size ?? maxSize, maxSize);
        if (mode === 'jwt') row.take = Math.min(row.take || 64 * 1024, 64 * 1024);
        rows.set(e.path, row);
      }
    }
  }
  return { rows, skipped };
}

/** What a tar entry or a frame delivered for one row. */
export type Delivered =
  | {
      kind: 'file';
      bytes: number;
      sha256: string;
      /** Bytes received beyond the row's `take` (framed: the reader ignored the cap). */
      received?: number | undefined;
      /** The tar entry was shorter than its header. */
      short?: boolean | undefined;
      /** Exit code of the frame's reader. */
      rc?: number | null | undefined;
      /** Bytes kept for JWT decoding. */
      kept?: Buffer | undefined;
      /** Read with shell builtins (text only). */
      builtins?: boolean | undefined;
    }
  | { kind: 'link'; target: string | undefined }
  | { kind: 'other'; what: string }
  | { kind: 'missing'; why: string };

/** Sets a row's status from what was delivered. The one place tar and framed content agree on. */
export function finishRow(
  row: FileRow,
  got: Delivered,
  mode: ReadContentMode,
  tokens: Record<string, unknown>[],
): void {
  const ok = mode === 'copy' ? 'copied' : mode === 'hash' ? 'hashed' : 'claims';
  row.reason = undefined;
  if (got.kind === 'missing') {
    row.status = 'failed';
    row.reason = got.why;
    return;
  }
  if (got.kind === 'link') {
    row.status = 'link';
    row.linkTarget = got.target;
    row.reason = 'symbolic link: not followed';
    row.sha256 = undefined;
    return;
  }
  if (got.kind === 'other') {
    row.status = 'skipped';
    row.reason = got.what;
    row.sha256 = undefined;
    return;
  }
  row.bytes = got.bytes;
  row.sha256 = got.sha256;
  if (got.received !== undefined && got.received > row.take) {
    row.status = 'failed';
    row.reason = `received ${got.received} bytes for a frame of ${row.take}: the reader in the container did not honour the cap (hash covers the first ${row.take})`;
    return;
  }
  if (got.short) {
    row.status = 'failed';
    row.reason = 'entry shorter than its header claims';
    return;
  }
  if (got.rc !== undefined && got.rc !== 0 && got.bytes === 0) {
    row.status = 'failed';
    row.reason = `not readable (rc ${got.rc})`;
    row.sha256 = undefined;
    return;
  }
  row.status = ok;
  const notes: string[] = [];
  if (got.rc !== undefined && got.rc !== 0) {
    row.status = 'truncated';
    notes.push(`reader exit code ${got.rc}`);
  }
  if (got.received !== undefined && got.bytes < row.take)
    notes.push(`file shrank while read (${got.bytes} of ${row.take} bytes)`);
  if (got.received !== undefined && row.listedSize !== undefined && row.listedSize > row.take) {
    row.status = 'truncated';
    notes.push(`read the first ${row.take} of ${row.listedSize} bytes`);
  }
  if (got.builtins) notes.push('read with shell builtins: text only, NUL bytes lost');
  if (notes.length) row.reason = notes.join('; ');
  if (mode === 'jwt')
    tokens.push({ path: row.path, ...jwtRecord(got.kept ?? Buffer.alloc(0), got.bytes, got.sha256) });
}
