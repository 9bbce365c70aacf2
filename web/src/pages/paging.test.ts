import { describe, expect, it } from 'vitest'
import type { SearchResult, StoredEvent } from '../api/types'
import { afterMicro, mergePages, nextCursor } from './paging'

const ev = (ts: string, offset: number): StoredEvent => ({
  ts, offset, partition: 0, topic: 'logs', service: 's', level: 'info', message: 'm', host: '', trace_id: '', span_id: '', tenant: '', attrs: null, bytes: 1,
})

describe('cursor paging', () => {
  it('moves one microsecond past the last row, across second and day ends', () => {
    expect(afterMicro('2026-12-06T08:00:00.123456Z')).toBe('2026-12-06T08:00:00.123457Z')
    expect(afterMicro('2026-12-06T08:00:00.1Z')).toBe('2026-12-06T08:00:00.100001Z')
    expect(afterMicro('2026-12-06T08:00:00Z')).toBe('2026-12-06T08:00:00.000001Z')
    expect(afterMicro('2026-12-06T23:59:59.999999Z')).toBe('2026-12-07T00:00:00.000000Z')
    expect(afterMicro('2026-12-06T10:00:00.5+02:00')).toBe('2026-12-06T08:00:00.500001Z')
  })
  it('has a next page only while more match', () => {
    const page: SearchResult = { events: [ev('2026-12-06T08:00:02Z', 2), ev('2026-12-06T08:00:01.25Z', 1)], more: true, limit: 2 }
    expect(nextCursor(page)).toBe('2026-12-06T08:00:01.250001Z')
    expect(nextCursor({ ...page, more: false })).toBeUndefined()
  })
  it('shows a row shared by two pages (same timestamp) once, in order', () => {
    const a: SearchResult = { events: [ev('2026-12-06T08:00:02Z', 3), ev('2026-12-06T08:00:01Z', 2)], more: true, limit: 2 }
    const b: SearchResult = { events: [ev('2026-12-06T08:00:01Z', 2), ev('2026-12-06T08:00:01Z', 1)], more: false, limit: 2 }
    expect(mergePages([a, b]).map((e) => e.offset)).toEqual([3, 2, 1])
    expect(mergePages(undefined)).toEqual([])
  })
})
