import { describe, expect, it } from 'vitest'
import { Rate, Ring } from './ring'

describe('Ring', () => {
  it('keeps only the last cap items, oldest first', () => {
    const r = new Ring<number>(3)
    r.push(1, 2)
    expect(r.toArray()).toEqual([1, 2])
    r.push(3, 4, 5)
    expect(r.toArray()).toEqual([3, 4, 5])
    expect(r.size).toBe(3)
    expect(r.total).toBe(5)
  })
  it('stays bounded under a flood', () => {
    const r = new Ring<number>(1000)
    for (let i = 0; i < 100_000; i++) r.push(i)
    const a = r.toArray()
    expect(a.length).toBe(1000)
    expect(a[0]).toBe(99_000)
    expect(a[999]).toBe(99_999)
  })
})

describe('Rate', () => {
  it('averages whole seconds over the window', () => {
    const r = new Rate(5)
    const t0 = 1_000_000_000
    for (let s = 0; s < 5; s++) r.add(100, t0 + s * 1000)
    expect(r.perSecond(t0 + 5000)).toBe(100)
    expect(r.perSecond(t0 + 20_000)).toBe(0)
  })
})
