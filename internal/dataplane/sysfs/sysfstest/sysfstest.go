// Package sysfstest builds fake sysfs and procfs trees in a test's temp
// directory, shaped like the kernel's: PCI devices under devices/, symlinks
// from class/net, bus/pci/devices and bus/pci/drivers, virtfnN and physfn
// links between PFs and VFs, and the per-driver VF stats layouts of ice,
// i40e and mlx5. Only SR-IOV hardware and the kubelet cannot run on a test
// machine; everything else the collectors read is the real file format.
package sysfstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/dataplane"
)

// Tree is a fake node: Sys and Proc are the roots to pass as --sysfs and
// --procfs.
type Tree struct {
	Sys, Proc string
	tb        testing.TB
}

// New makes an empty tree under tb.TempDir() with a 2-CPU, one-node
// topology, no huge pages and a plain kernel command line.
func New(tb testing.TB) *Tree {
	tb.Helper()
	root := tb.TempDir()
	t := &Tree{Sys: filepath.Join(root, "sys"), Proc: filepath.Join(root, "proc"), tb: tb}
	t.Mkdir("class/net")
	t.Mkdir("bus/pci/drivers")
	t.Mkdir("kernel/mm/hugepages")
	t.WriteProc("cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n")
	t.WriteProc("mounts", "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw,relatime 0 0\n")
	return t
}

// Write writes content to a file under Sys, creating parent directories.
func (t *Tree) Write(rel, content string) {
	t.tb.Helper()
	write(t.tb, filepath.Join(t.Sys, rel), content)
}

// WriteProc writes content to a file under Proc.
func (t *Tree) WriteProc(rel, content string) {
	t.tb.Helper()
	write(t.tb, filepath.Join(t.Proc, rel), content)
}

// Mkdir makes a directory under Sys.
func (t *Tree) Mkdir(rel string) {
	t.tb.Helper()
	if err := os.MkdirAll(filepath.Join(t.Sys, rel), 0o755); err != nil {
		t.tb.Fatal(err)
	}
}

// Symlink makes the link Sys/rel pointing at target (relative, as sysfs's are).
func (t *Tree) Symlink(rel, target string) {
	t.tb.Helper()
	p := filepath.Join(t.Sys, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.tb.Fatal(err)
	}
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.tb.Fatal(err)
	}
}

// Remove deletes Sys/rel (a file, link or tree).
func (t *Tree) Remove(rel string) {
	t.tb.Helper()
	if err := os.RemoveAll(filepath.Join(t.Sys, rel)); err != nil {
		t.tb.Fatal(err)
	}
}

