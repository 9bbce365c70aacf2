import { describe, expect, it } from 'vitest'
import type { DataPlaneResult, Histogram } from '../api/types'
import { verdicts } from './verdict'

const step = 10
const times = Array.from({ length: 12 }, (_, i) => 1000 + i * step)
const hist = (info: number[]): Histogram => ({ from: '', to: '', step_seconds: step, times, levels: { info }, total: info.reduce((a, b) => a + b, 0), source: 'rollups' })
// The log rate falls at bucket 8 (t=1080); bucket 11 is still filling.
const falling = hist([100, 100, 100, 100, 100, 100, 100, 100, 20, 100, 100, 3])
const dp = (name: string, values: number[], labels: Record<string, string> = { vf: '0' }): DataPlaneResult => ({
  from: '', to: '', step_seconds: step, times, series: [{ name, labels, unit: 'pps', values }], vfs: [], errors: [],
})

describe('loss vs quiet', () => {
  it('calls a fall with VF drops rising at that moment loss, and says which', () => {
    const v = verdicts(falling, dp('SR-IOV VF drops/s', [0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0]))
    expect(v).toHaveLength(1)
    expect(v[0]).toMatchObject({ at: 1080, kind: 'loss', rate: 20, before: 100 })
    expect(v[0].reasons[0]).toMatch(/VF drops\/s 0 rose to 50/)
  })
  it('names the pod whose VF dropped', () => {
    const labels = { node: 'n1', pf: 'ens1f0', vf: '1', pci_address: '0000:3b:01.1', namespace: 'telco', pod: 'cnf-1', container: 'dpdk', resource_name: 'intel.com/sriov_dpdk' }
    const v = verdicts(falling, dp('SR-IOV VF drops/s', [0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0], labels))
    expect(v[0].kind).toBe('loss')
    expect(v[0].reasons[0]).toBe('SR-IOV VF drops/s telco/cnf-1 dpdk · 0000:3b:01.1 rose to 50.0/s')
  })
  it('calls a fall with a saturated PMD loss', () => {
    const v = verdicts(falling, dp('PMD busy %', [40, 40, 40, 40, 40, 40, 40, 40, 99, 40, 40, 40], { pmd: '3' }))
    expect(v[0].kind).toBe('loss')
    expect(v[0].reasons[0]).toMatch(/PMD 3 busy 99%/)
  })
  it('calls hugepages running out loss, but not a node that never had free pages', () => {
    const out = verdicts(falling, dp('Hugepages free per NUMA node', [8, 8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0], { node: '0' }))
    expect(out[0].kind).toBe('loss')
    expect(out[0].reasons[0]).toMatch(/no free hugepages on 0/)
    expect(verdicts(falling, dp('Hugepages free per NUMA node', Array(12).fill(0)))[0].kind).toBe('quiet')
  })
  it('calls a fall while the consumer lag rose behind, not loss, and a lag that was already there quiet', () => {
    const lag = (values: number[]) => dp('Consumer lag (records)', values, { partition: '2' })
    const v = verdicts(falling, lag([0, 0, 0, 0, 0, 0, 0, 0, 50000, 0, 0, 0]))
    expect(v[0]).toMatchObject({ at: 1080, kind: 'behind' })
    expect(v[0].reasons[0]).toMatch(/partition 2 rose to 50,000 records/)
    expect(verdicts(falling, lag(Array(12).fill(50000)))[0].kind).toBe('quiet')
    // Drops at the same moment make it loss: the data plane is the cause to look at first.
    const both: DataPlaneResult = { ...lag([0, 0, 0, 0, 0, 0, 0, 0, 50000, 0, 0, 0]) }
    both.series = [...both.series, ...dp('SR-IOV VF drops/s', [0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0]).series]
    expect(verdicts(falling, both)[0].kind).toBe('loss')
  })
  it('calls a fall with a calm data plane quiet', () => {
    const v = verdicts(falling, dp('SR-IOV VF drops/s', [5, 5, 5, 5, 5, 5, 5, 5, 6, 5, 5, 5]))
    expect(v).toEqual([expect.objectContaining({ at: 1080, kind: 'quiet', reasons: [] })])
    expect(verdicts(falling, undefined)[0].kind).toBe('quiet')
  })
  it('judges no fall where the rate holds, nor the bucket still filling', () => {
    expect(verdicts(hist([100, 100, 100, 100, 100, 100, 100, 100, 90, 100, 100, 3]), undefined)).toEqual([])
    expect(verdicts(hist([1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]), undefined)).toEqual([])
  })
})
