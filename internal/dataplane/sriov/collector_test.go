package sriov_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// newNetns makes a fresh network namespace with IPv6 off (so the kernel
// sends nothing on its own) and a netlink handle in it. Everything in it
// goes away in cleanup.
func newNetns(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New() // switches this thread into it
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	for _, f := range []string{"/proc/sys/net/ipv6/conf/default/disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6"} {
		_ = os.WriteFile(f, []byte("1"), 0o644) // absent without IPv6: then nothing to silence
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine ends instead of reusing it in the wrong namespace.
		t.Fatalf("return to original netns: %v", err)
	}
	runtime.UnlockOSThread()
	orig.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle in netns: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close() // the last reference: the kernel deletes the namespace and its links
	})
	return ns, h
}

// addVeth adds a veth pair in the namespace, both ends up, deleted in cleanup.
func addVeth(t *testing.T, h *netlink.Handle, name, peer string) netlink.Link {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := h.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	t.Cleanup(func() { _ = h.LinkDel(v) })
	for _, n := range []string{name, peer} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sendFrames writes n raw Ethernet frames of size bytes out of ifindex in ns.
func sendFrames(t *testing.T, ns netns.NsHandle, ifindex, n, size int) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fd, sockErr := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to original netns: %v", err) // thread stays locked and is discarded
	}
	runtime.UnlockOSThread()
	orig.Close()
	if sockErr != nil {
		t.Fatalf("packet socket: %v", sockErr)
	}
	defer unix.Close(fd)
	frame := make([]byte, size)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5}) // broadcast, local experimental ethertype
	to := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for i := 0; i < n; i++ {
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			t.Fatalf("send frame %d: %v", i, err)
		}
	}
}

// collector returns a Collector over tree whose netlink looks into a fresh,
// empty network namespace, so no host interface leaks into a test.
func collector(t *testing.T, tree *sysfstest.Tree) (*sysfstest.Adapter, *netlink.Handle, netns.NsHandle) {
	t.Helper()
	ns, h := newNetns(t)
	c := sriov.New(sriov.Options{Sys: tree.Sys, Netlink: h})
	t.Cleanup(func() { c.Close() })
	return &sysfstest.Adapter{C: c}, h, ns
}

