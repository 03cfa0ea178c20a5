import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { collisionKey, PATH_LIMITS, PathAllocator, sanitizeBundlePath } from '../../src/evidence/index.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function assertSafe(p: string): void {
  expect(p.startsWith('/')).toBe(false);
  for (const c of p.split('/')) {
    expect(c).not.toBe('');
    expect(c).not.toBe('.');
    expect(c).not.toBe('..');
    expect(bytes(c)).toBeLessThanOrEqual(PATH_LIMITS.component + 8);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for them is the point
  expect(p).not.toMatch(/[\u0000-\u001f\u007f-\u009f\\\u202a-\u202e\u2066-\u2069]/u);
  expect(bytes(p)).toBeLessThanOrEqual(PATH_LIMITS.total + 8);
}

describe('sanitizeBundlePath', () => {
  const hostile: Array<[string, string]> = [
    ['../../etc/passwd', '%2E%2E/%2E%2E/etc/passwd'],
    ['/etc/shadow', 'etc/shadow'],
    ['containers/a/../../../x', 'containers/a/%2E%2E/%2E%2E/%2E%2E/x'],
    ['a/./b//c', 'a/b/c'],
    ['a\\..\\..\\win', 'a%5C..%5C..%5Cwin'],
    ['nul\u0000byte', 'nul%00byte'],
    ['line\nfeed\rcr\ttab', 'line%0Afeed%0Dcr%09tab'],
    ['esc\u001b[31mred', 'esc%1B[31mred'],
    ['del\u007f', 'del%7F'],
    ['c1\u0085x', 'c1%C2%85x'],
    ['evil\u202egnp.exe', 'evil%E2%80%AEgnp.exe'],
    ['zero\u200bwidth', 'zero%E2%80%8Bwidth'],
    ['100%', '100%25'],
    ['%2E%2E', '%252E%252E'],
    ['trailing. ', 'trailing%2E%20'],
    ['manifest.json', '_manifest.json'],
    ['Custody.JSON', '_Custody.JSON'],
    ['seal.json/x', '_seal.json/x'],
    ['sub/manifest.json', 'sub/manifest.json'],
    ['lone\ud800surrogate', 'lone%uD800surrogate'],
  ];
  for (const [input, want] of hostile) {
    it(`sanitizes ${JSON.stringify(input)}`, () => {
      const got = sanitizeBundlePath(input);
      expect(got).toBe(want);
      assertSafe(got);
    });
  }

  it('normalizes to NFC so composed and decomposed names are the same file', () => {
    expect(sanitizeBundlePath('caf\u0065\u0301')).toBe(sanitizeBundlePath('caf\u00e9'));
    expect(sanitizeBundlePath('caf\u0065\u0301')).toBe('caf\u00e9');
  });

  it('rejects paths with nothing usable', () => {
    for (const p of ['', '/', './.', '//']) expect(() => sanitizeBundlePath(p)).toThrow(ConfigError);
  });

  it('caps a long component deterministically and keeps its extension', () => {
    const long = `${'é'.repeat(300)}.txt`;
    const a = sanitizeBundlePath(`d/${long}`);
    const b = sanitizeBundlePath(`d/${long}`);
    expect(a).toBe(b);
    const last = a.split('/')[1] ?? '';
    expect(bytes(last)).toBeLessThanOrEqual(PATH_LIMITS.component);
    expect(last.endsWith('.txt')).toBe(true);
    expect(last).toMatch(/~[0-9a-f]{16}\.txt$/);
    // a different long name gets a different result
    expect(sanitizeBundlePath(`d/${'é'.repeat(299)}x.txt`)).not.toBe(a);
  });

  it('caps the total length', () => {
    const deep = Array.from({ length: 60 }, (_, i) => `dir${i}-${'x'.repeat(20)}`).join('/');
    const out = sanitizeBundlePath(`${deep}/file.bin`);
    expect(bytes(out)).toBeLessThanOrEqual(PATH_LIMITS.total);
    expect(out).toMatch(/^_long\/[0-9a-f]{32}\/file\.bin$/);
    expect(sanitizeBundlePath('_long/x')).toBe('__long/x');
  });

  it('fuzz: never yields an unsafe path', () => {
    const alphabet = ['.', '..', '/', '\\', '\u0000', '\n', 'a', 'É', '\u202e', '%', ' ', '~', 'ſ', 'K'];
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const n = 1 + (rnd() % 30);
      for (let j = 0; j < n; j++) s += alphabet[rnd() % alphabet.length];
      let out: string;
      try {
        out = sanitizeBundlePath(s);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        continue;
      }
      assertSafe(out);
    }
  });
});

describe('PathAllocator', () => {
  it('de-duplicates exact, case and compatibility collisions deterministically', () => {
    const run = () => {
      const a = new PathAllocator();
      return [
        a.allocate('logs/app.log'),
        a.allocate('logs/app.log'),
        a.allocate('LOGS/App.Log'),
        a.allocate('logs/app.log'),
        a.allocate('logs/ａｐｐ.log'), // fullwidth: same under NFKC
        a.allocate('noext'),
        a.allocate('NoExt'),
      ];
    };
    const first = run();
    expect(first).toEqual([
      'logs/app.log',
      'logs/app~2.log',
      'LOGS/App~3.Log',
      'logs/app~4.log',
      'logs/ａｐｐ~5.log',
      'noext',
      'NoExt~2',
    ]);
    expect(run()).toEqual(first);
    expect(new Set(first.map(collisionKey)).size).toBe(first.length);
  });

  it('never puts a file where a directory is and vice versa', () => {
    const a = new PathAllocator();
    expect(a.allocate('x/y')).toBe('x/y');
    expect(a.allocate('x')).toBe('x~2');
    expect(a.allocate('x/y/z')).toBe('x/y~2/z');
    expect(a.allocate('X/Y/w')).toBe('X/Y~2/w');
  });

  it('keeps the bundle files reserved', () => {
    const a = new PathAllocator();
    a.reserve('journal.jsonl');
    expect(a.allocate('journal.jsonl')).toBe('_journal.jsonl');
  });
});
