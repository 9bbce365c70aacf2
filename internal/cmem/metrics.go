package cmem

import "github.com/prometheus/client_golang/prometheus"

// collector exports one Read per scrape: the parts of RSS that neither the
// Go collector nor duckdb_memory() show.
type collector struct {
	resident, free, arenas *prometheus.Desc
}

// Collector returns the C allocators' metrics:
// wirelog_c_allocator_resident_bytes{allocator="jemalloc"|"glibc"} (jemalloc's
// stats.resident; glibc's arenas plus its separately mapped chunks),
// wirelog_c_allocator_free_bytes{allocator} (held but not allocated:
// jemalloc's resident minus allocated, glibc's free chunks) and
// wirelog_c_allocator_arenas{allocator="glibc"}. Nothing is exported
// where an allocator is absent.
func Collector() prometheus.Collector {
	return collector{
		resident: prometheus.NewDesc("wirelog_c_allocator_resident_bytes",
			"Memory a C allocator beside the Go heap holds from the kernel: DuckDB's jemalloc (its buffer pool and the rest of its allocations) and glibc's malloc arenas.",
			[]string{"allocator"}, nil),
		free: prometheus.NewDesc("wirelog_c_allocator_free_bytes",
			"Of wirelog_c_allocator_resident_bytes, what is not allocated: freed memory and the allocator's own metadata.",
			[]string{"allocator"}, nil),
		arenas: prometheus.NewDesc("wirelog_c_allocator_arenas",
			"glibc malloc arenas (capped at load, internal/cmem).",
			[]string{"allocator"}, nil),
	}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.resident
	ch <- c.free
	ch <- c.arenas
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := Read()
	if s.Jemalloc {
		ch <- prometheus.MustNewConstMetric(c.resident, prometheus.GaugeValue, float64(s.JeResident), "jemalloc")
		ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(s.JeResident-min(s.JeAllocated, s.JeResident)), "jemalloc")
	}
	if s.MallocArenas > 0 {
		ch <- prometheus.MustNewConstMetric(c.resident, prometheus.GaugeValue, float64(s.MallocArenaBytes+s.MallocMmapBytes), "glibc")
		ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(s.MallocFreeBytes), "glibc")
		ch <- prometheus.MustNewConstMetric(c.arenas, prometheus.GaugeValue, float64(s.MallocArenas), "glibc")
	}
}
