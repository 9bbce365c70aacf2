// Package sriov finds a node's SR-IOV physical functions (PFs) and their
// virtual functions (VFs) in sysfs and exports their inventory and VF
// counters: from the driver's own sysfs stats files where it has them (ice
// and i40e out-of-tree drivers, mlx5 legacy mode), else from the PF's
// netlink VF info (IFLA_VF_STATS).
package sriov

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Binding says how a VF is driven, which decides who can use it: a pod
// gets a netdevice VF as a kernel interface (moved into its network
// namespace by the SR-IOV CNI) and a vfio VF as a /dev/vfio device for DPDK.
const (
	BindingNetdevice = "netdevice" // a kernel network driver: iavf, ixgbevf, mlx5_core…
	BindingVFIO      = "vfio"      // vfio-pci: userspace (DPDK) through the IOMMU
	BindingUIO       = "uio"       // igb_uio / uio_pci_generic: userspace without IOMMU protection
	BindingStub      = "stub"      // pci-stub: reserved, usable by nobody
	BindingUnbound   = "unbound"   // no driver: the device plugin cannot hand it out
)

// PF is an SR-IOV capable physical function with a network interface.
type PF struct {
	Name       string // interface name, e.g. ens1f0
	PCIAddress string // e.g. 0000:3b:00.0
	Driver     string // e.g. ice, i40e, mlx5_core
	NUMANode   int    // -1 when the platform does not say
	TotalVFs   uint64 // sriov_totalvfs: the most VFs the device supports
	NumVFs     uint64 // sriov_numvfs: VFs created now
	VFs        []VF   // in VF id order
	// DevicePath is the PF's PCI device directory (…/device), where the
	// driver's per-VF sriov/N/stats files live.
	DevicePath string
}

// VF is one virtual function of a PF.
type VF struct {
	ID         int
	PCIAddress string
	Driver     string // "" when unbound
	Binding    string // one of the Binding constants
	NUMANode   int
	Netdev     string // interface name when a netdevice driver has one in this network namespace
}

