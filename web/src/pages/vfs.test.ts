import { describe, expect, it } from 'vitest'
import type { DataPlaneVF } from '../api/types'
import { holder, multiNode, seriesLabel, vfSummary } from './vfs'

const vf = (pci: string, pod = '', node = 'n1') => ({
  labels: { node, pf: 'ens1f0', vf: '0', pci_address: pci, numa_node: '0', ...(pod ? { namespace: 'telco', pod, container: 'dpdk', resource_name: 'intel.com/sriov_dpdk' } : {}) },
})

describe('VF series names', () => {
  it('leads with the pod holding the VF, then its PCI address', () => {
    expect(seriesLabel(vf('0000:3b:01.0', 'cnf-0'))).toBe('telco/cnf-0 dpdk · 0000:3b:01.0')
  })
  it('calls a VF no container holds unassigned', () => {
    expect(seriesLabel(vf('0000:3b:01.2'))).toBe('unassigned · 0000:3b:01.2')
  })
  it('adds the node only when the VFs come from several nodes (PCI addresses repeat across nodes)', () => {
    const two = [vf('0000:3b:01.0', 'cnf-0', 'n1'), vf('0000:3b:01.0', '', 'n2')]
    expect(multiNode(two)).toBe(true)
    expect(multiNode([two[0], vf('0000:3b:01.1', '', 'n1')])).toBe(false)
    expect(seriesLabel(two[1], true)).toBe('unassigned · 0000:3b:01.0 @ n2')
  })
  it('names other series by their label values, as before', () => {
    expect(seriesLabel({ labels: { node: 'n1', port: '0', port_name: 'net_null0' } })).toBe('n1 0 net_null0')
    expect(multiNode([{ labels: { node: 'a' } }, { labels: { node: 'b' } }])).toBe(false)
  })
  it('writes a holder as namespace/pod container', () => {
    expect(holder({ namespace: 'telco', pod: 'cnf-0', container: 'dpdk' })).toBe('telco/cnf-0 dpdk')
    expect(holder({ pod: 'cnf-0' })).toBe('cnf-0')
    expect(holder({ namespace: 'telco', pod: '' })).toBeNull()
  })
  it('counts held and unassigned VFs', () => {
    const row = (pod: string): DataPlaneVF => ({ node: 'n1', pf: 'ens1f0', vf: 0, pci_address: 'x', numa_node: '0', driver: 'iavf', namespace: pod ? 'telco' : '', pod, container: '', resource_name: '' })
    expect(vfSummary([row('cnf-0'), row(''), row('')])).toEqual({ total: 3, held: 1, unassigned: 2 })
  })
})
