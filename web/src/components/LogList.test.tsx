import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { LogList } from './LogList'

beforeAll(() => {
  // happy-dom lays nothing out: give the scroll box a viewport's size.
  vi.spyOn(HTMLElement.prototype, 'getBoundingClientRect').mockReturnValue({ x: 0, y: 0, top: 0, left: 0, bottom: 600, right: 800, width: 800, height: 600, toJSON: () => ({}) })
  for (const [k, v] of [['offsetHeight', 600], ['offsetWidth', 800], ['clientHeight', 600], ['clientWidth', 800]] as const) {
    Object.defineProperty(HTMLElement.prototype, k, { configurable: true, get: () => v })
  }
})
afterEach(cleanup)

const rows = (n: number, msg = (i: number) => `line ${i}`) =>
  Array.from({ length: n }, (_, i) => ({ ts: '2026-03-01T12:00:00Z', service: 'api', level: i % 10 ? 'info' : 'error', message: msg(i) }))

describe('LogList', () => {
  it('renders only the visible rows of 100,000', async () => {
    render(<LogList rows={rows(100_000)} testid="list" />)
    const n = (await screen.findAllByTestId('logrow')).length
    expect(n).toBeGreaterThan(10)
    expect(n).toBeLessThan(100)
    expect(screen.getByText('line 0')).toBeTruthy()
  })
  it('clips a megabyte message before it reaches the DOM', async () => {
    const big = 'x'.repeat(1 << 20)
    render(<LogList rows={rows(3, () => big)} />)
    for (const r of await screen.findAllByTestId('logrow')) expect(r.textContent!.length).toBeLessThan(2100)
  })
  it('reports the clicked row', async () => {
    const onSelect = vi.fn()
    render(<LogList rows={rows(5)} onSelect={onSelect} />)
    fireEvent.click(await screen.findByText('line 3'))
    expect(onSelect).toHaveBeenCalledWith(expect.objectContaining({ message: 'line 3' }), 3)
  })
})
