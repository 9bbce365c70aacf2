// Package ovs exports OVS-DPDK datapath metrics: per-PMD-thread packet,
// flow-cache and cycle counters and receive-queue load, read from
// ovs-vswitchd's control socket (the JSON-RPC ovs-appctl speaks), and
// per-interface statistics read from OVSDB (RFC 7047).
package ovs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	// DefaultRunDir is where Debian's and upstream's packaging run OVS.
	DefaultRunDir = "/var/run/openvswitch"
	// dbSocketName is ovsdb-server's unix socket inside the run directory.
	dbSocketName = "db.sock"
)

// Options configure a Collector.
type Options struct {
	// RunDir holds ovs-vswitchd.pid, its control socket and db.sock.
	RunDir string
	// DBSocket overrides <RunDir>/db.sock.
	DBSocket string
}

// Collector exports OVS-DPDK PMD and interface metrics. It connects on
// each scrape; ovs-vswitchd serves unixctl from its main thread, and a
// held-open connection buys nothing for one scrape every few seconds.
type Collector struct {
	opts     Options
	unparsed *prometheus.CounterVec
}

// New returns an OVS-DPDK collector.
func New(opts Options) *Collector {
	if opts.RunDir == "" {
		opts.RunDir = DefaultRunDir
	}
	if opts.DBSocket == "" {
		opts.DBSocket = filepath.Join(opts.RunDir, dbSocketName)
	}
	c := &Collector{
		opts: opts,
		unparsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_dataplane_ovs_unparsed_lines_total",
			Help: "Lines of ovs-appctl output the agent did not recognise, by command; growth after an OVS upgrade means new figures are being left out.",
		}, []string{"command"}),
	}
	for _, cmd := range []string{cmdPMDStats, cmdPMDPerf, cmdRxq} {
		c.unparsed.WithLabelValues(cmd)
	}
	return c
}

const (
	cmdPMDStats = "dpif-netdev/pmd-stats-show"
	cmdPMDPerf  = "dpif-netdev/pmd-perf-show"
	cmdRxq      = "dpif-netdev/pmd-rxq-show"
)

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "ovs" }

var pmdLabels = []string{"thread", "numa_id", "core_id"}

