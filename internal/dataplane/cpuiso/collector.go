package cpuiso

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Options configure a Collector.
type Options struct {
	Sys, Proc       string // sysfs and procfs roots; "" means /sys and /proc
	CPUManagerState string // kubelet state file; "" means DefaultCPUManagerState
}

// cmdlineParams are the boot parameters that shape CPU isolation, exported
// as labels of cpu_isolation_kernel_cmdline_info.
var cmdlineParams = []string{"isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"}

var (
	cpuLabels = []string{"cpu", "numa_node"}

	isolatedDesc = prometheus.NewDesc("cpu_isolation_isolated",
		"1 if the online CPU is isolated from the scheduler's load balancing (devices/system/cpu/isolated, set by isolcpus=), else 0.", cpuLabels, nil)
	nohzDesc = prometheus.NewDesc("cpu_isolation_nohz_full",
		"1 if the online CPU runs without the periodic tick when it has one task (devices/system/cpu/nohz_full), else 0.", cpuLabels, nil)
	cmdlineDesc = prometheus.NewDesc("cpu_isolation_kernel_cmdline_info",
		"The CPU isolation boot parameters from /proc/cmdline (empty when not given); always 1.", cmdlineParams, nil)

	policyDesc = prometheus.NewDesc("cpu_manager_policy_info",
		"The kubelet CPU manager policy recorded in its state file; always 1.", []string{"policy"}, nil)
	sharedDesc = prometheus.NewDesc("cpu_manager_shared_pool_cpus",
		"CPUs in the kubelet's shared pool (defaultCpuSet), where containers without exclusive CPUs run.", nil, nil)
	exclusiveDesc = prometheus.NewDesc("cpu_manager_exclusive_cpus",
		"CPUs the kubelet assigned to one container alone (state file entries).", []string{"pod_uid", "container"}, nil)
)

// Collector exports CPU isolation and the kubelet CPU manager state.
type Collector struct{ o Options }

// New returns a Collector.
func New(o Options) *Collector {
	if o.Sys == "" {
		o.Sys = sysfs.DefaultSys
	}
	if o.Proc == "" {
		o.Proc = sysfs.DefaultProc
	}
	if o.CPUManagerState == "" {
		o.CPUManagerState = DefaultCPUManagerState
	}
	return &Collector{o: o}
}

// Name implements dataplane.Collector.
func (c *Collector) Name() string { return "cpu" }

// Describe implements dataplane.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{isolatedDesc, nohzDesc, cmdlineDesc, policyDesc, sharedDesc, exclusiveDesc} {
		ch <- d
	}
}

// Collect implements dataplane.Collector. A missing state file (no
// kubelet on the node) is not an error; a corrupt one is.
func (c *Collector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	send := func(d *prometheus.Desc, v float64, labels ...string) {
		select {
		case ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...):
		case <-ctx.Done():
		}
	}
	var errs []error
	iso, err := ReadIsolation(c.o.Sys)
	if err != nil {
		errs = append(errs, err)
	}
	for _, cpu := range iso.Online {
		labels := []string{strconv.Itoa(cpu), strconv.Itoa(iso.NodeOf(cpu))}
		send(isolatedDesc, b2f(slices.Contains(iso.Isolated, cpu)), labels...)
		send(nohzDesc, b2f(slices.Contains(iso.NohzFull, cpu)), labels...)
	}
	if params, err := ReadCmdline(c.o.Proc); err != nil {
		errs = append(errs, err)
	} else {
		values := make([]string, len(cmdlineParams))
		for i, p := range cmdlineParams {
			values[i] = params[p]
		}
		send(cmdlineDesc, 1, values...)
	}
	st, ok, err := ReadCPUManagerState(c.o.CPUManagerState)
	switch {
	case err != nil:
		errs = append(errs, err)
	case ok:
		send(policyDesc, 1, st.Policy)
		send(sharedDesc, float64(len(st.DefaultSet)))
		for pod, containers := range st.Exclusive {
			for name, cpus := range containers {
				send(exclusiveDesc, float64(len(cpus)), pod, name)
			}
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
