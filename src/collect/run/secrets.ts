/**
 * One secrets policy for the whole bundle: values that may carry credentials are stored as
 * `sha256:<hex>` (names kept), as `/proc/<pid>/environ` values are, unless the caller asked for
 * sensitive content with `copySensitive`.
 */
import { createHash } from 'node:crypto';

/** `sha256:<hex>` of a value. */
export function hashValue(v: string): string {
  return `sha256:${createHash('sha256').update(v).digest('hex')}`;
}

const APPLIED_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  'kapp.k14s.io/original',
  'objectset.rio.cattle.io/applied',
]);

/**
 * Whether an annotation may repeat a spec (and so its env values): the last-applied annotations of
 * kubectl, kapp and Rancher, and any value that is a serialized object with an `env` list.
 */
export function isSpecAnnotation(key: string, value: string): boolean {
  if (APPLIED_ANNOTATIONS.has(key) || key.endsWith('/last-applied-configuration')) return true;
  return /"env"\s*:\s*\[/.test(value) || /(^|\n)\s*env:\s*\n\s*-\s*name:/.test(value);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A copy of a pod with env values of every container kind and spec-carrying annotations hashed.
 * `valueFrom` references (secret and config map names) are kept: they name, not hold, secrets.
 * Returns the copy and how many values were hashed.
 */
export function podWithSecretsHashed(pod: unknown): { pod: unknown; hashed: number } {
  let hashed = 0;
  const copy = JSON.parse(JSON.stringify(pod ?? null)) as unknown;
  if (!isObj(copy)) return { pod: copy, hashed };
  const spec = copy.spec;
  if (isObj(spec)) {
    for (const key of ['containers', 'initContainers', 'ephemeralContainers']) {
      const list = spec[key];
      if (!Array.isArray(list)) continue;
      for (const c of list) {
        if (!isObj(c) || !Array.isArray(c.env)) continue;
        for (const e of c.env) {
          if (isObj(e) && typeof e.value === 'string') {
            e.value = hashValue(e.value);
            hashed++;
          }
        }
      }
    }
  }
  const meta = copy.metadata;
  if (isObj(meta) && isObj(meta.annotations)) {
    const ann = meta.annotations;
    for (const [k, v] of Object.entries(ann)) {
      if (typeof v === 'string' && isSpecAnnotation(k, v)) {
        ann[k] = hashValue(v);
        hashed++;
      }
    }
  }
  return { pod: copy, hashed };
}
