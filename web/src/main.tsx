import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { takeToken, Unreachable, APIError } from './api/client'
import { App } from './App'
import './styles.css'

takeToken()

const client = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx is the request's fault: retrying does not help.
      retry: (n, err) => !(err instanceof APIError && err.status < 500) && !(err instanceof Unreachable) && n < 2,
      refetchOnWindowFocus: false,
      staleTime: 5_000,
    },
  },
})

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={client}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
)
