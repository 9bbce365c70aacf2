import { useState } from 'react'
import { PRESETS, label, resolve, iso } from '../time'

const REFRESH = [
  { label: 'Off', v: '' },
  { label: '5s', v: '5s' },
  { label: '10s', v: '10s' },
  { label: '30s', v: '30s' },
  { label: '1m', v: '1m' },
]

export function refreshMs(v: string | null): number | false {
  if (!v) return false
  const m = /^(\d+)([sm])$/.exec(v)
  if (!m) return false
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : 1_000)
}

// TimeRange picks a relative (Last 15 minutes) or absolute window and the
// auto-refresh interval; all three live in the URL.
export function TimeRange(props: {
  from: string
  to: string
  refresh: string
  onChange: (c: { from?: string; to?: string; refresh?: string }) => void
}) {
  const [open, setOpen] = useState(false)
  const [absFrom, setAbsFrom] = useState('')
  const [absTo, setAbsTo] = useState('')
  const [err, setErr] = useState('')
  return (
    <div className="timerange">
      <button className="picker" data-testid="time-range" onClick={() => setOpen(!open)} aria-expanded={open}>
        {label(props.from, props.to)}
      </button>
      <select
        aria-label="Auto-refresh"
        value={props.refresh}
        onChange={(e) => props.onChange({ refresh: e.target.value })}
      >
        {REFRESH.map((r) => (
          <option key={r.v} value={r.v}>
            {r.v ? `⟳ ${r.label}` : 'Auto-refresh off'}
          </option>
        ))}
      </select>
      {open && (
        <div className="popover" role="dialog">
          <div className="presets">
            {PRESETS.map((p) => (
              <button
                key={p.from}
                onClick={() => {
                  props.onChange({ from: p.from, to: 'now' })
                  setOpen(false)
                }}
              >
                {p.label}
              </button>
            ))}
          </div>
          <form
            className="absolute"
            onSubmit={(e) => {
              e.preventDefault()
              try {
                const f = resolve(absFrom)
                const t = absTo ? resolve(absTo) : Date.now()
                if (t <= f) throw new Error('"to" must be after "from"')
                props.onChange({ from: iso(f), to: absTo ? iso(t) : 'now' })
                setErr('')
                setOpen(false)
              } catch (x) {
                setErr((x as Error).message)
              }
            }}
          >
            <label>
              From <input value={absFrom} onChange={(e) => setAbsFrom(e.target.value)} placeholder="2026-03-01T12:00:00Z or -2h" />
            </label>
            <label>
              To <input value={absTo} onChange={(e) => setAbsTo(e.target.value)} placeholder="now" />
            </label>
            <button type="submit">Apply</button>
            {err && <div className="error">{err}</div>}
          </form>
        </div>
      )}
    </div>
  )
}
