package dpdk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options; every one can be overridden.
const (
	// DefaultRuntimeDir is where DPDK processes running as root put their
	// per-file-prefix runtime directories.
	DefaultRuntimeDir = "/var/run/dpdk"
	// DefaultSocketTimeout bounds the whole exchange with one process. The
	// telemetry thread answers in well under a millisecond when it gets a
	// CPU; a process that takes seconds is stuck or starved, and waiting
	// longer would only delay every other process's numbers.
	DefaultSocketTimeout = 2 * time.Second
	// DefaultParallel is how many processes are read at the same time.
	DefaultParallel = 8
)

// Options configure a Collector.
type Options struct {
	// RuntimeDirs are scanned for <file-prefix>/dpdk_telemetry.v2[:N].
	RuntimeDirs []string
	// SocketTimeout bounds the exchange with one process.
	SocketTimeout time.Duration
	// Parallel is how many processes are read concurrently.
	Parallel int
	// Xstats, when set, keeps only the extended stats whose name matches.
	Xstats *regexp.Regexp
	// Logger receives a line when a socket starts or stops failing.
	Logger *slog.Logger
}

// Collector exports the telemetry of every DPDK process on the node.
// It connects afresh on each scrape rather than holding connections: DPDK
// serves a small fixed number of telemetry clients per process, and an
// agent sitting on one would lock out an operator's dpdk-telemetry.py.
type Collector struct {
	opts         Options
	socketErrors *prometheus.CounterVec

	mu      sync.Mutex
	failing map[string]string // socket path → last error, for logging changes only
}

// New returns a DPDK telemetry collector.
func New(opts Options) *Collector {
	if len(opts.RuntimeDirs) == 0 {
		opts.RuntimeDirs = []string{DefaultRuntimeDir}
	}
	if opts.SocketTimeout <= 0 {
		opts.SocketTimeout = DefaultSocketTimeout
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Collector{
		opts: opts,
		socketErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_dataplane_dpdk_socket_errors_total",
			Help: "DPDK telemetry sockets that could not be read, by reason: connect (stale socket of an exited process, or permissions), timeout, protocol (not DPDK telemetry v2), truncated (reply over max_output_len), io.",
		}, []string{"reason"}),
		failing: map[string]string{},
	}
	for _, r := range []string{reasonConnect, reasonTimeout, reasonProtocol, reasonTruncated, reasonIO} {
		c.socketErrors.WithLabelValues(r)
	}
	return c
}

// Error reasons of wirelog_dataplane_dpdk_socket_errors_total.
const (
	reasonConnect   = "connect"
	reasonTimeout   = "timeout"
	reasonProtocol  = "protocol"
	reasonTruncated = "truncated"
	reasonIO        = "io"
)

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "dpdk" }

