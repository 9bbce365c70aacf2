//go:build agent

package main

var commands = []namedCommand{
	{"dataplane", command{"data-plane agent: DPDK, OVS-DPDK, SR-IOV, hugepage and CPU metrics for Prometheus", runDataplane}},
	{"preflight", command{"node readiness report for SR-IOV and DPDK pods (reads only)", runPreflight}},
}
