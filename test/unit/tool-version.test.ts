/**
 * Custody records name the tool and its version; the version written into evidence must be the
 * version of the package that wrote it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVIDENCE_TOOL } from '../../src/entries/schemas.js';

describe('EVIDENCE_TOOL', () => {
  it('names this package and its exact version from package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    expect(EVIDENCE_TOOL).toEqual({ name: pkg.name, version: pkg.version });
  });
});
