// Child process for tar-writer.test.ts: one artifact is complete, a large one is streaming straight
// into the archive (past the memory buffer, so its header is still the placeholder) when the
// parent SIGKILLs this process.
import { Readable } from 'node:stream';
import { TarSink } from '../../src/evidence/index.js';

// hint: none | exact (the header announces all 3 MiB + 512 while only part is written) | short
// (announces 1 MiB; the forged header sits right after that first MiB, where a reader trusting the
// guessed header would look for the next entry).
const [kind, root, hint = 'none'] = process.argv.slice(2);
const sink = new TarSink({ root: root ?? '', gzip: kind === 'tar.gz', memoryBufferBytes: 64 * 1024 });
const w = await sink.open({ acquisitionId: 'acq-kill' });
await w.writeArtifact('done.txt', 'finished before the crash\n', { source: { kind: 'test' } });
const hanging = new Readable({ read() {} });
// Bytes that look like a tar header of their own: a reader must not take them for an entry.
const forged = Buffer.alloc(512);
forged.write('acq-kill/forged.txt', 0);
forged.write('ustar\u000000', 257, 'latin1');
const body =
  hint === 'short'
    ? Buffer.concat([Buffer.alloc(1 << 20, 7), forged, Buffer.alloc(3 << 20, 7)])
    : Buffer.concat([forged, Buffer.alloc(3 << 20, 7)]);
hanging.push(body);
const expectedBytes = hint === 'exact' ? body.length + 4096 : hint === 'short' ? 1 << 20 : undefined;
void w.writeArtifact('big.bin', hanging, {
  source: { kind: 'test' },
  ...(expectedBytes === undefined ? {} : { expectedBytes }),
});
await new Promise((r) => setTimeout(r, 500));
process.stdout.write(`READY ${w.location}\n`);
setInterval(() => {}, 1000);
