import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ERROR_CLASSES, LimitExceededError } from '../../src/entries/errors.js';
import {
  AbortedError,
  EksForensicsError,
  ForbiddenError,
  NotFoundError,
  TimeoutError,
} from '../../src/index.js';

describe('errors', () => {
  it('every class has a distinct stable EKSF_ code and a kind equal to its name', () => {
    const codes = new Set<string>();
    for (const Cls of ERROR_CLASSES) {
      const e =
        Cls === LimitExceededError
          ? new LimitExceededError('x', { limit: 'maxBytes' })
          : new (Cls as typeof EksForensicsError)('x');
      expect(e.code).toMatch(/^EKSF_[A-Z_]+$/);
      expect(codes.has(e.code)).toBe(false);
      codes.add(e.code);
      expect(e.name).toBe(Cls.kind);
      expect(e).toBeInstanceOf(EksForensicsError);
    }
  });

  it('instanceof follows the brand, so a copy from another module build still matches', () => {
    const e = new TimeoutError('t');
    expect(e instanceof AbortedError).toBe(true);
    expect(e instanceof NotFoundError).toBe(false);
    // a structurally branded object from "another copy" of the package
    const foreign = Object.create(null) as Record<symbol, unknown>;
    foreign[Symbol.for('eks-forensics.error')] = ['ForbiddenError', 'EksForensicsError'];
    expect(foreign instanceof ForbiddenError).toBe(true);
    expect(foreign instanceof NotFoundError).toBe(false);
  });

  it('redacts tokens and signatures from messages and inspect output', () => {
    const token = `k8s-aws-v1.${'a'.repeat(40)}`;
    const e = new EksForensicsError(
      `failed with Bearer abc.def and ${token} at https://sts/?X-Amz-Signature=deadbeef&X-Amz-Security-Token=SECRET`,
      { cause: new Error('inner') },
    );
    const text = `${e.message}\n${inspect(e)}\n${String(e)}`;
    expect(text).not.toContain('abc.def');
    expect(text).not.toContain('a'.repeat(40));
    expect(text).not.toContain('deadbeef');
    expect(text).not.toContain('SECRET');
    expect(e.cause).toBeInstanceOf(Error);
  });
});
