/**
 * The few SQS calls a sweep needs, with the client loaded lazily.
 *
 * @module
 */
import type { MessageAttributeValue, SQSClient } from '@aws-sdk/client-sqs';
import { AwsRequestError, ConfigError } from '../errors.js';
import { sleep } from './util.js';

/** A queue of sweep targets. */
export interface SweepQueue {
  /** SQS client (region, credentials, endpoint are the caller's). */
  client: SQSClient;
  /** Queue URL. */
  queueUrl: string;
}

type SqsModule = typeof import('@aws-sdk/client-sqs');
let mod: Promise<SqsModule> | undefined;
/** @internal */
export const loadSqs = (): Promise<SqsModule> => {
  mod ??= import('@aws-sdk/client-sqs');
  return mod;
};

/** One message to send. @internal */
export interface OutMessage {
  id: string;
  body: string;
  attributes?: Record<string, MessageAttributeValue>;
}

/** A batch entry SQS refused for good. */
export interface SendFailure {
  /** Entry id (the acquisition id). */
  id: string;
  /** SQS error code. */
  code: string;
  /** SQS message. */
  message: string;
  /** True when the request itself was wrong (not retried). */
  senderFault: boolean;
}

/**
 * Sends messages in batches of 10. Entries a batch reports as failed are retried (with backoff)
 * up to `attempts` times unless SQS says the sender is at fault; what is still failing is returned.
 * @internal
 */
export async function sendAll(
  queue: SweepQueue,
  messages: readonly OutMessage[],
  options: { attempts?: number; signal?: AbortSignal | undefined; onSent?: (n: number) => void } = {},
): Promise<{ sent: number; failed: SendFailure[] }> {
  const { SendMessageBatchCommand } = await loadSqs();
  const attempts = options.attempts ?? 5;
  let sent = 0;
  const failed: SendFailure[] = [];
  for (let i = 0; i < messages.length; i += 10) {
    let pending = messages.slice(i, i + 10);
    for (let a = 1; pending.length > 0; a++) {
      options.signal?.throwIfAborted();
      let out: {
        Successful?: { Id?: string }[];
        Failed?: { Id?: string; Code?: string; Message?: string; SenderFault?: boolean }[];
      };
      try {
        out = await queue.client.send(
          new SendMessageBatchCommand({
            QueueUrl: queue.queueUrl,
            Entries: pending.map((m) => ({
              Id: m.id,
              MessageBody: m.body,
              ...(m.attributes ? { MessageAttributes: m.attributes } : {}),
            })),
          }),
          options.signal ? { abortSignal: options.signal } : {},
        );
      } catch (e) {
        // the SDK already retried throttling/5xx; a whole-batch failure after that is retried here too
        if (a >= attempts) {
          for (const m of pending)
            failed.push({
              id: m.id,
              code: (e as Error)?.name ?? 'Error',
              message: (e as Error)?.message ?? String(e),
              senderFault: false,
            });
          break;
        }
        await sleep(Math.min(200 * 2 ** a, 5000), options.signal);
        continue;
      }
      const ok = new Set((out.Successful ?? []).map((s) => s.Id));
      sent += ok.size;
      options.onSent?.(ok.size);
      const bad = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      const retry: OutMessage[] = [];
      for (const m of pending) {
        if (ok.has(m.id)) continue;
        const f = bad.get(m.id);
        if (f?.SenderFault || a >= attempts) {
          failed.push({
            id: m.id,
            code: f?.Code ?? 'Missing',
            message: f?.Message ?? 'SQS reported neither success nor failure for this entry',
            senderFault: f?.SenderFault ?? false,
          });
        } else retry.push(m);
      }
      pending = retry;
      if (pending.length > 0) await sleep(Math.min(200 * 2 ** a, 5000), options.signal);
    }
  }
  return { sent, failed };
}

/** A received message. @internal */
export interface InMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  receiveCount: number;
}

/** @internal */
export async function receive(
  queue: SweepQueue,
  max: number,
  waitSeconds: number,
  visibilityTimeout: number,
  signal?: AbortSignal,
): Promise<InMessage[]> {
  const { ReceiveMessageCommand } = await loadSqs();
  const out = await queue.client.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.queueUrl,
      MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
      WaitTimeSeconds: waitSeconds,
      VisibilityTimeout: visibilityTimeout,
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }),
    signal ? { abortSignal: signal } : {},
  );
  const list: InMessage[] = [];
  for (const m of out.Messages ?? []) {
    if (!m.ReceiptHandle || !m.MessageId) continue;
    const rc = Number(m.Attributes?.ApproximateReceiveCount ?? '1');
    list.push({
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body ?? '',
      receiveCount: Number.isFinite(rc) && rc >= 0 ? rc : 1,
    });
  }
  return list;
}

