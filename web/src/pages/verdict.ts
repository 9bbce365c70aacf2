import type { DataPlaneResult, Histogram } from '../api/types'
import { seriesLabel } from './vfs'

// The Data plane page's "loss vs quiet" verdict: when the log rate falls,
// did the data plane lose packets at the same moment (port or VF drops
// rose, a PMD saturated, hugepages ran out), or did the services simply
// log less? Rules, per log bucket:
//   a fall:  the bucket's count is under FALL of the median of the BASE
//            buckets before it, and that median is at least MIN_EVENTS;
//   loss:    within one bucket of the fall (either side), a drops series
//            is over RISE x its own median before the fall and at least
//            MIN_DROPS/s, or PMD busy is at least BUSY %, or free hugepages
//            of a NUMA node fall to 0 (from more before: a node whose pages
//            are all taken by design is not news);
//   behind:  no loss, but wirelog's own consumer lag rose at that moment
//            (over RISE x its median before and at least MIN_LAG records):
//            the events are late, not lost — the processor is catching up;
//   quiet:   a fall with none of those.
export const FALL = 0.5
export const BASE = 5
export const MIN_EVENTS = 10
export const RISE = 2
export const MIN_DROPS = 1
export const BUSY = 95
export const MIN_LAG = 1000

export interface Verdict {
  at: number // bucket start, Unix seconds
  stepSeconds: number
  kind: 'loss' | 'behind' | 'quiet'
  rate: number // events in the bucket
  before: number // median of the buckets before
  reasons: string[]
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : 0
}

// A VF's series is named by the pod holding it (vfs.ts).
const label = (labels: Record<string, string>) => seriesLabel({ labels })

// valuesNear are the series' values at the data-plane times within one log
// bucket of t, and its values before that.
function near(dp: DataPlaneResult, values: (number | null)[], t: number, step: number): { now: number[]; before: number[] } {
  const now: number[] = []
  const before: number[] = []
  dp.times.forEach((x, i) => {
    const v = values[i]
    if (v == null) return
    if (x >= t - step && x < t + 2 * step) now.push(v)
    else if (x < t - step && x >= t - (BASE + 1) * step) before.push(v)
  })
  return { now, before }
}

export function verdicts(h: Histogram, dp: DataPlaneResult | undefined, max = 3): Verdict[] {
  const totals = h.times.map((_, i) => Object.values(h.levels).reduce((a, col) => a + (col[i] ?? 0), 0))
  const out: Verdict[] = []
  // Newest first; the last bucket is still filling, so it is not judged.
  for (let i = totals.length - 2; i >= BASE && out.length < max; i--) {
    const before = median(totals.slice(i - BASE, i))
    if (before < MIN_EVENTS || totals[i] >= FALL * before) continue
    const t = h.times[i]
    const step = h.step_seconds
    const reasons: string[] = []
    const lagging: string[] = []
    for (const s of dp?.series ?? []) {
      const { now, before: prev } = near(dp!, s.values, t, step)
      if (!now.length) continue
      const peak = Math.max(...now)
      if (/drops/i.test(s.name) && peak >= MIN_DROPS && peak > RISE * median(prev)) {
        reasons.push(`${s.name} ${label(s.labels)} rose to ${peak.toFixed(1)}/s`.replace(/\s+/g, ' '))
      } else if (/PMD busy/i.test(s.name) && peak >= BUSY) {
        reasons.push(`PMD ${label(s.labels)} busy ${peak.toFixed(0)}%`.replace(/\s+/g, ' '))
      } else if (/Hugepages free/i.test(s.name) && Math.min(...now) <= 0 && median(prev) > 0) {
        reasons.push(`no free hugepages on ${label(s.labels) || 'a NUMA node'}`)
      } else if (/Consumer lag/i.test(s.name) && peak >= MIN_LAG && peak > RISE * median(prev)) {
        lagging.push(`consumer lag of partition ${s.labels.partition ?? label(s.labels)} rose to ${Math.round(peak).toLocaleString()} records`)
      }
    }
    const kind = reasons.length ? 'loss' : lagging.length ? 'behind' : 'quiet'
    out.push({ at: t, stepSeconds: step, kind, rate: totals[i], before, reasons: reasons.length ? reasons : lagging })
    i -= BASE // one verdict per fall, not one per bucket of it
  }
  return out
}
