export interface Rollups {
  from: string
  to: string
  step_seconds: number
  by: string[]
  series: { service?: string; level?: string; tenant?: string; points: { ts: string; count: number; bytes: number }[] }[]
}
