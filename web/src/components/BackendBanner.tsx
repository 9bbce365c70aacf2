import { useEffect, useRef } from 'react'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '../api/client'

// BackendBanner polls /healthz; while wirelog does not answer it says so and
// offers a retry; once it answers again every page query is refetched.
export function BackendBanner() {
  const qc = useQueryClient()
  const h = useQuery({
    queryKey: ['healthz'],
    queryFn: ({ signal }) => api.healthz(signal),
    refetchInterval: (q) => (q.state.status === 'error' ? 2_000 : 5_000),
    retry: false,
    staleTime: 0,
  })
  const down = h.isError
  const wasDown = useRef(false)
  useEffect(() => {
    if (down) wasDown.current = true
    else if (wasDown.current && h.isSuccess) {
      wasDown.current = false
      qc.invalidateQueries({ predicate: (q) => q.queryKey[0] !== 'healthz' })
    }
  }, [down, h.isSuccess, qc])
  if (!down) return null
  return (
    <div className="banner" role="alert" data-testid="backend-down">
      <strong>wirelog is not answering.</strong> {(h.error as Error)?.message}. Retrying every 2 s.
      <button onClick={() => h.refetch()}>Retry now</button>
    </div>
  )
}
