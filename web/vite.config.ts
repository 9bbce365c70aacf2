import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The build goes straight into the Go package that embeds it
// (internal/webui/dist); file names carry content hashes so the binary can
// serve them with a year-long cache.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: '../internal/webui/dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    // `npm run dev` against a running `wirelog run`.
    proxy: { '/api': 'http://127.0.0.1:8080', '/metrics': 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
})
