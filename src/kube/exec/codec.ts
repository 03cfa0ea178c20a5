/**
 * Pure codec for the Kubernetes remotecommand channel protocols (`v5.channel.k8s.io`,
 * `v4.channel.k8s.io`) and the status channel. No sockets here: the session wraps these.
 */
import { z } from 'zod';
import { ExecFailedError, ExecProtocolError, type KubeStatus } from '../../errors.js';

/** Subprotocol names, in the order a client offers them. */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
/** A negotiated exec subprotocol. */
export type ExecProtocol = (typeof EXEC_PROTOCOLS)[number];

/** Channel numbers of the remotecommand protocol. */
export const Channel = {
  Stdin: 0,
  Stdout: 1,
  Stderr: 2,
  Error: 3,
  Resize: 4,
  Close: 255,
} as const;

/** Largest status payload we accept; a real one is a few hundred bytes. */
export const MAX_STATUS_BYTES = 64 * 1024;
/** kube-apiserver (x/net websocket) rejects client frames above this size. */
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;

/** Prefixes `payload` with its channel byte: one WebSocket binary message. */
export function encodeFrame(channel: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  if (!Number.isInteger(channel) || channel < 0 || channel > 255) {
    throw new RangeError(`channel must be an integer 0..255, got ${channel}`);
  }
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = channel;
  out.set(payload, 1);
  return out;
}

/** The v5 CLOSE signal for a channel: exactly `[255, channel]`. */
export function encodeClose(channel: number): Buffer {
  return Buffer.from([Channel.Close, channel]);
}

/** One decoded message: the channel byte and the rest (a view, not a copy). */
export interface Frame {
  /** Channel byte. */
  channel: number;
  /** Payload without the channel byte. */
  payload: Buffer;
}

/** Splits a binary message into channel and payload; `null` for an empty message (ignored on the wire). */
export function decodeFrame(message: Buffer): Frame | null {
  if (message.length === 0) return null;
  return { channel: message[0] as number, payload: message.subarray(1) };
}

const statusCauseSchema = z.object({
  reason: z.string().optional(),
  message: z.string().optional(),
  field: z.string().optional(),
});

/** zod schema of a `metav1.Status` as it appears on the error channel and in HTTP error bodies. */
export const statusSchema = z.object({
  kind: z.string().optional(),
  apiVersion: z.string().optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().int().optional(),
  details: z
    .object({
      name: z.string().optional(),
      kind: z.string().optional(),
      group: z.string().optional(),
      causes: z.array(statusCauseSchema).max(1000).optional(),
    })
    .optional(),
});

/** How an exec ended, according to the status channel. */
export interface ExecStatusOutcome {
  /** Process exit code (0 for `Success`). */
  exitCode: number;
  /** The Status as received. */
  status: KubeStatus;
}

/**
 * Parses a status-channel payload. `Success` → exit 0; `Failure`/`NonZeroExitCode` → the code
 * from the `ExitCode` cause (0..255, decimal).
 *
 * @throws {@link eks-forensics/errors!ExecProtocolError} for oversize payloads, bad JSON, schema mismatch, or an
 *   unusable exit code.
 * @throws {@link eks-forensics/errors!ExecFailedError} for any other failure status (e.g. `InternalError`), carrying it.
 */
export function parseExecStatus(payload: Uint8Array): ExecStatusOutcome {
  if (payload.length > MAX_STATUS_BYTES) {
    throw new ExecProtocolError(
      `exec status frame is ${payload.length} bytes, over the ${MAX_STATUS_BYTES}-byte limit`,
    );
  }
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ExecProtocolError(`exec status frame is not JSON: ${JSON.stringify(text.slice(0, 200))}`, {
      cause,
    });
  }
  const parsed = statusSchema.safeParse(json);
  if (!parsed.success) {
    throw new ExecProtocolError(`exec status frame does not match metav1.Status: ${parsed.error.message}`, {
      cause: parsed.error,
    });
  }
  const status = parsed.data as KubeStatus;
  if (status.status === 'Success') return { exitCode: 0, status };
  if (status.status !== 'Failure') {
    throw new ExecProtocolError(`exec status frame has unknown status ${JSON.stringify(status.status)}`, {
      status,
    });
  }
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const raw = cause?.message;
    if (raw === undefined || !/^\d{1,3}$/.test(raw) || Number(raw) > 255) {
      throw new ExecProtocolError(
        `exec status reports a non-zero exit without a valid exit code (got ${JSON.stringify(raw)}; expected 0..255)`,
        { status },
      );
    }
    return { exitCode: Number(raw), status };
  }
  throw new ExecFailedError(
    `exec failed on the server: ${status.message ?? status.reason ?? 'unknown error'}`,
    { status },
  );
}

/** The status a server sends for a successful command. */
export function successStatus(): KubeStatus {
  return { status: 'Success' };
}

/** The status a server sends for a non-zero exit code (field order as kube-apiserver writes it). */
export function nonZeroExitStatus(exitCode: number): KubeStatus {
  return {
    status: 'Failure',
    message: `command terminated with non-zero exit code: command terminated with exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** The status a server sends for a runtime failure after the upgrade (container gone, binary missing). */
export function internalErrorStatus(err: string): KubeStatus {
  return {
    status: 'Failure',
    message: `Internal error occurred: ${err}`,
    reason: 'InternalError',
    details: { causes: [{ message: err }] },
    code: 500,
  };
}

/** Serialises a status for the error channel exactly as kube-apiserver does (`metadata:{}` first, no kind). */
export function encodeStatusPayload(status: KubeStatus): Buffer {
  const ordered: Record<string, unknown> = { metadata: {}, status: status.status };
  if (status.message !== undefined) ordered.message = status.message;
  if (status.reason !== undefined) ordered.reason = status.reason;
  if (status.details !== undefined) ordered.details = status.details;
  if (status.code !== undefined) ordered.code = status.code;
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}
