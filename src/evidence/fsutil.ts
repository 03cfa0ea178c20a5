/**
 * Small file helpers shared by the local sinks.
 *
 * @internal
 * @module
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** Opens `path` for writing with exclusive create (`wx`); resolves once the file exists. */
export function createExclusive(path: string, highWaterMark = 1 << 20): Promise<WriteStream> {
  return new Promise((res, rej) => {
    const ws = createWriteStream(path, { flags: 'wx', highWaterMark });
    ws.once('error', rej);
    ws.once('ready', () => {
      ws.off('error', rej);
      res(ws);
    });
  });
}

/** Ends a stream and waits until its file is closed. */
export function closeStream(ws: WriteStream): Promise<void> {
  return new Promise((res, rej) => {
    if (ws.closed) {
      if (ws.errored) rej(ws.errored);
      else res();
      return;
    }
    ws.once('error', rej);
    ws.once('close', () => {
      ws.off('error', rej);
      if (ws.errored) rej(ws.errored);
      else res();
    });
    ws.end();
  });
}

/** fsyncs a file (or folder) by path. Folders that refuse fsync are ignored. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL' && (e as NodeJS.ErrnoException).code !== 'EISDIR')
      throw e;
  } finally {
    await fh.close();
  }
}

/** Writes a chunk; returns a promise only when the producer must wait (buffer full). */
export function writeTo(ws: Writable, chunk: Buffer): Promise<void> | undefined {
  if (ws.destroyed) return Promise.reject(ws.errored ?? new Error('stream closed'));
  if (ws.write(chunk)) return undefined;
  return new Promise((res, rej) => {
    const done = (e?: unknown) => {
      ws.off('drain', done);
      ws.off('error', done);
      ws.off('close', onClose);
      if (e) rej(e);
      else res();
    };
    const onClose = () => done(ws.errored ?? new Error('stream closed'));
    ws.once('drain', done);
    ws.once('error', done);
    ws.once('close', onClose);
  });
}
