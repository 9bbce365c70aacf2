package dpseries

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/wirelog/wirelog/internal/api"
)

// MaxVFs bounds the VF → pod table and the mapping series read for it (a
// node has at most a few hundred VFs; the first ones by label order stay).
const MaxVFs = 1024

// The two lookups behind the VF → pod mapping: not charts, read over the
// same window and steps as the panels so that a VF series can be split at
// the step where its VF changed hands. The agent's podresources collector
// sets pci_address when the device id is a PCI address (the SR-IOV device
// plugin's ids); other devices (GPUs, …) have none and join nothing.
var (
	vfInfoLookup    = Panel{"SR-IOV VF inventory", "", `sriov_vf_info`, kindGauge, []string{"sriov_vf_info"}}
	podDeviceLookup = Panel{"VF → pod mapping", "", `podresources_pod_device_info{pci_address!=""}`, kindGauge, []string{"podresources_pod_device_info"}}
)

// ownerLabels are the labels of podresources_pod_device_info that name the
// container holding a device; they are what a VF series gains.
var ownerLabels = []string{"namespace", "pod", "container", "resource_name"}

// owner is one container holding one VF over some steps.
type owner struct {
	labels map[string]string // ownerLabels only
	values []*float64        // non-nil where it held the VF
}

// vfKey joins a VF series to its owners as the agent's metric help says:
// on (instance, pci_address). The node's own scraper reads one agent and
// has no instance label; Prometheus always sets one.
func vfKey(l map[string]string) string { return l["instance"] + "\x00" + l["pci_address"] }

// ownersByVF indexes the pod-resources device series by the VF they name,
// each VF's owners in label order so that a VF listed twice at one step
// (a pod being replaced) resolves the same way on every call.
func ownersByVF(devices []api.DataPlaneTrace) map[string][]owner {
	out := map[string][]owner{}
	for _, d := range devices {
		if d.Labels["pci_address"] == "" {
			continue
		}
		l := map[string]string{}
		for _, k := range ownerLabels {
			l[k] = d.Labels[k]
		}
		k := vfKey(d.Labels)
		out[k] = append(out[k], owner{labels: l, values: d.Values})
	}
	for k := range out {
		slices.SortFunc(out[k], func(a, b owner) int { return cmp.Compare(labelKey(a.labels), labelKey(b.labels)) })
	}
	return out
}

// holderAt is the index of the owner holding the VF at step i, -1 for none.
func holderAt(held []owner, i int) int {
	for j, o := range held {
		if i < len(o.values) && o.values[i] != nil {
			return j
		}
	}
	return -1
}

// joinPods gives every series that names a VF (a pci_address label) the
// labels of the container holding that VF. A VF that changed hands in the
// window becomes one series per holder, each with values only at the steps
// it held the VF (and one without pod labels for the steps nobody did), as
// a PromQL group_left join would split it; a VF nobody held is unchanged.
// It also answers the VF → pod table from the VF inventory: each VF with
// its holder at its last sample in the window.
func joinPods(series, vfInfo, devices []api.DataPlaneTrace) ([]api.DataPlaneTrace, []api.DataPlaneVF) {
	owners := ownersByVF(devices)
	out := make([]api.DataPlaneTrace, 0, len(series))
	for _, tr := range series {
		held := owners[vfKey(tr.Labels)]
		if tr.Labels["pci_address"] == "" || len(held) == 0 {
			out = append(out, tr)
			continue
		}
		parts := map[int]*api.DataPlaneTrace{}
		var order []int
		for i, v := range tr.Values {
			if v == nil {
				continue
			}
			h := holderAt(held, i)
			p := parts[h]
			if p == nil {
				l := make(map[string]string, len(tr.Labels)+len(ownerLabels))
				for k, v := range tr.Labels {
					l[k] = v
				}
				if h >= 0 {
					for k, v := range held[h].labels {
						l[k] = v
					}
				}
				p = &api.DataPlaneTrace{Name: tr.Name, Unit: tr.Unit, Labels: l, Values: make([]*float64, len(tr.Values))}
				parts[h] = p
				order = append(order, h)
			}
			p.Values[i] = v
		}
		if len(order) == 0 { // no sample at all: nothing to split
			out = append(out, tr)
			continue
		}
		for _, h := range order {
			out = append(out, *parts[h])
		}
	}

	// A VF whose driver changed in the window is two info series: the one
	// sampled last describes it.
	type latest struct {
		labels map[string]string
		last   int
	}
	byVF := map[string]latest{}
	for _, tr := range vfInfo {
		last := -1
		for i, v := range tr.Values {
			if v != nil {
				last = i
			}
		}
		k := vfKey(tr.Labels) + "\x00" + tr.Labels["node"]
		if last < 0 || tr.Labels["pci_address"] == "" || byVF[k].labels != nil && byVF[k].last >= last {
			continue
		}
		byVF[k] = latest{tr.Labels, last}
	}
	vfs := make([]api.DataPlaneVF, 0, len(byVF))
	for _, v := range byVF {
		l := v.labels
		n, _ := strconv.Atoi(l["vf"])
		row := api.DataPlaneVF{Node: l["node"], PF: l["pf"], VF: n, PCIAddress: l["pci_address"], NUMANode: l["numa_node"], Driver: l["driver"]}
		if h := holderAt(owners[vfKey(l)], v.last); h >= 0 {
			o := owners[vfKey(l)][h].labels
			row.Namespace, row.Pod, row.Container, row.Resource = o["namespace"], o["pod"], o["container"], o["resource_name"]
		}
		vfs = append(vfs, row)
	}
	slices.SortFunc(vfs, func(a, b api.DataPlaneVF) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.PF, b.PF), cmp.Compare(a.VF, b.VF), cmp.Compare(a.PCIAddress, b.PCIAddress))
	})
	if len(vfs) > MaxVFs {
		vfs = vfs[:MaxVFs]
	}
	return out, vfs
}