func TestICEWithVFsExportsInventoryAndSysfsCounters(t *testing.T) {
	tree := sysfstest.New(t)
	pf := sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 3)
	pf.VFDrivers = map[int]string{1: "vfio-pci", 2: ""}
	tree.AddPF(pf)
	tree.AddNetdev("eno1", "0000:00:1f.6", "e1000e", -1) // not SR-IOV: must not show up
	a, _, _ := collector(t, tree)

	want := `
# HELP sriov_pf_info SR-IOV physical function inventory; always 1.
# TYPE sriov_pf_info gauge
sriov_pf_info{driver="ice",numa_node="0",pci_address="0000:3b:00.0",pf="ens1f0"} 1
# HELP sriov_pf_vfs_configured VFs created on the PF now (sysfs sriov_numvfs).
# TYPE sriov_pf_vfs_configured gauge
sriov_pf_vfs_configured{pf="ens1f0"} 3
# HELP sriov_pf_vfs_supported Most VFs the PF supports (sysfs sriov_totalvfs).
# TYPE sriov_pf_vfs_supported gauge
sriov_pf_vfs_supported{pf="ens1f0"} 128
# HELP sriov_vf_info SR-IOV virtual function inventory; always 1. binding is netdevice, vfio, uio, stub or unbound; stats_source is sysfs, netlink or none.
# TYPE sriov_vf_info gauge
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens1f0v0",numa_node="0",pci_address="0000:3b:01.0",pf="ens1f0",stats_source="sysfs",vf="0"} 1
sriov_vf_info{binding="vfio",driver="vfio-pci",netdev="",numa_node="0",pci_address="0000:3b:01.1",pf="ens1f0",stats_source="sysfs",vf="1"} 1
sriov_vf_info{binding="unbound",driver="",netdev="",numa_node="0",pci_address="0000:3b:01.2",pf="ens1f0",stats_source="sysfs",vf="2"} 1
# HELP sriov_vf_rx_packets_total Packets received by the VF.
# TYPE sriov_vf_rx_packets_total counter
sriov_vf_rx_packets_total{numa_node="0",pci_address="0000:3b:01.0",pf="ens1f0",vf="0"} 1001
sriov_vf_rx_packets_total{numa_node="0",pci_address="0000:3b:01.1",pf="ens1f0",vf="1"} 2001
sriov_vf_rx_packets_total{numa_node="0",pci_address="0000:3b:01.2",pf="ens1f0",vf="2"} 3001
# HELP sriov_vf_tx_bytes_total Bytes sent by the VF.
# TYPE sriov_vf_tx_bytes_total counter
sriov_vf_tx_bytes_total{numa_node="0",pci_address="0000:3b:01.0",pf="ens1f0",vf="0"} 64128
sriov_vf_tx_bytes_total{numa_node="0",pci_address="0000:3b:01.1",pf="ens1f0",vf="1"} 128128
sriov_vf_tx_bytes_total{numa_node="0",pci_address="0000:3b:01.2",pf="ens1f0",vf="2"} 192128
# HELP sriov_vf_tx_errors_total Send errors of the VF (sysfs source only).
# TYPE sriov_vf_tx_errors_total counter
sriov_vf_tx_errors_total{numa_node="0",pci_address="0000:3b:01.0",pf="ens1f0",vf="0"} 1009
sriov_vf_tx_errors_total{numa_node="0",pci_address="0000:3b:01.1",pf="ens1f0",vf="1"} 2009
sriov_vf_tx_errors_total{numa_node="0",pci_address="0000:3b:01.2",pf="ens1f0",vf="2"} 3009
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want),
		"sriov_pf_info", "sriov_pf_vfs_configured", "sriov_pf_vfs_supported", "sriov_vf_info",
		"sriov_vf_rx_packets_total", "sriov_vf_tx_bytes_total", "sriov_vf_tx_errors_total"); err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("collector error on a healthy tree: %v", err)
	}
	// Every counter a driver's stats dir has is exported once per VF.
	if n := testutil.CollectAndCount(a, "sriov_vf_rx_dropped_total", "sriov_vf_tx_dropped_total", "sriov_vf_rx_multicast_total", "sriov_vf_rx_broadcast_total", "sriov_vf_tx_multicast_total", "sriov_vf_tx_broadcast_total"); n != 6*3 {
		t.Errorf("got %d drop/multicast/broadcast series, want 18", n)
	}
}

func TestI40EWithoutSysfsStatsHasInventoryOnly(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.I40E("ens2f0", "0000:5e:00.0", 1, 2))
	a, _, _ := collector(t, tree)
	want := `
