import { useEffect, useState } from 'react'
import { useQueryClient, type QueryClient } from '@tanstack/react-query'

// Coverage is what a store answer says about itself (docs/openapi.yaml):
// "partial": true when a VictoriaLogs storage node could not be read, with
// the nodes it misses in "missing".
interface Coverage {
  partial?: boolean
  missing?: string[]
}

// partialNodes looks at every answer on screen (queries with an observer)
// and returns the storage nodes they miss, sorted, or null when none is
// partial. A partial answer that names no node gives [].
export function partialNodes(qc: QueryClient): string[] | null {
  let partial = false
  const nodes = new Set<string>()
  for (const q of qc.getQueryCache().getAll()) {
    if (q.getObserversCount() === 0) continue
    const d = q.state.data as Coverage | undefined
    if (d && typeof d === 'object' && d.partial === true) {
      partial = true
      for (const m of d.missing ?? []) nodes.add(m)
    }
  }
  return partial ? [...nodes].sort() : null
}

// PartialBanner says, above every page, that the numbers shown miss data
// (a storage node down) and which nodes: the API marks such answers
// instead of answering smaller counts silently, and so does the page.
export function PartialBanner() {
  const qc = useQueryClient()
  const [missing, setMissing] = useState<string[] | null>(null)
  useEffect(() => {
    const scan = () => {
      const next = partialNodes(qc)
      setMissing((prev) => (JSON.stringify(prev) === JSON.stringify(next) ? prev : next))
    }
    scan()
    return qc.getQueryCache().subscribe(scan)
  }, [qc])
  if (!missing) return null
  return (
    <div className="banner banner-partial" role="status" data-testid="partial-answer">
      <strong>Partial answer.</strong>{' '}
      {missing.length > 0
        ? `Storage ${missing.length === 1 ? 'node' : 'nodes'} ${missing.join(', ')} could not be read`
        : 'A storage node could not be read'}
      ; the counts and events shown miss what it holds. They fill in once it is back.
    </div>
  )
}