// pmdMetric is how one Stat is exported.
type pmdMetric struct {
	stat Stat
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func pmdCounter(s Stat, name, help string) pmdMetric {
	return pmdMetric{s, prometheus.NewDesc("ovs_pmd_"+name, help, pmdLabels, nil), prometheus.CounterValue}
}

func pmdGauge(s Stat, name, help string) pmdMetric {
	return pmdMetric{s, prometheus.NewDesc("ovs_pmd_"+name, help, pmdLabels, nil), prometheus.GaugeValue}
}

// pmdMetrics lists every exported per-thread figure. Counters reset when
// someone runs dpif-netdev/pmd-stats-clear; rate() handles that.
var pmdMetrics = []pmdMetric{
	pmdCounter(StatRxPackets, "rx_packets_total", "Packets received by the thread from the queues it polls."),
	pmdCounter(StatRecirculations, "recirculations_total", "Packets sent through the datapath again (tunnels, conntrack, bonds)."),
	pmdCounter(StatEMCHits, "emc_hits_total", "Packets matched in the exact match cache."),
	pmdCounter(StatSMCHits, "smc_hits_total", "Packets matched in the signature match cache."),
	pmdCounter(StatMegaflowHits, "megaflow_hits_total", "Packets matched in the megaflow (dpcls) classifier."),
	pmdCounter(StatPHWOLHits, "phwol_hits_total", "Packets matched by partial hardware offload."),
	pmdCounter(StatMFEXOptHits, "mfex_opt_hits_total", "Packets handled by the optimised miniflow extract."),
	pmdCounter(StatSimpleMatchHits, "simple_match_hits_total", "Packets matched in the simple match cache."),
	pmdCounter(StatUpcalls, "upcalls_total", "Flow misses handled by a successful upcall to ofproto."),
	pmdCounter(StatLostUpcalls, "lost_upcalls_total", "Flow misses whose upcall failed; those packets were dropped."),
	pmdCounter(StatIdleCycles, "idle_cycles_total", "TSC cycles spent polling queues that had no packets."),
	pmdCounter(StatProcessingCycles, "processing_cycles_total", "TSC cycles spent processing packets."),
	pmdGauge(StatCyclesPerPacket, "cycles_per_packet", "Average TSC cycles per received packet, idle polling included, since the last stats clear."),
	pmdGauge(StatProcCyclesPerPacket, "processing_cycles_per_packet", "Average processing TSC cycles per received packet since the last stats clear."),
	pmdGauge(StatPassesPerPacket, "datapath_passes_per_packet", "Average datapath passes per packet (1 without recirculation)."),
	pmdGauge(StatLookupsPerMegaflow, "megaflow_subtable_lookups_per_hit", "Average classifier subtables searched per megaflow hit."),
	pmdGauge(StatPacketsPerBatch, "tx_packets_per_batch", "Average packets per output batch (32 is a full burst)."),
	pmdCounter(StatIterations, "iterations_total", "Polling loop iterations (pmd-perf-show)."),
	pmdCounter(StatUsedCycles, "used_cycles_total", "TSC cycles the thread used, busy or idle (pmd-perf-show)."),
	pmdCounter(StatIdleIterations, "idle_iterations_total", "Iterations that received no packet (pmd-perf-show)."),
	pmdCounter(StatBusyIterations, "busy_iterations_total", "Iterations that received packets (pmd-perf-show)."),
	pmdCounter(StatSleepIterations, "sleep_iterations_total", "Iterations that slept because of pmd-maxsleep (pmd-perf-show)."),
	pmdCounter(StatSleepSeconds, "sleep_seconds_total", "Time the thread slept because of pmd-maxsleep (pmd-perf-show)."),
	pmdCounter(StatDatapathPasses, "datapath_passes_total", "Datapath passes, first passes and recirculations (pmd-perf-show)."),
	pmdCounter(StatTxPackets, "tx_packets_total", "Packets the thread transmitted (pmd-perf-show)."),
	pmdCounter(StatTxBatches, "tx_batches_total", "Output batches the thread transmitted (pmd-perf-show)."),
	pmdGauge(StatSecondsPerUpcall, "seconds_per_upcall", "Average time one upcall took (pmd-perf-show)."),
}

var (
	rxqLabels = []string{"numa_id", "core_id", "port", "queue"}
	coreLabel = []string{"numa_id", "core_id"}
	ifLabel   = []string{"interface"}

	descVswitchdInfo = prometheus.NewDesc("ovs_vswitchd_info", "The ovs-vswitchd answering on the control socket; value 1.", []string{"version"}, nil)
	descStatsWindow  = prometheus.NewDesc("ovs_pmd_stats_window_seconds", "Time since the PMD counters were last cleared (pmd-perf-show's measurement duration).", nil, nil)
	descRxqUsage     = prometheus.NewDesc("ovs_pmd_rxq_usage_ratio", "Share of the PMD thread's processing cycles this receive queue used over the last interval (pmd-rxq-show, 0..1); absent until OVS has a full interval.", rxqLabels, nil)
	descRxqEnabled   = prometheus.NewDesc("ovs_pmd_rxq_enabled", "1 if the receive queue is enabled (pmd-rxq-show).", rxqLabels, nil)
	descIsolated     = prometheus.NewDesc("ovs_pmd_isolated", "1 if the PMD thread only polls queues pinned to it with pmd-rxq-affinity.", coreLabel, nil)
	descOverhead     = prometheus.NewDesc("ovs_pmd_overhead_ratio", "Share of the PMD thread's cycles not attributed to any queue (pmd-rxq-show, 0..1).", coreLabel, nil)
	descIfInfo       = prometheus.NewDesc("ovs_interface_info", "An OVSDB Interface row; value 1. Join on interface for its type and OpenFlow port.", []string{"interface", "type", "ofport"}, nil)
	descIfLinkUp     = prometheus.NewDesc("ovs_interface_link_up", "1 if OVSDB reports the interface's link up.", ifLabel, nil)
	descIfStatistic  = prometheus.NewDesc("ovs_interface_statistic_total", "An Interface statistics key without a metric of its own (driver xstats such as rx_q0_packets, ovs_tx_failure_drops).", []string{"interface", "name"}, nil)
)

// ifStats are the statistics keys exported under their own names.
var ifStats = map[string]*prometheus.Desc{}

func init() {
	for key, help := range map[string]string{
		"rx_packets": "Packets received on the interface.",
		"tx_packets": "Packets transmitted on the interface.",
		"rx_bytes":   "Bytes received on the interface.",
		"tx_bytes":   "Bytes transmitted on the interface.",
		"rx_dropped": "Received packets dropped.",
		"tx_dropped": "Packets dropped on transmit.",
		"rx_errors":  "Receive errors.",
		"tx_errors":  "Transmit errors.",
	} {
		ifStats[key] = prometheus.NewDesc("ovs_interface_"+key+"_total", help+" (OVSDB Interface statistics)", ifLabel, nil)
	}
}

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range pmdMetrics {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{descVswitchdInfo, descStatsWindow, descRxqUsage, descRxqEnabled,
		descIsolated, descOverhead, descIfInfo, descIfLinkUp, descIfStatistic} {
		ch <- d
	}
	for _, d := range ifStats {
		ch <- d
	}
	c.unparsed.Describe(ch)
}

// Collect implements dataplane.Collector. The PMD commands and the OVSDB
// read are independent: if one fails the other's metrics are still
// exported and the joined error marks the collector down.
//
// Every command gets its own connection and all run at once:
// ovs-vswitchd's main thread serves every ready control connection in one
// pass of its poll loop, so on a busy node the scrape waits for that
// thread to be scheduled once rather than once per command.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	var (
		wg      sync.WaitGroup
		ifs     []Interface
		ifsErr  error
		outputs = make([]string, len(pmdCommands))
		errs    = make([]error, len(pmdCommands))
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ifs, ifsErr = ListInterfaces(ctx, c.opts.DBSocket)
	}()
	ctl, ctlErr := FindVswitchdCtl(c.opts.RunDir)
	if ctlErr == nil {
		for i, cmd := range pmdCommands {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outputs[i], errs[i] = run(ctx, ctl, cmd)
			}()
		}
	}
	wg.Wait()

	var failures []error
	if ctlErr != nil {
		failures = append(failures, ctlErr)
	} else {
		failures = append(failures, c.emitUnixctl(ch, outputs, errs)...)
	}
	if ifsErr != nil {
		failures = append(failures, ifsErr)
	} else {
		emitInterfaces(ch, ifs)
	}
	c.unparsed.Collect(ch)
	// The exporter logs the failure and reports the collector down. When
	// ovs-vswitchd is unreachable every command fails the same way; say it
	// once.
	seen := map[string]bool{}
	var distinct []error
	for _, err := range failures {
		if !seen[err.Error()] {
			seen[err.Error()] = true
			distinct = append(distinct, err)
		}
	}
	return errors.Join(distinct...)
}

