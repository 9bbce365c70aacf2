import { describe, expect, it } from 'vitest'
import { gapNotice, parseGap } from './tailgap'

describe('tail gap notice', () => {
  it('parses the server notice and ignores junk', () => {
    expect(parseGap('{"reason":"expired","missed":6}')).toEqual({ reason: 'expired', missed: 6 })
    expect(parseGap('{"reason":"restarted"}')).toEqual({ reason: 'restarted', missed: undefined })
    expect(parseGap('nope')).toBeNull()
    expect(parseGap('{"missed":1}')).toBeNull()
  })
  it('links to Explore over the hole with the tail filter', () => {
    const n = gapNotice({ reason: 'expired', missed: 1200 }, '2026-12-06T08:00:00Z', Date.parse('2026-12-06T08:00:05Z'), { service: 'api', level: '', q: 'x' })
    expect(n.text).toMatch(/1,200 events/)
    expect(n.text).toMatch(/no longer held/)
    const u = new URL(n.href!, 'http://x')
    expect(u.pathname).toBe('/explore')
    expect(u.searchParams.get('from')).toBe('2026-12-06T08:00:00Z')
    expect(u.searchParams.get('to')).toBe('2026-12-06T08:00:05.000Z')
    expect(u.searchParams.get('service')).toBe('api')
    expect(u.searchParams.get('q')).toBe('x')
    expect(u.searchParams.has('level')).toBe(false)
  })
  it('says a restart is a restart, and gives no link without a last event', () => {
    const n = gapNotice({ reason: 'restarted' }, undefined, 0, {})
    expect(n.text).toMatch(/restarted/)
    expect(n.href).toBeUndefined()
  })
})
