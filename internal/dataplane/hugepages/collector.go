package hugepages

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

var (
	sizeLabel = []string{"page_size_bytes"}
	numaLabel = []string{"numa_node", "page_size_bytes"}

	poolDesc = prometheus.NewDesc("hugepages_pool_pages",
		"Huge pages in the persistent pool, all NUMA nodes (kernel/mm/hugepages/*/nr_hugepages).", sizeLabel, nil)
	freeDesc = prometheus.NewDesc("hugepages_free_pages",
		"Huge pages not yet faulted in by anyone, all NUMA nodes (free_hugepages; includes reserved ones).", sizeLabel, nil)
	reservedDesc = prometheus.NewDesc("hugepages_reserved_pages",
		"Huge pages promised to a mapping but not yet faulted in (resv_hugepages); free minus reserved is what a new process can get.", sizeLabel, nil)
	surplusDesc = prometheus.NewDesc("hugepages_surplus_pages",
		"Huge pages allocated above the pool by overcommit (surplus_hugepages).", sizeLabel, nil)
	overcommitDesc = prometheus.NewDesc("hugepages_overcommit_max_pages",
		"Most surplus huge pages the kernel may allocate (nr_overcommit_hugepages).", sizeLabel, nil)

	numaPoolDesc = prometheus.NewDesc("hugepages_numa_pool_pages",
		"Huge pages in the persistent pool of one NUMA node (devices/system/node/nodeN/hugepages/*/nr_hugepages).", numaLabel, nil)
	numaFreeDesc = prometheus.NewDesc("hugepages_numa_free_pages",
		"Free huge pages on one NUMA node (free_hugepages).", numaLabel, nil)
	numaSurplusDesc = prometheus.NewDesc("hugepages_numa_surplus_pages",
		"Surplus huge pages on one NUMA node (surplus_hugepages).", numaLabel, nil)
)

// Collector exports the huge page pools.
type Collector struct{ sys string }

// New returns a Collector reading under sys ("" means /sys).
func New(sys string) *Collector {
	if sys == "" {
		sys = sysfs.DefaultSys
	}
	return &Collector{sys: sys}
}

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "hugepages" }

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolDesc, freeDesc, reservedDesc, surplusDesc, overcommitDesc, numaPoolDesc, numaFreeDesc, numaSurplusDesc} {
		ch <- d
	}
}

// Collect implements dataplane.Collector. A pool with a broken file is left
// out and named in the error; the other pools are exported.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	system, perNode, err := Read(c.sys)
	gauge := func(d *prometheus.Desc, v uint64, labels ...string) {
		select {
		case ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...):
		case <-ctx.Done():
		}
	}
	for _, p := range system {
		size := strconv.FormatUint(p.SizeBytes, 10)
		gauge(poolDesc, p.Total, size)
		gauge(freeDesc, p.Free, size)
		gauge(reservedDesc, p.Reserved, size)
		gauge(surplusDesc, p.Surplus, size)
		gauge(overcommitDesc, p.Overcommit, size)
	}
	for _, p := range perNode {
		node, size := strconv.Itoa(p.NUMANode), strconv.FormatUint(p.SizeBytes, 10)
		gauge(numaPoolDesc, p.Total, node, size)
		gauge(numaFreeDesc, p.Free, node, size)
		gauge(numaSurplusDesc, p.Surplus, node, size)
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}
