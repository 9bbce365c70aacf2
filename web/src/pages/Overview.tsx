import { useMemo, useRef, useState } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { APIError, api, headers } from '../api/client'
import { LEVELS } from '../api/types'
import { Bars, LEVEL_COLORS } from '../components/Chart'
import { Empty, ErrorState, Loading } from '../components/States'
import { TimeRange, refreshMs } from '../components/TimeRange'
import { useAutoRefresh } from '../components/useAutoRefresh'
import { link, navigate, useParams } from '../router'
import { fmtCount, iso, step } from '../time'
import { readState, window as resolveWindow } from './filters'
import { TENANT_LAG_MS, TENANT_WINDOW_MS, parseMetrics, quantile, tenantLive, total, type Sample } from './metrics'

function Go({ to, children, testid }: { to: string; children: React.ReactNode; testid?: string }) {
  return (
    <a href={to} data-testid={testid} onClick={(e) => (e.preventDefault(), navigate(to))}>
      {children}
    </a>
  )
}

// Overview: volume by level, top services, error count and what the node's
// own metrics say about ingest (accepted, rejected by reason, backlog). Every
// number links to the Explore view that explains it.
export function Overview() {
  const [params, set] = useParams()
  const st = readState(params)
  const [now, setNow] = useState(() => Date.now())
  const refresh = refreshMs(st.refresh || '10s')
  useAutoRefresh(refresh, () => setNow(Date.now()))
  const win = resolveWindow(st, now)
  const stepS = step(win.fromMs, win.toMs)
  const range = { from: st.from, to: st.to }
  const stats = useQuery({ queryKey: ['stats', win.from, win.to], queryFn: ({ signal }) => api.stats({ from: win.from, to: win.to }, signal), placeholderData: keepPreviousData })
  const hist = useQuery({
    queryKey: ['histogram', win.from, win.to, stepS],
    queryFn: ({ signal }) => api.histogram({ from: win.from, to: win.to, step: stepS + 's' }, signal),
    placeholderData: keepPreviousData,
  })
  // The previous /metrics scrape, for rates between two refreshes.
  const prev = useRef<{ at: number; accepted: number; stored: number } | null>(null)
  const metrics = useQuery({
    queryKey: ['metrics', now],
    queryFn: async ({ signal }) => {
      const r = await fetch('/metrics', { headers: headers(), signal })
      if (!r.ok) throw new APIError(r.status, `/metrics answered ${r.status}`)
      return parseMetrics(await r.text())
    },
    placeholderData: keepPreviousData,
    retry: (n, e) => !operatorOnlyError(e) && n < 2,
  })
  // A tenant token may not read /metrics (node-wide: every tenant's
  // traffic); it sees its own stored rate and freshness instead.
  const operatorOnly = operatorOnlyError(metrics.error)
  const mine = useQuery({
    queryKey: ['tenant-live', now],
    enabled: operatorOnly,
    queryFn: async ({ signal }) => {
      const to = now - TENANT_LAG_MS
      const [w, newest] = await Promise.all([
        api.stats({ from: iso(to - TENANT_WINDOW_MS), to: iso(to) }, signal),
        api.search({ from: '-24h', to: iso(now), limit: 1 }, signal),
      ])
      return { ...tenantLive(w.events, newest.events[0]?.ts, Date.now()), from: iso(to - TENANT_WINDOW_MS), to: iso(to) }
    },
    placeholderData: keepPreviousData,
  })
  const series = useMemo(() => {
    const h = hist.data
    if (!h) return []
    return LEVELS.filter((l) => h.levels[l]).reverse().map((l) => ({ label: l, color: LEVEL_COLORS[l], values: h.levels[l] }))
  }, [hist.data])
  if (stats.isPending) return <Loading what="overview" />
  if (stats.isError) return <ErrorState error={stats.error} retry={() => stats.refetch()} />
  const s = stats.data
  const secs = Math.max(1, (win.toMs - win.fromMs) / 1000)
  const errors = (s.by_level.error ?? 0) + (s.by_level.fatal ?? 0)
  const services = Object.entries(s.by_service).sort((a, b) => b[1] - a[1]).slice(0, 10)
  const m = metrics.data
  const ingest = m ? ingestFigures(m, prev) : null
  return (
    <div className="overview">
      <div className="toolbar">
        <h2>Overview</h2>
        <TimeRange from={st.from} to={st.to} refresh={st.refresh || '10s'} onChange={(c) => set(c)} />
      </div>
      <div className="cards">
        <div className="card">
          <div className="label">Events stored</div>
          <Go to={link('/explore', range)} testid="overview-events">
            <span className="big" data-testid="overview-total">{s.events.toLocaleString()}</span>
          </Go>
          <div className="muted">{fmtCount(Math.round((s.events / secs) * 10) / 10)}/s over the range</div>
        </div>
        <div className="card">
          <div className="label">Errors (error + fatal)</div>
          <Go to={link('/explore', { ...range, level: 'error' })}>
            <span className="big err">{errors.toLocaleString()}</span>
          </Go>
          <div className="muted">{s.events ? ((errors / s.events) * 100).toFixed(2) : '0'}% of events</div>
        </div>
        <div className="card">
          <div className="label">Volume</div>
          <span className="big">{(s.bytes / 1048576).toFixed(1)} MiB</span>
        </div>
        <div className="card" data-testid="ingest-card">
          <div className="label">Ingest (this node, live)</div>
          {operatorOnly ? (
            <div data-testid="tenant-live" data-from={mine.data?.from} data-to={mine.data?.to}>
              <div>
                <span className="big" data-testid="tenant-rate">{mine.data ? fmtCount(Math.round(mine.data.storedRate * 10) / 10) : '…'}</span> ev/s stored for your tenant
                <span className="muted"> (last {TENANT_WINDOW_MS / 1000} s)</span>
              </div>
              <div className="muted" data-testid="tenant-newest">
                newest event {mine.data?.newestAgeS == null ? 'none in 24 h' : `${mine.data.newestAgeS.toFixed(1)} s ago`}
              </div>
              <div className="muted">accepted rate, ack latency, rejects and consumer lag are node-wide: an operator (admin token) sees them</div>
            </div>
          ) : metrics.isError ? (
            <span className="muted">/metrics unavailable</span>
          ) : !ingest ? (
            <span className="muted">…</span>
          ) : (
            <>
              <div>
                <Go to={lastMinute()} testid="overview-live-accepted">
                  <span className="big">{ingest.acceptedRate == null ? '…' : fmtCount(Math.round(ingest.acceptedRate))}</span>
                </Go>{' '}
                ev/s accepted,{' '}
                <Go to={lastMinute()} testid="overview-live-stored">
                  <strong>{ingest.storedRate == null ? '…' : fmtCount(Math.round(ingest.storedRate))}</strong>
                </Go>{' '}
                ev/s stored
              </div>
              <div className="muted">
                ack latency p50 {fmtMs(ingest.p50)} · p99 {fmtMs(ingest.p99)}
              </div>
              <div className="muted">
                rejected since start: {ingest.rejects.length === 0 ? '0' : ingest.rejects.map((r) => `${r.reason} ${fmtCount(r.value)}`).join(', ')}
              </div>
              <div className="muted">
                <Go to={link('/dataplane', range)} testid="overview-live-lag">
                  consumer lag
                </Go>
                : {ingest.lag.length === 0 ? 'n/a' : ingest.lag.map((l) => `p${l.partition} ${fmtCount(l.value)}`).join(', ')} records
              </div>
            </>
          )}
        </div>
      </div>
      <section className="histogram">
        <h3>Events by level</h3>
        {hist.isError ? (
          <ErrorState error={hist.error} retry={() => hist.refetch()} />
        ) : !hist.data ? (
          <Loading what="histogram" />
        ) : hist.data.total === 0 ? (
          <Empty>No events in this range. Send some: <code>curl -d '{'{'}"message":"hi"{'}'}' http://HOST/api/v1/logs</code>, or run <code>wirelog loadgen</code>.</Empty>
        ) : (
          <Bars testid="overview-histogram" times={hist.data.times} stepSeconds={hist.data.step_seconds} series={series} onZoom={(a, b) => navigate(link('/explore', { from: iso(a), to: iso(b) }))} />
        )}
        <div className="legend">
          {LEVELS.filter((l) => s.by_level[l]).map((l) => (
            <Go key={l} to={link('/explore', { ...range, level: l })}>
              <span className="dot" style={{ background: LEVEL_COLORS[l] }} /> {l} {fmtCount(s.by_level[l])}
            </Go>
          ))}
        </div>
      </section>
      <section>
        <h3>Top services</h3>
        {services.length === 0 ? (
          <Empty>No services yet.</Empty>
        ) : (
          <table className="top" data-testid="top-services">
            <tbody>
              {services.map(([name, n]) => (
                <tr key={name}>
                  <td>
                    <Go to={link('/explore', { ...range, service: name })}>{name || '(none)'}</Go>
                  </td>
                  <td className="num">{n.toLocaleString()}</td>
                  <td className="bar">
                    <span style={{ width: `${(n / services[0][1]) * 100}%` }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  )
}

// lastMinute is Explore over the minute just past: the events the live
// rates are made of.
function lastMinute(): string {
  const now = Date.now()
  return link('/explore', { from: iso(now - 60_000), to: iso(now) })
}

function operatorOnlyError(e: unknown): boolean {
  return e instanceof APIError && (e.status === 401 || e.status === 403)
}

function fmtMs(sec: number): string {
  if (Number.isNaN(sec)) return 'n/a'
  return sec < 0.001 ? `${(sec * 1e6).toFixed(0)}µs` : sec < 1 ? `${(sec * 1e3).toFixed(1)}ms` : `${sec.toFixed(2)}s`
}

// ingestFigures reads what the overview shows from the node's own metrics:
// rates are taken between this scrape and the previous one.
function ingestFigures(m: Sample[], prev: { current: { at: number; accepted: number; stored: number } | null }) {
  const accepted = total(m, 'wirelog_ingest_events_total', { result: 'accepted' }) + total(m, 'wirelog_syslog_accepted_total')
  const stored = total(m, 'wirelog_processor_events_stored_total')
  const now = Date.now()
  let acceptedRate: number | null = null
  let storedRate: number | null = null
  const p = prev.current
  if (p && now - p.at > 500 && accepted >= p.accepted) {
    acceptedRate = ((accepted - p.accepted) * 1000) / (now - p.at)
    storedRate = ((stored - p.stored) * 1000) / (now - p.at)
  }
  if (!p || now - p.at > 500) prev.current = { at: now, accepted, stored }
  const rejects = new Map<string, number>()
  for (const x of m) {
    if ((x.name === 'wirelog_ingest_events_total' && x.labels.result === 'rejected') || x.name === 'wirelog_syslog_rejected_total') {
      const reason = x.labels.reason ?? 'http'
      rejects.set(reason, (rejects.get(reason) ?? 0) + x.value)
    }
  }
  const lag = m
    .filter((x) => /_group_lag_records$|_consumer_lag(_records)?$/.test(x.name))
    .map((x) => ({ partition: x.labels.partition ?? '?', value: x.value }))
  return {
    acceptedRate,
    storedRate,
    p50: quantile(m, 'wirelog_ingest_http_request_duration_seconds', 0.5),
    p99: quantile(m, 'wirelog_ingest_http_request_duration_seconds', 0.99),
    rejects: [...rejects.entries()].filter(([, v]) => v > 0).map(([reason, value]) => ({ reason, value })),
    lag,
  }
}
