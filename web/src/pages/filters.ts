// The Explore state in the URL, and how it maps onto API parameters.
import type { Filter } from '../api/client'
import { iso, resolve } from '../time'

export const FILTER_KEYS = ['service', 'level', 'host', 'tenant', 'trace_id', 'q'] as const

export interface ExploreState {
  from: string
  to: string
  refresh: string
  filter: Omit<Filter, 'from' | 'to'>
}

export function readState(p: URLSearchParams, defFrom = '-1h'): ExploreState {
  const filter: ExploreState['filter'] = {}
  for (const k of FILTER_KEYS) {
    const v = p.get(k)
    if (v) filter[k] = v
  }
  const attr = p.getAll('attr')
  const exclude = p.getAll('exclude')
  if (attr.length) filter.attr = attr
  if (exclude.length) filter.exclude = exclude
  return { from: p.get('from') || defFrom, to: p.get('to') || 'now', refresh: p.get('refresh') || '', filter }
}

// window resolves the range to absolute times at a moment `now`, so every
// query of one refresh covers exactly the same window.
export function window(s: ExploreState, now: number): { from: string; to: string; fromMs: number; toMs: number } {
  const fromMs = resolve(s.from, now)
  const toMs = resolve(s.to, now)
  return { from: iso(fromMs), to: iso(toMs), fromMs, toMs }
}

// toggle adds field=value to the filter (or to its exclusions), replacing
// the opposite, and removes it when already there.
export function toggle(f: ExploreState['filter'], field: string, value: string, exclude: boolean): Record<string, string | string[] | undefined> {
  const pair = `${field}=${value}`
  const attr = (f.attr ?? []).filter((x) => x !== pair)
  const excl = (f.exclude ?? []).filter((x) => x !== pair)
  const simple = (FILTER_KEYS as readonly string[]).includes(field) && field !== 'q'
  if (exclude) {
    if (!(f.exclude ?? []).includes(pair)) excl.push(pair)
    if (simple && (f as Record<string, unknown>)[field] === value) return { [field]: undefined, attr, exclude: excl }
    return { attr, exclude: excl }
  }
  if (simple) {
    const cur = (f as Record<string, unknown>)[field]
    return { [field]: cur === value ? undefined : value, exclude: excl }
  }
  if (!(f.attr ?? []).includes(pair)) attr.push(pair)
  return { attr, exclude: excl }
}