/** @internal */
export async function changeVisibility(queue: SweepQueue, handle: string, seconds: number): Promise<void> {
  const { ChangeMessageVisibilityCommand } = await loadSqs();
  await queue.client.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queue.queueUrl,
      ReceiptHandle: handle,
      VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
    }),
  );
}

/** @internal */
export async function deleteMessage(queue: SweepQueue, handle: string): Promise<void> {
  const { DeleteMessageCommand } = await loadSqs();
  await queue.client.send(new DeleteMessageCommand({ QueueUrl: queue.queueUrl, ReceiptHandle: handle }));
}

/** @internal */
export async function sendOne(
  queue: SweepQueue,
  body: string,
  attributes: Record<string, string>,
): Promise<void> {
  const { SendMessageCommand } = await loadSqs();
  await queue.client.send(
    new SendMessageCommand({
      QueueUrl: queue.queueUrl,
      MessageBody: body,
      MessageAttributes: Object.fromEntries(
        Object.entries(attributes).map(([k, v]) => [
          k,
          { DataType: 'String', StringValue: v.slice(0, 4096) || '-' },
        ]),
      ),
    }),
  );
}

/** True for the errors SQS gives for a receipt handle that no longer holds the message. @internal */
export function isLeaseGone(e: unknown): boolean {
  const n = `${(e as { name?: string })?.name ?? ''} ${(e as { Code?: string })?.Code ?? ''} ${(e as Error)?.message ?? ''}`;
  return /ReceiptHandleIsInvalid|MessageNotInflight|InvalidReceiptHandle|NonExistentQueue/i.test(n);
}

/** Options of {@link createSweepQueues}. */
export interface CreateSweepQueuesOptions {
  /** SQS client. */
  client: SQSClient;
  /** Queue name; the dead-letter queue is `<name>-dlq`. */
  name: string;
  /** Default visibility timeout of the work queue, seconds. Default 60. */
  visibilityTimeoutSeconds?: number | undefined;
  /**
   * Receives after which SQS itself moves a message to the DLQ (redrive policy). Default 5.
   * Give workers a smaller `maxReceives` so they record the reason before SQS moves it.
   */
  maxReceiveCount?: number | undefined;
  /** Message retention, seconds. Default 14 days. */
  retentionSeconds?: number | undefined;
}

/**
 * Creates (or finds) a work queue and its dead-letter queue with a redrive policy. Idempotent:
 * CreateQueue returns the existing queue when the attributes match.
 *
 * @throws {AwsRequestError} when SQS refuses.
 */
export async function createSweepQueues(
  options: CreateSweepQueuesOptions,
): Promise<{ queueUrl: string; deadLetterQueueUrl: string; deadLetterQueueArn: string }> {
  if (!/^[A-Za-z0-9_-]{1,76}$/.test(options.name))
    throw new ConfigError('queue name: 1-76 of [A-Za-z0-9_-] (the DLQ adds "-dlq")');
  const { CreateQueueCommand, GetQueueAttributesCommand } = await loadSqs();
  const retention = String(options.retentionSeconds ?? 14 * 86_400);
  try {
    const dlq = await options.client.send(
      new CreateQueueCommand({
        QueueName: `${options.name}-dlq`,
        Attributes: { MessageRetentionPeriod: retention },
      }),
    );
    const dlqUrl = dlq.QueueUrl ?? '';
    const attrs = await options.client.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    );
    const dlqArn = attrs.Attributes?.QueueArn ?? '';
    const q = await options.client.send(
      new CreateQueueCommand({
        QueueName: options.name,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 60),
          MessageRetentionPeriod: retention,
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: options.maxReceiveCount ?? 5,
          }),
        },
      }),
    );
    return { queueUrl: q.QueueUrl ?? '', deadLetterQueueUrl: dlqUrl, deadLetterQueueArn: dlqArn };
  } catch (cause) {
    throw new AwsRequestError(
      `cannot create SQS queues ${options.name} and ${options.name}-dlq: ${(cause as Error)?.message ?? String(cause)}; check sqs:CreateQueue, sqs:GetQueueAttributes and sqs:SetQueueAttributes`,
      { cause },
    );
  }
}
