import { useEffect, useRef, useState } from 'react'
import { api } from '../api/client'
import type { TailEvent } from '../api/types'
import { LogList } from '../components/LogList'
import { useParams } from '../router'
import { Rate, Ring } from './ring'
import { gapNotice, parseGap } from './tailgap'

const CAP = 5000
const FLUSH_MS = 250
// MAX_RATE is what the server sends this page at most per second (it skips
// the older events of a burst and says how many): parsing every event of a
// 100k events/s ingest kept the main thread busy for most of each second.
const MAX_RATE = 2000

// Live tail over server-sent events. Events land in a ring of the last
// 5,000; the list is redrawn at most 4 times a second, and the server
// samples the stream to MAX_RATE events a second, so a 100k ev/s ingest
// costs the browser a few thousand parses and four redraws a second.
// Paused, events keep counting but the list holds still. Every event has an
// id: when the connection drops, the browser's EventSource reconnects with
// Last-Event-ID and the server replays what the tab missed; what it cannot
// replay arrives as a gap notice, shown with a link to Explore.
export default function Tail() {
  const [params, set] = useParams()
  const service = params.get('service') ?? ''
  const level = params.get('level') ?? ''
  const q = params.get('q') ?? ''
  const [rows, setRows] = useState<TailEvent[]>([])
  const [paused, setPaused] = useState(false)
  const [status, setStatus] = useState<'connecting' | 'live' | 'reconnecting'>('connecting')
  const [rate, setRate] = useState(0)
  const [dropped, setDropped] = useState(0)
  const [sampled, setSampled] = useState(0)
  const [missed, setMissed] = useState(0)
  const [gap, setGap] = useState<{ text: string; href?: string } | null>(null)
  const ring = useRef(new Ring<TailEvent>(CAP))
  const rater = useRef(new Rate())
  const pausedRef = useRef(paused)
  pausedRef.current = paused
  const dirty = useRef(false)

  useEffect(() => {
    ring.current.clear()
    setRows([])
    setDropped(0)
    setSampled(0)
    setMissed(0)
    setGap(null)
    let lastTs: string | undefined
    const es = new EventSource(api.tailURL({ service, level, q, max_rate: MAX_RATE }))
    let pending: TailEvent[] = []
    let missedWhilePaused = 0
    es.onopen = () => setStatus('live')
    es.onerror = () => setStatus(es.readyState === EventSource.CLOSED ? 'connecting' : 'reconnecting')
    es.onmessage = (m) => {
      let e: TailEvent
      try {
        e = JSON.parse(m.data)
      } catch {
        return
      }
      rater.current.add(1)
      lastTs = e.ts
      if (pausedRef.current) {
        missedWhilePaused++
        return
      }
      pending.push(e)
      dirty.current = true
    }
    es.addEventListener('dropped', (m) => {
      try {
        setDropped((d) => d + (JSON.parse((m as MessageEvent).data).dropped ?? 0))
      } catch {
        /* a malformed notice changes nothing */
      }
    })
    es.addEventListener('sampled', (m) => {
      try {
        const n = JSON.parse((m as MessageEvent).data).skipped ?? 0
        rater.current.add(n) // the rate shown is the stream's, not what was drawn
        setSampled((d) => d + n)
      } catch {
        /* a malformed notice changes nothing */
      }
    })
    es.addEventListener('gap', (m) => {
      const g = parseGap((m as MessageEvent).data)
      if (g) setGap(gapNotice(g, lastTs, Date.now(), { service, level, q }))
    })
    const t = setInterval(() => {
      setRate(rater.current.perSecond())
      if (missedWhilePaused) {
        setMissed((x) => x + missedWhilePaused)
        missedWhilePaused = 0
      }
      if (!dirty.current) return
      dirty.current = false
      // Newest first; only the ring's worth survives a burst.
      ring.current.push(...pending.slice(-CAP))
      pending = []
      setRows(ring.current.toArray().reverse())
    }, FLUSH_MS)
    return () => {
      clearInterval(t)
      es.close()
    }
  }, [service, level, q])

  return (
    <div className="tail">
      <div className="toolbar">
        <h2>Live tail</h2>
        <form
          className="query"
          onSubmit={(e) => {
            e.preventDefault()
            const fd = new FormData(e.currentTarget)
            set({ service: String(fd.get('service') ?? ''), level: String(fd.get('level') ?? ''), q: String(fd.get('q') ?? '') })
          }}
        >
          <input name="service" defaultValue={service} placeholder="service" aria-label="Service" />
          <select name="level" defaultValue={level} aria-label="Level">
            <option value="">any level</option>
            {['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => (
              <option key={l}>{l}</option>
            ))}
          </select>
          <input name="q" defaultValue={q} placeholder="message contains" aria-label="Message contains" />
          <button type="submit">Apply</button>
        </form>
        <button data-testid="pause" onClick={() => { setPaused(!paused); if (paused) setMissed(0) }}>
          {paused ? '▶ Resume' : '⏸ Pause'}
        </button>
      </div>
      <div className="tailstatus">
        <span className={'pill ' + status} data-testid="tail-status">{status}</span>
        <span data-testid="tail-rate">{rate.toFixed(1)} ev/s</span>
        <span className="muted">showing the last {Math.min(rows.length, CAP).toLocaleString()} of {ring.current.total.toLocaleString()} received (ring of {CAP.toLocaleString()})</span>
        {paused && <span className="warn">paused: {missed.toLocaleString()} new events not shown</span>}
        {sampled > 0 && (
          <span className="muted" data-testid="tail-sampled">
            sampled to {MAX_RATE.toLocaleString()} ev/s: {sampled.toLocaleString()} older events of bursts skipped (Explore has them all)
          </span>
        )}
        {dropped > 0 && <span className="warn">the server dropped {dropped.toLocaleString()} events for this slow tab</span>}
        {gap && (
          <span className="warn" data-testid="tail-gap">
            {gap.text} {gap.href && <a href={gap.href}>See them in Explore</a>}
          </span>
        )}
      </div>
      {rows.length === 0 ? (
        <div className="empty">Waiting for events{service || level || q ? ' matching the filter' : ''}… (new events appear here as they are stored)</div>
      ) : (
        <LogList testid="tail" rows={rows.map((r) => ({ ...r, host: r.host ?? '' }))} height="70vh" />
      )}
    </div>
  )
}
