import { describe, expect, it } from 'vitest'
import { readState, toggle } from './filters'

describe('Explore URL state', () => {
  it('reads filters, repeated attr and exclude, and defaults', () => {
    const s = readState(new URLSearchParams('service=api&attr=status%3D500&attr=route%3D%2Fx&exclude=level%3Ddebug'))
    expect(s.from).toBe('-1h')
    expect(s.to).toBe('now')
    expect(s.filter).toEqual({ service: 'api', attr: ['status=500', 'route=/x'], exclude: ['level=debug'] })
  })
  it('toggles a column filter in and out', () => {
    expect(toggle({}, 'level', 'error', false)).toMatchObject({ level: 'error' })
    expect(toggle({ level: 'error' }, 'level', 'error', false)).toMatchObject({ level: undefined })
  })
  it('turns an include into an exclude and back', () => {
    const inc = toggle({}, 'status', '500', false)
    expect(inc.attr).toEqual(['status=500'])
    const exc = toggle({ attr: ['status=500'] }, 'status', '500', true)
    expect(exc).toEqual({ attr: [], exclude: ['status=500'] })
    // The same exclusion again removes it (the chip's ×).
    expect(toggle({ exclude: ['status=500'] }, 'status', '500', true)).toEqual({ attr: [], exclude: [] })
  })
})
