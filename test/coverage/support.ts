/**
 * Helpers for coverage tests: an exec seam over KubeClient.exec, and small runners.
 */
import type { CoverageExec } from '../../src/collect/coverage/index.js';
import type { KubeClient } from '../../src/kube/index.js';

/** The coverage exec seam over `kube.exec` for one container. */
export function kubeExec(
  kube: KubeClient,
  t: { namespace: string; pod: string; container: string },
): CoverageExec {
  return (command, o) =>
    kube.exec({
      namespace: t.namespace,
      pod: t.pod,
      container: t.container,
      command,
      stdin: o.stdin,
      timeoutMs: 60_000,
    });
}

/** Runs a command and returns stdout as text (throws on a non-zero exit). */
export async function run(exec: CoverageExec, command: string[]): Promise<string> {
  const s = await exec(command, { stdin: false });
  const out: Buffer[] = [];
  for await (const c of s.stdout) out.push(Buffer.from(c));
  const r = await s.result;
  if (r.exitCode !== 0) throw new Error(`${command.join(' ')} exited ${r.exitCode}`);
  return Buffer.concat(out).toString('utf8');
}
