/**
 * In-container command builders. Every builder returns an argv. Where a shell script is needed the
 * script is a constant and every variable input (paths, pids, caps) is passed as a positional
 * argument (`sh -c SCRIPT name "$@"`): nothing target-derived is ever interpolated into a script.
 * Scripts only read: nothing is written in the container (no temp files, no staging).
 *
 * Framed scripts read a per-exec random key from stdin (never in argv, where the container could
 * read it back from /proc) and wrap every entry as `\n<key> B <header…>\n<bytes>\n<key> E <rc>\n`.
 */

/** Key frame lines start with; 32 hex chars sent on stdin. */
export const FRAME_KEY_BYTES = 16;

const PRELUDE = [
  'IFS= read -r K || exit 97',
  'exec </dev/null',
  'e() { printf "\\n%s E %s\\n" "$K" "$1"; }',
  'b() { printf "\\n%s B %s\\n" "$K" "$1"; }',
];

/** How a framed script reads bytes. */
export type ReadMode = 'head' | 'cat' | 'builtins';

function readerFn(mode: ReadMode): string {
  switch (mode) {
    case 'head':
      return 'r() { head -c "$2" -- "$1" 2>/dev/null; }';
    case 'cat':
      return 'r() { cat -- "$1" 2>/dev/null; }';
    case 'builtins':
      return 'r() { { while IFS= read -r l || [ -n "$l" ]; do printf "%s\\n" "$l"; done <"$1"; } 2>/dev/null; }';
  }
}

const LINK_FNS = [
  'k() { readlink -- "$1" 2>/dev/null; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'kd() { for x in "$1"/*; do [ -L "$x" ] || continue; printf "%s\\0" "${x##*/}"; k "$x"; printf "\\0"; done; }',
];
const NO_LINK_FNS = ['k() { return 3; }', 'kd() { return 3; }'];

/**
 * The volatile-state script. Positional arguments:
 * `procBase cap maxProcs fieldsList links(0|1) [globalFile…]` where `fieldsList` is a space-separated
 * list of validated field names. Frames: `G <file>`, `P <pid> <field>`, `L <pid> exe|cwd|root`,
 * `D <pid> fd|ns`, `S self` (the collector's own shell PID), `M maxprocs`, and last (when processes
 * are listed) `T self/mountinfo`, the mounts read again after the listing.
 */
export function volatileScript(mode: ReadMode, readlink: boolean): string {
  return [
    ...PRELUDE,
    readerFn(mode),
    ...(readlink ? LINK_FNS : NO_LINK_FNS),
    'P=$1; C=$2; X=$3; F=$4; Lk=$5; shift 5',
    'b "S self"; printf "%s" "$$"; e 0',
    'for g in "$@"; do b "G $g"; r "$P/$g" "$C"; e $?; done',
    'n=0',
    '[ "$X" -gt 0 ] || exit 0',
    'for d in "$P"/[0-9]*; do',
    '  [ -d "$d" ] || continue',
    '  n=$((n+1)); if [ "$n" -gt "$X" ]; then b "M maxprocs"; e 0; break; fi',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    '  p=${d##*/}',
    '  for f in $F; do b "P $p $f"; r "$d/$f" "$C"; e $?; done',
    '  if [ "$Lk" = 1 ]; then',
    '    for l in exe cwd root; do b "L $p $l"; k "$d/$l"; e $?; done',
    '    for l in fd ns; do b "D $p $l"; kd "$d/$l"; e $?; done',
    '  fi',
    'done',
    // the mounts again: one made over a process directory while the listing ran shows here
    'b "T self/mountinfo"; r "$P/self/mountinfo" "$C"; e $?',
  ].join('\n');
}

