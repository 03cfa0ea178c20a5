import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CLASSES, LimitExceededError } from '../../src/entries/errors.js';
import type { EksForensicsError } from '../../src/index.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

function codeOf(Cls: (typeof ERROR_CLASSES)[number]): string {
  const e =
    Cls === LimitExceededError
      ? new LimitExceededError('x', { limit: 'x' })
      : new (Cls as typeof EksForensicsError)('x');
  return e.code;
}

describe('docs/errors.md', () => {
  it('has a row for every error class with its code', () => {
    for (const Cls of ERROR_CLASSES) {
      const row = doc.split('\n').find((l) => l.includes(`| \`${codeOf(Cls)}\` |`));
      expect(row, `docs/errors.md lacks ${codeOf(Cls)}`).toBeDefined();
      expect(row).toContain(`\`${Cls.kind}\``);
    }
  });

  it('documents no code that does not exist', () => {
    const codes = new Set(ERROR_CLASSES.map(codeOf));
    for (const m of doc.matchAll(/`(EKSF_[A-Z_]+)`/g)) expect(codes.has(m[1] as string), m[1]).toBe(true);
  });
});
