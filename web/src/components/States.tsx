import { APIError, Unreachable } from '../api/client'

export function Loading({ what }: { what: string }) {
  return <div className="loading" aria-busy="true">Loading {what}…</div>
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  let msg = String((error as Error)?.message ?? error)
  if (error instanceof APIError && error.param) msg = `${msg} (parameter ${error.param})`
  return (
    <div className="error" role="alert">
      <span>{error instanceof Unreachable ? 'wirelog is not answering.' : 'The query failed:'} {msg}</span>
      {retry && <button onClick={retry}>Retry</button>}
    </div>
  )
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>
}