var (
	processLabels = []string{"file_prefix", "pid"}
	portLabels    = []string{"file_prefix", "pid", "port", "port_name"}
	heapLabels    = []string{"file_prefix", "pid", "heap", "heap_name"}
	lcoreLabels   = []string{"file_prefix", "pid", "lcore"}

	descSocketUp = prometheus.NewDesc("wirelog_dataplane_dpdk_socket_up",
		"1 if the DPDK telemetry socket answered this scrape, 0 if not (see wirelog_dataplane_dpdk_socket_errors_total).",
		[]string{"file_prefix", "socket"}, nil)
	descProcessInfo = prometheus.NewDesc("dpdk_process_info",
		"A DPDK process reachable over telemetry; value 1. version is the DPDK release.",
		[]string{"file_prefix", "pid", "socket", "version"}, nil)

	descRxPackets = portDesc("rx_packets_total", "Packets received by the port (rte_eth_stats.ipackets).")
	descTxPackets = portDesc("tx_packets_total", "Packets transmitted by the port (rte_eth_stats.opackets).")
	descRxBytes   = portDesc("rx_bytes_total", "Bytes received by the port (rte_eth_stats.ibytes).")
	descTxBytes   = portDesc("tx_bytes_total", "Bytes transmitted by the port (rte_eth_stats.obytes).")
	descRxMissed  = portDesc("rx_missed_total", "Packets dropped by the NIC because the receive queues were full (rte_eth_stats.imissed).")
	descRxErrors  = portDesc("rx_errors_total", "Erroneous received packets (rte_eth_stats.ierrors).")
	descTxErrors  = portDesc("tx_errors_total", "Failed transmitted packets (rte_eth_stats.oerrors).")
	descRxNoMbuf  = portDesc("rx_nombuf_total", "Receive mbuf allocation failures: the mempool ran dry (rte_eth_stats.rx_nombuf).")
	descXstat     = prometheus.NewDesc("dpdk_ethdev_xstat_total",
		"Extended port statistic from /ethdev/xstats, named by the driver.",
		append(append([]string{}, portLabels...), "name"), nil)
	descPortInfo = prometheus.NewDesc("dpdk_ethdev_info",
		"A DPDK ethdev port; value 1. Labels carry its MAC address and NUMA node.",
		append(append([]string{}, portLabels...), "mac_address", "numa_node"), nil)
	descStarted     = portDesc("started", "1 if the port is started (dev_started).")
	descPromisc     = portDesc("promiscuous", "1 if the port is in promiscuous mode.")
	descMTU         = portDesc("mtu_bytes", "The port's MTU.")
	descRxQueues    = portDesc("rx_queues", "Configured receive queues.")
	descTxQueues    = portDesc("tx_queues", "Configured transmit queues.")
	descLinkUp      = portDesc("link_up", "1 if the port's link is up.")
	descLinkSpeed   = portDesc("link_speed_bytes", "The link's speed in bytes per second.")
	descHeapSize    = heapDesc("size_bytes", "Size of the DPDK malloc heap.")
	descHeapFree    = heapDesc("free_bytes", "Free bytes in the heap.")
	descHeapAlloc   = heapDesc("allocated_bytes", "Allocated bytes in the heap.")
	descHeapLargest = heapDesc("largest_free_block_bytes", "Largest free block: the biggest allocation that can still succeed.")
	descHeapABlocks = heapDesc("allocated_blocks", "Allocated elements in the heap.")
	descHeapFBlocks = heapDesc("free_blocks", "Free elements in the heap; many small ones mean fragmentation.")
	descLcoreBusy   = prometheus.NewDesc("dpdk_lcore_busy_cycles_total",
		"TSC cycles the lcore spent doing work, as reported by the application's lcore usage callback (/eal/lcore/usage, DPDK 23.03+).",
		lcoreLabels, nil)
	descLcoreTotal = prometheus.NewDesc("dpdk_lcore_cycles_total",
		"TSC cycles the lcore ran, busy or polling empty (/eal/lcore/usage, DPDK 23.03+).",
		lcoreLabels, nil)
)

func portDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("dpdk_ethdev_"+name, help, portLabels, nil)
}

func heapDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("dpdk_heap_"+name, help, heapLabels, nil)
}

var allDescs = []*prometheus.Desc{
	descSocketUp, descProcessInfo,
	descRxPackets, descTxPackets, descRxBytes, descTxBytes, descRxMissed, descRxErrors, descTxErrors, descRxNoMbuf,
	descXstat, descPortInfo, descStarted, descPromisc, descMTU, descRxQueues, descTxQueues, descLinkUp, descLinkSpeed,
	descHeapSize, descHeapFree, descHeapAlloc, descHeapLargest, descHeapABlocks, descHeapFBlocks,
	descLcoreBusy, descLcoreTotal,
}

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	c.socketErrors.Describe(ch)
}

type result struct {
	sock Socket
	proc *Process
	err  error
}

// Collect implements dataplane.Collector. A socket that cannot be reached
// is counted and reported as down but does not fail the collector: on a
// node, a DPDK pod being killed is routine. An unreadable runtime directory
// and a socket that accepts but does not answer in time (a hung process)
// do.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	socks, err := Discover(c.opts.RuntimeDirs)
	if err != nil {
		return err
	}
	results := make([]result, len(socks))
	sem := make(chan struct{}, c.opts.Parallel)
	var wg sync.WaitGroup
	for i, s := range socks {
		results[i].sock = s
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i].err = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, c.opts.SocketTimeout)
			defer cancel()
			results[i].proc, results[i].err = Scrape(sctx, s)
		}()
	}
	wg.Wait()

	var hung []error
	for _, r := range results {
		up := 0.0
		if r.err != nil && errorReason(r.err) == reasonTimeout {
			hung = append(hung, fmt.Errorf("DPDK telemetry socket %s accepted but did not answer in time (the process is hung, or its telemetry thread gets no CPU): %w", r.sock.Path, r.err))
		}
		if r.err == nil {
			up = 1
			c.emitProcess(ch, r.proc)
			for _, perr := range r.proc.Partial {
				c.socketErrors.WithLabelValues(reasonProtocol).Inc()
				c.opts.Logger.Debug("dpdk telemetry reply skipped", "err", perr)
			}
		} else {
			c.socketErrors.WithLabelValues(errorReason(r.err)).Inc()
		}
		c.logChange(r.sock.Path, r.err)
		ch <- prometheus.MustNewConstMetric(descSocketUp, prometheus.GaugeValue, up, r.sock.FilePrefix, r.sock.Name)
	}
	c.forget(socks)
	c.socketErrors.Collect(ch)
	if err := ctx.Err(); err != nil {
		return err
	}
	// A process that went away is routine on a node (its socket is
	// refused or gone) and only reads as socket_up 0; one that accepts and
	// never answers is not, and fails the collector so the scrape says so.
	return errors.Join(hung...)
}

