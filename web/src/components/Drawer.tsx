import { useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { api } from '../api/client'
import type { StoredEvent } from '../api/types'
import { useKey } from '../router'
import { fmtTime } from '../time'
import { ErrorState, Loading } from './States'

function TraceLink({ id, jaeger }: { id: string; jaeger: string }) {
  if (!id) return <span className="muted">none</span>
  if (!jaeger) return <code className="copyable" title="Set --jaeger-url to link traces">{id}</code>
  return (
    <a href={jaeger.replace(/\/$/, '') + '/trace/' + encodeURIComponent(id)} target="_blank" rel="noreferrer">
      {id} ↗
    </a>
  )
}

function copy(text: string) {
  navigator.clipboard?.writeText(text).catch(() => undefined)
}

// Drawer shows every field of one event, its context (N lines around it
// from the same service or host), and copy actions. Esc closes it.
export function Drawer(props: { event: StoredEvent; jaeger: string; onClose: () => void; onFilter: (field: string, value: string, exclude: boolean) => void }) {
  const e = props.event
  const [n, setN] = useState(0)
  const [by, setBy] = useState<'service' | 'host'>('service')
  useKey('Escape', props.onClose)
  const ctx = useQuery({
    queryKey: ['context', e.topic, e.partition, e.offset, n, by],
    queryFn: ({ signal }) => api.context({ topic: e.topic, partition: e.partition, offset: e.offset, n, by }, signal),
    enabled: n > 0,
  })
  const fields: [string, string][] = [
    ['ts', e.ts],
    ['service', e.service],
    ['level', e.level],
    ['host', e.host],
    ['tenant', e.tenant],
    ['span_id', e.span_id],
    ...Object.entries(e.attrs ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string]),
  ]
  return (
    <aside className="drawer" role="dialog" aria-label="Event detail" data-testid="drawer">
      <header>
        <h3>{fmtTime(e.ts)}</h3>
        <button onClick={() => copy(JSON.stringify(e, null, 2))}>Copy JSON</button>
        <button onClick={() => copy(JSON.stringify(e))}>Copy NDJSON line</button>
        <button aria-label="Close" onClick={props.onClose}>✕</button>
      </header>
      <pre className="message">{e.message}</pre>
      <table className="attrs">
        <tbody>
          <tr>
            <th>trace_id</th>
            <td>
              <TraceLink id={e.trace_id} jaeger={props.jaeger} />
            </td>
            <td />
          </tr>
          {fields.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td className="val">{v}</td>
              <td className="actions">
                {k !== 'ts' && k !== 'span_id' && (
                  <>
                    <button title="Filter for this value" onClick={() => props.onFilter(k, v, false)}>+</button>
                    <button title="Filter out this value" onClick={() => props.onFilter(k, v, true)}>−</button>
                  </>
                )}
              </td>
            </tr>
          ))}
          <tr>
            <th>stored at</th>
            <td className="val muted">
              {e.topic}/{e.partition} offset {e.offset}, {e.bytes} bytes
            </td>
            <td />
          </tr>
        </tbody>
      </table>
      <section className="context">
        <div className="row">
          <button data-testid="show-context" onClick={() => setN(n || 10)}>Show context</button>
          <label>
            lines
            <input type="number" min={1} max={500} value={n || 10} onChange={(ev) => setN(Math.max(1, Math.min(500, Number(ev.target.value) || 10)))} />
          </label>
          <select value={by} onChange={(ev) => setBy(ev.target.value as 'service' | 'host')} aria-label="Context from the same">
            <option value="service">same service</option>
            <option value="host">same host</option>
          </select>
        </div>
        {n > 0 && ctx.isPending && <Loading what="context" />}
        {ctx.isError && <ErrorState error={ctx.error} retry={() => ctx.refetch()} />}
        {ctx.data && (
          <ol className="ctxlines" data-testid="context-lines">
            {[...ctx.data.before, ctx.data.hit, ...ctx.data.after].map((c) => (
              <li key={`${c.partition}:${c.offset}`} className={c.offset === e.offset && c.partition === e.partition ? 'hit' : ''}>
                <span className="ts">{fmtTime(c.ts)}</span> <span className={'lvl lvl-' + c.level}>{c.level}</span> {c.message}
              </li>
            ))}
          </ol>
        )}
      </section>
    </aside>
  )
}
