// Package dataplane is the node agent's core: the contract each collector
// (DPDK telemetry, OVS-DPDK PMD, SR-IOV VFs, hugepages, CPU isolation, pod
// resources) implements, so the exporter can run them in parallel, bound each
// in time and report a failing one as a metric instead of failing the scrape.
package dataplane

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector gathers one source of data-plane metrics.
type Collector interface {
	// Name is the collector's label value in wirelog_dataplane_collector_success
	// and the suffix of its --collector.<name> flag.
	Name() string
	// Describe sends the descriptors of every metric the collector may emit.
	Describe(ch chan<- *prometheus.Desc)
	// Collect sends the current metrics. It must return when ctx is done.
	// A returned error marks the collector down for this scrape; metrics
	// already sent are still exported.
	Collect(ctx context.Context, ch chan<- prometheus.Metric) error
}
