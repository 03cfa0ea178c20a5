/**
 * Label and field selectors as kube-apiserver parses them (the subset list calls use).
 *
 * @module
 */
import { badRequest } from './http.js';

/** One parsed selector requirement. */
export interface Requirement {
  key: string;
  op: 'eq' | 'ne' | 'in' | 'notin' | 'exists' | 'notexists';
  values: string[];
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Parses `labelSelector` (equality, set and existence requirements); 400 on syntax errors. */
export function parseLabelSelector(sel: string | null): Requirement[] {
  if (!sel) return [];
  return splitTopLevel(sel).map((part): Requirement => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = (m[3] ?? '').split(',').map((v) => v.trim());
      return { key: m[1] ?? '', op: m[2] === 'in' ? 'in' : 'notin', values };
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(part);
    if (m) return { key: m[1] ?? '', op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3] ?? ''] };
    m = /^(!?)([^\s!=()]+)$/.exec(part);
    if (m) return { key: m[2] ?? '', op: m[1] ? 'notexists' : 'exists', values: [] };
    throw badRequest(`unable to parse requirement: ${part}`);
  });
}

/** Whether labels satisfy every requirement. */
export function matchLabels(
  reqs: Requirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        return v === r.values[0];
      case 'ne':
        return v !== r.values[0];
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'notexists':
        return v === undefined;
    }
    return false;
  });
}

/** Parses `fieldSelector` against the fields a resource supports; 400 for others. */
export function parseFieldSelector(sel: string | null, allowed: ReadonlySet<string>): Requirement[] {
  if (!sel) return [];
  return splitTopLevel(sel).map((part): Requirement => {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${sel}'; can't understand '${part}'`);
    const key = m[1] ?? '';
    if (!allowed.has(key)) throw badRequest(`field label not supported: ${key}`);
    return { key, op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3] ?? ''] };
  });
}

/** Whether an object's field values satisfy every requirement. */
export function matchFields(reqs: Requirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => (r.op === 'ne' ? fields[r.key] !== r.values[0] : fields[r.key] === r.values[0]));
}
