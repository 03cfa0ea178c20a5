/**
 * Path globs of `file` items, matched on the receiving side against the listing (the container
 * never sees a pattern, so nothing is expanded by a target shell).
 */

const GLOB_CHARS = /[*?[]/;

/** A compiled path pattern. */
export interface CompiledGlob {
  /** The pattern as written. */
  pattern: string;
  /** Directory to list (the fixed prefix before the first glob segment). */
  root: string;
  /** Depth below `root` to list. */
  depth: number;
  /** Whether a path is selected by this pattern (the pattern itself, or under it when it names a directory). */
  matches(path: string): boolean;
}

function segmentToRegex(seg: string): string {
  let out = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, close);
      const neg = body.startsWith('!') || body.startsWith('^');
      if (neg) body = body.slice(1);
      out += `[${neg ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return out;
}

/**
 * Compiles an absolute path pattern. `*`, `?` and `[…]` match within one segment (dot files
 * included), `**` matches any number of segments up to `maxDepth` levels below the fixed prefix.
 * A pattern without glob characters also selects everything under it (to `maxDepth`) when it is a directory.
 */
export function compileGlob(pattern: string, maxDepth: number): CompiledGlob {
  const segs = pattern.split('/').filter((s) => s !== '');
  const firstGlob = segs.findIndex((s) => GLOB_CHARS.test(s));
  if (firstGlob < 0) {
    const root = `/${segs.join('/')}`;
    return {
      pattern,
      root,
      depth: maxDepth,
      matches: (p) =>
        p === root || (p.startsWith(`${root}/`) && p.slice(root.length + 1).split('/').length <= maxDepth),
    };
  }
  const root = `/${segs.slice(0, firstGlob).join('/')}`;
  const rest = segs.slice(firstGlob);
  const hasStarStar = rest.includes('**');
  const depth = hasStarStar ? maxDepth : rest.length;
  let re = root === '/' ? '' : root.replace(/[.+^${}()|[\]\\*?]/g, '\\$&');
  for (const seg of rest) {
    if (seg === '**') re += '(?:/[^/]+)*';
    else re += `/${segmentToRegex(seg)}`;
  }
  const rx = new RegExp(`^${re}$`, 's');
  return {
    pattern,
    root: root === '' ? '/' : root,
    depth,
    matches: (p) => {
      if (!rx.test(p)) return false;
      if (!hasStarStar) return true;
      const below = root === '/' ? p.slice(1) : p.slice(root.length + 1);
      return below.split('/').length <= maxDepth;
    },
  };
}

/** Whether `path` is excluded by one of the globs (matched against the full path and the base name). */
export function isExcluded(path: string, excludes: readonly RegExp[]): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return excludes.some((rx) => rx.test(path) || rx.test(base));
}

/** Compiles exclude globs (full-path or base-name patterns). */
export function compileExcludes(patterns: readonly string[] | undefined): RegExp[] {
  return (patterns ?? []).map((p) => {
    if (p.startsWith('/')) {
      const segs = p.split('/').filter(Boolean);
      return new RegExp(`^/${segs.map((s) => (s === '**' ? '.*' : segmentToRegex(s))).join('/')}$`, 's');
    }
    return new RegExp(`^${segmentToRegex(p)}$`, 's');
  });
}
