package sriov

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Defaults.
const (
	// netlinkTimeout bounds one RTM_GETLINK round trip; the kernel answers
	// in microseconds, so hitting it means something is badly wrong.
	netlinkTimeout = 2 * time.Second
	// maxParallelPFs bounds the goroutines reading PFs at once; nodes have
	// 2 to 8 SR-IOV ports.
	maxParallelPFs = 8
)

// Options configure a Collector.
type Options struct {
	// Sys is the sysfs root; "" means /sys.
	Sys string
	// Netlink is the handle to ask for PF link and VF info. nil opens one on
	// the agent's own network namespace on first use (the host's, for a
	// DaemonSet with hostNetwork). The collector does not close a handle it
	// was given.
	Netlink *netlink.Handle
}

// counter is one VF counter: the name drivers use in sysfs, also the metric
// name's middle part.
type counter struct {
	name, help  string
	fromNetlink func(*netlink.VfInfo) uint64 // nil: netlink does not report it
}

// vfCounters are the VF counters exported, in output order.
var vfCounters = []counter{
	{"rx_packets", "Packets received by the VF.", func(v *netlink.VfInfo) uint64 { return v.RxPackets }},
	{"tx_packets", "Packets sent by the VF.", func(v *netlink.VfInfo) uint64 { return v.TxPackets }},
	{"rx_bytes", "Bytes received by the VF.", func(v *netlink.VfInfo) uint64 { return v.RxBytes }},
	{"tx_bytes", "Bytes sent by the VF.", func(v *netlink.VfInfo) uint64 { return v.TxBytes }},
	{"rx_dropped", "Received packets the VF dropped.", func(v *netlink.VfInfo) uint64 { return v.RxDropped }},
	{"tx_dropped", "Packets to send the VF dropped.", func(v *netlink.VfInfo) uint64 { return v.TxDropped }},
	{"rx_multicast", "Multicast packets received by the VF.", func(v *netlink.VfInfo) uint64 { return v.Multicast }},
	{"rx_broadcast", "Broadcast packets received by the VF.", func(v *netlink.VfInfo) uint64 { return v.Broadcast }},
	{"tx_multicast", "Multicast packets sent by the VF (sysfs source only).", nil},
	{"tx_broadcast", "Broadcast packets sent by the VF (sysfs source only).", nil},
	{"rx_errors", "Receive errors of the VF (sysfs source only).", nil},
	{"tx_errors", "Send errors of the VF (sysfs source only).", nil},
}

// counterAliases maps other drivers' sysfs names to ours.
var counterAliases = map[string]string{
	"multicast": "rx_multicast",
	"broadcast": "rx_broadcast",
}

// pfCounters are the PF netdev counters from netlink (IFLA_STATS64).
var pfCounters = []struct {
	name, help string
	get        func(*netlink.LinkStatistics) uint64
}{
	{"rx_packets", "Packets received on the PF's interface (traffic the NIC switches to VFs is not counted here).", func(s *netlink.LinkStatistics) uint64 { return s.RxPackets }},
	{"tx_packets", "Packets sent on the PF's interface.", func(s *netlink.LinkStatistics) uint64 { return s.TxPackets }},
	{"rx_bytes", "Bytes received on the PF's interface.", func(s *netlink.LinkStatistics) uint64 { return s.RxBytes }},
	{"tx_bytes", "Bytes sent on the PF's interface.", func(s *netlink.LinkStatistics) uint64 { return s.TxBytes }},
	{"rx_dropped", "Received packets the PF's interface dropped.", func(s *netlink.LinkStatistics) uint64 { return s.RxDropped }},
	{"tx_dropped", "Packets to send the PF's interface dropped.", func(s *netlink.LinkStatistics) uint64 { return s.TxDropped }},
	{"rx_errors", "Receive errors on the PF's interface.", func(s *netlink.LinkStatistics) uint64 { return s.RxErrors }},
	{"tx_errors", "Send errors on the PF's interface.", func(s *netlink.LinkStatistics) uint64 { return s.TxErrors }},
}

