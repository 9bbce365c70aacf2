// Types of the JSON the wirelog API answers (docs/openapi.yaml).

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'unknown'
export const LEVELS: Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'unknown']

export interface Stats {
  from?: string
  to?: string
  events: number
  bytes: number
  by_level: Record<string, number>
  by_service: Record<string, number>
}

export interface StoredEvent {
  ts: string
  service: string
  level: string
  message: string
  host: string
  trace_id: string
  span_id: string
  tenant: string
  attrs: Record<string, unknown> | null
  bytes: number
  topic: string
  partition: number
  offset: number
}

export interface SearchResult {
  events: StoredEvent[]
  limit: number
  more: boolean
}

export interface Histogram {
  from: string
  to: string
  step_seconds: number
  times: number[]
  levels: Record<string, number[]>
  total: number
  source: 'rollups' | 'events'
}

export interface FieldValue {
  value: string
  count: number
}
export interface FieldStats {
  name: string
  attr: boolean
  values: FieldValue[]
}
export interface FieldsResult {
  total: number
  sampled: boolean
  attr_sample: number
  fields: FieldStats[]
}

export interface ContextResult {
  before: StoredEvent[]
  hit: StoredEvent
  after: StoredEvent[]
}

export interface Pattern {
  id: string
  template: string
  service: string
  count: number
  first_seen: string
  last_seen: string
  sparkline: number[]
}
export interface PatternsResult {
  from: string
  to: string
  step_seconds: number
  patterns: Pattern[]
}

export interface UIConfig {
  jaeger_url: string
  dataplane: { source: 'prometheus' | 'scrape' | 'none'; url: string }
}

export interface DataPlaneSeries {
  name: string
  labels: Record<string, string>
  unit: string
  values: (number | null)[]
}
// One SR-IOV VF and the container the kubelet gave it; namespace, pod,
// container and resource_name are '' when none holds it (unassigned).
export interface DataPlaneVF {
  node: string
  pf: string
  vf: number
  pci_address: string
  numa_node: string
  driver: string
  namespace: string
  pod: string
  container: string
  resource_name: string
}
export interface DataPlaneResult {
  from: string
  to: string
  step_seconds: number
  times: number[]
  series: DataPlaneSeries[]
  vfs: DataPlaneVF[]
  errors: string[]
}

// A tail line is the log record the processor stored.
export interface TailEvent {
  ts: string
  service: string
  level: string
  message: string
  host?: string
  trace_id?: string
  span_id?: string
  tenant?: string
  attrs?: Record<string, unknown>
}
