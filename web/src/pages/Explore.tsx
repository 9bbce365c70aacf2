import { useMemo, useRef, useState } from 'react'
import { useAutoRefresh } from '../components/useAutoRefresh'
import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query'
import { api } from '../api/client'
import type { StoredEvent } from '../api/types'
import { LEVELS } from '../api/types'
import { Bars, LEVEL_COLORS } from '../components/Chart'
import { Drawer } from '../components/Drawer'
import { LogList } from '../components/LogList'
import { Empty, ErrorState, Loading } from '../components/States'
import { TimeRange, refreshMs } from '../components/TimeRange'
import { useKey, useParams } from '../router'
import { fmtCount, iso, step } from '../time'
import { readState, toggle, window as resolveWindow, FILTER_KEYS } from './filters'
import { mergePages, nextCursor } from './paging'

const PAGE = 500

export default function Explore() {
  const [params, set] = useParams()
  const st = readState(params)
  const [now, setNow] = useState(() => Date.now())
  const [selected, setSelected] = useState<number | null>(null)
  const queryInput = useRef<HTMLInputElement>(null)
  const key = JSON.stringify(st)
  // A new filter or range starts from a fresh "now" and the first page.
  const [lastKey, setLastKey] = useState(key)
  if (key !== lastKey) {
    setLastKey(key)
    setNow(Date.now())
    setSelected(null)
  }
  const win = resolveWindow(st, now)
  const f = { ...st.filter, from: win.from, to: win.to }
  const stepS = step(win.fromMs, win.toMs)
  const refresh = refreshMs(st.refresh)
  useAutoRefresh(refresh, () => setNow(Date.now()))

  const cfg = useQuery({ queryKey: ['config'], queryFn: ({ signal }) => api.config(signal), staleTime: Infinity })
  const hist = useQuery({
    queryKey: ['histogram', f, stepS],
    queryFn: ({ signal }) => api.histogram({ ...f, step: stepS + 's' }, signal),
    placeholderData: keepPreviousData,
  })
  // Pages of PAGE rows by cursor (paging.ts), fetched as the list scrolls
  // near its end: no row cap, and each request stays a first-page query.
  const search = useInfiniteQuery({
    queryKey: ['search', f],
    queryFn: ({ pageParam, signal }) => api.search({ ...f, to: pageParam ?? f.to, limit: PAGE }, signal),
    initialPageParam: undefined as string | undefined,
    // The same cursor twice means more than a page of rows share one
    // microsecond: stop rather than ask again.
    getNextPageParam: (last, _all, cursor) => {
      const next = nextCursor(last)
      return next === cursor ? undefined : next
    },
    placeholderData: keepPreviousData,
  })
  const fields = useQuery({
    queryKey: ['fields', f],
    queryFn: ({ signal }) => api.fields({ ...f, limit: 5 }, signal),
    placeholderData: keepPreviousData,
  })
  useKey('/', (e) => {
    e.preventDefault()
    queryInput.current?.focus()
  })

  const series = useMemo(() => {
    const h = hist.data
    if (!h) return []
    return LEVELS.filter((l) => h.levels[l]).reverse().map((l) => ({ label: l, color: LEVEL_COLORS[l], values: h.levels[l] }))
  }, [hist.data])

  const events = useMemo(() => mergePages(search.data?.pages), [search.data])
  const more = search.hasNextPage
  const sel = selected != null ? events[selected] : null
  const filterChips: [string, string, boolean][] = [
    ...FILTER_KEYS.filter((k) => k !== 'q' && st.filter[k]).map((k) => [k, st.filter[k] as string, false] as [string, string, boolean]),
    ...(st.filter.attr ?? []).map((a) => [a.split('=')[0], a.slice(a.indexOf('=') + 1), false] as [string, string, boolean]),
    ...(st.filter.exclude ?? []).map((a) => [a.split('=')[0], a.slice(a.indexOf('=') + 1), true] as [string, string, boolean]),
  ]
  const onFilter = (field: string, value: string, exclude: boolean) => set(toggle(st.filter, field, value, exclude))

  return (
    <div className="explore">
      <div className="toolbar">
        <form
          className="query"
          onSubmit={(e) => {
            e.preventDefault()
            set({ q: queryInput.current?.value ?? '' })
          }}
        >
          <input
            ref={queryInput}
            key={st.filter.q ?? ''}
            defaultValue={st.filter.q ?? ''}
            placeholder="Search messages (press / to focus)"
            aria-label="Search messages"
            data-testid="query"
          />
          <button type="submit">Search</button>
        </form>
        <TimeRange from={st.from} to={st.to} refresh={st.refresh} onChange={(c) => set(c)} />
      </div>
      <div className="chips" data-testid="filters">
        {filterChips.map(([k, v, ex]) => (
          <span key={`${k}${ex}${v}`} className={'chip' + (ex ? ' exclude' : '')}>
            {k} {ex ? '≠' : '='} {v}
            <button aria-label={`Remove filter ${k}`} onClick={() => onFilter(k, v, ex)}>×</button>
          </span>
        ))}
        <AddFilter onAdd={(k, v) => onFilter(k, v, false)} />
      </div>
      <section className="histogram">
        <div className="histhead">
          <strong data-testid="total">{hist.data ? hist.data.total.toLocaleString() : '…'}</strong> events
          <span className="muted"> · {stepS}s buckets · drag or click to zoom</span>
          {st.from !== '-1h' || st.to !== 'now' ? (
            <button className="link" onClick={() => set({ from: undefined, to: undefined })}>reset range</button>
          ) : null}
        </div>
        {hist.isPending ? (
          <Loading what="histogram" />
        ) : hist.isError ? (
          <ErrorState error={hist.error} retry={() => hist.refetch()} />
        ) : (
          <Bars
            testid="histogram"
            times={hist.data.times}
            stepSeconds={hist.data.step_seconds}
            series={series}
            onZoom={(a, b) => set({ from: iso(a), to: iso(b) })}
          />
        )}
      </section>
      <div className="body">
        {/* While the sidebar shows the previous filter's values (kept to avoid a
            flash), it says so: aria-busy, dimmed. A click then acts on what the
            current filter's answer shows, not on a row about to move. */}
        <aside className={'fields' + (fields.isPlaceholderData ? ' stale' : '')} data-testid="fields" aria-busy={fields.isPending || fields.isPlaceholderData}>
          {fields.isPending ? (
            <Loading what="fields" />
          ) : fields.isError ? (
            <ErrorState error={fields.error} retry={() => fields.refetch()} />
          ) : (
            <>
            {fields.data.sampled && <div className="muted">top values of the newest {fields.data.total.toLocaleString()} matches</div>}
            {fields.data.fields
              .filter((fs) => fs.values.length)
              .map((fs) => (
                <details key={fs.name} open={!fs.attr || undefined}>
                  <summary>
                    {fs.name}
                    {fs.attr && <span className="muted" title={`from the newest ${fields.data.attr_sample} matches`}> ~</span>}
                  </summary>
                  <ul>
                    {fs.values.map((v) => (
                      <li key={v.value} data-testid={`field-${fs.name}-${v.value}`}>
                        <span className="fv" title={v.value}>{v.value || '(empty)'}</span>
                        <span className="count">{fmtCount(v.count)}</span>
                        <button title="Filter for this value" aria-label={`Filter ${fs.name}=${v.value}`} onClick={() => onFilter(fs.name, v.value, false)}>+</button>
                        <button title="Filter out this value" aria-label={`Exclude ${fs.name}=${v.value}`} onClick={() => onFilter(fs.name, v.value, true)}>−</button>
                      </li>
                    ))}
                  </ul>
                </details>
              ))}
            </>
          )}
        </aside>
        <section className="results">
          <div className="resulthead">
            <span data-testid="shown">
              {events.length.toLocaleString()} shown{more ? ' (newest first; more load as you scroll)' : ''}
            </span>
            <a className="button" href={api.exportURL(f, 'ndjson')} download="wirelog.ndjson">Export NDJSON</a>
            <a className="button" href={api.exportURL(f, 'csv')} download="wirelog.csv">Export CSV</a>
          </div>
          {search.isPending ? (
            <Loading what="events" />
          ) : search.isError ? (
            <ErrorState error={search.error} retry={() => search.refetch()} />
          ) : events.length === 0 ? (
            <Empty>
              No events match in this range. Widen the time range or remove a filter.
            </Empty>
          ) : (
            <>
              <LogList
                testid="results"
                rows={events}
                selected={selected ?? undefined}
                onSelect={(_, i) => setSelected(i)}
                onNearEnd={() => more && !search.isFetchingNextPage && search.fetchNextPage()}
              />
              {search.isFetchingNextPage && <div className="muted">loading older events…</div>}
            </>
          )}
        </section>
      </div>
      {sel && <Drawer event={sel as StoredEvent} jaeger={cfg.data?.jaeger_url ?? ''} onClose={() => setSelected(null)} onFilter={onFilter} />}
    </div>
  )
}

function AddFilter({ onAdd }: { onAdd: (k: string, v: string) => void }) {
  const [open, setOpen] = useState(false)
  const [k, setK] = useState('service')
  const [v, setV] = useState('')
  if (!open) return <button className="link" onClick={() => setOpen(true)}>+ add filter</button>
  return (
    <form
      className="addfilter"
      onSubmit={(e) => {
        e.preventDefault()
        if (k && v) onAdd(k, v)
        setOpen(false)
        setV('')
      }}
    >
      <input list="filter-fields" value={k} onChange={(e) => setK(e.target.value)} aria-label="Field" />
      <datalist id="filter-fields">
        {['service', 'level', 'host', 'tenant', 'trace_id'].map((x) => <option key={x} value={x} />)}
      </datalist>
      = <input value={v} onChange={(e) => setV(e.target.value)} aria-label="Value" autoFocus />
      <button type="submit">Add</button>
    </form>
  )
}