# HELP sriov_vf_info SR-IOV virtual function inventory; always 1. binding is netdevice, vfio, uio, stub or unbound; stats_source is sysfs, netlink or none.
# TYPE sriov_vf_info gauge
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens2f0v0",numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",stats_source="none",vf="0"} 1
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens2f0v1",numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",stats_source="none",vf="1"} 1
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "sriov_vf_info"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a, "sriov_vf_rx_packets_total"); n != 0 {
		t.Errorf("VF counters without any source: got %d series, want 0", n)
	}
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMLX5StatsFileAndSwitchdevRepresentors(t *testing.T) {
	tree := sysfstest.New(t)
	pf := sysfstest.MLX5("ens3f0np0", "0000:af:00.0", 1, 2)
	pf.Representors = true
	tree.AddPF(pf)
	a, _, _ := collector(t, tree)
	want := `
# HELP sriov_pf_info SR-IOV physical function inventory; always 1.
# TYPE sriov_pf_info gauge
sriov_pf_info{driver="mlx5_core",numa_node="1",pci_address="0000:af:00.0",pf="ens3f0np0"} 1
# HELP sriov_vf_rx_bytes_total Bytes received by the VF.
# TYPE sriov_vf_rx_bytes_total counter
sriov_vf_rx_bytes_total{numa_node="1",pci_address="0000:af:01.0",pf="ens3f0np0",vf="0"} 64064
sriov_vf_rx_bytes_total{numa_node="1",pci_address="0000:af:01.1",pf="ens3f0np0",vf="1"} 128064
# HELP sriov_vf_rx_dropped_total Received packets the VF dropped.
# TYPE sriov_vf_rx_dropped_total counter
sriov_vf_rx_dropped_total{numa_node="1",pci_address="0000:af:01.0",pf="ens3f0np0",vf="0"} 1003
sriov_vf_rx_dropped_total{numa_node="1",pci_address="0000:af:01.1",pf="ens3f0np0",vf="1"} 2003
`
	// The representors ens3f0np0_0/_1 share the PF's PCI device; they must
	// not appear as PFs of their own.
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "sriov_pf_info", "sriov_vf_rx_bytes_total", "sriov_vf_rx_dropped_total"); err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestPFWithoutVFs(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f1", "0000:3c:00.0", 0, 0))
	a, _, _ := collector(t, tree)
	want := `
# HELP sriov_pf_vfs_configured VFs created on the PF now (sysfs sriov_numvfs).
# TYPE sriov_pf_vfs_configured gauge
sriov_pf_vfs_configured{pf="ens1f1"} 0
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "sriov_pf_vfs_configured"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a, "sriov_vf_info"); n != 0 {
		t.Errorf("got %d VFs, want 0", n)
	}
}

// A veth stands in for a PF: netlink knows the link (so PF counters come
// from it) but reports no VF info, so the VFs fall back to sysfs or none.
func TestNetlinkLinkStatsAndNoVFInfo(t *testing.T) {
	tree := sysfstest.New(t)
	pf := sysfstest.I40E("ens1f0", "0000:3b:00.0", 0, 2)
	tree.AddPF(pf)
	a, h, ns := collector(t, tree)
	link := addVeth(t, h, "ens1f0", "peer0")

	before, err := h.LinkByName("ens1f0")
	if err != nil {
		t.Fatal(err)
	}
	if vfs := before.Attrs().Vfs; len(vfs) != 0 {
		t.Fatalf("a veth reports %d VFs; the test needs a link without VF info", len(vfs))
	}
	const frames, size = 25, 98
	sendFrames(t, ns, link.Attrs().Index, frames, size)

	want := `
# HELP sriov_pf_tx_bytes_total Bytes sent on the PF's interface.
# TYPE sriov_pf_tx_bytes_total counter
sriov_pf_tx_bytes_total{pf="ens1f0"} 2450
# HELP sriov_pf_tx_packets_total Packets sent on the PF's interface.
# TYPE sriov_pf_tx_packets_total counter
sriov_pf_tx_packets_total{pf="ens1f0"} 25
# HELP sriov_pf_rx_packets_total Packets received on the PF's interface (traffic the NIC switches to VFs is not counted here).
# TYPE sriov_pf_rx_packets_total counter
sriov_pf_rx_packets_total{pf="ens1f0"} 0
# HELP sriov_vf_info SR-IOV virtual function inventory; always 1. binding is netdevice, vfio, uio, stub or unbound; stats_source is sysfs, netlink or none.
# TYPE sriov_vf_info gauge
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens1f0v0",numa_node="0",pci_address="0000:3b:01.0",pf="ens1f0",stats_source="none",vf="0"} 1
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens1f0v1",numa_node="0",pci_address="0000:3b:01.1",pf="ens1f0",stats_source="none",vf="1"} 1
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "sriov_pf_tx_bytes_total", "sriov_pf_tx_packets_total", "sriov_pf_rx_packets_total", "sriov_vf_info"); err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("no VF info in netlink must not be an error: %v", err)
	}
	// The peer received what the PF side sent: the counters are read per
	// link, not mixed up.
	peer, err := h.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	if got := peer.Attrs().Statistics.RxPackets; got != frames {
		t.Errorf("peer rx_packets = %d, want %d", got, frames)
	}
}