/** argv of the volatile step. `fields` must be validated field names (no spaces or quotes). */
export function volatileArgv(opts: {
  shell: string;
  mode: ReadMode;
  readlink: boolean;
  procBase: string;
  capPerFile: number;
  maxProcesses: number;
  fields: readonly string[];
  links: boolean;
  globalFiles: readonly string[];
}): string[] {
  for (const f of opts.fields) {
    if (!/^[a-z_]+(\/[a-z_]+)?$/.test(f)) throw new RangeError(`invalid proc field ${JSON.stringify(f)}`);
  }
  return [
    opts.shell,
    '-c',
    volatileScript(opts.mode, opts.readlink),
    'eksf-volatile',
    opts.procBase,
    String(opts.capPerFile),
    String(opts.maxProcesses),
    opts.fields.join(' '),
    opts.links ? '1' : '0',
    ...opts.globalFiles,
  ];
}

/**
 * Reads process-owned bytes (executables, deleted fds). Positional args: `procBase cap rel…` with
 * each `rel` like `123/exe` or `123/fd/4` (validated by the caller). Frames: `X <rel>`.
 */
export function procBytesScript(mode: ReadMode): string {
  return [
    ...PRELUDE,
    readerFn(mode),
    'P=$1; C=$2; shift 2',
    'for x in "$@"; do b "X $x"; r "$P/$x" "$C"; e $?; done',
  ].join('\n');
}

/** argv of the process-bytes step. Throws RangeError for a `rel` that is not `<pid>/exe` or `<pid>/fd/<n>`. */
export function procBytesArgv(
  shell: string,
  mode: ReadMode,
  procBase: string,
  cap: number,
  rels: readonly string[],
): string[] {
  for (const r of rels) {
    if (!/^\d{1,10}\/(exe|fd\/\d{1,10})$/.test(r))
      throw new RangeError(`invalid process path ${JSON.stringify(r)}`);
  }
  return [shell, '-c', procBytesScript(mode), 'eksf-procbytes', procBase, String(cap), ...rels];
}

/**
 * Reads files as frames. Positional args: pairs `take path`; `take` is the byte count decided up
 * front (the size from the listing, capped), so a file that grows while read cannot extend its
 * frame. Frames: `<i> F <take>` (regular file), `<i> L` (symlink: not followed), `<i> N` (not a
 * regular file or missing).
 */
export function filesScript(mode: ReadMode): string {
  return [
    ...PRELUDE,
    readerFn(mode),
    'i=0',
    'while [ "$#" -ge 2 ]; do',
    '  t=$1; p=$2; shift 2',
    '  if [ -L "$p" ]; then b "$i L"; readlink -- "$p" 2>/dev/null; e $?',
    '  elif [ -f "$p" ]; then b "$i F $t"; r "$p" "$t"; e $?',
    '  else b "$i N"; e 0; fi',
    '  i=$((i+1))',
    'done',
  ].join('\n');
}

/** argv of a framed file-content step. */
export function filesArgv(
  shell: string,
  mode: ReadMode,
  files: readonly { path: string; take: number }[],
): string[] {
  const args: string[] = [];
  for (const f of files) args.push(String(f.take), f.path);
  return [shell, '-c', filesScript(mode), 'eksf-files', ...args];
}

/** argv of a tar content step: `tar cf - -- paths…` (no shell; paths are plain argv). */
export function tarArgv(paths: readonly string[]): string[] {
  return ['tar', 'cf', '-', '--', ...paths];
}

/**
 * Listing script. Positional args: pairs `maxDepth root`. Output: NUL-separated records; a record
 * starting with `/` is a path, `T<t>` sets the type of the paths that follow (`f`, `d`, `l`, `o`,
 * `?` = unknown), `R<i>` starts the i-th root and `Q<i>:<rc>` ends it with find's exit code (a
 * path always starts with `/`, so names cannot forge these). Roots that do not exist are empty.
 * With `find`, one pass per type when `typed`, else one untyped pass.
 */
