// A reader for the Prometheus text format of /metrics: enough for the
// overview's counters (name, labels, value); histograms come as their
// _bucket/_sum/_count samples.
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue
    const m = LINE.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    if (m[3]) for (const l of m[3].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1')
    const v = Number(m[4])
    if (!Number.isNaN(v)) out.push({ name: m[1], labels, value: v })
  }
  return out
}

export function sum(s: Sample[]): number {
  return s.reduce((a, x) => a + x.value, 0)
}

export function total(s: Sample[], name: string, labels: Record<string, string> = {}): number {
  return sum(s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)))
}

// quantile estimates the q-quantile of a Prometheus histogram (summed over
// its series) by linear interpolation inside the bucket, as
// histogram_quantile does. NaN when it has no observations.
export function quantile(s: Sample[], name: string, q: number): number {
  const by = new Map<number, number>()
  for (const x of s) {
    if (x.name !== name + '_bucket') continue
    const le = x.labels.le === '+Inf' ? Infinity : Number(x.labels.le)
    by.set(le, (by.get(le) ?? 0) + x.value)
  }
  const b = [...by.entries()].sort((a, c) => a[0] - c[0])
  if (!b.length) return NaN
  const n = b[b.length - 1][1]
  if (!n) return NaN
  const rank = q * n
  let prevLe = 0
  let prevC = 0
  for (const [le, c] of b) {
    if (c >= rank) {
      if (le === Infinity) return prevLe
      return prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC)
    }
    prevLe = le
    prevC = c
  }
  return prevLe
}

// TENANT_WINDOW_MS is the window a tenant's live stored rate is taken over;
// it ends TENANT_LAG_MS ago so a batch still being stored does not read as
// a dip.
export const TENANT_WINDOW_MS = 10_000
export const TENANT_LAG_MS = 2_000

// tenantLive is what the Overview's live card shows a tenant token, which may
// not read the node's /metrics (operator only: they sum every tenant): its
// own stored rate from /api/v1/stats over the window, and how long ago its
// newest event was stored.
export function tenantLive(storedInWindow: number, newestTs: string | undefined, nowMs: number): { storedRate: number; newestAgeS: number | null } {
  const age = newestTs ? Math.max(0, (nowMs - Date.parse(newestTs)) / 1000) : null
  return { storedRate: storedInWindow / (TENANT_WINDOW_MS / 1000), newestAgeS: age }
}
