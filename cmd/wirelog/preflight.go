package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/preflight"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// runPreflight prints a node readiness report for SR-IOV and DPDK pods and
// fails (exit 1) when any check fails. It reads files only.
func runPreflight(ctx context.Context, args []string) error {
	fs := newFlagSet("preflight", "Node readiness report for SR-IOV and DPDK pods: IOMMU, VFs and their drivers,\n"+
		"huge pages per NUMA node, hugetlbfs, isolated CPUs on the NIC's NUMA node, kubelet CPU and\n"+
		"topology manager policies, vfio-pci. Each check passes, warns or fails with a one-line fix.\n"+
		"Reads only; changes nothing. Exit status 1 when any check fails.")
	var (
		jsonOut = fs.Bool("json", false, "print the report as JSON instead of a table")
		sysRoot = fs.String("sysfs", sysfs.DefaultSys, "sysfs mount to read; in a container, the host's /sys")
		proc    = fs.String("procfs", sysfs.DefaultProc, "procfs mount to read (cmdline, mounts, modules); in a container, the host's /proc")
		kubelet = fs.String("kubelet-config", "", "kubelet config file (YAML or JSON KubeletConfiguration) for the CPU and topology manager policies; empty skips the topology manager check")
		state   = fs.String("cpu-manager-state", cpuiso.DefaultCPUManagerState, "kubelet CPU manager state file (<kubelet --root-dir>/cpu_manager_state)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep := preflight.Run(preflight.Options{Sys: *sysRoot, Proc: *proc, KubeletConfig: *kubelet, CPUManagerState: *state})
	var err error
	if *jsonOut {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("node not ready: %d of %d checks failed", n, len(rep.Results))
	}
	return nil
}