export function listingScript(kind: 'find' | 'find-typed' | 'shell'): string {
  const each = (body: string[]) => [
    'i=0; while [ "$#" -ge 2 ]; do d=$1; r=$2; shift 2; printf "R%s\\0" "$i"; rc=0',
    '  if [ -e "$r" ] || [ -L "$r" ]; then',
    ...body.map((l) => `    ${l}`),
    '  fi; printf "Q%s:%s\\0" "$i" "$rc"; i=$((i+1)); done',
    'exit 0',
  ];
  if (kind === 'find') {
    return ['printf "T?\\0"', ...each(['find "$r" -xdev -maxdepth "$d" -print0 2>/dev/null || rc=$?'])].join(
      '\n',
    );
  }
  if (kind === 'find-typed') {
    return each([
      'printf "Tf\\0"; find "$r" -xdev -maxdepth "$d" -type f -print0 2>/dev/null || rc=$?',
      'printf "Td\\0"; find "$r" -xdev -maxdepth "$d" -type d -print0 2>/dev/null || rc=$?',
      'printf "Tl\\0"; find "$r" -xdev -maxdepth "$d" -type l -print0 2>/dev/null || rc=$?',
    ]).join('\n');
  }
  return [
    't() { if [ -L "$1" ]; then printf "Tl\\0%s\\0" "$1"; return 1',
    '  elif [ -d "$1" ]; then printf "Td\\0%s\\0" "$1"; return 0',
    '  elif [ -f "$1" ]; then printf "Tf\\0%s\\0" "$1"; return 1',
    '  elif [ -e "$1" ]; then printf "To\\0%s\\0" "$1"; return 1; fi; return 1; }',
    'w() { for x in "$1"/* "$1"/.[!.]* "$1"/..?*; do t "$x" && [ "$2" -gt 0 ] && w "$x" $(($2-1)); done; }',
    ...each(['t "$r" && [ "$d" -gt 0 ] && w "$r" $((d-1))']),
  ].join('\n');
}

/** argv of the listing step. */
export function listingArgv(
  shell: string,
  kind: 'find' | 'find-typed' | 'shell',
  roots: readonly { root: string; maxDepth: number }[],
): string[] {
  const args: string[] = [];
  for (const r of roots) args.push(String(r.maxDepth), r.root);
  return [shell, '-c', listingScript(kind), 'eksf-list', ...args];
}

/**
 * `stat -c` format of the metadata step: inode|rawmode(hex)|nlink|uid|gid|size|atime|mtime|ctime|birth|name
 * (birth: GNU stat's `%W`, 0 when unknown; busybox prints the letter back, read as unknown).
 */
export const STAT_FORMAT = '%i|%f|%h|%u|%g|%s|%X|%Y|%Z|%W|%n';

/**
 * argv of a metadata batch fed on stdin: `xargs -0 stat -c FORMAT --` reads NUL-terminated paths
 * (no shell; the exec request stays small however many paths a batch holds).
 */
export function statStdinArgv(): string[] {
  return ['xargs', '-0', 'stat', '-c', STAT_FORMAT, '--'];
}

/** Paths per stdin-fed `stat` batch at most, and bytes of their names. */
export const STAT_STDIN_BATCH = { paths: 4000, bytes: 1024 * 1024 } as const;

/** argv of a metadata batch: `stat -c FORMAT -- paths…` (no shell). */
export function statArgv(paths: readonly string[]): string[] {
  return ['stat', '-c', STAT_FORMAT, '--', ...paths];
}

/**
 * Splits `items`, in order, into batches of at most `maxCost` summed `cost` and at most `maxItems`
 * items; every batch holds at least one item (an item over `maxCost` goes alone).
 */
export function batchBy<T>(
  items: readonly T[],
  cost: (item: T) => number,
  maxCost: number,
  maxItems = Number.POSITIVE_INFINITY,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let total = 0;
  for (const it of items) {
    const n = cost(it);
    if (cur.length > 0 && (cur.length >= maxItems || total + n > maxCost)) {
      out.push(cur);
      cur = [];
      total = 0;
    }
    cur.push(it);
    total += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Splits `items` into batches whose argv, URL-encoded as exec sends it (`&command=…` per
 * argument), stays under `maxChars`, so no exec request line outgrows the server's header limit.
 */
export function batchByChars<T>(items: readonly T[], key: (item: T) => string, maxChars: number): T[][] {
  return batchBy(items, (it) => encodeURIComponent(key(it)).length + 16, maxChars);
}
