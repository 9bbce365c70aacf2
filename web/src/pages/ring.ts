// Ring keeps the last `cap` items pushed: memory stays bounded however long
// the tail runs and however fast events arrive.
export class Ring<T> {
  private buf: (T | undefined)[]
  private start = 0
  private len = 0
  total = 0
  constructor(readonly cap: number) {
    this.buf = new Array(cap)
  }
  push(...items: T[]) {
    for (const it of items) {
      const i = (this.start + this.len) % this.cap
      this.buf[i] = it
      if (this.len < this.cap) this.len++
      else this.start = (this.start + 1) % this.cap
      this.total++
    }
  }
  get size() {
    return this.len
  }
  // toArray returns the kept items, oldest first.
  toArray(): T[] {
    const out = new Array<T>(this.len)
    for (let i = 0; i < this.len; i++) out[i] = this.buf[(this.start + i) % this.cap] as T
    return out
  }
  clear() {
    this.buf = new Array(this.cap)
    this.start = this.len = 0
  }
}

// Rate is events per second over a sliding window of one-second slots.
export class Rate {
  private slots = new Map<number, number>()
  constructor(private windowS = 5) {}
  add(n: number, nowMs = Date.now()) {
    const s = Math.floor(nowMs / 1000)
    this.slots.set(s, (this.slots.get(s) ?? 0) + n)
    for (const k of this.slots.keys()) if (k <= s - this.windowS - 1) this.slots.delete(k)
  }
  perSecond(nowMs = Date.now()): number {
    const s = Math.floor(nowMs / 1000)
    let n = 0
    // Whole seconds only: the current one is still filling.
    for (let k = s - this.windowS; k < s; k++) n += this.slots.get(k) ?? 0
    return n / this.windowS
  }
}
