// Package promset bundles a package's Prometheus metrics into one
// prometheus.Collector, so each package hands its caller a single value to
// register instead of repeating every metric in Describe and Collect.
package promset

import "github.com/prometheus/client_golang/prometheus"

// Set is a prometheus.Collector made of other collectors.
type Set []prometheus.Collector

// Describe implements prometheus.Collector.
func (s Set) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s Set) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s {
		c.Collect(ch)
	}
}
