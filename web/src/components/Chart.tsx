import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { fmtCount } from '../time'

export const LEVEL_COLORS: Record<string, string> = {
  fatal: '#7c2d12',
  error: '#dc2626',
  warn: '#d97706',
  info: '#2563eb',
  debug: '#6b7280',
  trace: '#9ca3af',
  unknown: '#a855f7',
}

export interface StackedSeries {
  label: string
  color: string
  // null is a gap (no sample); only line charts have gaps.
  values: (number | null)[]
}

// stack turns per-series counts into cumulative bands, bottom first.
export function stack(series: StackedSeries[]): number[][] {
  const out: number[][] = []
  let acc: number[] | null = null
  for (const s of series) {
    const cur: number[] = s.values.map((v, i) => (v ?? 0) + (acc ? acc[i] : 0))
    out.push(cur)
    acc = cur
  }
  return out
}

// Bars draws a stacked bar chart of counts over time with uPlot. Dragging
// across it selects a window (onZoom, in ms); a click on a bar selects that
// bucket.
export function Bars(props: {
  times: number[] // unix seconds
  stepSeconds: number
  series: StackedSeries[]
  height?: number
  onZoom?: (fromMs: number, toMs: number) => void
  testid?: string
  // Charts with the same sync key share the cursor (one timeline).
  sync?: string
  // lines draws lines instead of stacked bars (rates, gauges).
  lines?: boolean
}) {
  const el = useRef<HTMLDivElement>(null)
  const zoom = useRef(props.onZoom)
  zoom.current = props.onZoom
  useEffect(() => {
    const div = el.current
    if (!div) return
    const stacked: (number | null)[][] = props.lines ? props.series.map((s) => s.values) : stack(props.series)
    const bars = uPlot.paths.bars!({ size: [0.9, 64], align: 1 })
    // uPlot draws later series over earlier ones: draw the tallest band first.
    const order = props.series.map((_, i) => i).reverse()
    // Canvas cannot read CSS variables: take the theme's colours now.
    const css = getComputedStyle(document.documentElement)
    const muted = css.getPropertyValue('--muted').trim() || '#6b7280'
    const opts: uPlot.Options = {
      width: div.clientWidth || 600,
      height: props.height ?? 160,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, ...(props.sync ? { sync: { key: props.sync } } : {}) },
      scales: { x: { time: true, range: (_u, min, max) => [min, max + props.stepSeconds] } },
      axes: [{ stroke: muted, grid: { show: false } }, { stroke: muted, size: 60, grid: { stroke: 'rgba(128,128,128,0.15)' }, values: (_u, vals) => vals.map((v) => (v == null ? '' : Math.abs(v) >= 1e4 ? fmtCount(v) : String(+v.toPrecision(4)))) }],
      series: [{}, ...order.map((i) => ({ label: props.series[i].label, fill: props.lines ? undefined : props.series[i].color, stroke: props.series[i].color, paths: props.lines ? undefined : bars, points: { show: false }, width: props.lines ? 1.5 : 1 }))],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return
            const a = u.posToVal(u.select.left, 'x')
            const b = u.posToVal(u.select.left + u.select.width, 'x')
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
            zoom.current?.(Math.floor(a) * 1000, Math.ceil(b) * 1000)
          },
        ],
        ready: [
          (u) => {
            u.over.addEventListener('click', () => {
              const i = u.cursor.idx
              if (i == null || u.select.width > 2) return
              const t = props.times[i]
              zoom.current?.(t * 1000, (t + props.stepSeconds) * 1000)
            })
          },
        ],
      },
    }
    const data: uPlot.AlignedData = [props.times, ...order.map((i) => stacked[i])]
    const plot = new uPlot(opts, data, div)
    const ro = new ResizeObserver(() => plot.setSize({ width: div.clientWidth, height: props.height ?? 160 }))
    ro.observe(div)
    return () => {
      ro.disconnect()
      plot.destroy()
    }
  }, [props.times, props.series, props.stepSeconds, props.height, props.lines, props.sync])
  return <div className="chart" ref={el} data-testid={props.testid} />
}

// Sparkline is a tiny inline SVG line for a table cell.
export function Sparkline({ values, width = 120, height = 24 }: { values: number[]; width?: number; height?: number }) {
  if (!values.length) return null
  const max = Math.max(1, ...values)
  const dx = values.length > 1 ? width / (values.length - 1) : width
  const d = values.map((v, i) => `${i ? 'L' : 'M'}${(i * dx).toFixed(1)},${(height - (v / max) * (height - 2) - 1).toFixed(1)}`).join('')
  return (
    <svg width={width} height={height} className="spark" aria-hidden="true">
      <path d={d} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  )
}
