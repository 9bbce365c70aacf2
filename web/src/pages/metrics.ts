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
