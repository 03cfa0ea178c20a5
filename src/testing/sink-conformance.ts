/**
 * The sink conformance suite: the behaviour every evidence sink must have, built-in or third
 * party. It needs no test framework: it returns one result per check, so a test asserts that
 * none failed (`expect(results.filter((r) => !r.ok)).toEqual([])`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { EvidenceLocation, EvidenceSink, VerifyReport } from '../evidence/index.js';
import { verifyEvidence } from '../evidence/index.js';

/** A sink to check, and where `verifyEvidence` finds a bundle it wrote. */
export interface SinkUnderTest {
  /** The sink (a fresh one, or one that accepts new acquisition ids). */
  sink: EvidenceSink;
  /** The location to verify for a bundle, from its id and the writer's `location`. */
  locate(acquisitionId: string, writerLocation: string): EvidenceLocation;
}

/** One check of {@link runSinkConformance}. */
export interface ConformanceResult {
  /** What was checked. */
  name: string;
  /** Whether the sink behaved as required. */
  ok: boolean;
  /** What went wrong, when not ok. */
  detail?: string | undefined;
}

const MiB = 1024 * 1024;
const source = { kind: 'conformance' };

function pattern(bytes: number): { body: Readable; sha256: string } {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
  const h = createHash('sha256');
  const parts: Buffer[] = [];
  for (let n = 0; n < bytes; n += block.length) {
    const b = block.subarray(0, Math.min(block.length, bytes - n));
    h.update(b);
    parts.push(b);
  }
  return { body: Readable.from(parts), sha256: h.digest('hex') };
}

async function* failingAfter(bytes: number): AsyncGenerator<Buffer> {
  yield Buffer.alloc(bytes, 0x61);
  throw new Error('the producer broke');
}

/**
 * Runs the checks against `make()` (called once per check, so each may get a fresh sink):
 * a finalized bundle with a small, a streamed 3 MiB and a broken artifact verifies `valid` with its
 * manifest hash and records each artifact as written; a second bundle with the same acquisition id
 * is refused; an aborted bundle never verifies `valid`; a bundle whose stored bytes were not what
 * was written (checked through `tamper`, when given) does not verify.
 *
 * @example
 * const results = await runSinkConformance(() => {
 *   const sink = new DirectorySink({ root: dir });
 *   return { sink, locate: (_id, location) => location };
 * });
 * expect(results.filter((r) => !r.ok)).toEqual([]);
 */
export async function runSinkConformance(
  make: () => SinkUnderTest | Promise<SinkUnderTest>,
  options: {
    /** Alters one stored artifact of a finalized bundle in the sink's storage (to check that verification notices). */
    tamper?: (acquisitionId: string, writerLocation: string, path: string) => Promise<void>;
  } = {},
): Promise<ConformanceResult[]> {
  const results: ConformanceResult[] = [];
  const check = async (name: string, fn: () => Promise<string | undefined>) => {
    try {
      const problem = await fn();
      results.push(problem === undefined ? { name, ok: true } : { name, ok: false, detail: problem });
    } catch (err) {
      results.push({ name, ok: false, detail: `threw: ${err instanceof Error ? err.message : String(err)}` });
    }
  };
  const verdict = (r: VerifyReport) =>
    `${r.status}: ${r.problems
      .slice(0, 5)
      .map((p) => `${p.code} ${p.path ?? ''} ${p.message}`)
      .join('; ')}`;

  const finalized = async () => {
    const t = await make();
    const acquisitionId = `conformance-${randomUUID()}`;
    const w = await t.sink.open({ acquisitionId, caseId: 'CONFORMANCE' });
    const big = pattern(3 * MiB + 123);
    const small = await w.writeArtifact('small.txt', 'hello evidence\n', { source });
    const large = await w.writeArtifact('streams/large.bin', big.body, { source });
    const broken = await w.writeArtifact('streams/broken.bin', Readable.from(failingAfter(1000)), { source });
    const fin = await w.finalize();
    return { t, w, fin, acquisitionId, small, large, broken, bigSha: big.sha256 };
  };

  await check(
    'a finalized bundle verifies valid with its manifest hash, each artifact as written',
    async () => {
      const b = await finalized();
      if (b.fin.acquisitionId !== b.acquisitionId) return `finalize reported id ${b.fin.acquisitionId}`;
      if (b.small.status !== 'complete') return `small artifact is ${b.small.status}`;
      if (b.small.sha256 !== createHash('sha256').update('hello evidence\n').digest('hex'))
        return 'small artifact hash differs from the bytes written';
      if (b.large.status !== 'complete' || b.large.sha256 !== b.bigSha || b.large.bytes !== 3 * MiB + 123)
        return `streamed artifact recorded ${b.large.status} ${b.large.bytes} bytes ${b.large.sha256}`;
      if (b.broken.status === 'complete') return 'an artifact whose producer failed is recorded complete';
      const r = await verifyEvidence(b.t.locate(b.acquisitionId, b.fin.location), {
        expectedManifestSha256: b.fin.manifestSha256,
      });
      return r.status === 'valid' ? undefined : verdict(r);
    },
  );

  await check('the same acquisition id cannot be opened twice', async () => {
    const t = await make();
    const acquisitionId = `conformance-${randomUUID()}`;
    const w = await t.sink.open({ acquisitionId });
    await w.writeArtifact('a.txt', 'a', { source });
    await w.finalize();
    try {
      const again = await t.sink.open({ acquisitionId });
      await again.abort('conformance: should not have opened');
      return 'a second open() with the same acquisition id succeeded';
    } catch {
      return undefined;
    }
  });

  await check('an aborted bundle never verifies valid', async () => {
    const t = await make();
    const acquisitionId = `conformance-${randomUUID()}`;
    const w = await t.sink.open({ acquisitionId });
    await w.writeArtifact('a.txt', 'written before the abort', { source });
    await w.abort('conformance: aborted on purpose');
    const r = await verifyEvidence(t.locate(acquisitionId, w.location), { acceptUnanchored: true });
    return r.status === 'valid' ? 'an aborted bundle verified valid' : undefined;
  });

  if (options.tamper) {
    const tamper = options.tamper;
    await check('a stored artifact altered after finalize does not verify', async () => {
      const b = await finalized();
      await tamper(b.acquisitionId, b.fin.location, 'small.txt');
      const r = await verifyEvidence(b.t.locate(b.acquisitionId, b.fin.location), {
        expectedManifestSha256: b.fin.manifestSha256,
      });
      if (r.status !== 'invalid') return `altered bundle is ${verdict(r)}`;
      return r.problems.some((p) => p.path === 'small.txt') ? undefined : `problems: ${verdict(r)}`;
    });
  }
  return results;
}
