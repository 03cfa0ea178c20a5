/**
 * The sweep worker as an AWS Lambda function behind an SQS event source mapping (batch size 1-2,
 * `ReportBatchItemFailures` on, function timeout ≤ the queue's visibility timeout, reserved
 * concurrency = how many targets at once). Handled messages are deleted by the worker itself;
 * targets to retry are reported as batch item failures so Lambda leaves them on the queue.
 * Lambda's 15-minute limit and /tmp size bound what one target may take: prefer ECS/Fargate
 * (worker.ts) for `full` acquisitions.
 *
 * In your own function import from 'eks-forensics/fleet'.
 */
import { processSweepMessage } from '../../src/fleet/index.js';
import { workerOptionsFromEnv } from './config.js';

/** The part of an SQS event record the handler reads. */
interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount?: string };
}

const options = workerOptionsFromEnv();

/** Lambda entry point. */
export async function handler(event: {
  Records: SqsRecord[];
}): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> {
  const failures: { itemIdentifier: string }[] = [];
  for (const r of event.Records) {
    const { outcome, acquisitionId, reason } = await processSweepMessage(
      {
        body: r.body,
        receiptHandle: r.receiptHandle,
        receiveCount: Number(r.attributes.ApproximateReceiveCount ?? 1),
      },
      options,
    );
    console.log(JSON.stringify({ messageId: r.messageId, acquisitionId, outcome, reason }));
    if (outcome === 'retry' || outcome === 'busy' || outcome === 'released')
      failures.push({ itemIdentifier: r.messageId });
  }
  return { batchItemFailures: failures };
}
