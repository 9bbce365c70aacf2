import { describe, expect, it } from 'vitest'
import { parseMetrics, quantile, tenantLive, total } from './metrics'

const text = `# HELP wirelog_ingest_events_total Events.
# TYPE wirelog_ingest_events_total counter
wirelog_ingest_events_total{result="accepted"} 1500
wirelog_ingest_events_total{result="rejected"} 7
lat_bucket{le="0.001"} 50
lat_bucket{le="0.01"} 90
lat_bucket{le="0.1"} 100
lat_bucket{le="+Inf"} 100
odd{path="a \\"quoted\\" value"} 1e3
`

describe('Prometheus text', () => {
  const m = parseMetrics(text)
  it('reads names, labels and values', () => {
    expect(total(m, 'wirelog_ingest_events_total', { result: 'accepted' })).toBe(1500)
    expect(total(m, 'wirelog_ingest_events_total')).toBe(1507)
    expect(m.find((x) => x.name === 'odd')?.labels.path).toBe('a "quoted" value')
  })
  it('estimates quantiles from buckets like histogram_quantile', () => {
    expect(quantile(m, 'lat', 0.5)).toBeCloseTo(0.001)
    expect(quantile(m, 'lat', 0.7)).toBeCloseTo(0.001 + 0.009 * 0.5)
    expect(quantile(m, 'lat', 0.99)).toBeCloseTo(0.01 + 0.09 * 0.9)
    expect(Number.isNaN(quantile(m, 'none', 0.5))).toBe(true)
  })
})

describe('tenantLive', () => {
  it('turns the window count into a rate and the newest event into an age', () => {
    const now = Date.parse('2026-12-06T08:00:10Z')
    expect(tenantLive(2500, '2026-12-06T08:00:07Z', now)).toEqual({ storedRate: 250, newestAgeS: 3 })
    expect(tenantLive(0, undefined, now)).toEqual({ storedRate: 0, newestAgeS: null })
  })
})
