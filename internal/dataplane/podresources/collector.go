package podresources

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Collector.
type Options struct {
	Socket      string        // "" means DefaultSocket
	Node        string        // value of the node label
	CallTimeout time.Duration // 0 means DefaultCallTimeout
}

var (
	podLabels = []string{"node", "namespace", "pod", "container"}

	deviceDesc = prometheus.NewDesc("podresources_pod_device_info",
		"A device the kubelet assigned to a container; always 1. pci_address is device_id when that is a PCI address (SR-IOV device plugin), so it joins sriov_vf_* on (instance, pci_address).",
		append(append([]string{}, podLabels...), "resource_name", "device_id", "pci_address"), nil)
	cpuDesc = prometheus.NewDesc("podresources_pod_cpu_info",
		"An exclusive CPU the kubelet's static CPU manager assigned to a container; always 1.",
		append(append([]string{}, podLabels...), "cpu"), nil)
	allocDevicesDesc = prometheus.NewDesc("podresources_allocatable_devices",
		"Devices of a resource the node can hand to pods (GetAllocatableResources).", []string{"node", "resource_name"}, nil)
	allocCPUsDesc = prometheus.NewDesc("podresources_allocatable_cpus",
		"CPUs the node can hand out exclusively (GetAllocatableResources; the static CPU manager's pool).", []string{"node"}, nil)
)

// pciAddress matches the kernel's PCI address form, domain:bus:device.function.
var pciAddress = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// Collector exports the kubelet's pod → device and pod → CPU assignments.
type Collector struct {
	client *Client
	node   string
}

// New returns a Collector with its own kept-alive kubelet connection.
func New(o Options) (*Collector, error) {
	cl, err := NewClient(o.Socket, o.CallTimeout)
	if err != nil {
		return nil, err
	}
	return &Collector{client: cl, node: o.Node}, nil
}

// Close closes the kubelet connection.
func (c *Collector) Close() error { return c.client.Close() }

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "podresources" }

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deviceDesc
	ch <- cpuDesc
	ch <- allocDevicesDesc
	ch <- allocCPUsDesc
}

// Collect implements dataplane.Collector.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	send := func(d *prometheus.Desc, v float64, labels ...string) {
		select {
		case ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...):
		case <-ctx.Done():
		}
	}
	var errs []error
	pods, err := c.client.List(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	// The kubelet may list a device twice (two resources naming one VF,
	// or a pod being replaced); a duplicate series would fail the whole
	// scrape, so each label set goes out once.
	seen := map[string]bool{}
	once := func(key ...string) bool {
		k := strings.Join(key, "\xff")
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	for _, p := range pods {
		for _, ctr := range p.GetContainers() {
			base := []string{c.node, p.GetNamespace(), p.GetName(), ctr.GetName()}
			for _, d := range ctr.GetDevices() {
				for _, id := range d.GetDeviceIds() {
					l := append(append([]string{}, base...), d.GetResourceName(), id, pciOf(id))
					if once(append([]string{"dev"}, l...)...) {
						send(deviceDesc, 1, l...)
					}
				}
			}
			for _, cpu := range ctr.GetCpuIds() {
				l := append(append([]string{}, base...), strconv.FormatInt(cpu, 10))
				if once(append([]string{"cpu"}, l...)...) {
					send(cpuDesc, 1, l...)
				}
			}
		}
	}
	if err == nil { // a kubelet that just failed List will fail this too
		alloc, ok, err := c.client.Allocatable(ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			perResource := map[string]int{}
			for _, d := range alloc.GetDevices() {
				perResource[d.GetResourceName()] += len(d.GetDeviceIds())
			}
			for name, n := range perResource {
				send(allocDevicesDesc, float64(n), c.node, name)
			}
			send(allocCPUsDesc, float64(countCPUs(alloc.GetCpuIds())), c.node)
		}
	}
	return errors.Join(errs...)
}

func pciOf(id string) string {
	if pciAddress.MatchString(id) {
		return strings.ToLower(id)
	}
	return ""
}

func countCPUs(ids []int64) int {
	seen := map[int64]bool{}
	for _, c := range ids {
		seen[c] = true
	}
	return len(seen)
}
