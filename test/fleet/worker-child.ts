/**
 * A sweep worker process for the fleet tests and bench: reads a FleetConfig file, runs
 * runSweepWorker until the queue stays empty, prints every event as a JSON line.
 * argv: <config.json> <workerId> [concurrency] [idleExitSeconds] [visibilitySeconds] [goFile]
 * With goFile, the process loads everything first and starts receiving once that file exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { runSweepWorker } from '../../src/fleet/index.js';
import { connectorFor, type FleetConfig, s3For, sqsFor, testProfile } from './support.js';

const [file, workerId, conc, idle, vt, go] = process.argv.slice(2);
const cfg = JSON.parse(readFileSync(file ?? '', 'utf8')) as FleetConfig;
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort(new Error('SIGTERM')));
if (go) while (!existsSync(go)) await new Promise((r) => setTimeout(r, 100));
const started = process.hrtime.bigint();
const summary = await runSweepWorker({
  queue: { client: sqsFor(cfg.moto), queueUrl: cfg.queueUrl },
  deadLetterQueue: { client: sqsFor(cfg.moto), queueUrl: cfg.dlqUrl },
  store: { client: s3For(cfg.moto), bucket: cfg.bucket },
  connect: connectorFor(cfg),
  profiles: [testProfile],
  concurrency: Number(conc ?? 2),
  idleExitSeconds: Number(idle ?? 3),
  visibilityTimeoutSeconds: Number(vt ?? 6),
  heartbeatSeconds: 1,
  waitTimeSeconds: 1,
  maxReceives: 3,
  retryDelaySeconds: () => 1,
  workerId,
  signal: controller.signal,
  onEvent: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
const usage = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({ type: 'exit', summary, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssKiB: usage.maxRSS, wallMs: Number(process.hrtime.bigint() - started) / 1e6 })}\n`,
);
process.exit(0);
