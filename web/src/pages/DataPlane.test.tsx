import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, render, screen } from '@testing-library/react'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import DataPlane from './DataPlane'

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

describe('DataPlane', () => {
  it('explains how to set up a source instead of drawing empty charts', async () => {
    const fetch = vi.fn(async (u: string) => {
      if (u.startsWith('/api/v1/ui/config')) return new Response(JSON.stringify({ jaeger_url: '', dataplane: { source: 'none', url: '' } }))
      throw new Error('unexpected request ' + u)
    })
    vi.stubGlobal('fetch', fetch)
    render(
      <QueryClientProvider client={new QueryClient()}>
        <DataPlane />
      </QueryClientProvider>,
    )
    const setup = await screen.findByTestId('dataplane-setup')
    expect(setup.textContent).toMatch(/--prometheus/)
    expect(fetch.mock.calls.every(([u]) => !String(u).includes('/dataplane/series'))).toBe(true)
  })
})
