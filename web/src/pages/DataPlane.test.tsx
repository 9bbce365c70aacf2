import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, render, screen, within } from '@testing-library/react'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import DataPlane from './DataPlane'

// happy-dom has no canvas for uPlot; the charts' legends are plain DOM.
vi.mock('../components/Chart', async (orig) => ({ ...(await orig<typeof import('../components/Chart')>()), Bars: () => null }))

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

describe('DataPlane', () => {
  it('explains how to set up a source instead of drawing empty charts', async () => {
    const fetch = vi.fn(async (u: string) => {
      if (u.startsWith('/api/v1/ui/config')) return new Response(JSON.stringify({ jaeger_url: '', dataplane: { source: 'none', url: '' } }))
      throw new Error('unexpected request ' + u)
    })
    vi.stubGlobal('fetch', fetch)
    render(
      <QueryClientProvider client={new QueryClient()}>
        <DataPlane />
      </QueryClientProvider>,
    )
    const setup = await screen.findByTestId('dataplane-setup')
    expect(setup.textContent).toMatch(/--prometheus/)
    expect(fetch.mock.calls.every(([u]) => !String(u).includes('/dataplane/series'))).toBe(true)
  })
  it('names each VF series by the pod holding it and lists VFs with their pods, unassigned ones too', async () => {
    const times = [1000, 1015]
    const vfLabels = (pci: string, vf: string, pod?: string) => ({
      node: 'test-node', pf: 'ens1f0', vf, pci_address: pci, numa_node: '0',
      ...(pod ? { namespace: 'telco', pod, container: 'dpdk', resource_name: 'intel.com/sriov_dpdk' } : {}),
    })
    const row = (pci: string, vf: number, pod = '') => ({
      node: 'test-node', pf: 'ens1f0', vf, pci_address: pci, numa_node: '0', driver: 'iavf',
      namespace: pod ? 'telco' : '', pod, container: pod ? 'dpdk' : '', resource_name: pod ? 'intel.com/sriov_dpdk' : '',
    })
    const series = {
      from: '', to: '', step_seconds: 15, times, errors: [],
      series: [
        { name: 'DPDK port rx packets/s', labels: { node: 'test-node', port: '0' }, unit: 'pps', values: [1, 2] },
        { name: 'SR-IOV VF rx packets/s', labels: vfLabels('0000:3b:01.0', '0', 'cnf-0'), unit: 'pps', values: [5, 6] },
        { name: 'SR-IOV VF rx packets/s', labels: vfLabels('0000:3b:01.2', '2'), unit: 'pps', values: [7, 8] },
        { name: 'Hugepages free per NUMA node', labels: { node: 'test-node', numa_node: '0' }, unit: 'pages', values: [0, 0] },
      ],
      vfs: [row('0000:3b:01.0', 0, 'cnf-0'), row('0000:3b:01.2', 2)],
    }
    vi.stubGlobal('fetch', vi.fn(async (u: string) => {
      const path = new URL(u, 'http://x').pathname
      if (path === '/api/v1/ui/config') return new Response(JSON.stringify({ jaeger_url: '', dataplane: { source: 'prometheus', url: 'http://p' } }))
      if (path === '/api/v1/dataplane/series') return new Response(JSON.stringify(series))
      if (path === '/api/v1/logs/histogram') return new Response(JSON.stringify({ from: '', to: '', step_seconds: 15, times, levels: {}, total: 0, source: 'rollups' }))
      throw new Error('unexpected request ' + u)
    }))
    render(
      <QueryClientProvider client={new QueryClient()}>
        <DataPlane />
      </QueryClientProvider>,
    )
    const table = await screen.findByTestId('vf-pods')
    const legends = screen.getAllByTestId('dp-legend').map((l) => l.textContent)
    expect(legends).toContainEqual(expect.stringContaining('telco/cnf-0 dpdk · 0000:3b:01.0'))
    expect(legends).toContainEqual(expect.stringContaining('unassigned · 0000:3b:01.2'))
    const rows = within(table).getAllByTestId('vf-row')
    expect(rows.map((r) => r.getAttribute('data-pci'))).toEqual(['0000:3b:01.0', '0000:3b:01.2'])
    expect(within(rows[0]).getByTestId('vf-pod').textContent).toBe('cnf-0')
    expect(rows[0].textContent).toMatch(/telco.*dpdk.*intel\.com\/sriov_dpdk/)
    expect(within(rows[1]).getByTestId('vf-pod').textContent).toBe('unassigned')
    expect(table.textContent).toMatch(/1 of 2 VFs held by a container, 1 unassigned/)
    // The table sits right after the last chart of per-VF series.
    const panels = screen.getAllByTestId('dp-panel')
    expect(panels[1].nextElementSibling).toBe(table)
  })
})
