/**
 * Profile item kinds, one registry entry each: `{ schema, phase, argv, decode }`. An exec kind is
 * run by the generic runner below (through the door, so its status is decided in one place):
 * `argv` says what to run, `decode` (optional) derives a document from the raw output. `api`,
 * `proc` and `file` are built into their phases (they batch many items into few execs). Adding a
 * kind is one entry here plus its schema in the profile union.
 */
import type { ZodType } from 'zod';
import type { ProbeResult } from '../probe.js';
import {
  ApiItemSchema,
  type CommandItem,
  CommandItemSchema,
  FileItemSchema,
  IntegrityItemSchema,
  MemoryItemSchema,
  ProcItemSchema,
  type ProfileItem,
} from '../schema.js';
import type { Phase } from '../types.js';
import type { PhaseEnv } from './env.js';
import type { TargetView } from './view.js';

/** A derived document decoded from an exec kind's raw output. */
export interface Decoded {
  /** Path under the container folder. */
  path: string;
  /** Content. */
  body: string | Buffer;
  /** MIME type. */
  contentType?: string | undefined;
}

/** One item kind. */
export interface ItemKind<I extends { id: string; kind: string } = { id: string; kind: string }> {
  /** Zod schema of the item (also part of `ProfileItemSchema`). */
  readonly schema: ZodType;
  /** Phase the item runs in. */
  readonly phase: Phase;
  /** `builtin`: the phase handles the kind itself; `exec`: the generic runner runs `argv`. */
  readonly runner: 'builtin' | 'exec';
  /** argv for the item, or a reason it cannot run in this target (exec kinds). */
  argv?(
    item: I,
    ctx: { view: TargetView; probe: ProbeResult | undefined },
  ): readonly string[] | { skip: string };
  /** Where the raw output goes (exec kinds). */
  output?(item: I): string;
  /** Timeout and output cap (exec kinds). */
  bounds?(item: I): { timeoutMs?: number | undefined; maxBytes?: number | undefined };
  /** Derives a document from the raw output (exec kinds; it inherits the exec's verdict). */
  decode?(raw: Buffer, item: I): Decoded | undefined;
}

const command: ItemKind<CommandItem> = {
  schema: CommandItemSchema,
  phase: 'volatile',
  runner: 'exec',
  argv(item, { probe }) {
    const requires = item.requires ?? [item.argv[0] ?? ''];
    const tools = probe?.tools ?? {};
    const missing = requires.filter((r) => !(r in tools) && !r.startsWith('/'));
    return missing.length ? { skip: `not in the container: ${missing.join(', ')}` } : item.argv;
  },
  output: (item) => `commands/${item.id}.out`,
  bounds: (item) => ({ timeoutMs: item.timeoutMs ?? 30_000, maxBytes: item.maxBytes ?? 16 * 1024 * 1024 }),
};

/** The registry. */
export const ITEM_KINDS: Readonly<Record<ProfileItem['kind'], ItemKind>> = Object.freeze({
  api: { schema: ApiItemSchema, phase: 'api', runner: 'builtin' },
  proc: { schema: ProcItemSchema, phase: 'volatile', runner: 'builtin' },
  command: command as unknown as ItemKind,
  file: { schema: FileItemSchema, phase: 'metadata', runner: 'builtin' },
  integrity: { schema: IntegrityItemSchema, phase: 'content', runner: 'builtin' },
  memory: { schema: MemoryItemSchema, phase: 'volatile', runner: 'builtin' },
});

/** Runs the exec-kind items of `phase` through the door, in profile order. */
export async function runExecItems(
  env: PhaseEnv,
  phase: Phase,
  items: readonly { profile: string; item: ProfileItem }[],
): Promise<void> {
  for (const { profile, item } of items) {
    const k = ITEM_KINDS[item.kind];
    if (k?.runner !== 'exec' || k.phase !== phase || !k.argv || !k.output) continue;
    if (env.signal.aborted) return;
    const path = env.c(k.output(item));
    const argv = k.argv(item, { view: env.view, probe: env.probe });
    const meta = env.meta({ kind: 'exec', profile, item: item.id }, Array.isArray(argv) ? { argv } : {});
    if (!Array.isArray(argv)) {
      await env.store.record(path, 'skipped', (argv as { skip: string }).skip, meta);
      continue;
    }
    const b = k.bounds?.(item) ?? {};
    const raw: Buffer[] = [];
    const res = await env.door.toArtifact({
      step: `${item.kind}:${item.id}`,
      argv: argv as readonly string[],
      path,
      meta,
      timeoutMs: b.timeoutMs,
      maxBytes: b.maxBytes,
      ...(k.decode
        ? {
            receive: async (s) => {
              for await (const c of s) raw.push(Buffer.from(c as Buffer));
              return { value: undefined };
            },
          }
        : {}),
    });
    const doc = k.decode?.(Buffer.concat(raw), item);
    if (doc)
      await env.store.derived(
        env.c(doc.path),
        doc.body,
        env.meta(
          { kind: item.kind, profile, item: item.id },
          doc.contentType ? { contentType: doc.contentType } : {},
        ),
        [res.verdict],
      );
  }
}
