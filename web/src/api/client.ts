// The one client for wirelog's documented API (docs/openapi.yaml). Every
// request carries the bearer token the dashboard was opened with
// (?token=… once, kept in sessionStorage for the tab).
import type {
  ContextResult, DataPlaneResult, FieldsResult, Histogram, PatternsResult, SearchResult, Stats, UIConfig,
} from './types'

const TOKEN_KEY = 'wirelog.token'

// takeToken moves ?token= from the address bar into sessionStorage, so the
// token is not left in history, bookmarks or shared links.
export function takeToken(loc: Location = window.location, hist: History = window.history): void {
  const u = new URL(loc.href)
  const t = u.searchParams.get('token')
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t)
    u.searchParams.delete('token')
    hist.replaceState(hist.state, '', u.pathname + u.search + u.hash)
  }
}

export function token(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

export class APIError extends Error {
  status: number
  param?: string
  constructor(status: number, message: string, param?: string) {
    super(message)
    this.status = status
    this.param = param
  }
}

// Unreachable is a fetch that never got an answer: the backend is down.
export class Unreachable extends Error {}

export type Params = Record<string, string | number | undefined | null | string[]>

export function query(params: Params): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x))
    else q.append(k, String(v))
  }
  const s = q.toString()
  return s ? '?' + s : ''
}

export function headers(): HeadersInit {
  const t = token()
  return t ? { Authorization: `Bearer ${t}` } : {}
}

export async function get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  let res: Response
  try {
    res = await fetch(path + query(params), { headers: headers(), signal })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new Unreachable('wirelog is not answering: ' + (e as Error).message)
  }
  const text = await res.text()
  let body: unknown = null
  try {
    body = text ? JSON.parse(text) : null
  } catch {
    body = null
  }
  if (!res.ok) {
    const b = body as { error?: string; param?: string } | null
    throw new APIError(res.status, b?.error ?? `${res.status} ${res.statusText}`, b?.param)
  }
  return body as T
}

// Filter is the event selection every Explore endpoint shares.
export interface Filter {
  from: string
  to: string
  service?: string
  level?: string
  host?: string
  tenant?: string
  q?: string
  trace_id?: string
  attr?: string[]
  exclude?: string[]
}

export const api = {
  stats: (p: Params, s?: AbortSignal) => get<Stats>('/api/v1/stats', p, s),
  rollups: (p: Params, s?: AbortSignal) => get<import('./rollups').Rollups>('/api/v1/rollups', p, s),
  search: (f: Filter & { limit?: number }, s?: AbortSignal) => get<SearchResult>('/api/v1/logs/search', { ...f }, s),
  histogram: (f: Filter & { step?: string }, s?: AbortSignal) => get<Histogram>('/api/v1/logs/histogram', { ...f }, s),
  fields: (f: Filter & { limit?: number }, s?: AbortSignal) => get<FieldsResult>('/api/v1/logs/fields', { ...f }, s),
  context: (p: { topic: string; partition: number; offset: number; n: number; by: string }, s?: AbortSignal) =>
    get<ContextResult>('/api/v1/logs/context', p, s),
  patterns: (p: Params, s?: AbortSignal) => get<PatternsResult>('/api/v1/patterns', p, s),
  config: (s?: AbortSignal) => get<UIConfig>('/api/v1/ui/config', {}, s),
  dataplane: (p: Params, s?: AbortSignal) => get<DataPlaneResult>('/api/v1/dataplane/series', p, s),
  healthz: (s?: AbortSignal) => get<{ status: string }>('/healthz', {}, s),
  exportURL: (f: Filter, format: 'ndjson' | 'csv') => {
    const t = token()
    return '/api/v1/logs/export' + query({ ...f, format, access_token: t ?? undefined })
  },
  tailURL: (p: Params) => {
    const t = token()
    return '/api/v1/tail' + query({ ...p, access_token: t ?? undefined })
  },
}
