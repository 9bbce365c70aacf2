// Browser tests of the dashboard in Debian's Chromium, driven by
// playwright-core (which downloads no browser). Started by the Go test
// internal/webui/browser_test.go against a real `wirelog run` it fed with
// `wirelog loadgen` and syslog; it talks to that test over stdio:
//   we print "KILL" / "RESTART", it answers "KILLED" / "RESTARTED",
//   and our last line is "RESULT {json}" (measurements).
// Any failed check throws: the exit code is non-zero and the Go test fails.
import { chromium } from 'playwright-core'
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const base = process.env.WIRELOG_URL // through the test's cuttable proxy
const direct = process.env.WIRELOG_DIRECT_URL ?? base // wirelog itself
const shots = process.env.WIRELOG_SHOTS
const patternService = process.env.WIRELOG_PATTERN_SERVICE
const patternLines = Number(process.env.WIRELOG_PATTERN_LINES)
// The fake kubelet's VF → pod assignments: {pci_address: {namespace, pod, container} | null}.
const vfOwners = JSON.parse(process.env.WIRELOG_VF_OWNERS ?? 'null')
// A second node with tenant tokens (--auth-tokens), and two of its tokens.
const tenantBase = process.env.WIRELOG_TENANT_URL
const tenantToken = process.env.WIRELOG_TENANT_TOKEN
const otherToken = process.env.WIRELOG_OTHER_TENANT_TOKEN
if (!base || !vfOwners || !tenantBase || !tenantToken || !otherToken) throw new Error('WIRELOG_URL, WIRELOG_VF_OWNERS or WIRELOG_TENANT_* is not set: run this from internal/webui/browser_test.go')

const rl = createInterface({ input: process.stdin })
const stdin = rl[Symbol.asyncIterator]()
async function ask(cmd, answer) {
  console.log(cmd)
  const { value } = await stdin.next()
  if (value !== answer) throw new Error(`asked ${cmd}, got ${value}`)
}

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg)
  console.log('ok   ' + msg)
}

async function api(path, root = base, token) {
  const r = await fetch(root + path, token ? { headers: { Authorization: 'Bearer ' + token } } : {})
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`)
  return r.json()
}

async function retry(what, f, ms = 30000) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    try {
      const v = await f()
      if (v) return v
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${what}: not within ${ms} ms${last ? ': ' + last.message : ''}`)
}

// A hung step must fail the run, not stall make test.
setTimeout(() => {
  console.error('e2e: the browser test did not finish within 5 minutes')
  process.exit(2)
}, 300_000).unref()

const profile = mkdtempSync(join(tmpdir(), 'wirelog-chromium-'))
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
})
const results = {}
const consoleErrors = []
let allowNetErrors = false
const page = ctx.pages()[0] ?? (await ctx.newPage())
page.on('console', (m) => {
  if (m.type() !== 'error') return
  const t = m.text()
  // While the backend is down on purpose, the browser itself logs the
  // refused connections; nothing else may log an error.
  if (allowNetErrors && /ERR_CONNECTION_REFUSED|Failed to load resource|EventSource|net::/.test(t)) return
  consoleErrors.push(t)
})
page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message))

async function shot(name, p = page) {
  if (!shots) return
  mkdirSync(shots, { recursive: true })
  for (const scheme of ['light', 'dark']) {
    await p.emulateMedia({ colorScheme: scheme })
    await p.waitForTimeout(150)
    await p.screenshot({ path: join(shots, `${name}-${scheme}.png`) })
  }
  await p.emulateMedia({ colorScheme: 'light' })
}

// waitTotal waits until the page's event total is want, and says what it
// showed instead when it never gets there.
async function waitTotal(what, want) {
  let seen
  try {
    await retry(what, async () => (seen = num(await text('[data-testid=total]'))) === want)
  } catch (e) {
    const hist = (await page.locator('section.histogram').first().textContent().catch(() => '')) ?? ''
    throw new Error(`${e.message}: the page shows ${seen}, the API ${want} (${page.url()}); histogram panel: ${hist.slice(0, 300)}`)
  }
}

const text = async (sel) => (await page.locator(sel).first().textContent())?.trim() ?? ''
const num = (s) => Number(s.replace(/[^0-9]/g, ''))

