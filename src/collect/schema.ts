/**
 * The declarative profile format (JSON or YAML), validated with zod. A schema error names the
 * file, the item and the field.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError, ValidationError } from '../errors.js';
import { loadYaml } from '../util/index.js';
import { parseSize } from './size.js';

const ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const id = z.string().regex(ID_RE, 'use 1-63 characters: lowercase letters, digits, ".", "_" or "-"');

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a size (e.g. 1048576, "10MB", "1GiB")` });
    return z.NEVER;
  }
  return n;
});

const absolutePath = z
  .string()
  .min(2)
  .max(4096)
  .refine((p) => p.startsWith('/'), 'must be an absolute path (start with "/")')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

const relProcPath = z
  .string()
  .min(1)
  .max(256)
  .regex(/^(self|[0-9]+|[a-z_][a-z0-9_.-]*)(\/[a-z0-9_.-]+)*$/, 'must be a path under /proc like "net/tcp"')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

/** How the content of matched files is kept. */
export const FileContentModeSchema = z.enum(['copy', 'hash', 'jwt', 'metadata']);
/**
 * `copy` stores the bytes; `hash` stores only SHA-256 and size; `jwt` stores the hash and the
 * decoded header and claims of a JWT (never the signature or the raw token); `metadata` reads nothing.
 */
export type FileContentMode = z.infer<typeof FileContentModeSchema>;

/** A `file` item: paths or globs, regular files only. */
export const FileItemSchema = z
  .strictObject({
    id,
    kind: z.literal('file'),
    description: z.string().max(500).optional(),
    /** Absolute paths; `*`, `?`, `[…]` match inside one segment, `**` any depth (bounded by maxDepth). */
    paths: z
      .array(z.union([z.literal('/'), absolutePath]))
      .min(1)
      .max(256),
    /** Globs matched against the full path or the base name; matches are listed but not read. */
    exclude: z.array(z.string().min(1).max(512)).max(256).optional(),
    /** Depth below the fixed prefix of a path that `**` or a directory may reach. Default 8. */
    maxDepth: z.number().int().min(0).max(64).optional(),
    /** Files larger than this are listed (metadata) but their content is skipped. Default 10 MiB. */
    maxFileSize: size.optional(),
    /** Default `copy`. */
    content: FileContentModeSchema.optional(),
    /** The content is a secret: only `copySensitive: true` on the collector upgrades it to `copy`. */
    sensitive: z.boolean().optional(),
    /** Most files matched by this item (default 5000); more are listed in the report as skipped. */
    maxFiles: z.number().int().min(1).max(1_000_000).optional(),
    /**
     * Relative paths (e.g. `.bash_history`; no globs, no `..`) looked for in the home directory of every
     * account in the container's `/etc/passwd` as well, so homes outside `/root` and `/home`
     * (`/var/www`, service users) are searched. At most 256 homes.
     */
    homeFiles: z
      .array(
        z
          .string()
          .max(256)
          .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+){0,7}$/)
          .refine((n) => n.split('/').every((p) => p !== '.' && p !== '..'), 'no . or .. segments'),
      )
      .max(32)
      .optional(),
    /**
     * Whole-filesystem timeline: `paths` must be `['/']`; the tree is listed as one root per
     * top-level directory and per mount point (each with its own budget), leaving out pseudo
     * filesystems (proc, sysfs, cgroup, devpts, mqueue, … from the container's mountinfo). Depth
     * default 64. Meant for `content: 'metadata'`.
     */
    wholeFilesystem: z.boolean().optional(),
  })
  .refine((i) => !i.wholeFilesystem || (i.paths.length === 1 && i.paths[0] === '/'), {
    message: "a wholeFilesystem item lists `/`: set paths to ['/']",
    path: ['paths'],
  })
  .refine((i) => i.wholeFilesystem === true || !i.paths.includes('/'), {
    message: "`/` alone is a whole-filesystem listing: set wholeFilesystem: true (and content: 'metadata')",
    path: ['paths'],
  });
/** A `file` item. */
export type FileItem = z.infer<typeof FileItemSchema>;

/** Per-process /proc fields a `proc` item can read. */
export const ProcFieldSchema = z.enum([
  'cmdline',
  'comm',
  'status',
  'stat',
  'cgroup',
  'loginuid',
  'maps',
  'environ',
  'mountinfo',
  'limits',
  'attr/current',
  'wchan',
]);
/** A per-process /proc field. */
export type ProcField = z.infer<typeof ProcFieldSchema>;

