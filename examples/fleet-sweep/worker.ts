/**
 * The sweep worker as a long-running container (ECS/Fargate service or task): receives targets
 * until SIGTERM (ECS sends it before stopping a task; in-flight targets are aborted, marked
 * incomplete and released to the queue) or, with SWEEP_IDLE_EXIT_SECONDS, until the queue stays
 * empty. Prints one JSON line per event.
 *
 *   SWEEP_QUEUE_URL=… SWEEP_DLQ_URL=… SWEEP_BUCKET=… SWEEP_REGIONS=eu-west-1,us-east-1 \
 *     npx tsx examples/fleet-sweep/worker.ts
 *
 * In your own image import from 'eks-forensics/fleet'.
 */
import { runSweepWorker } from '../../src/fleet/index.js';
import { workerOptionsFromEnv } from './config.js';

const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => controller.abort(new Error(sig)));
const idle = process.env.SWEEP_IDLE_EXIT_SECONDS;
const summary = await runSweepWorker({
  ...workerOptionsFromEnv(),
  ...(idle ? { idleExitSeconds: Number(idle) } : {}),
  ...(process.env.SWEEP_WAIT_SECONDS ? { waitTimeSeconds: Number(process.env.SWEEP_WAIT_SECONDS) } : {}),
  signal: controller.signal,
  onEvent: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
const u = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({ type: 'exit', summary, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssKiB: u.maxRSS })}\n`,
);
