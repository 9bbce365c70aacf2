package sriov

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// VF counters from netlink. A veth has no VFs, so the VF info a PF's
// RTM_GETLINK reply carries is given here as the netlink library parses it
// (netlink.VfInfo); the PF without sysfs stats (in-tree i40e) must take its
// VF counters from it, and a VF netlink does not list must stay "none".
func TestVFCountersFromNetlinkVFInfo(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.I40E("ens2f0", "0000:5e:00.0", 1, 3))
	c := New(Options{Sys: tree.Sys})
	c.lookup = func(name string) (*netlink.LinkAttrs, error) {
		if name != "ens2f0" {
			t.Errorf("netlink asked for %q", name)
		}
		return &netlink.LinkAttrs{Name: name, Vfs: []netlink.VfInfo{
			{ID: 0, RxPackets: 10, TxPackets: 20, RxBytes: 640, TxBytes: 1280, RxDropped: 1, TxDropped: 2, Multicast: 3, Broadcast: 4},
			{ID: 1, RxPackets: 11},
		}}, nil
	}
	a := &sysfstest.Adapter{C: c}
	want := `
# HELP sriov_vf_info SR-IOV virtual function inventory; always 1. binding is netdevice, vfio, uio, stub or unbound; stats_source is sysfs, netlink or none.
# TYPE sriov_vf_info gauge
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens2f0v0",numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",stats_source="netlink",vf="0"} 1
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens2f0v1",numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",stats_source="netlink",vf="1"} 1
sriov_vf_info{binding="netdevice",driver="iavf",netdev="ens2f0v2",numa_node="1",pci_address="0000:5e:01.2",pf="ens2f0",stats_source="none",vf="2"} 1
# HELP sriov_vf_rx_broadcast_total Broadcast packets received by the VF.
# TYPE sriov_vf_rx_broadcast_total counter
sriov_vf_rx_broadcast_total{numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",vf="0"} 4
sriov_vf_rx_broadcast_total{numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",vf="1"} 0
# HELP sriov_vf_rx_packets_total Packets received by the VF.
# TYPE sriov_vf_rx_packets_total counter
sriov_vf_rx_packets_total{numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",vf="0"} 10
sriov_vf_rx_packets_total{numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",vf="1"} 11
# HELP sriov_vf_tx_bytes_total Bytes sent by the VF.
# TYPE sriov_vf_tx_bytes_total counter
sriov_vf_tx_bytes_total{numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",vf="0"} 1280
sriov_vf_tx_bytes_total{numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",vf="1"} 0
# HELP sriov_vf_tx_dropped_total Packets to send the VF dropped.
# TYPE sriov_vf_tx_dropped_total counter
sriov_vf_tx_dropped_total{numa_node="1",pci_address="0000:5e:01.0",pf="ens2f0",vf="0"} 2
sriov_vf_tx_dropped_total{numa_node="1",pci_address="0000:5e:01.1",pf="ens2f0",vf="1"} 0
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "sriov_vf_info", "sriov_vf_rx_broadcast_total", "sriov_vf_rx_packets_total", "sriov_vf_tx_bytes_total", "sriov_vf_tx_dropped_total"); err != nil {
		t.Fatal(err)
	}
	// Counters only drivers' sysfs files have are not invented as zeros.
	if n := testutil.CollectAndCount(a, "sriov_vf_tx_errors_total", "sriov_vf_tx_multicast_total"); n != 0 {
		t.Errorf("netlink source exported %d sysfs-only series", n)
	}
}
