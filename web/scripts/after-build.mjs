// After `vite build`: keep the placeholder Go's embed needs, and fail the
// build when the JavaScript the first page load needs (the entry chunk and
// its static imports, gzipped) is over the budget.
import { readFileSync, writeFileSync, readdirSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'

const dist = new URL('../../internal/webui/dist/', import.meta.url).pathname
const budget = 300 * 1024

writeFileSync(join(dist, '.gitkeep'), '')
writeFileSync(join(dist, '.gitignore'), '*\n!.gitkeep\n!.gitignore\n')

const html = readFileSync(join(dist, 'index.html'), 'utf8')
// index.html names the entry script and modulepreloads its static imports.
const initial = [...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+\.js)"/g)].map((m) => m[1])
let total = 0
const lines = []
for (const f of new Set(initial)) {
  const gz = gzipSync(readFileSync(join(dist, f)), { level: 9 }).length
  total += gz
  lines.push(`  ${f}: ${(gz / 1024).toFixed(1)} KB gzip`)
}
const all = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js'))
const css = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.css'))
  .reduce((n, f) => n + gzipSync(readFileSync(join(dist, 'assets', f)), { level: 9 }).length, 0)
console.log(`bundle: initial JS ${(total / 1024).toFixed(1)} KB gzip (budget ${budget / 1024} KB), ${all.length} JS files, CSS ${(css / 1024).toFixed(1)} KB gzip`)
console.log(lines.join('\n'))
writeFileSync(join(dist, 'bundle-size.json'), JSON.stringify({ initial_js_gzip_bytes: total, css_gzip_bytes: css, files: initial }) + '\n')
if (total > budget) {
  console.error(`bundle: initial JS is ${total} bytes gzip, over the ${budget}-byte budget: split a page out with import() or drop a dependency`)
  process.exit(1)
}
