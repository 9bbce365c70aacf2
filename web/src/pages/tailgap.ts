import { link } from '../router'

// A gap notice from the live tail (`event: gap`): after a reconnect the
// server could not replay everything since the browser's Last-Event-ID,
// because its resume ring no longer held it ("expired": `missed` events of
// every filter) or the id is from before a server restart ("restarted").
// The events are stored all the same: the notice links to Explore over the
// hole.
export interface TailGap {
  reason: string
  missed?: number
}

export function parseGap(data: string): TailGap | null {
  try {
    const g = JSON.parse(data)
    return typeof g?.reason === 'string' ? { reason: g.reason, missed: typeof g.missed === 'number' ? g.missed : undefined } : null
  } catch {
    return null
  }
}

// gapNotice says what a gap means to the user; sinceTs is the last event the
// page received before the connection dropped (none: nothing received yet).
export function gapNotice(
  g: TailGap,
  sinceTs: string | undefined,
  nowMs: number,
  filter: { service?: string; level?: string; q?: string },
): { text: string; href?: string } {
  const why = g.reason === 'restarted' ? 'the server restarted' : 'the server no longer held them'
  const what = g.missed ? `up to ${g.missed.toLocaleString()} events` : 'some events'
  const since = sinceTs ? ` after ${new Date(sinceTs).toLocaleTimeString()}` : ''
  const text = `Reconnected: ${what}${since} could not be replayed (${why}).`
  if (!sinceTs) return { text }
  return { text, href: link('/explore', { from: sinceTs, to: new Date(nowMs).toISOString(), ...filter }) }
}