// pmdCommands are run on every scrape, in this order in emitUnixctl.
var pmdCommands = [][]string{
	{"version"},
	{cmdPMDStats},
	// -nh: the histograms (present when other_config:pmd-perf-metrics is
	// on) are large and not exported.
	{cmdPMDPerf, "-nh"},
	{cmdRxq},
}

// run runs one unixctl command on a connection of its own.
func run(ctx context.Context, ctl string, cmd []string) (string, error) {
	u, err := DialUnixctl(ctx, ctl)
	if err != nil {
		return "", err
	}
	defer u.Close()
	return u.Run(cmd[0], cmd[1:]...)
}

// emitUnixctl exports what the unixctl commands returned and the errors of
// those that failed.
func (c *Collector) emitUnixctl(ch chan<- prometheus.Metric, out []string, errs []error) []error {
	var failures []error
	if errs[0] == nil {
		ch <- prometheus.MustNewConstMetric(descVswitchdInfo, prometheus.GaugeValue, 1, parseVersion(out[0]))
	} else {
		failures = append(failures, errs[0])
	}
	var stats, perf PMDReport
	if errs[1] == nil {
		stats = ParsePMDStats(out[1])
		c.unparsed.WithLabelValues(cmdPMDStats).Add(float64(stats.Unknown))
	} else {
		failures = append(failures, fmt.Errorf("%w (is the datapath netdev, i.e. is OVS running with DPDK?)", errs[1]))
	}
	if errs[2] == nil {
		perf = ParsePMDStats(out[2])
		c.unparsed.WithLabelValues(cmdPMDPerf).Add(float64(perf.Unknown))
	} else {
		failures = append(failures, errs[2])
	}
	emitPMD(ch, stats, perf)
	if errs[3] == nil {
		rxq := ParseRxqShow(out[3])
		c.unparsed.WithLabelValues(cmdRxq).Add(float64(rxq.Unknown))
		emitRxq(ch, rxq)
	} else {
		failures = append(failures, errs[3])
	}
	return failures
}

