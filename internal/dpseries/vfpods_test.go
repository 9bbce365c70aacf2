package dpseries

import (
	"reflect"
	"testing"

	"github.com/wirelog/wirelog/internal/api"
)

// vals builds a series' values: nil where present is false.
func vals(present ...bool) []*float64 {
	out := make([]*float64, len(present))
	for i, p := range present {
		if p {
			v := float64(i + 1)
			out[i] = &v
		}
	}
	return out
}

func device(instance, pci, ns, pod string, held ...bool) api.DataPlaneTrace {
	return api.DataPlaneTrace{Name: podDeviceLookup.Name, Labels: map[string]string{
		"instance": instance, "node": "n1", "pci_address": pci, "device_id": pci,
		"namespace": ns, "pod": pod, "container": "dpdk", "resource_name": "intel.com/sriov",
	}, Values: vals(held...)}
}

// A VF that changed hands in the window is one series per holder, each
// with values only at its steps (a gap nobody held is a series without
// pod labels), as a PromQL group_left join splits it; a series without a
// pci_address, and a VF of another agent with the same address, are left
// alone; the table gives each VF its holder at its last sample.
func TestJoinPodsSplitsAtHandover(t *testing.T) {
	const vf = "0000:3b:01.0"
	T, F := true, false
	vfRx := api.DataPlaneTrace{Name: "SR-IOV VF rx packets/s", Labels: map[string]string{"instance": "a:9810", "node": "n1", "pf": "ens1f0", "vf": "0", "pci_address": vf}, Values: vals(T, T, T, T, T, T)}
	other := api.DataPlaneTrace{Name: "SR-IOV VF rx packets/s", Labels: map[string]string{"instance": "b:9810", "node": "n2", "pf": "ens1f0", "vf": "0", "pci_address": vf}, Values: vals(T, T, T, T, T, T)}
	port := api.DataPlaneTrace{Name: "DPDK port rx packets/s", Labels: map[string]string{"instance": "a:9810", "port": "0"}, Values: vals(T, T, T, T, T, T)}
	devices := []api.DataPlaneTrace{
		device("a:9810", vf, "telco", "cnf-old", T, T, T, F, F, F),
		device("a:9810", vf, "telco", "cnf-new", F, F, F, F, T, T),
		device("a:9810", "", "ml", "gpu-0", T, T, T, T, T, T), // a GPU: no PCI address, joins nothing
	}
	info := func(driver string, present ...bool) api.DataPlaneTrace {
		return api.DataPlaneTrace{Name: vfInfoLookup.Name, Labels: map[string]string{"instance": "a:9810", "node": "n1", "pf": "ens1f0", "vf": "0", "pci_address": vf, "numa_node": "0", "driver": driver}, Values: vals(present...)}
	}
	vfInfo := []api.DataPlaneTrace{
		info("vfio-pci", F, F, T, T, T, T), // rebound to vfio-pci at step 2: the row says so
		info("iavf", T, T, F, F, F, F),
		{Name: vfInfoLookup.Name, Labels: map[string]string{"instance": "b:9810", "node": "n2", "pf": "ens1f0", "vf": "0", "pci_address": vf, "numa_node": "1", "driver": "iavf"}, Values: vals(T, T, T, T, T, T)},
	}
	series, vfs := joinPods([]api.DataPlaneTrace{port, vfRx, other}, vfInfo, devices)

	type part struct {
		pod   string
		steps []int
	}
	var got []part
	for _, s := range series {
		if s.Labels["instance"] != "a:9810" || s.Name != vfRx.Name {
			continue
		}
		p := part{pod: s.Labels["pod"]}
		for i, v := range s.Values {
			if v != nil {
				p.steps = append(p.steps, i)
				if *v != float64(i+1) {
					t.Errorf("step %d of %s's part: %v, want the VF's own value %d", i, p.pod, *v, i+1)
				}
			}
		}
		if p.pod != "" && (s.Labels["namespace"] != "telco" || s.Labels["container"] != "dpdk" || s.Labels["resource_name"] != "intel.com/sriov") {
			t.Errorf("part held by %s lacks its holder's labels: %v", p.pod, s.Labels)
		}
		if s.Labels["pf"] != "ens1f0" || s.Labels["pci_address"] != vf {
			t.Errorf("part lost the VF's labels: %v", s.Labels)
		}
		got = append(got, p)
	}
	want := []part{{"cnf-old", []int{0, 1, 2}}, {"", []int{3}}, {"cnf-new", []int{4, 5}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("VF series parts %+v, want %+v", got, want)
	}
	for _, s := range series {
		if s.Name == port.Name && len(s.Labels) != len(port.Labels) {
			t.Errorf("a series without pci_address gained labels: %v", s.Labels)
		}
		if s.Labels["instance"] == "b:9810" && s.Labels["pod"] != "" {
			t.Errorf("another agent's VF with the same PCI address got a pod: %v", s.Labels)
		}
	}
	if len(series) != 5 {
		t.Errorf("%d series, want 5 (port, three parts, the other agent's VF)", len(series))
	}

	wantVFs := []api.DataPlaneVF{
		{Node: "n1", PF: "ens1f0", VF: 0, PCIAddress: vf, NUMANode: "0", Driver: "vfio-pci", Namespace: "telco", Pod: "cnf-new", Container: "dpdk", Resource: "intel.com/sriov"},
		{Node: "n2", PF: "ens1f0", VF: 0, PCIAddress: vf, NUMANode: "1", Driver: "iavf"},
	}
	if !reflect.DeepEqual(vfs, wantVFs) {
		t.Errorf("VF table %+v, want %+v", vfs, wantVFs)
	}
}

// Two containers listed for one VF at the same step (a pod being replaced)
// resolve the same way every time: the first by label order.
func TestJoinPodsTwoHoldersIsStable(t *testing.T) {
	const vf = "0000:3b:01.1"
	T := true
	vfRx := api.DataPlaneTrace{Name: "SR-IOV VF rx packets/s", Labels: map[string]string{"pci_address": vf}, Values: vals(T, T)}
	for _, devices := range [][]api.DataPlaneTrace{
		{device("", vf, "telco", "cnf-b", T, T), device("", vf, "telco", "cnf-a", T, T)},
		{device("", vf, "telco", "cnf-a", T, T), device("", vf, "telco", "cnf-b", T, T)},
	} {
		series, _ := joinPods([]api.DataPlaneTrace{vfRx}, nil, devices)
		if len(series) != 1 || series[0].Labels["pod"] != "cnf-a" {
			t.Errorf("two holders at once: %+v, want one series held by cnf-a", series)
		}
	}
}