func (c *Collector) emitProcess(ch chan<- prometheus.Metric, p *Process) {
	prefix, pid := p.Socket.FilePrefix, strconv.Itoa(p.Greeting.PID)
	ch <- prometheus.MustNewConstMetric(descProcessInfo, prometheus.GaugeValue, 1, prefix, pid, p.Socket.Name, p.Greeting.Version)
	for _, port := range p.Ports {
		lv := []string{prefix, pid, strconv.Itoa(port.ID), port.Name()}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		if st := port.Stats; st != nil {
			counter(descRxPackets, st.IPackets)
			counter(descTxPackets, st.OPackets)
			counter(descRxBytes, st.IBytes)
			counter(descTxBytes, st.OBytes)
			counter(descRxMissed, st.IMissed)
			counter(descRxErrors, st.IErrors)
			counter(descTxErrors, st.OErrors)
			counter(descRxNoMbuf, st.RxNoMbuf)
		}
		for name, v := range port.Xstats {
			if c.opts.Xstats != nil && !c.opts.Xstats.MatchString(name) {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descXstat, prometheus.CounterValue, v, append(lv, name)...)
		}
		if in := port.Info; in != nil {
			numa := ""
			if in.NUMANode != nil {
				numa = strconv.Itoa(*in.NUMANode)
			}
			ch <- prometheus.MustNewConstMetric(descPortInfo, prometheus.GaugeValue, 1, append(lv, in.MAC, numa)...)
			optGauge(gauge, descStarted, in.Started)
			optGauge(gauge, descPromisc, in.Promiscuous)
			optGauge(gauge, descMTU, in.MTU)
			optGauge(gauge, descRxQueues, in.RxQueues)
			optGauge(gauge, descTxQueues, in.TxQueues)
		}
		if ls := port.Link; ls != nil {
			up := 0.0
			if ls.Status == "UP" {
				up = 1
			}
			gauge(descLinkUp, up)
			if ls.Speed != nil && up == 1 {
				gauge(descLinkSpeed, float64(*ls.Speed)*1e6/8)
			}
		}
	}
	for _, h := range p.Heaps {
		lv := []string{prefix, pid, strconv.Itoa(h.ID), h.Name}
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{
			{descHeapSize, h.Size}, {descHeapFree, h.Free}, {descHeapAlloc, h.Allocated},
			{descHeapLargest, h.GreatestFree}, {descHeapABlocks, h.AllocatedBlocks}, {descHeapFBlocks, h.FreeBlocks},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, float64(m.v), lv...)
		}
	}
	for _, l := range p.Lcores {
		lv := []string{prefix, pid, strconv.Itoa(l.ID)}
		ch <- prometheus.MustNewConstMetric(descLcoreBusy, prometheus.CounterValue, float64(l.BusyCycles), lv...)
		ch <- prometheus.MustNewConstMetric(descLcoreTotal, prometheus.CounterValue, float64(l.TotalCycles), lv...)
	}
}

func optGauge(gauge func(*prometheus.Desc, float64), d *prometheus.Desc, v *uint64) {
	if v != nil {
		gauge(d, float64(*v))
	}
}

// errorReason classifies a socket failure for the errors counter.
func errorReason(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return reasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return reasonConnect
	case errors.Is(err, ErrTruncated):
		return reasonTruncated
	case errors.Is(err, ErrProtocol):
		return reasonProtocol
	default:
		return reasonIO
	}
}

// logChange logs a socket's failure once, and its recovery, instead of on
// every scrape.
func (c *Collector) logChange(path string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, failing := c.failing[path]
	switch {
	case err == nil && failing:
		delete(c.failing, path)
		c.opts.Logger.Info("dpdk telemetry socket answers again", "socket", path)
	case err != nil && prev != err.Error():
		c.failing[path] = err.Error()
		c.opts.Logger.Warn("dpdk telemetry socket cannot be read; its process is reported down",
			"socket", path, "reason", errorReason(err), "err", err)
	}
}

// forget drops log state of sockets that no longer exist.
func (c *Collector) forget(socks []Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failing) == 0 {
		return
	}
	seen := make(map[string]bool, len(socks))
	for _, s := range socks {
		seen[s.Path] = true
	}
	for p := range c.failing {
		if !seen[p] {
			delete(c.failing, p)
		}
	}
}