var (
	vfLabels = []string{"pf", "vf", "pci_address", "numa_node"}

	pfInfoDesc = prometheus.NewDesc("sriov_pf_info",
		"SR-IOV physical function inventory; always 1.",
		[]string{"pf", "pci_address", "driver", "numa_node"}, nil)
	pfSupportedDesc = prometheus.NewDesc("sriov_pf_vfs_supported",
		"Most VFs the PF supports (sysfs sriov_totalvfs).", []string{"pf"}, nil)
	pfConfiguredDesc = prometheus.NewDesc("sriov_pf_vfs_configured",
		"VFs created on the PF now (sysfs sriov_numvfs).", []string{"pf"}, nil)
	vfInfoDesc = prometheus.NewDesc("sriov_vf_info",
		"SR-IOV virtual function inventory; always 1. binding is netdevice, vfio, uio, stub or unbound; stats_source is sysfs, netlink or none.",
		append(append([]string{}, vfLabels...), "driver", "binding", "netdev", "stats_source"), nil)
)

// Collector exports SR-IOV PF/VF inventory and VF counters.
type Collector struct {
	sys string
	// scrape serialises Collect: a scrape reads through the layout's held
	// files, and a re-discovery closes them.
	scrape sync.Mutex
	layout layoutCache

	mu      sync.Mutex // guards nl: a Handle's socket serves one request at a time
	nl      *netlink.Handle
	ownNL   bool
	vfDescs map[string]*prometheus.Desc
	pfDescs map[string]*prometheus.Desc
	// lookup replaces the netlink query in tests that need VF info, which
	// only SR-IOV hardware produces; nil means linkAttrs.
	lookup func(name string) (*netlink.LinkAttrs, error)
}

// New returns a Collector; it touches nothing until the first Collect.
func New(o Options) *Collector {
	if o.Sys == "" {
		o.Sys = sysfs.DefaultSys
	}
	c := &Collector{sys: o.Sys, layout: layoutCache{sys: o.Sys}, nl: o.Netlink, vfDescs: map[string]*prometheus.Desc{}, pfDescs: map[string]*prometheus.Desc{}}
	for _, k := range vfCounters {
		c.vfDescs[k.name] = prometheus.NewDesc("sriov_vf_"+k.name+"_total", k.help, vfLabels, nil)
	}
	for _, k := range pfCounters {
		c.pfDescs[k.name] = prometheus.NewDesc("sriov_pf_"+k.name+"_total", k.help, []string{"pf"}, nil)
	}
	return c
}

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "sriov" }

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pfInfoDesc
	ch <- pfSupportedDesc
	ch <- pfConfiguredDesc
	ch <- vfInfoDesc
	for _, k := range pfCounters {
		ch <- c.pfDescs[k.name]
	}
	for _, k := range vfCounters {
		ch <- c.vfDescs[k.name]
	}
}

// Close releases the netlink handle the collector opened itself and the
// VF stats files it holds open.
func (c *Collector) Close() error {
	c.layout.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ownNL && c.nl != nil {
		c.nl.Close()
		c.nl = nil
	}
	return nil
}

// Collect implements dataplane.Collector. A PF or VF whose files are broken
// is skipped and named in the returned error; the rest is still exported.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	c.scrape.Lock()
	defer c.scrape.Unlock()
	l := c.layout.get()
	pfs := l.pfs
	var errs []error
	if l.err != nil {
		errs = append(errs, l.err)
	}
	// PFs are read in parallel: a scrape is a few thousand small sysfs
	// reads, each waiting on a syscall, and the PFs share nothing.
	pfErrs := make([]error, len(pfs))
	sem := make(chan struct{}, maxParallelPFs)
	var wg sync.WaitGroup
	for i := range pfs {
		if err := ctx.Err(); err != nil {
			pfErrs[i] = fmt.Errorf("SR-IOV: stopped before PF %s: %w", pfs[i].Name, err)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			pfErrs[i] = c.collectPF(ctx, l, i, ch)
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, pfErrs...)...)
}