// Discover lists the SR-IOV PFs under <sysRoot>/class/net, sorted by name.
// A PF whose files are broken is left out and its error joined into the
// returned error; the others are still returned.
func Discover(sysRoot string) ([]PF, error) {
	classNet := filepath.Join(sysRoot, "class", "net")
	entries, err := os.ReadDir(classNet)
	if err != nil {
		if sysfs.IsNotExist(err) {
			return nil, nil // no networking in this sysfs: nothing to report
		}
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var (
		pfs  []PF
		errs []error
		seen = map[string]bool{} // PCI addresses already listed
	)
	for _, e := range entries {
		name := e.Name()
		dev := filepath.Join(classNet, name, "device")
		if _, err := os.Lstat(filepath.Join(dev, "sriov_totalvfs")); err != nil {
			continue // not a PF (a VF, a virtual device, or a NIC without SR-IOV)
		}
		if isRepresentor(filepath.Join(classNet, name)) {
			continue // switchdev VF representor: shares the PF's PCI device
		}
		pf, vfErr, err := readPF(name, dev)
		if err != nil {
			errs = append(errs, fmt.Errorf("SR-IOV PF %s: %w", name, err))
			continue
		}
		if vfErr != nil {
			// Keep the PF and the VFs that could be read.
			errs = append(errs, fmt.Errorf("SR-IOV PF %s: %w", name, vfErr))
		}
		if seen[pf.PCIAddress] {
			// Two netdevs on one PCI function (an uplink and a representor
			// the kernel did not name pfNvfM): keep the first by name.
			continue
		}
		seen[pf.PCIAddress] = true
		pfs = append(pfs, pf)
	}
	return pfs, errors.Join(errs...)
}

// isRepresentor reports whether a netdev is a switchdev VF representor,
// whose phys_port_name the kernel writes as pfNvfM (or cNpfNvfM).
func isRepresentor(netdev string) bool {
	s, err := sysfs.ReadString(filepath.Join(netdev, "phys_port_name"))
	if err != nil {
		return false // most drivers return EOPNOTSUPP: not a representor
	}
	i := strings.Index(s, "pf")
	return i >= 0 && strings.Contains(s[i:], "vf")
}

// readPF reads one PF. A broken PF file is err; broken VFs are left out
// and reported in vfErr.
func readPF(name, dev string) (pf PF, vfErr, err error) {
	pf = PF{Name: name, DevicePath: dev}
	if pf.PCIAddress, err = sysfs.LinkBase(dev); err != nil {
		return pf, nil, fmt.Errorf("read PCI address: %w", err)
	}
	// Every later path goes through the PF's real directory: the kernel
	// then walks no class/net and device symlinks on each of the
	// thousands of opens a scrape of many VFs makes.
	resolved := false
	if real, err := filepath.EvalSymlinks(dev); err == nil {
		dev, pf.DevicePath, resolved = real, real, true
	}
	if pf.Driver, err = driverOf(dev); err != nil {
		return pf, nil, err
	}
	if pf.NUMANode, err = numaNode(dev); err != nil {
		return pf, nil, err
	}
	if pf.TotalVFs, err = sysfs.ReadUint(filepath.Join(dev, "sriov_totalvfs")); err != nil {
		return pf, nil, err
	}
	if pf.NumVFs, err = sysfs.ReadUint(filepath.Join(dev, "sriov_numvfs")); err != nil {
		return pf, nil, err
	}
	ids, err := virtfnIDs(dev)
	if err != nil {
		return pf, nil, err
	}
	var errs []error
	for _, id := range ids {
		vf, err := readVF(dev, resolved, id, pf.NUMANode)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pf.VFs = append(pf.VFs, vf)
	}
	return pf, errors.Join(errs...), nil
}

// virtfnIDs lists the N of the PF's virtfnN links in numeric order.
func virtfnIDs(dev string) ([]int, error) {
	entries, err := os.ReadDir(dev)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dev, err)
	}
	var ids []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "virtfn")
		if !ok {
			continue
		}
		id, err := strconv.Atoi(rest)
		if err != nil || id < 0 {
			continue // not a virtfn link the kernel would write
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// readVF reads VF id of the PF whose device directory is pfDev; resolved
// says pfDev has no symlinks, so the relative virtfn target can be joined
// to it lexically.
func readVF(pfDev string, resolved bool, id int, pfNUMA int) (VF, error) {
	virtfn := filepath.Join(pfDev, "virtfn"+strconv.Itoa(id))
	vf := VF{ID: id, NUMANode: pfNUMA}
	target, err := os.Readlink(virtfn)
	if err != nil {
		return vf, fmt.Errorf("VF %d: %w", id, err)
	}
	if vf.PCIAddress = filepath.Base(target); vf.PCIAddress == "." || vf.PCIAddress == "/" {
		return vf, fmt.Errorf("VF %d: %w: %s: symlink target %q has no name", id, sysfs.ErrMalformed, virtfn, target)
	}
	link := virtfn
	switch { // the VF's own directory, reached without the symlink
	case filepath.IsAbs(target):
		link = target
	case resolved:
		link = filepath.Join(pfDev, target)
	}
	if _, err := os.Stat(link); err != nil {
		return vf, fmt.Errorf("VF %d: %s points to a missing device (VF being removed, or a broken --sysfs tree): %w", id, virtfn, err)
	}
	if vf.Driver, err = driverOf(link); err != nil {
		return vf, fmt.Errorf("VF %d: %w", id, err)
	}
	vf.Binding = bindingOf(vf.Driver)
	if n, err := sysfs.ReadInt(filepath.Join(link, "numa_node")); err == nil {
		if n < -1 || n > 1<<16 {
			return vf, fmt.Errorf("VF %d: %w: %s: NUMA node %d out of range", id, sysfs.ErrMalformed, filepath.Join(link, "numa_node"), n)
		}
		vf.NUMANode = int(n)
	} else if !sysfs.IsNotExist(err) { // missing: it shares the PF's
		return vf, fmt.Errorf("VF %d: %w", id, err)
	}
	if nets, err := os.ReadDir(filepath.Join(link, "net")); err == nil && len(nets) > 0 {
		vf.Netdev = nets[0].Name()
	}
	return vf, nil
}

// driverOf returns the name of the driver bound to a PCI device, "" if none.
func driverOf(dev string) (string, error) {
	d, err := sysfs.LinkBase(filepath.Join(dev, "driver"))
	if err != nil {
		if sysfs.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("read bound driver: %w", err)
	}
	return d, nil
}

func bindingOf(driver string) string {
	switch driver {
	case "":
		return BindingUnbound
	case "vfio-pci":
		return BindingVFIO
	case "igb_uio", "uio_pci_generic":
		return BindingUIO
	case "pci-stub":
		return BindingStub
	default:
		return BindingNetdevice
	}
}

// numaNode reads a PCI device's numa_node; -1 means "no affinity", which
// is also what a kernel built without NUMA (no numa_node file) means.
func numaNode(dev string) (int, error) {
	n, err := sysfs.ReadInt(filepath.Join(dev, "numa_node"))
	if sysfs.IsNotExist(err) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	if n < -1 || n > 1<<16 {
		return -1, fmt.Errorf("%w: %s: NUMA node %d out of range", sysfs.ErrMalformed, filepath.Join(dev, "numa_node"), n)
	}
	return int(n), nil
}
