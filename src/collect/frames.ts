/**
 * Receiving side of the framed scripts: a streaming demultiplexer that treats the input as
 * hostile. Frames are `\n<key> B <header>\n<bytes>\n<key> E <rc>\n`; the key is random per exec
 * and never visible to the container, so file content cannot forge a frame boundary.
 */
import { randomBytes } from 'node:crypto';
import { FRAME_KEY_BYTES } from './scripts.js';

/** A fresh frame key (hex). Send it, followed by a newline, on the exec's stdin. */
export function newFrameKey(): string {
  return randomBytes(FRAME_KEY_BYTES).toString('hex');
}

/** One event of a framed stream. */
export type FrameEvent =
  | { type: 'begin'; header: string[]; offset: number }
  | { type: 'data'; chunk: Buffer }
  | { type: 'end'; rc: number | null; offset: number; contentBytes: number }
  | { type: 'error'; reason: string; offset: number };

const MAX_HEADER = 1024;

/**
 * Demultiplexes a framed stream. Yields `begin`, `data`…, `end` per frame; on anything that is not
 * a frame (garbage, a truncated frame, an oversize header) yields one `error` and stops reading.
 * `offset` values are byte positions in the raw stream (for the index). Backpressure is kept:
 * the source is only read as fast as the consumer iterates.
 */
export async function* demuxFrames(
  source: AsyncIterable<Uint8Array>,
  key: string,
): AsyncGenerator<FrameEvent> {
  const begin = Buffer.from(`\n${key} B `, 'latin1');
  const endMark = Buffer.from(`\n${key} E `, 'latin1');
  let state: 'begin' | 'content' | 'endline' = 'begin';
  let pending: Buffer = Buffer.alloc(0);
  let pendingOffset = 0; // stream offset of pending[0]
  let contentBytes = 0;
  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (
      state === 'content' &&
      pending.length > 0 &&
      pending.length < endMark.length &&
      chunk.length >= endMark.length
    ) {
      // only the small carry is pending: flush it unless a marker starts inside it (saves copying chunks)
      const edge = Buffer.concat([pending, chunk.subarray(0, endMark.length - 1)]);
      const at = edge.indexOf(endMark);
      if (at < 0 || at >= pending.length) {
        contentBytes += pending.length;
        yield { type: 'data', chunk: pending };
        pendingOffset += pending.length;
        pending = Buffer.alloc(0);
      }
    }
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (state === 'begin') {
        const need = Math.min(pending.length, begin.length);
        if (pending.subarray(0, need).compare(begin.subarray(0, need)) !== 0) {
          yield {
            type: 'error',
            reason: 'bytes outside any frame (garbage or a broken script)',
            offset: pendingOffset,
          };
          return;
        }
        if (pending.length < begin.length) break;
        const nl = pending.indexOf(0x0a, begin.length);
        if (nl < 0) {
          if (pending.length > MAX_HEADER) {
            yield { type: 'error', reason: 'frame header longer than 1024 bytes', offset: pendingOffset };
            return;
          }
          break;
        }
        if (nl > MAX_HEADER) {
          yield { type: 'error', reason: 'frame header longer than 1024 bytes', offset: pendingOffset };
          return;
        }
        const header = pending.subarray(begin.length, nl).toString('utf8').split(' ');
        const consumed = nl + 1;
        pendingOffset += consumed;
        pending = pending.subarray(consumed);
        contentBytes = 0;
        state = 'content';
        yield { type: 'begin', header, offset: pendingOffset };
        continue;
      }
      if (state === 'content') {
        const idx = pending.indexOf(endMark);
        if (idx >= 0) {
          if (idx > 0) {
            contentBytes += idx;
            yield { type: 'data', chunk: pending.subarray(0, idx) };
          }
          pendingOffset += idx + endMark.length;
          pending = pending.subarray(idx + endMark.length);
          state = 'endline';
          continue;
        }
        const keep = Math.min(pending.length, endMark.length - 1);
        const emit = pending.length - keep;
        if (emit > 0) {
          contentBytes += emit;
          yield { type: 'data', chunk: pending.subarray(0, emit) };
          pendingOffset += emit;
          pending = Buffer.from(pending.subarray(emit));
        }
        break;
      }
      // endline: "<rc>\n"
      const nl = pending.indexOf(0x0a);
      if (nl < 0) {
        if (pending.length > 32) {
          yield { type: 'error', reason: 'frame trailer too long', offset: pendingOffset };
          return;
        }
        break;
      }
      const rcText = pending.subarray(0, nl).toString('latin1');
      const rc = /^\d{1,3}$/.test(rcText) ? Number(rcText) : null;
      pendingOffset += nl + 1;
      pending = pending.subarray(nl + 1);
      state = 'begin';
      yield { type: 'end', rc, offset: pendingOffset, contentBytes };
      if (pending.length === 0) break;
      // the next frame starts with "\n": pending must begin with the begin marker
    }
  }
  if (state === 'content' || state === 'endline') {
    if (state === 'content' && pending.length > 0) {
      contentBytes += pending.length;
      yield { type: 'data', chunk: pending };
      pendingOffset += pending.length;
    }
    yield { type: 'error', reason: 'stream ended inside a frame (truncated)', offset: pendingOffset };
  } else if (pending.length > 0) {
    yield { type: 'error', reason: 'stream ended with a partial frame header', offset: pendingOffset };
  }
}
