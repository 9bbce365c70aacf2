import { Fragment, useMemo, useState } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api } from '../api/client'
import { Bars, LEVEL_COLORS } from '../components/Chart'
import { LEVELS, type DataPlaneVF } from '../api/types'
import { Empty, ErrorState, Loading } from '../components/States'
import { TimeRange } from '../components/TimeRange'
import { link, navigate, useParams } from '../router'
import { iso, step } from '../time'
import { readState, window as resolveWindow } from './filters'
import { type Verdict, verdicts } from './verdict'
import { holder, multiNode, seriesLabel, vfSummary } from './vfs'

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d']

// Data plane: the agent's PMD, port, VF and hugepage series beside the log
// ingest rate, read by this node from Prometheus (--prometheus) or from the agent it scrapes itself (--dataplane-scrape),
// never from Prometheus directly. A click on a chart opens Explore at that moment.
export default function DataPlane() {
  const [params, set] = useParams()
  const st = readState(params, '-15m')
  const [now] = useState(() => Date.now())
  const win = resolveWindow(st, now)
  const stepS = step(win.fromMs, win.toMs)
  const cfg = useQuery({ queryKey: ['config'], queryFn: ({ signal }) => api.config(signal), staleTime: Infinity })
  const on = cfg.data && cfg.data.dataplane.source !== 'none'
  const dp = useQuery({
    queryKey: ['dataplane', win.from, win.to, stepS],
    queryFn: ({ signal }) => api.dataplane({ from: win.from, to: win.to, step: stepS + 's' }, signal),
    enabled: !!on,
    placeholderData: keepPreviousData,
  })
  const logs = useQuery({
    queryKey: ['histogram', win.from, win.to, stepS],
    queryFn: ({ signal }) => api.histogram({ from: win.from, to: win.to, step: stepS + 's' }, signal),
    enabled: !!on,
    placeholderData: keepPreviousData,
  })
  const logSeries = useMemo(() => {
    const h = logs.data
    if (!h) return []
    return LEVELS.filter((l) => h.levels[l]).reverse().map((l) => ({ label: l, color: LEVEL_COLORS[l], values: h.levels[l] }))
  }, [logs.data])
  // One chart per panel; a VF's series is named by the pod holding it.
  const groups = useMemo(() => {
    const all = dp.data?.series ?? []
    const multi = multiNode(all)
    const g = new Map<string, { label: string; color: string; values: (number | null)[]; vf: boolean }[]>()
    for (const [i, s] of all.entries()) {
      const arr = g.get(s.name) ?? []
      arr.push({ label: seriesLabel(s, multi) || s.name, color: PALETTE[i % PALETTE.length], values: s.values, vf: !!s.labels.pci_address })
      g.set(s.name, arr)
    }
    return [...g.entries()]
  }, [dp.data])
  // The VF → pod table follows the last chart of per-VF series.
  let lastVF = -1
  groups.forEach(([, series], i) => series.some((x) => x.vf) && (lastVF = i))
  if (cfg.isPending) return <Loading what="configuration" />
  if (cfg.isError) return <ErrorState error={cfg.error} retry={() => cfg.refetch()} />
  if (!on) {
    return (
      <div className="dataplane">
        <h2>Data plane</h2>
        <Empty>
          <div data-testid="dataplane-setup" className="setup">
            <p>No data-plane metrics source is configured on this node. wirelog reads the agent's metrics for you; the browser never calls Prometheus.</p>
            <ol>
              <li>Run the agent on each data-plane node: <code>wirelog dataplane --listen 127.0.0.1:9810</code></li>
              <li>Let Prometheus scrape it: <code>scrape_configs: [{'{'}job_name: wirelog-dataplane, static_configs: [{'{'}targets: ['127.0.0.1:9810']{'}'}]{'}'}]</code></li>
              <li>Point this node at that Prometheus: <code>wirelog run --prometheus http://127.0.0.1:9090</code></li>
              <li>Or, without Prometheus, let this node scrape the agent itself (last hour kept in memory): <code>wirelog run --dataplane-scrape http://127.0.0.1:9810/metrics</code></li>
            </ol>
          </div>
        </Empty>
      </div>
    )
  }
  return (
    <div className="dataplane">
      <div className="toolbar">
        <h2>Data plane</h2>
        <span className="muted">source: {cfg.data.dataplane.source} {cfg.data.dataplane.url}</span>
        <TimeRange from={st.from} to={st.to} refresh={st.refresh} onChange={(c) => set(c)} />
      </div>
      {dp.isPending ? (
        <Loading what="data-plane series" />
      ) : dp.isError ? (
        <ErrorState error={dp.error} retry={() => dp.refetch()} />
      ) : (
        <>
          {dp.data.errors.length > 0 && <div className="error">{dp.data.errors.join('; ')}</div>}
          <p className="muted">
            One timeline: the cursor moves across every chart. When the log rate falls, look below for VF or port drops, PMD
            saturation or hugepage exhaustion at the same moment (loss), or none (the services went quiet). Drag to zoom;
            a click opens Explore at that moment.
          </p>
          {logs.data && <VerdictCard v={verdicts(logs.data, dp.data)} />}
          {logs.data && (
            <section className="histogram">
              <h3>Log events stored per {stepS}s, by level</h3>
              <Bars testid="dp-logs" times={logs.data.times} stepSeconds={logs.data.step_seconds} series={logSeries} height={120} sync="dataplane" onZoom={(a, b) => navigate(link('/explore', { from: iso(a), to: iso(b) }))} />
            </section>
          )}
          {groups.length === 0 && <Empty>The source answered but has no data-plane series in this range.</Empty>}
          {groups.map(([name, series], gi) => (
            <Fragment key={name}>
              <section className="histogram" data-testid="dp-panel">
                <h3>{name}</h3>
                <Bars lines sync="dataplane" times={dp.data.times} stepSeconds={dp.data.step_seconds} series={series} height={120} onZoom={(a, b) => navigate(link('/explore', { from: iso(a), to: iso(b) }))} />
                <ul className="legend dp-legend" data-testid="dp-legend">
                  {series.map((x, i) => (
                    <li key={i}>
                      <span className="dot" style={{ background: x.color }} /> {x.label}
                    </li>
                  ))}
                </ul>
              </section>
              {gi === lastVF && <VFTable vfs={dp.data.vfs} />}
            </Fragment>
          ))}
          {lastVF < 0 && <VFTable vfs={dp.data.vfs} />}
        </>
      )}
    </div>
  )
}

