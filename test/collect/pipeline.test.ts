/**
 * The pipeline's pure parts (issue 13): the one decision on exec evidence, derived statuses,
 * the listing plan and budgets, the secrets policy for API objects, typed reasons, and the rule
 * that no phase can record exec evidence except through the door.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/collect/index.js';
import { ITEM_KINDS } from '../../src/collect/run/kinds.js';
import { planListing, ROOT_PRIORITY, rootBudget } from '../../src/collect/run/listing-plan.js';
import { ReasonList, reason } from '../../src/collect/run/reasons.js';
import { hashValue, isSpecAnnotation, podWithSecretsHashed } from '../../src/collect/run/secrets.js';
import { decideExec, derivedVerdict, isVerdict, withProblem } from '../../src/collect/run/verdict.js';
import { ProfileItemSchema } from '../../src/collect/schema.js';

describe('the one decision on exec evidence', () => {
  const ok = { exitCode: 0, bytes: 10 };
  it('is complete only for exit 0 with a status, nothing stopped, nothing found', () => {
    expect(decideExec(ok).status).toBe('complete');
    expect(decideExec({ ...ok, okExitCodes: [1], exitCode: 1 }).status).toBe('complete');
  });
  it.each([
    ['exit 137 after output', { exitCode: 137, bytes: 10 }, 'truncated', 'exec-exit-code'],
    ['exit 1 before output', { exitCode: 1, bytes: 0 }, 'failed', 'exec-exit-code'],
    [
      'watchdog, no bytes',
      { exitCode: null, bytes: 0, error: 'no output', stoppedBy: 'watchdog' as const },
      'failed',
      'watchdog',
    ],
    [
      'timeout after bytes',
      { exitCode: null, bytes: 5, error: 't', errorCode: 'EKSF_TIMEOUT' },
      'truncated',
      'timeout',
    ],
    ['aborted', { exitCode: null, bytes: 5, error: 'a', errorCode: 'EKSF_ABORTED' }, 'truncated', 'aborted'],
    ['no status, no error', { exitCode: null, bytes: 5 }, 'truncated', 'exec-error'],
    ['receiver threw', { exitCode: 0, bytes: 5, consumerError: 'boom' }, 'failed', 'stream-rejected'],
    [
      'cut at the cap',
      {
        exitCode: null,
        bytes: 5,
        error: 'receiver stopped',
        stoppedBy: 'receiver' as const,
        cut: { code: 'cap' as const, text: 'cap' },
      },
      'truncated',
      'cap',
    ],
    [
      'receiver rejected the bytes',
      {
        exitCode: 0,
        bytes: 5,
        receiver: [{ status: 'failed' as const, code: 'stream-rejected' as const, text: 'bad tar' }],
      },
      'failed',
      'stream-rejected',
    ],
    [
      'fewer bytes than asked',
      { exitCode: 0, bytes: 5, expectedBytes: 9 },
      'truncated',
      'artifact-truncated',
    ],
    ['more bytes than asked', { exitCode: 0, bytes: 12, expectedBytes: 9 }, 'failed', 'artifact-truncated'],
  ])('%s', (_name, facts, status, code) => {
    const v = decideExec(facts, 'a/path');
    expect(v.status).toBe(status);
    expect(v.reasons.map((r) => r.code)).toContain(code);
    expect(v.reasons.every((r) => r.artifact === 'a/path')).toBe(true);
  });
  it('a cut stopped on purpose is not also blamed on the exec error it caused', () => {
    const v = decideExec({
      exitCode: null,
      bytes: 5,
      error: 'receiver stopped',
      stoppedBy: 'receiver',
      cut: { code: 'budget', text: 'b' },
    });
    expect(v.reasons.map((r) => r.code)).toEqual(['budget']);
  });
  it('derived evidence inherits the worst status of its inputs, with every reason', () => {
    const a = decideExec(ok);
    const b = decideExec({ exitCode: 137, bytes: 1 }, 'x');
    const c = decideExec({ exitCode: 0, bytes: 1, consumerError: 'e' }, 'y');
    expect(derivedVerdict([a]).status).toBe('complete');
    expect(derivedVerdict([a, b]).status).toBe('truncated');
    const w = derivedVerdict([b, a, c]);
    expect(w.status).toBe('failed');
    expect(w.reasons.map((r) => r.artifact)).toEqual(['x', 'y']);
    expect(withProblem(a, 'truncated', reason('listing-root-truncated', '/tmp')).status).toBe('truncated');
  });
  it('a verdict cannot be forged from a plain object', () => {
    expect(isVerdict(decideExec(ok))).toBe(true);
    expect(isVerdict({ status: 'complete', reasons: [], exitCode: 0 })).toBe(false);
    expect(Object.isFrozen(decideExec(ok))).toBe(true);
  });
});

describe('listing plan and budgets', () => {
  it('merges nested roots, pins plain paths, lists volatile roots first', () => {
    const plan = planListing([
      { pattern: '/var/log/**', maxDepth: 5 },
      { pattern: '/etc/passwd', maxDepth: 8 },
      { pattern: '/etc', maxDepth: 5 },
      { pattern: '/etc/cron.d/*', maxDepth: 8 },
      { pattern: '/tmp/**', maxDepth: 5 },
      { pattern: '/zzz/x', maxDepth: 2 },
      { pattern: '/dev/shm/**', maxDepth: 5 },
    ]);
    expect(plan.roots.map((r) => r.root)).toEqual(['/dev/shm', '/tmp', '/etc', '/var/log', '/zzz/x']);
    // /etc/passwd (depth 8 one level down) deepens /etc to 9
    expect(plan.roots.find((r) => r.root === '/etc')?.depth).toBe(9);
    // named paths are listed once more on their own: a flood of /etc cannot hide /etc/passwd
    expect(plan.pinned).toEqual(['/etc/passwd']);
    expect(ROOT_PRIORITY.indexOf('/tmp')).toBeLessThan(ROOT_PRIORITY.indexOf('/var/log'));
  });
  it('each root gets entries, bytes and time from the limits', () => {
    expect(rootBudget(DEFAULT_LIMITS)).toEqual({
      entries: DEFAULT_LIMITS.maxEntriesPerArtifact,
      bytes: 64 * 1024 * 1024,
      timeMs: DEFAULT_LIMITS.execTimeoutMs,
    });
    expect(rootBudget({ ...DEFAULT_LIMITS, maxArtifactBytes: 1000 }).bytes).toBe(1000);
  });
});

describe('secrets policy for API objects', () => {
  const pod = {
    metadata: {
      name: 'p',
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration':
          '{"spec":{"containers":[{"env":[{"name":"A","value":"s3cret"}]}]}}',
        'example.com/owner': 'team-a',
        'helm.sh/values': '{"env": [{"name":"B","value":"x"}]}',
      },
    },
    spec: {
      containers: [
        {
          name: 'app',
          env: [
            { name: 'A', value: 's3cret' },
            { name: 'R', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } },
          ],
        },
      ],
      initContainers: [{ name: 'init', env: [{ name: 'T', value: 'tok' }] }],
    },
  };
  it('hashes env values of every container kind and spec-carrying annotations, keeps names and refs', () => {
    const { pod: out, hashed } = podWithSecretsHashed(pod) as { pod: typeof pod; hashed: number };
    expect(hashed).toBe(4);
    expect(JSON.stringify(out)).not.toContain('s3cret');
    expect(out.spec.containers[0]?.env[0]).toEqual({ name: 'A', value: hashValue('s3cret') });
    expect(out.spec.containers[0]?.env[1]).toEqual(pod.spec.containers[0]?.env[1]);
    expect(out.spec.initContainers[0]?.env[0]?.value).toBe(hashValue('tok'));
    expect(out.metadata.annotations['example.com/owner']).toBe('team-a');
    expect(out.metadata.annotations['helm.sh/values']).toMatch(/^sha256:/);
    // the input is not changed
    expect(pod.spec.containers[0]?.env[0]?.value).toBe('s3cret');
  });
  it('knows the applied-configuration annotations', () => {
    expect(isSpecAnnotation('kubectl.kubernetes.io/last-applied-configuration', '{}')).toBe(true);
    expect(isSpecAnnotation('kapp.k14s.io/original', '{}')).toBe(true);
    expect(isSpecAnnotation('a/b', 'plain')).toBe(false);
  });
});

describe('typed reasons', () => {
  it('dedupes, retracts by code, and reports each new reason once', () => {
    const seen: string[] = [];
    const l = new ReasonList((r) => seen.push(r.code));
    l.add(reason('no-shell', 'x'));
    l.add(reason('no-shell', 'x'));
    l.add(reason('degraded', 'y', 'containers/app/probe.json'));
    expect(seen).toEqual(['no-shell', 'degraded']);
    l.retract('no-shell');
    expect(l.list()).toEqual([{ code: 'degraded', text: 'y', artifact: 'containers/app/probe.json' }]);
  });
});

describe('one door, by construction', () => {
  const dir = join(import.meta.dirname, '../../src/collect/run');
  const files = [
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(dir, f)),
    ...readdirSync(join(dir, 'phases')).map((f) => join(dir, 'phases', f)),
  ];
  it('only the store touches the bundle writer, and only the door runs execs', () => {
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      if (!f.endsWith('store.ts')) expect(text, f).not.toMatch(/\.(writeArtifact|recordArtifact)\(/);
      if (!f.endsWith('door.ts')) expect(text, f).not.toMatch(/\brunExec\(|\.exec\(\{/);
      if (f.includes('/phases/')) expect(text, f).not.toMatch(/\bbundle\b/);
    }
  });
  it('no file of the pipeline is over 500 lines', () => {
    for (const f of files) expect(readFileSync(f, 'utf8').split('\n').length, f).toBeLessThanOrEqual(500);
  });
  it('every item kind of the profile format has a registry entry with its schema and phase', () => {
    const kinds = ProfileItemSchema.options.map((o) => o.shape.kind.value);
    expect(Object.keys(ITEM_KINDS).sort()).toEqual([...kinds].sort());
    for (const k of kinds) {
      const entry = ITEM_KINDS[k];
      expect(entry.schema).toBe(ProfileItemSchema.options.find((o) => o.shape.kind.value === k));
      expect(['api', 'volatile', 'metadata', 'content']).toContain(entry.phase);
    }
  });
});
