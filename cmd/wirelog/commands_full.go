//go:build !agent

package main

var commands = []namedCommand{
	{"run", command{"all-in-one: ingest, embedded log, processor, store, query API and dashboard", runAll}},
	{"ingest", command{"ingest gateway only, producing to Kafka (--kafka)", runIngest}},
	{"process", command{"processor only, consuming from Kafka in a consumer group", runProcess}},
	{"serve", command{"query API and dashboard over a shared VictoriaLogs store (no ingest, no processor)", runServe}},
	{"loadgen", command{"load generator: post synthetic events to a wirelog and report rate and ack latency", runLoadgen}},
	{"dataplane", command{"data-plane agent: DPDK, OVS-DPDK, SR-IOV, hugepage and CPU metrics for Prometheus", runDataplane}},
	{"preflight", command{"node readiness report for SR-IOV and DPDK pods (reads only)", runPreflight}},
	{"netlab", command{"network-namespace lab: where the kernel path stops scaling, and capacity plans", runNetlab}},
}
