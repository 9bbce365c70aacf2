import type { SearchResult, StoredEvent } from '../api/types'

// Explore pages through a result by cursor, newest first: the next page is
// the same search with `to` just after the last row shown (one microsecond,
// the store's precision, so rows sharing that timestamp are not skipped);
// rows seen already are dropped by their (topic, partition, offset).

// afterMicro is an RFC 3339 time one microsecond after ts.
export function afterMicro(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return ts
  const secMs = Date.parse(m[1] + m[3])
  const micros = Number(((m[2] ?? '') + '000000').slice(0, 6)) + 1
  const t = new Date(secMs + Math.floor(micros / 1_000_000) * 1000)
  return t.toISOString().slice(0, 19) + '.' + String(micros % 1_000_000).padStart(6, '0') + 'Z'
}

// nextCursor is the `to` of the page after last, or undefined at the end.
export function nextCursor(last: SearchResult): string | undefined {
  const n = last.events.length
  return last.more && n ? afterMicro(last.events[n - 1].ts) : undefined
}

const key = (e: StoredEvent) => `${e.topic}/${e.partition}/${e.offset}`

// mergePages joins pages in order, each row once.
export function mergePages(pages: SearchResult[] | undefined): StoredEvent[] {
  if (!pages) return []
  if (pages.length === 1) return pages[0].events
  const seen = new Set<string>()
  const out: StoredEvent[] = []
  for (const p of pages)
    for (const e of p.events) {
      const k = key(e)
      if (seen.has(k)) continue
      seen.add(k)
      out.push(e)
    }
  return out
}
