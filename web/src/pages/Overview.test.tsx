import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, render, screen, waitFor } from '@testing-library/react'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { Overview } from './Overview'

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

const json = (v: unknown) => new Response(JSON.stringify(v), { status: 200 })

describe('Overview live card', () => {
  it('shows a tenant token its own stored rate when /metrics is operator-only', async () => {
    const newest = new Date(Date.now() - 3000).toISOString()
    const fetch = vi.fn(async (u: string) => {
      const url = new URL(u, 'http://x')
      switch (url.pathname) {
        case '/metrics':
          return new Response('{"error":"needs an admin token"}', { status: 403 })
        case '/api/v1/stats': {
          // The live window is ten seconds; the Overview's range is an hour.
          const span = Date.parse(url.searchParams.get('to') ?? '') - Date.parse(url.searchParams.get('from') ?? '')
          const events = span === 10_000 ? 420 : 99_999
          return json({ events, bytes: 1, by_level: {}, by_service: {} })
        }
        case '/api/v1/logs/search':
          return json({ events: [{ ts: newest, service: 's', level: 'info', message: 'm' }], more: false, limit: 1 })
        case '/api/v1/logs/histogram':
          return json({ from: '', to: '', step_seconds: 60, times: [], levels: {}, total: 0, source: 'rollups' })
      }
      throw new Error('unexpected request ' + u)
    })
    vi.stubGlobal('fetch', fetch)
    render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <Overview />
      </QueryClientProvider>,
    )
    const card = await screen.findByTestId('tenant-live')
    await waitFor(() => expect(card.textContent).toMatch(/42 ev\/s stored for your tenant/))
    expect(card.textContent).toMatch(/newest event [0-9.]+ s ago/)
    expect(screen.getByTestId('ingest-card').textContent).not.toMatch(/unavailable/)
    // One refused /metrics is enough: it is not retried.
    expect(fetch.mock.calls.filter(([u]) => String(u).startsWith('/metrics')).length).toBe(1)
  })
  it('links the live figures to what explains them: the last minute in Explore, the lag to the Data plane page', async () => {
    const metrics = [
      'wirelog_ingest_events_total{result="accepted"} 1000',
      'wirelog_processor_events_stored_total 900',
      'wirelog_disklog_group_lag_records{group="wirelog-processor",partition="0"} 100',
    ].join('\n')
    vi.stubGlobal(
      'fetch',
      vi.fn(async (u: string) => {
        const url = new URL(u, 'http://x')
        switch (url.pathname) {
          case '/metrics':
            return new Response(metrics + '\n', { status: 200 })
          case '/api/v1/stats':
            return json({ events: 5, bytes: 1, by_level: {}, by_service: {} })
          case '/api/v1/logs/histogram':
            return json({ from: '', to: '', step_seconds: 60, times: [], levels: {}, total: 0, source: 'rollups' })
        }
        throw new Error('unexpected request ' + u)
      }),
    )
    render(
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <Overview />
      </QueryClientProvider>,
    )
    const stored = await screen.findByTestId('overview-live-stored')
    const href = new URL(stored.getAttribute('href') ?? '', 'http://x')
    expect(href.pathname).toBe('/explore')
    const span = Date.parse(href.searchParams.get('to') ?? '') - Date.parse(href.searchParams.get('from') ?? '')
    expect(span).toBe(60_000)
    expect(screen.getByTestId('overview-live-accepted').getAttribute('href')).toMatch(/^\/explore\?/)
    expect(screen.getByTestId('overview-live-lag').getAttribute('href')).toMatch(/^\/dataplane/)
    expect(screen.getByTestId('ingest-card').textContent).toMatch(/p0 100 records/)
  })
})
