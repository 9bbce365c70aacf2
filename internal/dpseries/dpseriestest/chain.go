// Package dpseriestest starts the data-plane chain the dashboard reads in
// tests: a real dpdk-testpmd, the real `wirelog dataplane` agent, and
// Debian's Prometheus scraping it. The node's SR-IOV NIC and its kubelet
// are the two fakes the project allows (a sysfs tree, the pod-resources
// gRPC API on a unix socket); huge pages and CPUs are this machine's. Only
// tests import it.
package dpseriestest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wirelog/wirelog/internal/dataplane/dpdk/dpdktest"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/testproc"
)

// Node is the node label the agent puts on its series.
const Node = "test-node"

// PF is the node's SR-IOV NIC: an Intel E810 port (ice, per-VF sysfs
// counters) with four VFs, 0000:3b:01.0 to 0000:3b:01.3.
var PF = sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4)

// VFOwner is the container the kubelet gave a VF.
type VFOwner struct{ Namespace, Pod, Container, Resource string }

// VFOwners are the VFs the fake kubelet has handed out, by PCI address;
// the PF's other VFs are unassigned.
var VFOwners = map[string]VFOwner{
	sysfstest.VFAddress(PF.PCI, 0): {"telco", "cnf-0", "dpdk", "intel.com/sriov_dpdk"},
	sysfstest.VFAddress(PF.PCI, 1): {"telco", "cnf-1", "dpdk", "intel.com/sriov_dpdk"},
}

// DroppingVF is the VF whose counters also show drops (a few per second).
var DroppingVF = sysfstest.VFAddress(PF.PCI, 1)

// Counter movement of the fake NIC: every vfTick each VF receives
// vfRxPerTick*(i+1) packets and sends half that; DroppingVF drops
// vfDropsPerTick. Bounded by vfMaxRun whatever the test does.
const (
	vfTick         = 500 * time.Millisecond
	vfRxPerTick    = 500
	vfDropsPerTick = 5
	vfMaxRun       = 20 * time.Minute
)

// StartChain runs what an operator runs: a real dpdk-testpmd, the real
// `wirelog dataplane` agent reading its telemetry, and Debian's Prometheus
// scraping the agent every second. It returns Prometheus's URL.
func StartChain(t testing.TB, bin string) string {
	t.Helper()
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: run scripts/deps/20-dpdk-ovs.sh (Debian package prometheus)")
	}
	agentAddr := StartAgent(t, bin)

	pdir := t.TempDir()
	cfg := filepath.Join(pdir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: wirelog-dataplane\n    static_configs:\n      - targets: [%q]\n", agentAddr)), 0o644)
	promAddr := freeport.Addr(t)
	pc := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(pdir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	pc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Process.Signal(syscall.SIGTERM); pc.Wait() })
	base := "http://" + promAddr
	testproc.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("prometheus /-/ready: %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

// StartAgent runs a real dpdk-testpmd and the real `wirelog dataplane`
// agent (bin) reading its telemetry, this machine's huge pages and CPUs,
// a fake SR-IOV NIC (PF, whose VF counters move) and a fake kubelet that
// gave VFOwners their VFs; it returns the agent's address.
func StartAgent(t testing.TB, bin string) string {
	t.Helper()
	dpdktest.StartTestpmd(t, 2)
	sys := startSRIOVNode(t)
	var pods []*v1.PodResources
	for pci, o := range VFOwners {
		pods = append(pods, &v1.PodResources{Name: o.Pod, Namespace: o.Namespace, Containers: []*v1.ContainerResources{{
			Name: o.Container, Devices: []*v1.ContainerDevices{{ResourceName: o.Resource, DeviceIds: []string{pci}}},
		}}})
	}
	kubelet := sysfstest.StartKubelet(t, pods, nil)
	agentAddr := freeport.Addr(t)
	agent := exec.Command(bin, "dataplane", "--listen", agentAddr, "--node", Node,
		"--collector.ovs=false", "--sysfs", sys, "--podresources-socket", kubelet.Socket)
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })

	testproc.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + agentAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return agentAddr
}

// startSRIOVNode lays out a sysfs tree whose PCI side is the fake NIC and
// whose kernel/mm/hugepages and devices/system are links to this machine's
// /sys, so the huge page and CPU collectors read the real ones; it moves
// the VF counters until the test ends and returns the tree's root.
func startSRIOVNode(t testing.TB) string {
	t.Helper()
	tree := sysfstest.New(t)
	tree.Remove("kernel/mm/hugepages")
	tree.Symlink("kernel/mm/hugepages", "/sys/kernel/mm/hugepages")
	tree.Symlink("devices/system", "/sys/devices/system")
	tree.AddPF(PF)
	ctx, cancel := context.WithTimeout(context.Background(), vfMaxRun)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tk := time.NewTicker(vfTick)
		defer tk.Stop()
		stats := make([]map[string]uint64, PF.NumVFs)
		for i := range stats {
			stats[i] = sysfstest.DefaultVFStats(i)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			for i, st := range stats {
				st["rx_packets"] += uint64(vfRxPerTick * (i + 1))
				st["tx_packets"] += uint64(vfRxPerTick * (i + 1) / 2)
				if sysfstest.VFAddress(PF.PCI, i) == DroppingVF {
					st["rx_dropped"] += vfDropsPerTick
				}
				for _, k := range []string{"rx_packets", "tx_packets", "rx_dropped"} {
					// The ice driver's layout (sysfstest.StatsDir), written
					// in place: the agent holds the files open and re-reads
					// them at offset 0, as sysfs attributes are read, so a
					// renamed-over file would never change for it. A counter
					// only grows, so the new text covers the old, and
					// without O_TRUNC a read never sees an empty file.
					p := filepath.Join(tree.Sys, sysfstest.DevPath(PF.PCI), "sriov", strconv.Itoa(i), "stats", k)
					if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
						f.WriteAt([]byte(strconv.FormatUint(st[k], 10)+"\n"), 0)
						f.Close()
					}
				}
			}
		}
	}()
	return tree.Sys
}