const verdictTitle: Record<Verdict['kind'], string> = { loss: 'Loss', behind: 'Behind', quiet: 'Quiet' }

// VerdictCard says, for each recent fall of the log rate, whether the data
// plane lost packets at that moment or the services went quiet (verdict.ts),
// with a link to Explore at that moment.
function VerdictCard({ v }: { v: Verdict[] }) {
  return (
    <section className="verdict" data-testid="verdict">
      <h3>Log rate falls</h3>
      {v.length === 0 ? (
        <p className="muted">The log rate did not fall by half in this range.</p>
      ) : (
        <ul>
          {v.map((x) => (
            <li key={x.at} className={x.kind} data-kind={x.kind}>
              <strong>{verdictTitle[x.kind]}</strong> at {new Date(x.at * 1000).toLocaleTimeString()}: {x.rate.toLocaleString()} events
              against {x.before.toLocaleString()} before —{' '}
              {x.kind === 'loss'
                ? x.reasons.join('; ')
                : x.kind === 'behind'
                  ? `${x.reasons.join('; ')}: the events are late, not lost (the processor is catching up)`
                  : 'no data-plane drops, PMD saturation, hugepage exhaustion or consumer lag at that moment: the services logged less'}
              .{' '}
              <a href={link('/explore', { from: iso((x.at - x.stepSeconds) * 1000), to: iso((x.at + 2 * x.stepSeconds) * 1000) })}>Open in Explore</a>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

// VFTable lists every SR-IOV VF the agent exported and the container the
// kubelet gave it (the API joins the agent's podresources_pod_device_info
// onto its sriov_vf_info), as of the range's end; a VF no container holds
// is unassigned.
export function VFTable({ vfs }: { vfs: DataPlaneVF[] }) {
  if (!vfs.length) return null
  const nodes = new Set(vfs.map((v) => v.node)).size > 1
  const n = vfSummary(vfs)
  return (
    <section className="histogram" data-testid="vf-pods">
      <h3>
        SR-IOV VF → pod{' '}
        <span className="muted">
          {n.held} of {n.total} VFs held by a container, {n.unassigned} unassigned (kubelet pod-resources, at the end of the range)
        </span>
      </h3>
      <table className="top vfpods">
        <thead>
          <tr>
            {nodes && <th>Node</th>}
            <th>VF</th>
            <th>PF</th>
            <th>Pod</th>
            <th>Namespace</th>
            <th>Container</th>
            <th>Resource</th>
          </tr>
        </thead>
        <tbody>
          {vfs.map((v) => (
            <tr key={v.node + ' ' + v.pci_address} data-testid="vf-row" data-pci={v.pci_address} title={holder(v) ?? 'unassigned'}>
              {nodes && <td>{v.node}</td>}
              <td>
                <code>{v.pci_address}</code> <span className="muted">vf {v.vf}{v.driver ? ` · ${v.driver}` : ''}</span>
              </td>
              <td>{v.pf}</td>
              <td data-testid="vf-pod">{v.pod || <span className="muted">unassigned</span>}</td>
              <td>{v.namespace}</td>
              <td>{v.container}</td>
              <td>{v.resource_name}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
