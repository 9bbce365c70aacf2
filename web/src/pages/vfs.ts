import type { DataPlaneSeries, DataPlaneVF } from '../api/types'

// holder names the container that holds a VF the way kubectl users read
// it, "namespace/pod container"; null when no container holds it.
export function holder(l: Partial<Pick<DataPlaneVF, 'namespace' | 'pod' | 'container'>>): string | null {
  if (!l.pod) return null
  return `${l.namespace ? l.namespace + '/' : ''}${l.pod}${l.container ? ' ' + l.container : ''}`
}

// seriesLabel names a data-plane series in legends and verdicts. A VF's
// series (it has a pci_address; the API joined the pod that holds the VF
// onto it) leads with that pod: "telco/cnf-0 dpdk · 0000:3b:01.0", or
// "unassigned · 0000:3b:01.2"; when the answer spans several nodes, the
// node follows, since PCI addresses repeat across nodes. Other series are
// named by their label values.
export function seriesLabel(s: Pick<DataPlaneSeries, 'labels'>, multiNode = false): string {
  const l = s.labels
  if (l.pci_address) {
    return `${holder(l) ?? 'unassigned'} · ${l.pci_address}${multiNode && l.node ? ' @ ' + l.node : ''}`
  }
  return Object.values(l).join(' ')
}

// multiNode says whether the VF series of an answer come from more than one node.
export function multiNode(series: Pick<DataPlaneSeries, 'labels'>[]): boolean {
  return new Set(series.filter((s) => s.labels.pci_address).map((s) => s.labels.node ?? '')).size > 1
}

// vfSummary counts the VF → pod table's rows: how many VFs a container holds.
export function vfSummary(vfs: DataPlaneVF[]): { total: number; held: number; unassigned: number } {
  const held = vfs.filter((v) => v.pod).length
  return { total: vfs.length, held, unassigned: vfs.length - held }
}
