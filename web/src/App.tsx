import { lazy, Suspense } from 'react'
import { useLocation, navigate } from './router'
import { BackendBanner } from './components/BackendBanner'
import { PartialBanner } from './components/PartialBanner'
import { ErrorBoundary } from './components/ErrorBoundary'
import { Overview } from './pages/Overview'

// Pages other than the first are loaded when opened, to keep the first
// load's JavaScript small.
const Explore = lazy(() => import('./pages/Explore'))
const Tail = lazy(() => import('./pages/Tail'))
const Patterns = lazy(() => import('./pages/Patterns'))
const DataPlane = lazy(() => import('./pages/DataPlane'))

const PAGES: { path: string; title: string }[] = [
  { path: '/', title: 'Overview' },
  { path: '/explore', title: 'Explore' },
  { path: '/tail', title: 'Live tail' },
  { path: '/patterns', title: 'Patterns' },
  { path: '/dataplane', title: 'Data plane' },
]

export function App() {
  const { path } = useLocation()
  let page
  switch (path) {
    case '/':
    case '/overview':
      page = <Overview />
      break
    case '/explore':
      page = <Explore />
      break
    case '/tail':
      page = <Tail />
      break
    case '/patterns':
      page = <Patterns />
      break
    case '/dataplane':
      page = <DataPlane />
      break
    default:
      page = (
        <div className="empty">
          <h2>No page at {path}</h2>
          <a href="/" onClick={(e) => (e.preventDefault(), navigate('/'))}>Go to the overview</a>
        </div>
      )
  }
  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">wirelog</span>
        <nav>
          {PAGES.map((p) => (
            <a
              key={p.path}
              href={p.path}
              className={path === p.path || (p.path === '/' && path === '/overview') ? 'active' : ''}
              onClick={(e) => {
                if (e.metaKey || e.ctrlKey) return
                e.preventDefault()
                // Keep the time range when moving between pages.
                const keep = new URLSearchParams(window.location.search)
                const q = new URLSearchParams()
                for (const k of ['from', 'to', 'refresh']) if (keep.get(k)) q.set(k, keep.get(k)!)
                navigate(p.path + (q.toString() ? '?' + q : ''))
              }}
            >
              {p.title}
            </a>
          ))}
        </nav>
      </header>
      <BackendBanner />
      <PartialBanner />
      <main>
        <ErrorBoundary key={path}>
          <Suspense fallback={<div className="loading">Loading…</div>}>{page}</Suspense>
        </ErrorBoundary>
      </main>
    </div>
  )
}