try {
  // Assets: the build's brotli forms decode to the file (Node's fetch
  // decodes br), gzip for clients without br; note what Chromium chose.
  const entry = (await (await fetch(base + '/explore')).text()).match(/src="(\/assets\/[^"]+\.js)"/)[1]
  const plainJs = await (await fetch(base + entry, { headers: { 'Accept-Encoding': 'identity' } })).text()
  for (const enc of ['br', 'gzip']) {
    const r = await fetch(base + entry, { headers: { 'Accept-Encoding': enc } })
    check(r.headers.get('content-encoding') === enc && (await r.text()) === plainJs, `the entry script served as ${enc} decodes to the file`)
  }
  page.on('response', (r) => r.url().endsWith(entry) && (results.chromium_entry_encoding = r.headers()['content-encoding'] ?? 'identity'))

  // Overview: real totals, and time-to-interactive from the Performance API.
  await page.goto(base + '/')
  await page.locator('[data-testid=overview-total]').waitFor()
  results.tti = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0]
    return { dom_interactive_ms: Math.round(nav.domInteractive), dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd), data_rendered_ms: Math.round(performance.now()) }
  })
  const stats = await api('/api/v1/stats?from=-1h')
  check(num(await text('[data-testid=overview-total]')) === stats.events && stats.events > 0, `overview shows the ${stats.events} stored events`)
  await page.locator('[data-testid=overview-histogram] canvas').first().waitFor()
  check(await page.locator('[data-testid=top-services] tr').count() > 1, 'overview lists top services')
  await shot('overview')

  // Explore: totals, a field filter narrowing the result, checked against the API.
  await page.goto(base + '/explore')
  await page.locator('[data-testid=histogram] canvas').first().waitFor()
  await page.locator('[data-testid=logrow]').first().waitFor()
  const all = num(await text('[data-testid=total]'))
  const h = await api('/api/v1/logs/histogram?from=-1h')
  check(all === h.total && all > 0, `explore counts ${all} events, the API ${h.total}`)
  await shot('explore')
  await page.getByRole('button', { name: 'Filter level=error' }).click()
  await page.waitForURL(/level=error/)
  await retry('narrowed total', async () => num(await text('[data-testid=total]')) < all)
  const errs = num(await text('[data-testid=total]'))
  const he = await api('/api/v1/logs/histogram?from=-1h&level=error')
  check(errs === he.total && errs < all && errs > 0, `level=error narrows to ${errs} (API ${he.total}) of ${all}`)
  // The total comes from the histogram, the rows from the search: the list
  // may still show the previous answer for a moment after the total moved.
  let lv = []
  await retry('every shown row is an error', async () => {
    lv = await page.locator('[data-testid=logrow] .lvl').allTextContents()
    return lv.length > 0 && lv.every((l) => l === 'error')
  })
  check(true, `every shown row is an error (${lv.length} rows)`)
  // Scrolling to the end loads the older pages by cursor: every match once.
  const list = page.locator('[data-testid=results]')
  check(Number(await list.getAttribute('data-rows')) < errs, `the first page holds ${await list.getAttribute('data-rows')} of ${errs}`)
  await retry('all pages by scrolling', async () => {
    await list.evaluate((el) => (el.scrollTop = el.scrollHeight))
    return Number(await list.getAttribute('data-rows')) === errs
  })
  check(true, `scrolling to the end pages through all ${errs} matches by cursor, none twice`)
  await list.evaluate((el) => (el.scrollTop = 0))
  // Excluding a service (the sidebar's "-") narrows further. The sidebar
  // keeps the unfiltered values on screen until the level=error answer
  // lands (aria-busy meanwhile): wait for it, click the button by its exact
  // name, and check the API with what the URL says was excluded.
  await page.locator('[data-testid=fields][aria-busy=false]').waitFor()
  const svcLabel = await page.getByRole('button', { name: /^Exclude service=/ }).first().getAttribute('aria-label')
  await page.getByRole('button', { name: svcLabel, exact: true }).click()
  await page.waitForURL(/exclude=service/)
  const excluded = new URL(page.url()).searchParams.getAll('exclude')
  const svcName = svcLabel.replace('Exclude service=', '')
  check(excluded.length === 1 && excluded[0] === 'service=' + svcName, `the URL excludes the clicked service (${excluded})`)
  const hx = await api(`/api/v1/logs/histogram?from=-1h&level=error&exclude=${encodeURIComponent(excluded[0])}`)
  await waitTotal('excluded total', hx.total)
  check(hx.total < errs, `excluding service ${svcName} leaves ${hx.total} of ${errs}`)

  // The URL is the state: reloading shows the same view.
  await page.reload()
  await waitTotal('state after reload', hx.total)
  check(true, 'a reload keeps the filters (URL state)')

  // Clicking a histogram bar zooms to that bucket.
  await page.goto(base + '/explore?from=-30m')
  const chart = page.locator('[data-testid=histogram] .u-over')
  await chart.waitFor()
  const box = await chart.boundingBox()
  await page.mouse.click(box.x + box.width - 8, box.y + box.height - 4)
  await page.waitForURL((u) => /from=20\d\d-/.test(u.search))
  const u = new URL(page.url())
  const span = Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from'))
  check(span > 0 && span <= 60_000, `a click on a bar zooms to one bucket (${span / 1000}s)`)
  // Dragging selects a window too.
  await page.goto(base + '/explore?from=-30m')
  await chart.waitFor()
  await page.mouse.move(box.x + box.width * 0.5, box.y + 20)
  await page.mouse.down()
  await page.mouse.move(box.x + box.width * 0.9, box.y + 20, { steps: 5 })
  await page.mouse.up()
  await page.waitForURL((u) => /from=20\d\d-/.test(u.search))
  const u2 = new URL(page.url())
  const span2 = Date.parse(u2.searchParams.get('to')) - Date.parse(u2.searchParams.get('from'))
  check(span2 > 60_000 && span2 < 30 * 60_000, `a drag zooms to the dragged window (${Math.round(span2 / 1000)}s)`)

  // Detail drawer, context, keyboard.
  await page.goto(base + '/explore')
  await page.locator('[data-testid=logrow]').first().click()
  await page.locator('[data-testid=drawer]').waitFor()
  await page.locator('[data-testid=show-context]').click()
  await page.locator('[data-testid=context-lines] li.hit').waitFor()
  check(await page.locator('[data-testid=context-lines] li').count() > 1, 'the drawer shows context lines around the hit')
  await shot('explore-drawer')
  await page.keyboard.press('Escape')
  await page.locator('[data-testid=drawer]').waitFor({ state: 'detached' })
  check(true, 'Esc closes the drawer')
  await page.keyboard.press('/')
  check(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')) === 'query', '/ focuses the query')
  // Free-text search narrows to the lines that contain it.
  await page.keyboard.type('syslog-e2e')
  await page.keyboard.press('Enter')
  await page.waitForURL(/q=syslog-e2e/)
  const hq = await api('/api/v1/logs/histogram?from=-1h&q=syslog-e2e')
  await waitTotal('query total', hq.total)
  check(hq.total === patternLines, `q=syslog-e2e finds the ${patternLines} syslog lines`)

  // Live tail: a line sent after the page opened shows up; pause holds the list.
  await page.goto(base + '/tail')
  await retry('tail live', async () => (await text('[data-testid=tail-status]')) === 'live')
  const marker = 'tail-marker-' + Date.now()
  const post = (m, root = base) => fetch(root + '/api/v1/logs', { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: JSON.stringify({ service: 'e2e', level: 'warn', message: m }) + '\n' })
  check((await post(marker)).status === 202, 'posted a line after the tail opened')
  await page.getByText(marker).waitFor({ timeout: 20000 })
  check(true, 'the tail shows the line sent after the page opened')
  await shot('tail')
  await page.locator('[data-testid=pause]').click()
  await post(marker + '-paused')
  await page.waitForTimeout(3000)
  check((await page.getByText(marker + '-paused').count()) === 0, 'a paused tail holds the list still')
  await page.locator('[data-testid=pause]').click()
  await post(marker + '-resumed')
  await page.getByText(marker + '-resumed').waitFor({ timeout: 20000 })
  check(true, 'after resume new lines show again')

  // The connection drops (wirelog stays up): the browser's EventSource
  // reconnects with Last-Event-ID and the server replays the lines stored
  // meanwhile, each exactly once, with no gap notice.
  const exact = (m) => page.locator('[data-testid=tail] .msg', { hasText: new RegExp('^' + m + '$') })
  await post(marker + '-before-cut')
  await exact(marker + '-before-cut').waitFor({ timeout: 20000 })
  allowNetErrors = true
  await ask('CUT', 'CUT')
  await retry('tail notices the drop', async () => (await text('[data-testid=tail-status]')) !== 'live', 10000)
  const cutLines = 5
  for (let i = 0; i < cutLines; i++) check((await post(`${marker}-cut-${i}`, direct)).status === 202, `posted line ${i} while the tab is cut off`)
  await retry('cut lines stored', async () => (await api(`/api/v1/logs/histogram?from=-1h&q=${marker}-cut-`, direct)).total === cutLines)
  await ask('UNCUT', 'UNCUT')
  await exact(`${marker}-cut-${cutLines - 1}`).waitFor({ timeout: 20000 })
  allowNetErrors = false
  for (const m of [marker + '-before-cut', ...Array.from({ length: cutLines }, (_, i) => `${marker}-cut-${i}`)]) {
    const n = await exact(m).count()
    check(n === 1, `after the reconnect "${m}" shows once (${n})`)
  }
  check((await page.locator('[data-testid=tail-gap]').count()) === 0, 'the resume left no gap notice')
  const resumes = (await (await fetch(direct + '/metrics')).text()).match(/^wirelog_tail_resumes_total\{outcome="replayed"\} (\d+)/m)
  check(resumes && Number(resumes[1]) >= 1, `the server counted the browser's Last-Event-ID resume (wirelog_tail_resumes_total{outcome="replayed"} ${resumes?.[1]})`)

  let lastPatterns
  process.on('exit', (code) => code && lastPatterns && console.log('last patterns answer: ' + JSON.stringify(lastPatterns).slice(0, 2000)))
  // Patterns: the syslog lines that differ only in numbers are one template.
  const pat = await retry('patterns flushed', async () => {
    const r = await api(`/api/v1/patterns?from=-1h&service=${patternService}`)
    lastPatterns = r
    return r.patterns.length > 0 && r.patterns.reduce((a, p) => a + p.count, 0) >= patternLines ? r : null
  }, 30000)
  check(pat.patterns.length === 1 && pat.patterns[0].count === patternLines && pat.patterns[0].template.includes('<*>'),
    `the ${patternLines} ${patternService} lines are one pattern: "${pat.patterns[0].template}" x${pat.patterns[0].count}`)
  await page.goto(base + '/patterns')
  await page.locator('[data-testid=pattern]').first().waitFor()
  await shot('patterns')
  await page.goto(base + `/patterns?service=${patternService}`)
  await retry('one pattern row', async () => (await page.locator('[data-testid=pattern]').count()) === 1)
  await page.locator('[data-testid=pattern] .tpl a').click()
  await page.waitForURL(/_pattern/)
  await waitTotal('pattern lines', patternLines)
  check(true, `a click on the pattern opens Explore on its ${patternLines} lines`)

  // Data plane: the agent's series from Prometheus, beside the log rate.
  await page.goto(base + '/dataplane?from=-5m')
  await page.locator('[data-testid=dp-logs] canvas').first().waitFor()
  const rx = page.locator('[data-testid=dp-panel]', { hasText: 'DPDK port rx packets/s' })
  await rx.locator('canvas').first().waitFor({ timeout: 30000 })
  const dp = await api('/api/v1/dataplane/series?from=-5m')
  const moving = dp.series.filter((x) => x.name === 'DPDK port rx packets/s' && x.values.some((v) => v > 0))
  check(moving.length > 0 && dp.errors.length === 0, `the data-plane page charts testpmd's ports from Prometheus (${moving.length} moving rx series)`)
  const verdict = await text('[data-testid=verdict]')
  check(/did not fall|Loss|Quiet/.test(verdict), `the data-plane page gives its loss-vs-quiet verdict: "${verdict.slice(0, 160)}"`)
  await shot('dataplane')

  // VF → pod: the API joined the kubelet's pod-resources onto the VF series.
  // Each VF's legend entry names the pod holding it, and the VF → pod table
  // puts the pod in the VF's row; a VF no container holds says unassigned.
  const vfTable = page.locator('[data-testid=vf-pods]')
  await vfTable.waitFor({ timeout: 30000 })
  const vfRx = page.locator('[data-testid=dp-panel]', { hasText: 'SR-IOV VF rx packets/s' })
  for (const [pci, o] of Object.entries(vfOwners)) {
    const who = o ? `${o.namespace}/${o.pod} ${o.container}` : 'unassigned'
    // A held VF may also have a part from before the kubelet first answered
    // (unassigned), never one naming another pod.
    const entries = (await vfRx.locator('[data-testid=dp-legend] li', { hasText: pci }).allTextContents()).map((e) => e.trim())
    check(entries.includes(`${who} · ${pci}`) && entries.every((e) => e === `${who} · ${pci}` || e === `unassigned · ${pci}`),
      `the VF rx chart names VF ${pci} by its holder: ${JSON.stringify(entries)}`)
    const row = vfTable.locator(`[data-testid=vf-row][data-pci="${pci}"]`)
    const pod = ((await row.locator('[data-testid=vf-pod]').textContent()) ?? '').trim()
    const rowText = (await row.textContent()) ?? ''
    check(o ? pod === o.pod && rowText.includes(o.namespace) && rowText.includes(o.container) : pod === 'unassigned',
      `the VF → pod table's row of ${pci} says ${o ? o.namespace + '/' + o.pod : 'unassigned'}: "${rowText.trim()}"`)
  }
  // The VF charts and the table below them, for docs/img.
  await vfRx.evaluate((el) => el.scrollIntoView({ block: 'start' }))
  await shot('dataplane-vfs')

  // A tenant token on the Overview (--auth-tokens, internal/authz): /metrics
  // is operator-only, so the live card shows the tenant's own stored rate
  // (over the card's 10 s window, checked against the API for that window
  // and that token) and its newest event's age, and says which figures need
  // an operator token. Both tenants send a trickle meanwhile; the other
  // sends five times more, so a node-wide figure could not pass.
  {
    const tenantStart = Date.now()
    const tp = await ctx.newPage()
    const tenantErrors = []
    tp.on('console', (m) => {
      if (m.type() !== 'error') return
      // The card's probe of /metrics is refused by design, and Chromium logs the 403.
      if (/status of 403/.test(m.text()) && /\/metrics$/.test(m.location().url)) return
      tenantErrors.push(m.text())
    })
    tp.on('pageerror', (e) => tenantErrors.push('uncaught: ' + e.message))
    const send = (token, n) =>
      fetch(tenantBase + '/api/v1/logs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-ndjson', Authorization: 'Bearer ' + token },
        body: Array.from({ length: n }, (_, i) => JSON.stringify({ service: 'tenant-e2e', level: 'info', message: `tenant line ${i}` })).join('\n') + '\n',
      })
    let trickling = true
    let trickleErr
    const trickle = (async () => {
      const end = Date.now() + 90_000 // bounded whatever happens below
      while (trickling && Date.now() < end) {
        const [a, b] = await Promise.all([send(tenantToken, 2), send(otherToken, 10)])
        if (a.status !== 202 || b.status !== 202) throw new Error(`tenant ingest answered ${a.status} and ${b.status}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    })().catch((e) => (trickleErr = e))
    try {
      await tp.goto(tenantBase + '/?token=' + encodeURIComponent(tenantToken))
      await tp.locator('[data-testid=tenant-live]').waitFor({ timeout: 30000 })
      check(!tp.url().includes('token='), 'the dashboard moves ?token= out of the address bar')
      let lastCard
      const card = await retry('the tenant card agrees with the API', async () => {
        if (trickleErr) throw trickleErr
        const c = (lastCard = await tp.locator('[data-testid=tenant-live]').evaluate((el) => ({
          from: el.dataset.from, to: el.dataset.to, text: el.textContent,
          rate: el.querySelector('[data-testid=tenant-rate]').textContent,
          newest: el.querySelector('[data-testid=tenant-newest]').textContent,
        })))
        if (!c.from) return null
        const w = `/api/v1/stats?from=${encodeURIComponent(c.from)}&to=${encodeURIComponent(c.to)}`
        const [mine, other] = await Promise.all([api(w, tenantBase, tenantToken), api(w, tenantBase, otherToken)])
        return mine.events > 0 && Number(c.rate) === mine.events / 10 ? { ...c, mine: mine.events, other: other.events } : null
      }, 60000).catch((e) => {
        throw new Error(`${e.message}; the card last showed ${JSON.stringify(lastCard)}`)
      })
      check(card.other > card.mine, `the tenant card shows ${card.rate} ev/s: its tenant's ${card.mine} events in ${card.from} → ${card.to}, not the other tenant's ${card.other}`)
      const age = Number(/newest event ([0-9.]+) s ago/.exec(card.newest)?.[1] ?? NaN)
      check(age >= 0 && age < 60, `the tenant card gives the newest event's age: "${card.newest.trim()}"`)
      check(/node-wide: an operator \(admin token\) sees them/.test(card.text) && /accepted rate, ack latency, rejects and consumer lag/.test(card.text),
        'the tenant card says which figures need an operator token')
      const ingest = (await tp.locator('[data-testid=ingest-card]').textContent()) ?? ''
      check(!/unavailable|ev\/s accepted/.test(ingest), 'the tenant card shows no node-wide figure and no "/metrics unavailable"')
      await shot('overview-tenant', tp)
    } finally {
      trickling = false
      await trickle
      await tp.close()
    }
    check(tenantErrors.length === 0, `no console errors under a tenant token${tenantErrors.length ? ': ' + tenantErrors.join(' | ') : ''}`)
    results.tenant_card_ms = Date.now() - tenantStart
  }

  // Backend killed mid-session: a banner with retry, then recovery.
  await page.goto(base + '/')
  await page.locator('[data-testid=overview-total]').waitFor()
  allowNetErrors = true
  await ask('KILL', 'KILLED')
  await page.locator('[data-testid=backend-down]').waitFor({ timeout: 20000 })
  check(true, 'the banner says wirelog is not answering')
  await shot('backend-down')
  await ask('RESTART', 'RESTARTED')
  await page.locator('[data-testid=backend-down]').waitFor({ state: 'detached', timeout: 30000 })
  await page.locator('[data-testid=overview-total]').waitFor()
  allowNetErrors = false
  check(true, 'the banner goes away and the page recovers when wirelog is back')
  await page.goto(base + '/explore')
  await page.locator('[data-testid=logrow]').first().waitFor()

  // Live tail at full ingest (the issue asks for 100k events/s; loadgen
  // offers that and this machine takes what it can): the page batches
  // redraws 4x a second, so it must stay responsive. Frame gaps and long
  // tasks are measured in the page and reported, not asserted (timings on a
  // shared machine); a click during the flood must take effect.
  await page.goto(base + '/tail')
  await retry('tail live before the flood', async () => (await text('[data-testid=tail-status]')) === 'live')
  await page.evaluate(() => {
    const p = (window.__perf = { long: [], frames: [], stop: false })
    new PerformanceObserver((l) => l.getEntries().forEach((e) => p.long.push(e.duration))).observe({ type: 'longtask' })
    let last = performance.now()
    const f = (t) => {
      p.frames.push(t - last)
      last = t
      if (!p.stop) requestAnimationFrame(f)
    }
    requestAnimationFrame(f)
  })
  console.log('FLOOD')
  const flood = stdin.next()
  await page.waitForTimeout(5000)
  const clickAt = Date.now()
  await page.locator('[data-testid=pause]').click()
  await page.getByText('▶ Resume').waitFor()
  const clickMs = Date.now() - clickAt
  await page.locator('[data-testid=pause]').click()
  const { value: floodLine } = await flood
  if (!floodLine?.startsWith('FLOODED ')) throw new Error(`asked FLOOD, got ${floodLine}`)
  const perf = await page.evaluate(() => ((window.__perf.stop = true), window.__perf))
  const q = (xs, p) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] : 0)
  results.tail_flood = {
    ingest_acked_per_s: Number(floodLine.slice(8)),
    tail_rate_shown: await text('[data-testid=tail-rate]'),
    frames: perf.frames.length,
    frame_ms_p50: Math.round(q(perf.frames, 0.5)),
    frame_ms_p99: Math.round(q(perf.frames, 0.99)),
    frame_ms_max: Math.round(Math.max(0, ...perf.frames)),
    long_tasks: perf.long.length,
    long_task_ms_total: Math.round(perf.long.reduce((a, b) => a + b, 0)),
    pause_click_ms: clickMs,
  }
  check(perf.frames.length > 0, `the tail page kept drawing during the flood: ${JSON.stringify(results.tail_flood)}`)

  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`)
  console.log('RESULT ' + JSON.stringify(results))
} finally {
  // stdin would keep node alive after the last step.
  rl.close()
  await ctx.close()
  rmSync(profile, { recursive: true, force: true })
}
