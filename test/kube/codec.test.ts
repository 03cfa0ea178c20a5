import { describe, expect, it } from 'vitest';
import { ExecFailedError, ExecProtocolError } from '../../src/errors.js';
import {
  Channel,
  decodeFrame,
  encodeClose,
  encodeFrame,
  encodeStatusPayload,
  internalErrorStatus,
  MAX_STATUS_BYTES,
  nonZeroExitStatus,
  parseExecStatus,
  successStatus,
} from '../../src/kube/index.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('exec frame codec', () => {
  it('prefixes the channel byte and round-trips', () => {
    const f = encodeFrame(Channel.Stdin, Buffer.from('foo\n'));
    expect([...f]).toEqual([0, 0x66, 0x6f, 0x6f, 0x0a]);
    const d = decodeFrame(encodeFrame(Channel.Stderr, Buffer.from('err')));
    expect(d?.channel).toBe(2);
    expect(d?.payload.toString()).toBe('err');
  });

  it('encodes the v5 CLOSE signal as exactly [255, channel]', () => {
    expect([...encodeClose(Channel.Stdin)]).toEqual([255, 0]);
  });

  it('returns null for an empty message and an empty payload for the opening frame', () => {
    expect(decodeFrame(Buffer.alloc(0))).toBeNull();
    const open = decodeFrame(Buffer.from([1]));
    expect(open?.channel).toBe(1);
    expect(open?.payload.length).toBe(0);
  });

  it('decodes unknown channels without interpreting them', () => {
    const d = decodeFrame(Buffer.from([200, 1, 2]));
    expect(d?.channel).toBe(200);
    expect([...(d?.payload ?? [])]).toEqual([1, 2]);
  });

  it('rejects channel numbers outside a byte', () => {
    expect(() => encodeFrame(256)).toThrow(RangeError);
    expect(() => encodeFrame(-1)).toThrow(RangeError);
  });
});

describe('exec status parsing', () => {
  it('Success is exit 0', () => {
    expect(parseExecStatus(encodeStatusPayload(successStatus())).exitCode).toBe(0);
    expect(parseExecStatus(Buffer.from('{"metadata":{},"status":"Success"}')).exitCode).toBe(0);
  });

  it('NonZeroExitCode gives the code from the ExitCode cause (1 and 42)', () => {
    expect(parseExecStatus(encodeStatusPayload(nonZeroExitStatus(1))).exitCode).toBe(1);
    const raw =
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 42","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}';
    const out = parseExecStatus(Buffer.from(raw));
    expect(out.exitCode).toBe(42);
    expect(out.status.reason).toBe('NonZeroExitCode');
  });

  it('InternalError is ExecFailedError carrying the Status', () => {
    const st = internalErrorStatus('unable to upgrade connection: container not found ("app")');
    try {
      parseExecStatus(encodeStatusPayload(st));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ExecFailedError);
      expect((e as ExecFailedError).status?.reason).toBe('InternalError');
      expect((e as Error).message).toContain('container not found');
    }
  });

  it.each([
    ['exit code > 255', nonZeroExitStatus(256)],
    [
      'negative exit code',
      { ...nonZeroExitStatus(1), details: { causes: [{ reason: 'ExitCode', message: '-1' }] } },
    ],
    [
      'non-numeric exit code',
      { ...nonZeroExitStatus(1), details: { causes: [{ reason: 'ExitCode', message: '4x' }] } },
    ],
    ['missing ExitCode cause', { status: 'Failure', reason: 'NonZeroExitCode' }],
    ['unknown status value', { status: 'Maybe' }],
  ])('hostile status: %s → ExecProtocolError', (_name, st) => {
    expect(() => parseExecStatus(json(st))).toThrow(ExecProtocolError);
  });

  it('bad JSON → ExecProtocolError', () => {
    expect(() => parseExecStatus(Buffer.from('{"status":'))).toThrow(ExecProtocolError);
    expect(() => parseExecStatus(Buffer.from([0xff, 0xfe, 0x00]))).toThrow(ExecProtocolError);
  });

  it('wrong types → ExecProtocolError', () => {
    expect(() => parseExecStatus(json({ status: 42 }))).toThrow(ExecProtocolError);
    expect(() => parseExecStatus(json([1, 2]))).toThrow(ExecProtocolError);
    expect(() => parseExecStatus(json('Success'))).toThrow(ExecProtocolError);
  });

  it('huge status → ExecProtocolError without parsing it', () => {
    const huge = json({ status: 'Success', message: 'x'.repeat(MAX_STATUS_BYTES) });
    expect(huge.length).toBeGreaterThan(MAX_STATUS_BYTES);
    expect(() => parseExecStatus(huge)).toThrow(/over the 65536-byte limit/);
  });

  it('too many causes → ExecProtocolError', () => {
    const causes = Array.from({ length: 1001 }, () => ({ reason: 'x' }));
    expect(() => parseExecStatus(json({ status: 'Failure', reason: 'X', details: { causes } }))).toThrow(
      ExecProtocolError,
    );
  });
});