func write(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Stats styles of the per-VF sysfs counters.
const (
	StatsNone = ""     // the in-tree i40e and most drivers: netlink only
	StatsDir  = "dir"  // ice, out-of-tree i40e: sriov/N/stats/<counter> files
	StatsFile = "file" // mlx5 legacy mode: one sriov/N/stats file of "name : value" lines
)

// PF describes a physical function to lay out.
type PF struct {
	Name     string // interface name, e.g. ens1f0
	PCI      string // e.g. 0000:3b:00.0; VFs get 0000:3b:<1+i/8>.<i%8>
	Driver   string // ice, i40e, mlx5_core
	Vendor   string // 0x8086, 0x15b3
	Device   string
	NUMA     int
	TotalVFs int
	NumVFs   int
	// VFDriver is bound to every VF ("" leaves them unbound); VFDrivers
	// overrides it per VF id.
	VFDriver  string
	VFDrivers map[int]string
	Stats     string // StatsNone, StatsDir or StatsFile
	// Representors adds a switchdev representor netdev per VF (mlx5),
	// which shares the PF's PCI device.
	Representors bool
}

// ICE, I40E and MLX5 are PFs shaped like the real NICs' drivers.
func ICE(name, pci string, numa, vfs int) PF {
	return PF{Name: name, PCI: pci, Driver: "ice", Vendor: "0x8086", Device: "0x159b", NUMA: numa, TotalVFs: 128, NumVFs: vfs, VFDriver: "iavf", Stats: StatsDir}
}

// I40E is an Intel 700-series PF with the in-tree driver (no sysfs VF stats).
func I40E(name, pci string, numa, vfs int) PF {
	return PF{Name: name, PCI: pci, Driver: "i40e", Vendor: "0x8086", Device: "0x1572", NUMA: numa, TotalVFs: 64, NumVFs: vfs, VFDriver: "iavf", Stats: StatsNone}
}

// MLX5 is a Mellanox ConnectX PF in legacy SR-IOV mode with per-VF stats files.
func MLX5(name, pci string, numa, vfs int) PF {
	return PF{Name: name, PCI: pci, Driver: "mlx5_core", Vendor: "0x15b3", Device: "0x1017", NUMA: numa, TotalVFs: 8, NumVFs: vfs, VFDriver: "mlx5_core", Stats: StatsFile}
}

const bridge = "devices/pci0000:00/0000:00:02.0"

// DevPath is the PCI device directory of a PCI address, relative to Sys.
func DevPath(pci string) string { return bridge + "/" + pci }

// VFAddress is the PCI address the tree gives a PF's VF i.
func VFAddress(pfPCI string, i int) string {
	dom, rest, _ := strings.Cut(pfPCI, ":")
	bus, _, _ := strings.Cut(rest, ":")
	return fmt.Sprintf("%s:%s:%02x.%d", dom, bus, 1+i/8, i%8)
}

// AddPF lays out a PF, its VFs and their drivers, netdevs and stats.
func (t *Tree) AddPF(pf PF) {
	t.tb.Helper()
	dev := DevPath(pf.PCI)
	t.pciDevice(pf.PCI, pf.Vendor, pf.Device, pf.NUMA, pf.Driver)
	t.Write(dev+"/sriov_totalvfs", strconv.Itoa(pf.TotalVFs)+"\n")
	t.Write(dev+"/sriov_numvfs", strconv.Itoa(pf.NumVFs)+"\n")
	t.netdev(pf.PCI, pf.Name, "p0")
	for i := 0; i < pf.NumVFs; i++ {
		vf := VFAddress(pf.PCI, i)
		drv := pf.VFDriver
		if d, ok := pf.VFDrivers[i]; ok {
			drv = d
		}
		t.pciDevice(vf, pf.Vendor, pf.Device, pf.NUMA, drv)
		t.Symlink(dev+"/virtfn"+strconv.Itoa(i), "../"+vf)
		t.Symlink(DevPath(vf)+"/physfn", "../"+pf.PCI)
		if drv != "" && drv != "vfio-pci" {
			t.netdev(vf, fmt.Sprintf("%sv%d", pf.Name, i), "")
		}
		if pf.Representors {
			t.netdev(pf.PCI, fmt.Sprintf("%s_%d", pf.Name, i), fmt.Sprintf("pf0vf%d", i))
		}
		if pf.Stats != StatsNone {
			t.SetVFStats(pf, i, DefaultVFStats(i))
		}
	}
}

// DefaultVFStats are the counters AddPF writes for VF i: distinct per VF
// and per counter so a test sees any mix-up.
func DefaultVFStats(i int) map[string]uint64 {
	b := uint64(i+1) * 1000
	return map[string]uint64{
		"rx_packets": b + 1, "tx_packets": b + 2, "rx_bytes": (b + 1) * 64, "tx_bytes": (b + 2) * 64,
		"rx_dropped": b + 3, "tx_dropped": b + 4, "rx_multicast": b + 5, "rx_broadcast": b + 6,
		"tx_multicast": b + 7, "tx_broadcast": b + 8, "tx_errors": b + 9,
	}
}

// SetVFStats writes a VF's sysfs counters in the PF's style.
func (t *Tree) SetVFStats(pf PF, i int, stats map[string]uint64) {
	t.tb.Helper()
	p := DevPath(pf.PCI) + "/sriov/" + strconv.Itoa(i) + "/stats"
	switch pf.Stats {
	case StatsDir:
		for k, v := range stats {
			t.Write(p+"/"+k, strconv.FormatUint(v, 10)+"\n")
		}
	case StatsFile:
		var b strings.Builder
		for _, k := range []string{"tx_packets", "tx_bytes", "tx_dropped", "rx_packets", "rx_bytes", "rx_broadcast", "rx_multicast", "tx_broadcast", "tx_multicast", "rx_dropped", "tx_errors"} {
			if v, ok := stats[k]; ok {
				fmt.Fprintf(&b, "%-14s: %d\n", k, v)
			}
		}
		t.Write(p, b.String())
	}
}

func (t *Tree) pciDevice(pci, vendor, device string, numa int, driver string) {
	dev := DevPath(pci)
	t.Write(dev+"/vendor", vendor+"\n")
	t.Write(dev+"/device", device+"\n")
	t.Write(dev+"/class", "0x020000\n")
	t.Write(dev+"/numa_node", strconv.Itoa(numa)+"\n")
	t.Symlink("bus/pci/devices/"+pci, "../../../"+dev)
	if driver != "" {
		t.Mkdir("bus/pci/drivers/" + driver)
		t.Symlink(dev+"/driver", "../../../../bus/pci/drivers/"+driver)
		t.Symlink("bus/pci/drivers/"+driver+"/"+pci, "../../../../"+dev)
	}
}

func (t *Tree) netdev(pci, name, portName string) {
	nd := DevPath(pci) + "/net/" + name
	t.Write(nd+"/address", "02:00:00:00:00:01\n")
	t.Write(nd+"/operstate", "up\n")
	if portName != "" {
		t.Write(nd+"/phys_port_name", portName+"\n")
	}
	t.Symlink(nd+"/device", "../../../"+pci)
	t.Symlink("class/net/"+name, "../../"+nd)
}

// AddNetdev adds a netdev without SR-IOV (a virtio NIC, a VF of another
// host) on its own PCI device.
func (t *Tree) AddNetdev(name, pci, driver string, numa int) {
	t.tb.Helper()
	t.pciDevice(pci, "0x1af4", "0x1041", numa, driver)
	t.netdev(pci, name, "")
}

// AddNUMANode adds devices/system/node/nodeN with its CPU list.
func (t *Tree) AddNUMANode(n int, cpulist string) {
	t.tb.Helper()
	t.Write(fmt.Sprintf("devices/system/node/node%d/cpulist", n), cpulist+"\n")
}

// SetCPUs writes devices/system/cpu/{online,isolated,nohz_full}; a nohz
// of "-" leaves the file out, as a kernel without CONFIG_NO_HZ_FULL does.
func (t *Tree) SetCPUs(online, isolated, nohz string) {
	t.tb.Helper()
	t.Write("devices/system/cpu/online", online+"\n")
	t.Write("devices/system/cpu/isolated", isolated+"\n")
	if nohz == "-" {
		t.Remove("devices/system/cpu/nohz_full")
	} else {
		t.Write("devices/system/cpu/nohz_full", nohz+"\n")
	}
}

// Hugepages are one pool's counts.
type Hugepages struct{ Nr, Free, Resv, Surplus, Overcommit uint64 }

// SetHugepages writes a pool: system-wide when node < 0, else nodeN's
// (which, as in the kernel, has no resv or overcommit file).
func (t *Tree) SetHugepages(node int, sizeKB int, h Hugepages) {
	t.tb.Helper()
	dir := fmt.Sprintf("kernel/mm/hugepages/hugepages-%dkB", sizeKB)
	if node >= 0 {
		dir = fmt.Sprintf("devices/system/node/node%d/hugepages/hugepages-%dkB", node, sizeKB)
	}
	t.Write(dir+"/nr_hugepages", fmt.Sprintf("%d\n", h.Nr))
	t.Write(dir+"/free_hugepages", fmt.Sprintf("%d\n", h.Free))
	t.Write(dir+"/surplus_hugepages", fmt.Sprintf("%d\n", h.Surplus))
	if node < 0 {
		t.Write(dir+"/resv_hugepages", fmt.Sprintf("%d\n", h.Resv))
		t.Write(dir+"/nr_overcommit_hugepages", fmt.Sprintf("%d\n", h.Overcommit))
		t.Write(dir+"/nr_hugepages_mempolicy", fmt.Sprintf("%d\n", h.Nr))
	}
}

// DataplaneNode lays out a typical two-socket data-plane node: CPUs 0-15 on
// node 0 and 16-31 on node 1, isolated 4-15 and 20-31, 1 GiB pages on both
// nodes and 2 MiB pages on node 0, IOMMU on, vfio-pci loaded, hugetlbfs
// mounted. PFs are added by the caller.
func (t *Tree) DataplaneNode() {
	t.tb.Helper()
	t.AddNUMANode(0, "0-15")
	t.AddNUMANode(1, "16-31")
	t.SetCPUs("0-31", "4-15,20-31", "4-15,20-31")
	t.SetHugepages(-1, 2048, Hugepages{Nr: 1024, Free: 1000, Resv: 10})
	t.SetHugepages(-1, 1048576, Hugepages{Nr: 16, Free: 12})
	t.SetHugepages(0, 2048, Hugepages{Nr: 1024, Free: 1000})
	t.SetHugepages(0, 1048576, Hugepages{Nr: 8, Free: 6})
	t.SetHugepages(1, 2048, Hugepages{})
	t.SetHugepages(1, 1048576, Hugepages{Nr: 8, Free: 6})
	t.WriteProc("cmdline", "BOOT_IMAGE=/vmlinuz-6.1.0 root=/dev/sda1 ro intel_iommu=on iommu=pt default_hugepagesz=1G hugepagesz=1G hugepages=16 isolcpus=managed_irq,domain,4-15,20-31 nohz_full=4-15,20-31 rcu_nocbs=4-15,20-31\n")
	t.WriteProc("mounts", "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw,relatime 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=1024M 0 0\n")
	for g := 0; g < 4; g++ {
		t.Mkdir(fmt.Sprintf("kernel/iommu_groups/%d/devices", g))
	}
	t.Mkdir("bus/pci/drivers/vfio-pci")
	t.Mkdir("module/vfio_pci")
	t.Write("module/vfio/parameters/enable_unsafe_noiommu_mode", "N\n")
}

// Adapter runs a dataplane.Collector as a prometheus.Collector, as the
// agent's exporter does, keeping the collector's last error.
type Adapter struct {
	C  dataplane.Collector
	mu sync.Mutex
	// err is the error of the last Collect.
	err error
}

// Describe implements prometheus.Collector.
func (a *Adapter) Describe(ch chan<- *prometheus.Desc) { a.C.Describe(ch) }

// Collect implements prometheus.Collector.
func (a *Adapter) Collect(ch chan<- prometheus.Metric) {
	err := a.C.Collect(context.Background(), ch)
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

// Err is the error the last Collect returned.
func (a *Adapter) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
