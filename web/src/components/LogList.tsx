import { useEffect, useRef } from 'react'
import { useVirtualizer } from '@tanstack/react-virtual'
import { fmtTime } from '../time'

// NEAR_END: how many rows before the end the next page is asked for.
const NEAR_END = 100

export interface Line {
  ts: string
  service: string
  level: string
  message: string
  host?: string
}

// LogList renders only the rows in view (plus a few), so 100,000 rows or
// lines with megabyte JSON bodies scroll as smoothly as 100: each row shows
// one line of the message, clipped; the drawer shows the rest.
export function LogList<T extends Line>(props: {
  rows: T[]
  onSelect?: (row: T, index: number) => void
  selected?: number
  height?: number | string
  testid?: string
  follow?: boolean
  // onNearEnd is called when the last rows come into view (cursor paging).
  onNearEnd?: () => void
}) {
  const parent = useRef<HTMLDivElement>(null)
  const v = useVirtualizer({
    count: props.rows.length,
    getScrollElement: () => parent.current,
    estimateSize: () => 24,
    overscan: 20,
    // Draw a screenful before the first measurement arrives.
    initialRect: { width: 1000, height: 600 },
  })
  const items = v.getVirtualItems()
  const lastShown = items.length ? items[items.length - 1].index : -1
  const { onNearEnd } = props
  const count = props.rows.length
  useEffect(() => {
    if (onNearEnd && count > 0 && lastShown >= count - NEAR_END) onNearEnd()
  }, [onNearEnd, lastShown, count])
  return (
    <div className="loglist" ref={parent} style={{ height: props.height ?? '60vh' }} data-testid={props.testid} data-rows={count} role="list">
      <div style={{ height: v.getTotalSize(), position: 'relative' }}>
        {v.getVirtualItems().map((it) => {
          const r = props.rows[it.index]
          // Clip before rendering: a 1 MB message must not reach the DOM.
          const msg = r.message.length > 2000 ? r.message.slice(0, 2000) + '…' : r.message
          return (
            <div
              key={it.key}
              role="listitem"
              className={'logrow lvl-' + r.level + (props.selected === it.index ? ' selected' : '')}
              style={{ position: 'absolute', top: 0, left: 0, right: 0, height: it.size, transform: `translateY(${it.start}px)` }}
              onClick={() => props.onSelect?.(r, it.index)}
              data-testid="logrow"
            >
              <span className="ts">{fmtTime(r.ts)}</span>
              <span className={'lvl lvl-' + r.level}>{r.level}</span>
              <span className="svc">{r.service}</span>
              <span className="msg">{msg}</span>
            </div>
          )
        })}
      </div>
    </div>
  )
}