func TestBrokenFilesGiveErrorsNotPanics(t *testing.T) {
	tree := sysfstest.New(t)
	good := sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 2)
	tree.AddPF(good)
	tree.AddPF(sysfstest.ICE("ens2f0", "0000:5e:00.0", 1, 2))
	tree.AddPF(sysfstest.MLX5("ens3f0", "0000:af:00.0", 1, 1))
	tree.AddPF(sysfstest.ICE("ens4f0", "0000:d8:00.0", 1, 2))

	// ens2f0: garbage in sriov_numvfs. ens1f0: VF 1's device is gone but
	// its virtfn link is still there, and VF 0 has a garbage counter.
	// ens3f0: the mlx5 stats file is truncated mid-line. ens4f0: healthy.
	tree.Write(sysfstest.DevPath("0000:5e:00.0")+"/sriov_numvfs", "two\n")
	tree.Remove(sysfstest.DevPath(sysfstest.VFAddress("0000:3b:00.0", 1)))
	tree.Write(sysfstest.DevPath("0000:3b:00.0")+"/sriov/0/stats/rx_packets", "12x\n")
	tree.Write(sysfstest.DevPath("0000:af:00.0")+"/sriov/0/stats", "tx_packets    : 5\nrx_pack")

	a, _, _ := collector(t, tree)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather must succeed with broken files, got %v", err)
	}
	err := a.Err()
	if err == nil {
		t.Fatal("no collector error for broken sysfs files")
	}
	for _, want := range []string{
		"sriov_numvfs", `"two"`, // names the file and its content
		"VF 1", "points to a missing device",
		"rx_packets", `"12x"`,
		"line 2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, sysfs.ErrMalformed) {
		t.Errorf("error does not wrap sysfs.ErrMalformed: %v", err)
	}
	// What could be read is still exported: ens1f0 with VF 0 and ens4f0
	// whole; ens2f0 not at all.
	if n := testutil.CollectAndCount(a, "sriov_pf_info"); n != 3 {
		t.Errorf("got %d PFs, want 3 (ens2f0 left out)", n)
	}
	if n := testutil.CollectAndCount(a, "sriov_vf_info"); n != 1+1+2 {
		t.Errorf("got %d VFs, want 4", n)
	}
}

func TestDanglingDriverLinkAndMissingNUMA(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 1))
	vf := sysfstest.DevPath(sysfstest.VFAddress("0000:3b:00.0", 0))
	// A driver link into nowhere still names its driver; a VF without
	// numa_node shares the PF's.
	tree.Symlink(vf+"/driver", "../../../../bus/pci/drivers/gone_driver")
	tree.Remove(vf + "/numa_node")
	pfs, err := sriov.Discover(tree.Sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pfs) != 1 || len(pfs[0].VFs) != 1 {
		t.Fatalf("got %+v", pfs)
	}
	if got := pfs[0].VFs[0]; got.Driver != "gone_driver" || got.NUMANode != 0 || got.Binding != sriov.BindingNetdevice {
		t.Errorf("VF = %+v", got)
	}
}

func TestMissingSysfsRootIsEmptyNotError(t *testing.T) {
	c := sriov.New(sriov.Options{Sys: filepath.Join(t.TempDir(), "nope")})
	defer c.Close()
	a := &sysfstest.Adapter{C: c}
	if n := testutil.CollectAndCount(a); n != 0 {
		t.Errorf("got %d series from a missing sysfs", n)
	}
	if a.Err() != nil {
		t.Errorf("a node without class/net is not an error: %v", a.Err())
	}
}

func TestCollectStopsWhenScrapeAbandoned(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 16))
	_, h := newNetns(t)
	c := sriov.New(sriov.Options{Sys: tree.Sys, Netlink: h})
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan prometheus.Metric) // nobody reads: a timed-out scrape
	done := make(chan error, 1)
	go func() { done <- c.Collect(ctx, ch) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Collect after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Collect blocked on an unread channel after its context was cancelled")
	}
}

func TestMetricsPassLint(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 2))
	tree.AddPF(sysfstest.MLX5("ens3f0", "0000:af:00.0", 1, 2))
	a, h, _ := collector(t, tree)
	addVeth(t, h, "ens1f0", "peer0")
	problems, err := testutil.CollectAndLint(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