/** A `proc` item: system-wide /proc files and per-process fields. Read without `ps`/`netstat`. */
export const ProcItemSchema = z.strictObject({
  id,
  kind: z.literal('proc'),
  description: z.string().max(500).optional(),
  /** Paths relative to the proc base, e.g. `net/tcp`, `uptime`, `self/status`. */
  files: z.array(relProcPath).max(256).optional(),
  /** Per-process fields, for every numeric entry of /proc. */
  perProcess: z
    .strictObject({
      fields: z.array(ProcFieldSchema).max(32).default([]),
      /** Read `exe`, `cwd`, `root`, `fd/*`, `ns/*` link targets. Default true. */
      links: z.boolean().optional(),
      /** `hash` (default): `KEY=sha256:…`; `redact`: `KEY=<redacted>`; `raw`: as read (sensitive). */
      environ: z.enum(['hash', 'redact', 'raw']).optional(),
      /** Which executables' bytes to copy: deleted ones (default), ones in writable dirs too, all, none. */
      exe: z.enum(['deleted', 'writable', 'all', 'none']).optional(),
      /** Cap on the bytes of one executable (default 20 MiB, as UAC). */
      maxExeBytes: size.optional(),
      /** Most processes read (default 2000). */
      maxProcesses: z.number().int().min(1).max(100_000).optional(),
      /**
       * SHA-256 of every running executable and mapped file (deduplicated by device + inode, read
       * through the kernel's handle where it can), in `proc/exe-hashes.json`. Needs `dd`. Default false.
       */
      hashMapped: z.boolean().optional(),
      /** Bytes read for `hashMapped` at most per target (default 256 MiB; 64 MiB per file). */
      maxHashBytes: size.optional(),
    })
    .optional(),
  /** Cap on one /proc file (default 4 MiB). */
  maxBytesPerFile: size.optional(),
});
/** A `proc` item. */
export type ProcItem = z.infer<typeof ProcItemSchema>;

/** A `command` item: argv run as is, without a shell and without placeholders. */
export const CommandItemSchema = z.strictObject({
  id,
  kind: z.literal('command'),
  description: z.string().max(500).optional(),
  argv: z.array(z.string().max(4096)).min(1).max(64),
  /** Default 30 s. */
  timeoutMs: z.number().int().min(100).max(3_600_000).optional(),
  /** Cap on stdout bytes (default 16 MiB). */
  maxBytes: size.optional(),
  /** Tools the probe must have found, else the item is skipped with the reason. Default: argv[0]. */
  requires: z
    .array(z.string().regex(/^[A-Za-z0-9._+-]+$/))
    .max(16)
    .optional(),
});
/** A `command` item. */
export type CommandItem = z.infer<typeof CommandItemSchema>;

/** API resources an `api` item can capture. */
export const ApiResourceSchema = z.enum([
  'pod',
  'events',
  'logs',
  'previousLogs',
  'owners',
  'serviceAccount',
  'node',
  'identity',
]);
/** An API resource of an `api` item. */
export type ApiResource = z.infer<typeof ApiResourceSchema>;

/** An `api` item: state read from the Kubernetes API, no exec. Works for every container. */
export const ApiItemSchema = z.strictObject({
  id,
  kind: z.literal('api'),
  description: z.string().max(500).optional(),
  resources: z.array(ApiResourceSchema).min(1),
  /** Cap on one container log (default 64 MiB). */
  maxLogBytes: size.optional(),
});
/** An `api` item. */
export type ApiItem = z.infer<typeof ApiItemSchema>;

/**
 * An `integrity` item: installed files checked against the package databases (dpkg `status`,
 * `status.d/*`, `info/*.md5sums`; apk `installed`), hashed on our side, with `modified`, `missing`
 * and `unpackaged-executable` verdicts in `files/integrity.json`. Runs after the content phase.
 */
export const IntegrityItemSchema = z.strictObject({
  id,
  kind: z.literal('integrity'),
  description: z.string().max(500).optional(),
  /** Absolute directories checked (default: the bin and lib directories). */
  dirs: z.array(absolutePath).min(1).max(64).optional(),
  /** Files pulled at most (default 5000). */
  maxPullFiles: z.number().int().min(1).max(200_000).optional(),
  /** Bytes pulled at most for the target (default 512 MiB). */
  maxPullBytes: size.optional(),
});
/** An `integrity` item. */
export type IntegrityItem = z.infer<typeof IntegrityItemSchema>;

/**
 * A `memory` item (opt-in): process memory as an ELF core per process (`memory/<pid>.core`, which
 * `gdb` and `readelf` open) with an index of every region (`memory/<pid>.index.json`: start, end,
 * perms, offset, path, bytes, SHA-256, what could not be read and why), and `memory/selection.json`
 * (which processes and why). Runs in the volatile phase, after the `proc` items: by default it
 * takes the suspects they found (deleted executables, executables in writable directories or
 * memfds, open memfds), so a profile with `select: 'suspects'` needs a `proc` item with
 * per-process links. Needs `dd` in the container and ptrace access to the process.
 */