func (c *Collector) collectPF(ctx context.Context, l *layout, p int, ch chan<- prometheus.Metric) error {
	pf := &l.pfs[p]
	numa := strconv.Itoa(pf.NUMANode)
	send(ctx, ch, prometheus.MustNewConstMetric(pfInfoDesc, prometheus.GaugeValue, 1, pf.Name, pf.PCIAddress, pf.Driver, numa))
	send(ctx, ch, prometheus.MustNewConstMetric(pfSupportedDesc, prometheus.GaugeValue, float64(pf.TotalVFs), pf.Name))
	send(ctx, ch, prometheus.MustNewConstMetric(pfConfiguredDesc, prometheus.GaugeValue, float64(pf.NumVFs), pf.Name))

	var errs []error
	lookup := c.linkAttrs
	if c.lookup != nil {
		lookup = c.lookup
	}
	attrs, err := lookup(pf.Name)
	if err != nil {
		errs = append(errs, fmt.Errorf("SR-IOV PF %s: netlink: %w", pf.Name, err))
	}
	nlVFs := map[int]*netlink.VfInfo{}
	if attrs != nil {
		if s := attrs.Statistics; s != nil {
			for _, k := range pfCounters {
				send(ctx, ch, prometheus.MustNewConstMetric(c.pfDescs[k.name], prometheus.CounterValue, float64(k.get(s)), pf.Name))
			}
		}
		for i := range attrs.Vfs {
			nlVFs[attrs.Vfs[i].ID] = &attrs.Vfs[i]
		}
	}
	for i, vf := range pf.VFs {
		if ctx.Err() != nil {
			return errors.Join(append(errs, fmt.Errorf("SR-IOV PF %s: stopped before VF %d: %w", pf.Name, vf.ID, ctx.Err()))...)
		}
		labels := []string{pf.Name, strconv.Itoa(vf.ID), vf.PCIAddress, strconv.Itoa(vf.NUMANode)}
		source := SourceNone
		stats, ok, err := l.readStats(p, i)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("SR-IOV PF %s: %w", pf.Name, err))
		case ok:
			source = SourceSysfs
			for name, v := range stats {
				if alias, ok := counterAliases[name]; ok {
					if _, both := stats[alias]; both {
						continue
					}
					name = alias
				}
				if d := c.vfDescs[name]; d != nil {
					send(ctx, ch, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...))
				}
			}
		case nlVFs[vf.ID] != nil:
			source = SourceNetlink
			info := nlVFs[vf.ID]
			for _, k := range vfCounters {
				if k.fromNetlink != nil {
					send(ctx, ch, prometheus.MustNewConstMetric(c.vfDescs[k.name], prometheus.CounterValue, float64(k.fromNetlink(info)), labels...))
				}
			}
		}
		send(ctx, ch, prometheus.MustNewConstMetric(vfInfoDesc, prometheus.GaugeValue, 1,
			append(labels, vf.Driver, vf.Binding, vf.Netdev, source)...))
	}
	return errors.Join(errs...)
}

// linkAttrs asks netlink for the PF's link, VF info included. A PF that
// netlink does not know (its netdev lives in another network namespace
// than the agent, or --sysfs is not the host's) gives nil, nil: its VFs
// fall back to sysfs counters.
func (c *Collector) linkAttrs(name string) (*netlink.LinkAttrs, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("open netlink route socket: %w", err)
		}
		if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
			h.Close()
			return nil, fmt.Errorf("set netlink socket timeout: %w", err)
		}
		c.nl, c.ownNL = h, true
	}
	link, err := c.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, err
	}
	return link.Attrs(), nil
}

// send delivers m unless the scrape was abandoned, so a collector never
// blocks forever on a channel nobody reads.
func send(ctx context.Context, ch chan<- prometheus.Metric, m prometheus.Metric) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}
