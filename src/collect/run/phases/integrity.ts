/**
 * The `integrity` items, after the content phase: installed files checked against the package
 * databases, every exec through the door, the report in `files/integrity.json`. The report
 * inherits every exec's verdict and is `truncated` when a cap or a broken stream left files
 * unchecked (a file that was not read whole is `not-checked`, never `ok`).
 */
import { checkIntegrity } from '../../coverage/index.js';
import type { IntegrityItem } from '../../schema.js';
import { canPullBytes, coverageVerdict, doorCoverageExec } from '../coverage-exec.js';
import { type PhaseEnv, shellOf } from '../env.js';

/** Runs the `integrity` items of all profiles as one check (the union of their directories, the largest caps). */
export async function integrityStep(
  env: PhaseEnv,
  items: readonly { profile: string; item: IntegrityItem }[],
): Promise<void> {
  if (items.length === 0) return;
  const path = env.c('files/integrity.json');
  const src = {
    kind: 'integrity',
    profile: [...new Set(items.map((x) => x.profile))].join(','),
    item: items.map((x) => x.item.id).join(','),
  };
  const meta = env.meta(src, { contentType: 'application/json' });
  if (!canPullBytes(env)) {
    await env.store.record(path, 'skipped', 'the integrity check needs `dd` in the container', meta);
    return;
  }
  const dirs = items.some((x) => !x.item.dirs)
    ? undefined
    : [...new Set(items.flatMap((x) => x.item.dirs ?? []))];
  const maxPullFiles = Math.max(...items.map((x) => x.item.maxPullFiles ?? 5000));
  const maxPullBytes = Math.max(...items.map((x) => x.item.maxPullBytes ?? 512 * 1024 * 1024));
  const { exec, verdicts } = doorCoverageExec(env.door, 'integrity');
  const r = await checkIntegrity({ exec, shell: shellOf(env), dirs, maxPullFiles, maxPullBytes });
  const v = await coverageVerdict(verdicts, r.report.reasons, 'integrity', path);
  const high = r.findings.filter((f) => f.severity === 'high').length;
  env.log({ event: 'integrity', checked: r.report.checked, counts: r.report.counts, high, execs: r.execs });
  const body = { ...r.report, findings: r.findings, pulledBytes: r.pulledBytes, execs: r.execs };
  await env.store.derived(path, `${JSON.stringify(body, null, 2)}\n`, meta, [v]);
}
