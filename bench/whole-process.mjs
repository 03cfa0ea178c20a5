// Goal 2 of bench/exec.ts: a whole acquisition script as a user runs it. Node starts, imports the
// built package (path in BENCH_DIST), execs the command in BENCH_ARGS (JSON: server, ca, token,
// namespace, pod, container, command) through KubeClient, hashes stdout with SHA-256, prints the
// digest and exits. The parent times it from spawn to exit, like `kubectl exec | openssl dgst`.
import { createHash } from 'node:crypto';

const args = JSON.parse(process.env.BENCH_ARGS ?? '{}');
const { KubeClient } = await import(process.env.BENCH_DIST ?? 'eks-forensics');
const kube = new KubeClient({ server: args.server, caData: args.ca, token: args.token });
const s = await kube.exec({
  namespace: args.namespace,
  pod: args.pod,
  container: args.container,
  command: args.command,
  stderr: false,
});
const hash = createHash('sha256');
let bytes = 0;
for await (const chunk of s.stdout) {
  hash.update(chunk);
  bytes += chunk.length;
}
const { exitCode } = await s.result;
process.stdout.write(`${hash.digest('hex')} ${bytes} ${exitCode}\n`);
process.exit(exitCode === 0 ? 0 : 1);
