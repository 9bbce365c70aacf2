package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/podresources"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// nodeCollectors registers the flags of the node-level collectors (SR-IOV,
// hugepages, CPU isolation, pod resources) on fs and returns a constructor the
// dataplane command calls after parsing.
func nodeCollectors(fs *flag.FlagSet) func() ([]dataplane.Collector, error) {
	var (
		sriovOn = fs.Bool("collector.sriov", true, "export SR-IOV PF/VF inventory and VF counters (sysfs, netlink)")
		hugeOn  = fs.Bool("collector.hugepages", true, "export huge page pools per page size and NUMA node (sysfs)")
		cpuOn   = fs.Bool("collector.cpu", true, "export CPU isolation (isolated, nohz_full, boot parameters) and the kubelet CPU manager state")
		podOn   = fs.Bool("collector.podresources", true, "export which pod holds which VF and exclusive CPU (kubelet pod-resources API)")
		sysRoot = fs.String("sysfs", sysfs.DefaultSys, "sysfs mount to read; in a container, the host's /sys mounted read-only")
		proc    = fs.String("procfs", sysfs.DefaultProc, "procfs mount to read (cmdline); in a container, the host's /proc")
		socket  = fs.String("podresources-socket", podresources.DefaultSocket, "kubelet pod-resources gRPC socket (one connection kept open across scrapes)")
		state   = fs.String("cpu-manager-state", cpuiso.DefaultCPUManagerState, "kubelet CPU manager state file (<kubelet --root-dir>/cpu_manager_state); a missing file exports nothing")
	)
	return func() ([]dataplane.Collector, error) {
		var cs []dataplane.Collector
		if *sriovOn {
			cs = append(cs, sriov.New(sriov.Options{Sys: *sysRoot}))
		}
		if *hugeOn {
			cs = append(cs, hugepages.New(*sysRoot))
		}
		if *cpuOn {
			cs = append(cs, cpuiso.New(cpuiso.Options{Sys: *sysRoot, Proc: *proc, CPUManagerState: *state}))
		}
		if *podOn {
			pr, err := podresources.New(podresources.Options{Socket: *socket, Node: nodeName(fs)})
			if err != nil {
				return nil, fmt.Errorf("--podresources-socket: %w", err)
			}
			cs = append(cs, pr)
		}
		return cs, nil
	}
}

// nodeName is the node label of the pod-resources metrics: the dataplane
// command's --node flag when it has one, else the host name (a DaemonSet
// pod with hostNetwork has the node's).
func nodeName(fs *flag.FlagSet) string {
	if f := fs.Lookup("node"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}
