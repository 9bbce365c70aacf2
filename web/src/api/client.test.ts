import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, APIError, get, headers, query, takeToken, Unreachable } from './client'

afterEach(() => {
  vi.unstubAllGlobals()
  sessionStorage.clear()
})

describe('API client', () => {
  it('moves ?token= into sessionStorage and sends it as a bearer token', () => {
    window.history.replaceState(null, '', '/explore?token=s3cret&from=-1h')
    takeToken()
    expect(window.location.search).toBe('?from=-1h')
    expect(headers()).toEqual({ Authorization: 'Bearer s3cret' })
    expect(api.tailURL({ service: 'api' })).toBe('/api/v1/tail?service=api&access_token=s3cret')
  })
  it('builds query strings with repeated keys and no empty values', () => {
    expect(query({ a: '1', b: '', c: undefined, attr: ['x=1', 'y=2'] })).toBe('?a=1&attr=x%3D1&attr=y%3D2')
  })
  it('turns error bodies into APIError with the parameter', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ error: 'parameter from: bad', param: 'from' }), { status: 400 })))
    const e = (await get('/api/v1/stats').catch((x) => x)) as APIError
    expect(e).toBeInstanceOf(APIError)
    expect(e.status).toBe(400)
    expect(e.param).toBe('from')
  })
  it('reports a backend that does not answer as Unreachable', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch') }))
    await expect(get('/healthz')).rejects.toBeInstanceOf(Unreachable)
  })
})