// parseVersion takes "3.1.0" out of "ovs-vswitchd (Open vSwitch) 3.1.0\n".
func parseVersion(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

type threadKey struct {
	main       bool
	numa, core string
}

func keyOf(t PMDThread) threadKey { return threadKey{t.Main, t.NUMAID, t.CoreID} }

// emitPMD exports stats-show figures and adds what only perf-show has.
// Where pmd-stats-show became an alias of pmd-perf-show both reports hold
// the same lines and perf adds nothing.
func emitPMD(ch chan<- prometheus.Metric, stats, perf PMDReport) {
	merged := map[threadKey]map[Stat]float64{}
	var order []PMDThread
	for _, rep := range []PMDReport{stats, perf} {
		for _, t := range rep.Threads {
			k := keyOf(t)
			m, ok := merged[k]
			if !ok {
				m = map[Stat]float64{}
				merged[k] = m
				order = append(order, t)
			}
			for s, v := range t.Stats {
				if _, have := m[s]; !have {
					m[s] = v
				}
			}
		}
	}
	for _, t := range order {
		thread := "pmd"
		if t.Main {
			thread = "main"
		}
		vals := merged[keyOf(t)]
		for _, pm := range pmdMetrics {
			if v, ok := vals[pm.stat]; ok {
				ch <- prometheus.MustNewConstMetric(pm.desc, pm.typ, v, thread, t.NUMAID, t.CoreID)
			}
		}
	}
	if perf.MeasurementSeconds > 0 {
		ch <- prometheus.MustNewConstMetric(descStatsWindow, prometheus.GaugeValue, perf.MeasurementSeconds)
	}
}

func emitRxq(ch chan<- prometheus.Metric, r RxqReport) {
	seenCore := map[[2]string]bool{}
	seenQ := map[[4]string]bool{}
	for _, t := range r.Threads {
		ck := [2]string{t.NUMAID, t.CoreID}
		if seenCore[ck] {
			continue // a second datapath's block for the same core
		}
		seenCore[ck] = true
		if t.Isolated != nil {
			ch <- prometheus.MustNewConstMetric(descIsolated, prometheus.GaugeValue, b2f(*t.Isolated), t.NUMAID, t.CoreID)
		}
		if t.Overhead != nil {
			ch <- prometheus.MustNewConstMetric(descOverhead, prometheus.GaugeValue, *t.Overhead, t.NUMAID, t.CoreID)
		}
		for _, q := range t.Queues {
			lv := [4]string{t.NUMAID, t.CoreID, q.Port, strconv.Itoa(q.Queue)}
			if seenQ[lv] {
				continue
			}
			seenQ[lv] = true
			if q.Usage != nil {
				ch <- prometheus.MustNewConstMetric(descRxqUsage, prometheus.GaugeValue, *q.Usage, lv[:]...)
			}
			if q.Enabled != nil {
				ch <- prometheus.MustNewConstMetric(descRxqEnabled, prometheus.GaugeValue, b2f(*q.Enabled), lv[:]...)
			}
		}
	}
}

func emitInterfaces(ch chan<- prometheus.Metric, ifs []Interface) {
	seen := map[string]bool{}
	for _, it := range ifs {
		if seen[it.Name] {
			continue
		}
		seen[it.Name] = true
		ofport := ""
		if it.OFPort != nil {
			ofport = strconv.FormatInt(*it.OFPort, 10)
		}
		ch <- prometheus.MustNewConstMetric(descIfInfo, prometheus.GaugeValue, 1, it.Name, it.Type, ofport)
		if it.LinkState != "" {
			ch <- prometheus.MustNewConstMetric(descIfLinkUp, prometheus.GaugeValue, b2f(it.LinkState == "up"), it.Name)
		}
		for k, v := range it.Statistics {
			if d, ok := ifStats[k]; ok {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, it.Name)
			} else {
				ch <- prometheus.MustNewConstMetric(descIfStatistic, prometheus.CounterValue, v, it.Name, k)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
