// A small router over the History API: the page is the path, the page's
// state (time range, filters, query) is the query string, so every view is a
// link that can be shared or bookmarked.
import { useEffect, useSyncExternalStore } from 'react'

const listeners = new Set<() => void>()
function emit() {
  listeners.forEach((l) => l())
}
window.addEventListener('popstate', emit)

function subscribe(l: () => void) {
  listeners.add(l)
  return () => listeners.delete(l)
}

export function useLocation(): { path: string; search: string } {
  const href = useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search)
  const i = href.indexOf('?')
  return i < 0 ? { path: href, search: '' } : { path: href.slice(0, i), search: href.slice(i) }
}

export function navigate(to: string, replace = false) {
  if (to === window.location.pathname + window.location.search) return
  if (replace) window.history.replaceState(null, '', to)
  else window.history.pushState(null, '', to)
  emit()
}

// useParams reads the page's query string; set merges changes into it
// (undefined or '' removes a key; arrays become repeated keys).
export function useParams(): [URLSearchParams, (changes: Record<string, string | string[] | undefined>, replace?: boolean) => void] {
  const { path, search } = useLocation()
  const params = new URLSearchParams(search)
  const set = (changes: Record<string, string | string[] | undefined>, replace = false) => {
    const next = new URLSearchParams(window.location.search)
    for (const [k, v] of Object.entries(changes)) {
      next.delete(k)
      if (Array.isArray(v)) v.forEach((x) => next.append(k, x))
      else if (v !== undefined && v !== '') next.set(k, v)
    }
    const s = next.toString()
    navigate(window.location.pathname + (s ? '?' + s : ''), replace)
  }
  void path
  return [params, set]
}

export function link(path: string, params: Record<string, string | string[] | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x))
    else if (v !== undefined && v !== '') q.set(k, v)
  }
  const s = q.toString()
  return path + (s ? '?' + s : '')
}

// useKey calls f on a global key press unless the user is typing.
export function useKey(key: string, f: (e: KeyboardEvent) => void) {
  useEffect(() => {
    const h = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null
      const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)
      if (e.key === key && (!typing || key === 'Escape')) f(e)
    }
    window.addEventListener('keydown', h)
    return () => window.removeEventListener('keydown', h)
  })
}
