// After `vite build`: keep the placeholder Go's embed needs, and fail the
// build when the JavaScript the first page load needs (the entry chunk and
// its static imports, gzipped) is over the budget.
import { readFileSync, writeFileSync, readdirSync } from 'node:fs'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { join } from 'node:path'

const dist = new URL('../../internal/webui/dist/', import.meta.url).pathname
const budget = 300 * 1024

// Brotli forms, made once here at the highest quality (too slow to do per
// request): the Go server sends NAME.br to browsers that accept br.
let brIn = 0
let brOut = 0
for (const f of ['index.html', ...readdirSync(join(dist, 'assets')).map((a) => 'assets/' + a)]) {
  if (!/\.(js|css|html|svg|json)$/.test(f)) continue
  const body = readFileSync(join(dist, f))
  if (body.length < 1024) continue
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
  if (br.length >= body.length) continue
  writeFileSync(join(dist, f + '.br'), br)
  brIn += body.length
  brOut += br.length
}

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
const initialBr = [...new Set(initial)].reduce((n, f) => n + brotliCompressSync(readFileSync(join(dist, f))).length, 0)
const css = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.css'))
  .reduce((n, f) => n + gzipSync(readFileSync(join(dist, 'assets', f)), { level: 9 }).length, 0)
console.log(`bundle: initial JS ${(total / 1024).toFixed(1)} KB gzip (budget ${budget / 1024} KB), ${all.length} JS files, CSS ${(css / 1024).toFixed(1)} KB gzip`)
console.log(lines.join('\n'))
console.log(`brotli: ${(brIn / 1024).toFixed(1)} KB of text assets to ${(brOut / 1024).toFixed(1)} KB (.br beside each)`)
writeFileSync(join(dist, 'bundle-size.json'), JSON.stringify({ initial_js_gzip_bytes: total, initial_js_brotli_bytes: initialBr, css_gzip_bytes: css, files: initial }) + '\n')
if (total > budget) {
  console.error(`bundle: initial JS is ${total} bytes gzip, over the ${budget}-byte budget: split a page out with import() or drop a dependency`)
  process.exit(1)
}
