import { describe, expect, it } from 'vitest'
import { resolve, step, isRelative, label } from './time'

describe('time ranges', () => {
  const now = Date.parse('2026-03-01T12:00:00Z')
  it('resolves relative, absolute and epoch forms', () => {
    expect(resolve('now', now)).toBe(now)
    expect(resolve('-15m', now)).toBe(now - 15 * 60_000)
    expect(resolve('now-2h', now)).toBe(now - 2 * 3600_000)
    expect(resolve('-7d', now)).toBe(now - 7 * 86400_000)
    expect(resolve('2026-03-01T11:00:00Z', now)).toBe(now - 3600_000)
    expect(resolve('1772362800', now)).toBe(1772362800_000)
    expect(() => resolve('yesterday', now)).toThrow(/not a time/)
  })
  it('picks round steps with at most the asked number of buckets', () => {
    expect(step(now - 3600_000, now)).toBe(30)
    expect(step(now - 60_000, now)).toBe(1)
    expect(step(now - 7 * 86400_000, now)).toBe(10800)
    for (const span of [1, 59, 3601, 86400 * 3, 86400 * 400]) {
      const s = step(now - span * 1000, now)
      expect(span / s).toBeLessThanOrEqual(120)
    }
  })
  it('labels presets by name', () => {
    expect(label('-1h', 'now')).toBe('Last 1 hour')
    expect(isRelative('-5m')).toBe(true)
    expect(isRelative('2026-03-01T11:00:00Z')).toBe(false)
  })
})