export const MemoryItemSchema = z.strictObject({
  id,
  kind: z.literal('memory'),
  description: z.string().max(500).optional(),
  /** `suspects` (default): processes the volatile phase flags; `all`: every process; `none`: only `pids`. */
  select: z.enum(['suspects', 'all', 'none']).optional(),
  /** Process ids (in the container's PID namespace) always taken, before the selection. */
  pids: z.array(z.number().int().min(1).max(4_194_304)).max(256).optional(),
  /** Only processes whose name, command line or executable matches this regular expression. */
  match: z
    .string()
    .min(1)
    .max(200)
    .refine(
      (v) => {
        try {
          new RegExp(v);
          return true;
        } catch {
          return false;
        }
      },
      { message: 'not a valid regular expression' },
    )
    .optional(),
  /** Processes acquired at most (default 4); the rest are listed in `selection.json` as left out. */
  maxProcesses: z.number().int().min(1).max(256).optional(),
  /** Bytes of memory read at most per process (default 256 MiB). */
  maxBytesPerProcess: size.optional(),
  /** Bytes of memory read at most per target (default 1 GiB). */
  maxBytesPerTarget: size.optional(),
});
/** A `memory` item. */
export type MemoryItem = z.infer<typeof MemoryItemSchema>;

/** Any item of a declarative profile. */
export const ProfileItemSchema = z.discriminatedUnion('kind', [
  FileItemSchema,
  ProcItemSchema,
  CommandItemSchema,
  ApiItemSchema,
  IntegrityItemSchema,
  MemoryItemSchema,
]);
/** Any item of a declarative profile. */
export type ProfileItem = z.infer<typeof ProfileItemSchema>;

/** A declarative profile. */
export const ProfileSpecSchema = z
  .strictObject({
    name: id,
    description: z.string().min(1).max(2000),
    version: z.literal(1).optional(),
    items: z.array(ProfileItemSchema).min(1).max(1000),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.items.forEach((item, i) => {
      if (seen.has(item.id)) {
        ctx.addIssue({ code: 'custom', path: ['items', i, 'id'], message: `duplicate item id "${item.id}"` });
      }
      seen.add(item.id);
    });
  });
/** A validated declarative profile (sizes already in bytes). */
export type ProfileSpec = z.infer<typeof ProfileSpecSchema>;
/** A declarative profile as written (sizes may be strings like `"10MB"`). */
export type ProfileSpecInput = z.input<typeof ProfileSpecSchema>;

function describeIssuePath(path: readonly PropertyKey[], raw: unknown): { item?: string; field: string } {
  if (path[0] === 'items' && typeof path[1] === 'number') {
    const items = (raw as { items?: unknown } | null)?.items;
    const entry = Array.isArray(items) ? (items[path[1]] as { id?: unknown } | undefined) : undefined;
    const itemName =
      entry && typeof entry.id === 'string' ? `"${entry.id}" (#${path[1] + 1})` : `#${path[1] + 1}`;
    const rest = path.slice(2);
    return { item: itemName, field: formatPath(rest) || '(item)' };
  }
  return { field: formatPath(path) || '(profile)' };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/**
 * Validates a parsed profile object. `source` names the file (or origin) in error messages.
 *
 * @throws {ValidationError} naming the file, the item and the field of every problem.
 */
export function parseProfileSpec(raw: unknown, source = '<inline>'): ProfileSpec {
  const res = ProfileSpecSchema.safeParse(raw);
  if (res.success) return res.data;
  const issues = res.error.issues.map((iss) => {
    const where = describeIssuePath(iss.path, raw);
    const path = where.item ? `item ${where.item} field ${where.field}` : `field ${where.field}`;
    return { path, message: iss.message };
  });
  const lines = issues.map((i) => `${source}: ${i.path}: ${i.message}`);
  throw new ValidationError(`invalid profile ${source}:\n  ${lines.join('\n  ')}`, { issues });
}

/**
 * Parses profile text (YAML, of which JSON is a subset) and validates it.
 *
 * @throws {ValidationError} for syntax or schema errors (naming `source`, the item and the field).
 */
export function parseProfileText(text: string, source = '<inline>'): ProfileSpec {
  let raw: unknown;
  try {
    raw = loadYaml().parse(text, { maxAliasCount: 100, prettyErrors: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ValidationError(`invalid profile ${source}: not valid YAML/JSON: ${message}`, {
      cause: err,
      issues: [{ path: '(file)', message }],
    });
  }
  return parseProfileSpec(raw, source);
}

/**
 * Reads and validates a profile file (`.yaml`, `.yml` or `.json`).
 *
 * @throws {ConfigError} when the file cannot be read; {@link ValidationError} when it is invalid.
 * @example const spec = await loadProfileFile('./profiles/nginx.yaml');
 */
export async function loadProfileFile(file: string): Promise<ProfileSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read profile file ${file}: check the path and permissions`, { cause: err });
  }
  if (text.length > 4 * 1024 * 1024) {
    throw new ValidationError(`invalid profile ${file}: larger than 4 MiB`, {
      issues: [{ path: '(file)', message: 'larger than 4 MiB' }],
    });
  }
  return parseProfileText(text, file);
}
