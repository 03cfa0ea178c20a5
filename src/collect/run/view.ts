/**
 * The immutable view of a target a run works on. Steps that change where the collector looks
 * (the ephemeral debug container) return a new view instead of editing the old one.
 */
import type { FsView, ResolvedTarget } from '../types.js';

/** A frozen target. */
export type TargetView = Readonly<Omit<ResolvedTarget, 'fs'>> & { readonly fs: Readonly<FsView> };

/** Freezes a target into a view. */
export function viewOf(t: ResolvedTarget): TargetView {
  return Object.freeze({ ...t, fs: Object.freeze({ ...t.fs }) });
}

/** A new view with some fields replaced. */
export function withView(v: TargetView, change: Partial<ResolvedTarget>): TargetView {
  return viewOf({ ...v, fs: { ...v.fs }, ...change });
}

/** The root prefix of file paths (no trailing slash). */
export function rootPrefix(v: TargetView): string {
  return v.fs.root.replace(/\/+$/, '');
}
