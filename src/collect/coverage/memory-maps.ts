/**
 * `/proc/<pid>/maps` parsing and the read plan for process memory. The maps text arrives from the
 * target, so it is hostile: every line is checked strictly, counts and sizes are capped, and what
 * is dropped is recorded with a reason.
 */

/** One mapping as the kernel lists it (after validation). */
export interface MapsRegion {
  /** First address (inclusive). */
  start: bigint;
  /** End address (exclusive). */
  end: bigint;
  /** `rwxp`-style permissions, four characters. */
  perms: string;
  /** File offset of the mapping. */
  offset: bigint;
  /** `major:minor` of the backing device (hex, as listed). */
  dev: string;
  /** Inode of the backing file (decimal, as listed; `0` for anonymous). */
  inode: string;
  /** Path or pseudo name (`[heap]`, `[stack]`, `/usr/lib/x (deleted)`); empty for anonymous. */
  path: string;
}

/** A maps line that was rejected. */
export interface MapsRejection {
  /** 1-based line number. */
  line: number;
  /** Why. */
  reason: string;
}

/** Result of {@link parseMaps}. */
export interface ParsedMaps {
  regions: MapsRegion[];
  rejected: MapsRejection[];
  /** Lines beyond `maxLines` that were not parsed. */
  linesNotParsed: number;
  /** True when the input had more than `maxLines` lines or more rejections than recorded. */
  capped: boolean;
}

/** Bounds of {@link parseMaps}. */
export interface MapsParseLimits {
  /** Lines parsed at most (default 65 536: the kernel's default `vm.max_map_count` is 65 530). */
  maxLines?: number | undefined;
  /** Rejections recorded at most (default 100); the rest are only counted. */
  maxRejectionsRecorded?: number | undefined;
}

