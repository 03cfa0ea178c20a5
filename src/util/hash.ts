import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through stream that computes SHA-256 and counts bytes as data flows, keeping the
 * backpressure of whatever it is piped into. Read `digest()` after `'end'`/`'finish'`.
 */
export class HashingStream extends Transform {
  #hash: Hash = createHash('sha256');
  #bytes = 0;
  #digest: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#digest = this.#hash.digest('hex');
    cb();
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Hex SHA-256 of everything that passed through; throws if the stream has not ended. */
  digest(): string {
    if (this.#digest === undefined) throw new Error('HashingStream.digest() called before the stream ended');
    return this.#digest;
  }
}

/** Hex SHA-256 of a buffer or string. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
