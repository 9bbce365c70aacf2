#!/usr/bin/env python3
"""store-scale-timeline.py OUT — line up store-scale.sh's queries with what
the store did meanwhile (issue 12: what ingest costs a concurrent query).

Reads OUT/timeline.txt (query start as Unix time, name, seconds) and
OUT/metrics.txt (once a second: Unix time, counter name, value) and prints,
per query kind, the p50/p99 of the queries that overlapped a checkpoint
(known from wirelog_store_checkpoint_seconds_{count,sum}: a checkpoint that
ended between two samples ran for its share of the sum before the second)
and of those that did not, and the median latency by the process's CPU use
(cores) in the samples around the query."""
import collections
import sys


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(len(xs) * p + 0.999) - 1))]


def main(out):
    samples = collections.defaultdict(list)  # name -> [(t, value)]
    with open(out + "/metrics.txt") as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                try:
                    samples[p[1]].append((float(p[0]), float(p[2])))
                except ValueError:
                    pass
    queries = []
    with open(out + "/timeline.txt") as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                queries.append((float(p[0]), p[1], float(p[2])))
    # Checkpoint intervals: each increase of the count between samples
    # ended a checkpoint before the later sample, lasting the sum's increase.
    ck = []
    cnt = samples.get("wirelog_store_checkpoint_seconds_count", [])
    sm = dict(samples.get("wirelog_store_checkpoint_seconds_sum", []))
    for (t0, c0), (t1, c1) in zip(cnt, cnt[1:]):
        if c1 > c0 and t0 in sm and t1 in sm:
            d = sm[t1] - sm[t0]
            ck.append((t0 - d, t1))  # ended in (t0, t1], so it ran within (t0 - d, t1]
    cpu = samples.get("process_cpu_seconds_total", [])
    rates = [((t0 + t1) / 2, (c1 - c0) / (t1 - t0)) for (t0, c0), (t1, c1) in zip(cpu, cpu[1:]) if t1 > t0]

    def cpu_at(t0, t1):
        near = [r for t, r in rates if t0 - 1 <= t <= t1 + 1]
        return sum(near) / len(near) if near else None

    print(f"{len(queries)} queries, {len(cnt)} metric samples, {len(ck)} checkpoints seen, "
          f"{len(rates)} CPU samples")
    by = collections.defaultdict(lambda: {"ck": [], "no": [], "cpu": []})
    for t, name, d in queries:
        over = any(a <= t + d and t <= b for a, b in ck)
        by[name]["ck" if over else "no"].append(d * 1000)
        c = cpu_at(t, t + d)
        if c is not None:
            by[name]["cpu"].append((c, d * 1000))
    for name, v in sorted(by.items()):
        print(f"{name:26s} beside a checkpoint n={len(v['ck']):3d} p50 {pct(v['ck'], .5):7.1f} p99 {pct(v['ck'], .99):7.1f} ms | "
              f"none n={len(v['no']):3d} p50 {pct(v['no'], .5):7.1f} p99 {pct(v['no'], .99):7.1f} ms")
        cs = sorted(v["cpu"])
        if len(cs) >= 8:
            q = len(cs) // 4
            parts = [cs[:q], cs[q:2 * q], cs[2 * q:3 * q], cs[3 * q:]]
            print(" " * 27 + "by process CPU (cores): " + ", ".join(
                f"{min(c for c, _ in p):.2f}-{max(c for c, _ in p):.2f}: p50 {pct([d for _, d in p], .5):.0f} ms" for p in parts))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bin/store-scale")
