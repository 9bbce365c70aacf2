import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, render, screen, waitFor } from '@testing-library/react'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { BackendBanner } from './BackendBanner'

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

function mount() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } })
  return render(
    <QueryClientProvider client={qc}>
      <BackendBanner />
    </QueryClientProvider>,
  )
}

describe('BackendBanner', () => {
  it('says so when wirelog does not answer, and nothing when it does', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch') }))
    mount()
    await waitFor(() => expect(screen.getByTestId('backend-down').textContent).toMatch(/not answering/))
    cleanup()
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"status":"ok"}', { status: 200 })))
    mount()
    await new Promise((r) => setTimeout(r, 50))
    expect(screen.queryByTestId('backend-down')).toBeNull()
  })
})