/** Largest user-space address accepted (2^57: x86-64 five-level paging; arm64 uses less). */
export const MAX_USER_ADDRESS = 1n << 57n;
const LINE_RE =
  /^([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([r-][w-][x-][ps]) ([0-9a-f]{1,16}) ([0-9a-f]{1,8}:[0-9a-f]{1,8}) (\d{1,20})(?: +(.*))?$/;
const MAX_LINE = 4096 + 128;

/**
 * Parses maps text strictly. A line must be `start-end perms offset dev inode [path]` with hex
 * addresses, `start < end`, both page aligned (4 KiB), ascending and not overlapping the previous
 * region, and below {@link MAX_USER_ADDRESS} unless it is `[vsyscall]`. Anything else is rejected
 * with a reason (a replaced reader or a forged stream can say anything).
 */
export function parseMaps(text: string, limits: MapsParseLimits = {}): ParsedMaps {
  const maxLines = limits.maxLines ?? 65_536;
  const maxRej = limits.maxRejectionsRecorded ?? 100;
  const regions: MapsRegion[] = [];
  const rejected: MapsRejection[] = [];
  let rejections = 0;
  let lineNo = 0;
  let pos = 0;
  let prevEnd = -1n;
  let linesNotParsed = 0;
  const reject = (reason: string): void => {
    rejections++;
    if (rejected.length < maxRej) rejected.push({ line: lineNo, reason });
  };
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const raw = text.slice(pos, Math.min(nl, pos + MAX_LINE + 1));
    const lineLength = nl - pos;
    pos = nl + 1;
    if (lineNo >= maxLines) {
      linesNotParsed++;
      continue;
    }
    lineNo++;
    if (lineLength === 0) continue;
    if (lineLength > MAX_LINE) {
      reject(`line longer than ${MAX_LINE} characters`);
      continue;
    }
    const m = LINE_RE.exec(raw);
    if (!m) {
      reject('not a maps line (start-end perms offset dev inode [path])');
      continue;
    }
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    const path = (m[7] ?? '').replace(/^ +/, '');
    if (start >= end) {
      reject('start is not below end');
      continue;
    }
    if (start % 4096n !== 0n || end % 4096n !== 0n) {
      reject('range is not page aligned');
      continue;
    }
    if (end > MAX_USER_ADDRESS && path !== '[vsyscall]') {
      reject('range beyond the user address space');
      continue;
    }
    if (start < prevEnd) {
      reject('range overlaps or precedes the previous one (maps are sorted)');
      continue;
    }
    prevEnd = end;
    regions.push({
      start,
      end,
      perms: m[3] as string,
      offset: BigInt(`0x${m[4]}`),
      dev: m[5] as string,
      inode: m[6] as string,
      path,
    });
  }
  if (rejections > rejected.length) {
    rejected.push({ line: 0, reason: `${rejections - rejected.length} more lines rejected (not recorded)` });
  }
  return { regions, rejected, linesNotParsed, capped: linesNotParsed > 0 || rejections > maxRej };
}

/** Why a region is not read. */
export type RegionSkipReason = 'not-readable' | 'special' | 'region-cap' | 'process-cap';

/** One region of the read plan. */
export interface PlannedRegion {
  /** Index in the plan (frame id). */
  id: number;
  region: MapsRegion;
  /** Bytes to read from `region.start` (page multiple; less than the size when capped). */
  take: bigint;
  /** Set when the region is not read at all. */
  skip?: RegionSkipReason | undefined;
  /** Human-readable reason for `skip` or for a cap. */
  note?: string | undefined;
}

/** Caps of {@link planMemoryRead}. */
export interface MemoryPlanLimits {
  /** Regions planned at most per process (default 4096; the rest are `region-cap`). */
  maxRegions?: number | undefined;
  /** Bytes read at most per process (default 512 MiB). */
  maxProcessBytes?: bigint | undefined;
  /** Bytes still allowed for the whole target (default unlimited); the plan never exceeds it. */
  targetBytesLeft?: bigint | undefined;
}

/** Pseudo regions never read: reading `[vvar]` can fault, `[vsyscall]` lies above user space. */
export const SPECIAL_REGIONS: readonly string[] = ['[vvar]', '[vvar_vclock]', '[vsyscall]', '[vectors]'];

/** A read plan: what is read, what is skipped and why. */
export interface MemoryPlan {
  regions: PlannedRegion[];
  /** Bytes the plan reads. */
  plannedBytes: bigint;
  /** Bytes of readable regions left out by caps. */
  cappedBytes: bigint;
}

/**
 * Chooses what to read: readable regions only, no special pseudo regions, within the region
 * count, per-process and per-target byte caps. A region that does not fit whole is read in part
 * (its first pages) and noted; later regions that do not fit are skipped with `process-cap`.
 */
export function planMemoryRead(regions: readonly MapsRegion[], limits: MemoryPlanLimits = {}): MemoryPlan {
  const maxRegions = limits.maxRegions ?? 4096;
  let left = limits.maxProcessBytes ?? 512n * 1024n * 1024n;
  if (limits.targetBytesLeft !== undefined && limits.targetBytesLeft < left) left = limits.targetBytesLeft;
  if (left < 0n) left = 0n;
  left -= left % 4096n;
  const out: PlannedRegion[] = [];
  let planned = 0n;
  let capped = 0n;
  let readCount = 0;
  for (const region of regions) {
    const id = out.length;
    const size = region.end - region.start;
    if (region.perms[0] !== 'r') {
      out.push({ id, region, take: 0n, skip: 'not-readable', note: `permissions ${region.perms}` });
      continue;
    }
    if (SPECIAL_REGIONS.includes(region.path)) {
      out.push({ id, region, take: 0n, skip: 'special', note: `${region.path} is not read` });
      continue;
    }
    if (readCount >= maxRegions) {
      capped += size;
      out.push({ id, region, take: 0n, skip: 'region-cap', note: `more than ${maxRegions} regions` });
      continue;
    }
    if (left === 0n) {
      capped += size;
      out.push({ id, region, take: 0n, skip: 'process-cap', note: 'byte cap reached' });
      continue;
    }
    const take = size <= left ? size : left;
    left -= take;
    planned += take;
    readCount++;
    if (take < size) {
      capped += size - take;
      out.push({ id, region, take, note: `first ${take} of ${size} bytes (byte cap)` });
    } else {
      out.push({ id, region, take });
    }
  }
  return { regions: out, plannedBytes: planned, cappedBytes: capped };
}

/** Hex text of an address (no prefix, at least 1 digit). */
export function hex(v: bigint): string {
  return v.toString(16);
}
