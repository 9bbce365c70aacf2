import { afterEach, describe, expect, it } from 'vitest'
import { cleanup, render, screen, waitFor } from '@testing-library/react'
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query'
import { PartialBanner } from './PartialBanner'

afterEach(cleanup)

// Page stands for any page: one query whose answer is given.
function Page({ k, answer }: { k: string; answer: object }) {
  const q = useQuery({ queryKey: [k], queryFn: async () => answer })
  return <div>{q.isSuccess ? 'loaded' : 'loading'}</div>
}

function mount(pages: { k: string; answer: object }[]) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } })
  const r = render(
    <QueryClientProvider client={qc}>
      <PartialBanner />
      {pages.map((p) => (
        <Page key={p.k} k={p.k} answer={p.answer} />
      ))}
    </QueryClientProvider>,
  )
  return { qc, ...r }
}

describe('PartialBanner', () => {
  it('names the storage nodes a partial answer misses', async () => {
    mount([
      { k: 'stats', answer: { events: 10, partial: true, missing: ['127.0.0.1:19430'] } },
      { k: 'rollups', answer: { series: [], partial: true, missing: ['127.0.0.1:19429', '127.0.0.1:19430'] } },
      { k: 'search', answer: { events: [] } },
    ])
    const b = await screen.findByTestId('partial-answer')
    expect(b.textContent).toMatch(/Partial answer/)
    expect(b.textContent).toMatch(/nodes 127\.0\.0\.1:19429, 127\.0\.0\.1:19430 could not be read/)
  })

  it('shows nothing when every answer is whole, and goes when the answer is whole again', async () => {
    const { qc } = mount([{ k: 'stats', answer: { events: 10 } }])
    await screen.findAllByText('loaded')
    expect(screen.queryByTestId('partial-answer')).toBeNull()
    qc.setQueryData(['stats'], { events: 7, partial: true })
    await waitFor(() => expect(screen.getByTestId('partial-answer').textContent).toMatch(/A storage node could not be read/))
    qc.setQueryData(['stats'], { events: 10 })
    await waitFor(() => expect(screen.queryByTestId('partial-answer')).toBeNull())
  })
})
