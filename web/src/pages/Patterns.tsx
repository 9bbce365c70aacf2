import { useState } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api } from '../api/client'
import { Sparkline } from '../components/Chart'
import { Empty, ErrorState, Loading } from '../components/States'
import { TimeRange } from '../components/TimeRange'
import { link, navigate, useParams } from '../router'
import { fmtCount, fmtTime } from '../time'
import { readState, window as resolveWindow } from './filters'

// Patterns: log templates mined from messages (Drain): variable parts are
// <*>; a click opens Explore on the lines of that template.
export default function Patterns() {
  const [params, set] = useParams()
  const st = readState(params)
  const [now] = useState(() => Date.now())
  const win = resolveWindow(st, now)
  const service = params.get('service') ?? ''
  const p = useQuery({
    queryKey: ['patterns', win.from, win.to, service],
    queryFn: ({ signal }) => api.patterns({ from: win.from, to: win.to, service, limit: 200 }, signal),
    placeholderData: keepPreviousData,
  })
  return (
    <div className="patterns">
      <div className="toolbar">
        <h2>Patterns</h2>
        <form className="query" onSubmit={(e) => { e.preventDefault(); set({ service: String(new FormData(e.currentTarget).get('service') ?? '') }) }}>
          <input name="service" defaultValue={service} placeholder="service" aria-label="Service" />
          <button type="submit">Apply</button>
        </form>
        <TimeRange from={st.from} to={st.to} refresh={st.refresh} onChange={(c) => set(c)} />
      </div>
      {p.isPending ? (
        <Loading what="patterns" />
      ) : p.isError ? (
        <ErrorState error={p.error} retry={() => p.refetch()} />
      ) : p.data.patterns.length === 0 ? (
        <Empty>No patterns in this range yet: the processor mines them from messages as it stores them.</Empty>
      ) : (
        <table className="top patterns" data-testid="patterns">
          <thead>
            <tr>
              <th>count</th>
              <th>template</th>
              <th>service</th>
              <th>volume</th>
              <th>first / last seen</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {p.data.patterns.map((x) => {
              const go = (exclude: boolean) =>
                navigate(link('/explore', { from: st.from, to: st.to, service: x.service || undefined, [exclude ? 'exclude' : 'attr']: `_pattern=${x.id}` }))
              return (
                <tr key={x.id} data-testid="pattern">
                  <td className="num">{fmtCount(x.count)}</td>
                  <td className="tpl">
                    <a href="#" onClick={(e) => (e.preventDefault(), go(false))}>
                      <code>{x.template}</code>
                    </a>
                  </td>
                  <td>{x.service}</td>
                  <td>
                    <Sparkline values={x.sparkline} />
                  </td>
                  <td className="muted">
                    {fmtTime(x.first_seen)}
                    <br />
                    {fmtTime(x.last_seen)}
                  </td>
                  <td>
                    <button title="Show only these lines in Explore" onClick={() => go(false)}>include</button>
                    <button title="Hide these lines in Explore" onClick={() => go(true)}>exclude</button>
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
    </div>
  )
}
