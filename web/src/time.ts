// Time ranges as the URL keeps them: relative ("-15m", "now") or absolute
// (RFC 3339), the same forms the API's from/to parameters take.

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }

export function resolve(v: string, now: number = Date.now()): number {
  if (v === 'now' || v === '') return now
  const m = /^(?:now)?-(\d+)([smhd])$/.exec(v)
  if (m) return now - Number(m[1]) * UNITS[m[2]]
  if (/^\d+$/.test(v)) {
    const n = Number(v)
    return n < 1e11 ? n * 1000 : n
  }
  const t = Date.parse(v)
  if (Number.isNaN(t)) throw new Error(`${v} is not a time (use -15m, now, or 2026-03-01T12:00:00Z)`)
  return t
}

export function isRelative(v: string): boolean {
  return v === 'now' || /^(?:now)?-\d+[smhd]$/.test(v)
}

export const PRESETS: { label: string; from: string }[] = [
  { label: 'Last 5 minutes', from: '-5m' },
  { label: 'Last 15 minutes', from: '-15m' },
  { label: 'Last 1 hour', from: '-1h' },
  { label: 'Last 6 hours', from: '-6h' },
  { label: 'Last 24 hours', from: '-24h' },
  { label: 'Last 7 days', from: '-7d' },
]

const STEPS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400]

// step picks a round bucket width giving at most `buckets` bars.
export function step(fromMs: number, toMs: number, buckets = 120): number {
  const span = Math.max(1, (toMs - fromMs) / 1000)
  for (const s of STEPS) if (span / s <= buckets) return s
  return Math.ceil(span / buckets / 86400) * 86400
}

export function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z')
}

export function label(from: string, to: string): string {
  const p = PRESETS.find((x) => x.from === from)
  if (p && (to === 'now' || to === '')) return p.label
  const f = (v: string) => (isRelative(v) ? v : new Date(resolve(v)).toLocaleString())
  return `${f(from)} → ${f(to || 'now')}`
}

export function fmtTime(ts: string): string {
  const d = new Date(ts)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(n >= 1e10 ? 0 : 1) + 'G'
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M'
  if (n >= 1e4) return (n / 1e3).toFixed(n >= 1e5 ? 0 : 1) + 'k'
  return String(n)
}
