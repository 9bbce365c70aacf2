import { useEffect, useRef } from 'react'

// useAutoRefresh calls f every ms milliseconds (false: never). Pages move
// their "now" forward with it, so relative ranges slide.
export function useAutoRefresh(ms: number | false, f: () => void) {
  const fn = useRef(f)
  fn.current = f
  useEffect(() => {
    if (!ms) return
    const id = setInterval(() => fn.current(), ms)
    return () => clearInterval(id)
  }, [ms])
}
