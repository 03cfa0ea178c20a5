/**
 * zod schema of sandbox container options: FakeCluster hands them over as `unknown`, so a typo
 * (`preset: 'alpine'`, `type: 'link'`) becomes a {@link eks-forensics/errors!ConfigError} naming the field.
 */
import { z } from 'zod';
import { ConfigError } from '../../errors.js';
import type { SandboxContainerOptions } from './runtime.js';

const bytes = z.union([z.string(), z.instanceof(Uint8Array)]);
const mode = z.number().int().min(0).max(0o7777).optional();
const id = z.number().int().min(0).optional();
const meta = { uid: id, gid: id, mtime: z.date().optional() };

const entry = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('file').optional(),
    content: bytes,
    mode,
    executable: z.boolean().optional(),
    ...meta,
  }),
  z.object({ type: z.literal('dir'), mode, ...meta }),
  z.object({ type: z.literal('symlink'), target: bytes, ...meta }),
  z.object({ type: z.literal('hardlink'), target: bytes }),
  z.object({ type: z.literal('fifo'), mode, ...meta }),
  z.object({
    type: z.literal('sparse'),
    size: z.number().int().min(0),
    data: z.array(z.object({ offset: z.number().int().min(0), content: bytes })).optional(),
    mode,
    ...meta,
  }),
  z.object({ type: z.literal('binary'), binary: z.enum(['busybox', 'sleeper']), mode, ...meta }),
  z.object({
    type: z.literal('growing'),
    content: bytes.optional(),
    chunk: bytes.optional(),
    intervalMs: z.number().int().min(1).optional(),
    maxBytes: z.number().int().min(0).optional(),
    mode,
    ...meta,
  }),
]);

const withPath = z.intersection(entry, z.object({ path: bytes }));

const options = z.object({
  preset: z
    .union([
      z.enum(['busybox', 'shell-only', 'none']),
      z.object({ applets: z.array(z.string().regex(/^[^/\0]+$/)) }),
    ])
    .optional(),
  files: z.union([z.record(z.string(), entry), z.array(withPath)]).optional(),
  processes: z
    .array(
      z.object({
        argv: z.array(z.string()).min(1),
        binary: z.enum(['busybox', 'sleeper']).optional(),
        env: z.record(z.string(), z.string()).optional(),
        cwd: z.string().optional(),
        deleteAfterStart: z.boolean().optional(),
      }),
    )
    .optional(),
});

/** Validates container options; throws {@link eks-forensics/errors!ConfigError} listing each problem with its path. */
export function parseSandboxOptions(value: unknown, container: string): SandboxContainerOptions {
  if (value === undefined || value === null) return {};
  const r = options.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
    throw new ConfigError(`sandbox container ${container}: invalid options: ${issues.join('; ')}`);
  }
  return value as SandboxContainerOptions;
}
