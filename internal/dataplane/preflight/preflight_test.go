package preflight_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/dataplane/preflight"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

const (
	staticState = `{"policyName":"static","defaultCpuSet":"0-3,16-19","entries":{"pod-uid-1":{"dpdk":"4-7"}},"checksum":1}`
	noneState   = `{"policyName":"none","defaultCpuSet":"","checksum":1353318690}`
	goodConfig  = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncpuManagerPolicy: static\nreservedSystemCPUs: \"0-3\"\ntopologyManagerPolicy: single-numa-node\ntopologyManagerScope: pod\n"
)

// node is a fake node plus the kubelet files preflight reads.
type node struct {
	*sysfstest.Tree
	opts preflight.Options
}

// readyNode is a node that passes every check: an ice PF on NUMA node 0
// with 2 VFs on vfio-pci and 2 on iavf, an i40e PF on node 1 with 2 VFs.
func readyNode(t *testing.T) *node {
	t.Helper()
	tree := sysfstest.New(t)
	tree.DataplaneNode()
	ice := sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4)
	ice.VFDrivers = map[int]string{0: "vfio-pci", 1: "vfio-pci"}
	tree.AddPF(ice)
	tree.AddPF(sysfstest.I40E("ens2f0", "0000:af:00.0", 1, 2))
	dir := t.TempDir()
	n := &node{Tree: tree, opts: preflight.Options{Sys: tree.Sys, Proc: tree.Proc,
		CPUManagerState: filepath.Join(dir, "cpu_manager_state"), KubeletConfig: filepath.Join(dir, "config.yaml")}}
	n.state(staticState)
	n.config(goodConfig)
	return n
}

func (n *node) state(s string)  { write(n.Tree, n.opts.CPUManagerState, s) }
func (n *node) config(s string) { write(n.Tree, n.opts.KubeletConfig, s) }

func write(t *sysfstest.Tree, path, s string) {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		panic(err)
	}
}

func find(t *testing.T, rep preflight.Report, check, subject string) preflight.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Check == check && r.Subject == subject {
			return r
		}
	}
	t.Fatalf("no result for %s/%s in %+v", check, subject, rep.Results)
	return preflight.Result{}
}

func TestReadyNodePassesEveryCheck(t *testing.T) {
	n := readyNode(t)
	rep := preflight.Run(n.opts)
	for _, r := range rep.Results {
		if r.Status != preflight.Pass {
			t.Errorf("%s/%s = %s: %s (fix: %s)", r.Check, r.Subject, r.Status, r.Detail, r.Fix)
		}
		if r.Fix != "" {
			t.Errorf("%s/%s passes but carries a fix", r.Check, r.Subject)
		}
	}
	if rep.Failed() != 0 {
		t.Errorf("Failed() = %d", rep.Failed())
	}
	// Every check ran, per PF and per NIC NUMA node where it applies.
	for _, want := range [][2]string{
		{preflight.CheckIOMMUCmdline, "kernel"}, {preflight.CheckIOMMUGroups, "kernel"},
		{preflight.CheckSRIOVVFs, "ens1f0"}, {preflight.CheckSRIOVVFs, "ens2f0"},
		{preflight.CheckVFDrivers, "ens1f0"}, {preflight.CheckVFDrivers, "ens2f0"},
		{preflight.CheckHugepages, "numa0"}, {preflight.CheckHugepages, "numa1"}, {preflight.CheckHugetlbfs, "host"},
		{preflight.CheckIsolatedCPUs, "numa0"}, {preflight.CheckIsolatedCPUs, "numa1"},
		{preflight.CheckCPUManager, "kubelet"}, {preflight.CheckTopologyManager, "kubelet"}, {preflight.CheckVFIO, "kernel"},
	} {
		find(t, rep, want[0], want[1])
	}
	if d := find(t, rep, preflight.CheckVFDrivers, "ens1f0").Detail; !strings.Contains(d, "2 iavf, 2 vfio-pci") {
		t.Errorf("vf-drivers detail %q does not count drivers", d)
	}
	if d := find(t, rep, preflight.CheckIsolatedCPUs, "numa1").Detail; !strings.Contains(d, "20-31") || !strings.Contains(d, "ens2f0") {
		t.Errorf("isolated-cpus detail %q", d)
	}
}

func TestEachCheckWarnsAndFails(t *testing.T) {
	cases := []struct {
		name           string
		mutate         func(n *node)
		check, subject string
		want           preflight.Status
		detail         string
	}{
		{"iommu off on cmdline", func(n *node) { n.WriteProc("cmdline", "ro intel_iommu=off\n") }, preflight.CheckIOMMUCmdline, "kernel", preflight.Fail, "intel_iommu=off"},
		{"no iommu parameter", func(n *node) { n.WriteProc("cmdline", "ro quiet\n") }, preflight.CheckIOMMUCmdline, "kernel", preflight.Warn, "no intel_iommu="},
		{"amd iommu pt", func(n *node) { n.WriteProc("cmdline", "ro iommu=pt\n") }, preflight.CheckIOMMUCmdline, "kernel", preflight.Pass, "iommu=pt"},
		{"no iommu groups", func(n *node) { n.Remove("kernel/iommu_groups") }, preflight.CheckIOMMUGroups, "kernel", preflight.Fail, "no IOMMU groups"},
		{"PF without VFs", func(n *node) { n.AddPF(sysfstest.MLX5("ens3f0", "0000:d8:00.0", 1, 0)) }, preflight.CheckSRIOVVFs, "ens3f0", preflight.Warn, "0 of 8 VFs"},
		{"VFs being created", func(n *node) { n.Write(sysfstest.DevPath("0000:af:00.0")+"/sriov_numvfs", "4\n") }, preflight.CheckSRIOVVFs, "ens2f0", preflight.Warn, "2 virtfn links"},
		{"garbage numvfs", func(n *node) { n.Write(sysfstest.DevPath("0000:af:00.0")+"/sriov_numvfs", "x\n") }, preflight.CheckSRIOVVFs, "node", preflight.Fail, "sriov_numvfs"},
		{"no SR-IOV NIC", func(n *node) { n.Remove("class/net"); n.Mkdir("class/net") }, preflight.CheckSRIOVVFs, "node", preflight.Warn, "no SR-IOV capable interface"},
		{"unbound VF", func(n *node) { n.Remove(sysfstest.DevPath(sysfstest.VFAddress("0000:af:00.0", 1)) + "/driver") }, preflight.CheckVFDrivers, "ens2f0", preflight.Warn, "1 unbound"},
		{"hugepages all used", func(n *node) {
			n.SetHugepages(1, 1048576, sysfstest.Hugepages{Nr: 8, Free: 0})
		}, preflight.CheckHugepages, "numa1", preflight.Warn, "all in use"},
		{"no hugepages on NIC node", func(n *node) {
			n.SetHugepages(1, 1048576, sysfstest.Hugepages{})
		}, preflight.CheckHugepages, "numa1", preflight.Fail, "(NIC ens2f0)"},
		{"no hugepages on node without NIC", func(n *node) {
			n.Remove("class/net/ens2f0")
			n.SetHugepages(1, 1048576, sysfstest.Hugepages{})
		}, preflight.CheckHugepages, "numa1", preflight.Warn, "0 total"},
		{"no NUMA, no hugepages", func(n *node) {
			n.Remove("devices/system/node")
			n.SetHugepages(-1, 2048, sysfstest.Hugepages{})
			n.SetHugepages(-1, 1048576, sysfstest.Hugepages{})
		}, preflight.CheckHugepages, "system", preflight.Fail, "no huge pages reserved"},
		{"no NUMA, hugepages", func(n *node) { n.Remove("devices/system/node") }, preflight.CheckHugepages, "system", preflight.Pass, "1Gi: 16 total, 12 free"},
		{"hugetlbfs not mounted", func(n *node) { n.WriteProc("mounts", "proc /proc proc rw 0 0\n") }, preflight.CheckHugetlbfs, "host", preflight.Warn, "no hugetlbfs"},
		{"hugetlbfs with blank in path", func(n *node) {
			n.WriteProc("mounts", "hugetlbfs /mnt/huge\\040pages hugetlbfs rw,pagesize=2M 0 0\n")
		}, preflight.CheckHugetlbfs, "host", preflight.Pass, "/mnt/huge pages (pagesize=2M)"},
		{"isolated CPUs only on the other node", func(n *node) { n.SetCPUs("0-31", "20-31", "(null)") }, preflight.CheckIsolatedCPUs, "numa0", preflight.Warn, "are on other nodes"},
		{"garbage isolated", func(n *node) { n.Write("devices/system/cpu/isolated", "4-\n") }, preflight.CheckIsolatedCPUs, "node", preflight.Fail, "isolated"},
		{"cpu manager none", func(n *node) { n.state(noneState) }, preflight.CheckCPUManager, "kubelet", preflight.Fail, "policy is none"},
		{"cpu manager state corrupt", func(n *node) { n.state(`{"policyName":"static","defaultCpuSet":"0-"`) }, preflight.CheckCPUManager, "kubelet", preflight.Fail, "cpu_manager_state"},
		{"no state file", func(n *node) { os.Remove(n.opts.CPUManagerState) }, preflight.CheckCPUManager, "kubelet", preflight.Warn, "has not started with it"},
		{"config and state disagree", func(n *node) { n.config("kind: KubeletConfiguration\ncpuManagerPolicy: none\n") }, preflight.CheckCPUManager, "kubelet", preflight.Warn, "config says none"},
		{"topology best-effort (JSON config)", func(n *node) {
			n.config(`{"kind":"KubeletConfiguration","cpuManagerPolicy":"static","topologyManagerPolicy":"best-effort"}`)
		}, preflight.CheckTopologyManager, "kubelet", preflight.Warn, "best-effort"},
		{"topology default none", func(n *node) { n.config("kind: KubeletConfiguration\ncpuManagerPolicy: static\n") }, preflight.CheckTopologyManager, "kubelet", preflight.Warn, "policy none, scope container"},
		{"topology unknown policy", func(n *node) { n.config("cpuManagerPolicy: static\ntopologyManagerPolicy: numa-please\n") }, preflight.CheckTopologyManager, "kubelet", preflight.Fail, "not a policy"},
		{"kubelet config not given", func(n *node) { n.opts.KubeletConfig = "" }, preflight.CheckTopologyManager, "kubelet", preflight.Warn, "not checked"},
		{"kubelet config missing", func(n *node) { os.Remove(n.opts.KubeletConfig) }, preflight.CheckTopologyManager, "kubelet", preflight.Fail, "--kubelet-config"},
		{"kubelet config wrong kind", func(n *node) { n.config("kind: Pod\n") }, preflight.CheckTopologyManager, "kubelet", preflight.Fail, "want KubeletConfiguration"},
		{"vfio-pci not loaded", func(n *node) { n.Remove("bus/pci/drivers/vfio-pci"); n.Remove("module/vfio_pci") }, preflight.CheckVFIO, "kernel", preflight.Fail, "not loaded"},
		{"vfio-pci in /proc/modules", func(n *node) {
			n.Remove("bus/pci/drivers/vfio-pci")
			n.Remove("module/vfio_pci")
			n.WriteProc("modules", "vfio_pci 16384 0 - Live 0x0000000000000000\nvfio 45056 2 vfio_pci_core, Live 0x0\n")
		}, preflight.CheckVFIO, "kernel", preflight.Pass, "loaded"},
		{"vfio no-IOMMU mode", func(n *node) { n.Write("module/vfio/parameters/enable_unsafe_noiommu_mode", "Y\n") }, preflight.CheckVFIO, "kernel", preflight.Warn, "no-IOMMU"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := readyNode(t)
			tc.mutate(n)
			rep := preflight.Run(n.opts)
			r := find(t, rep, tc.check, tc.subject)
			if r.Status != tc.want {
				t.Errorf("status %s, want %s (detail %q)", r.Status, tc.want, r.Detail)
			}
			if !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("detail %q does not say %q", r.Detail, tc.detail)
			}
			if tc.want != preflight.Pass && (r.Fix == "" || strings.Contains(r.Fix, "\n")) {
				t.Errorf("fix %q: want one line", r.Fix)
			}
			if got := rep.Failed() > 0; got != (tc.want == preflight.Fail) {
				t.Errorf("Failed() = %d for a %s case", rep.Failed(), tc.want)
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	n := readyNode(t)
	n.state(noneState)
	rep := preflight.Run(n.opts)
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{"STATUS  CHECK", "FAIL    cpu-manager-policy", "To fix:\n  FAIL cpu-manager-policy (kubelet): set cpuManagerPolicy: static", "1 fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Results []preflight.Result `json:"results"`
		Summary map[string]int     `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Summary["fail"] != 1 || len(back.Results) != len(rep.Results) || back.Summary["pass"] == 0 {
		t.Errorf("JSON summary %v, %d results", back.Summary, len(back.Results))
	}
}

// Preflight only reads: running it leaves the tree byte for byte the same.
func TestChangesNothing(t *testing.T) {
	n := readyNode(t)
	before := snapshot(t, filepath.Dir(n.Sys))
	preflight.Run(n.opts)
	after := snapshot(t, filepath.Dir(n.Sys))
	if before != after {
		t.Error("preflight changed the tree it inspected")
	}
}

func snapshot(t *testing.T, root string) string {
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.Write(data)
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

func TestParseKubeletConfig(t *testing.T) {
	c, err := preflight.ParseKubeletConfig([]byte(goodConfig))
	if err != nil || c.CPUManagerPolicy != "static" || c.TopologyManagerPolicy != "single-numa-node" || c.ReservedSystemCPUs != "0-3" {
		t.Errorf("%+v, %v", c, err)
	}
	for _, bad := range []string{"kind: Pod", "cpuManagerPolicy: [a", "\tx: y", "[1,2]", `{"kind":"KubeletConfiguration","cpuManagerPolicy":{"a":1}}`} {
		if _, err := preflight.ParseKubeletConfig([]byte(bad)); !errors.Is(err, preflight.ErrKubeletConfig) {
			t.Errorf("%q: %v, want ErrKubeletConfig", bad, err)
		}
	}
}

func FuzzParseKubeletConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(`{"kind":"KubeletConfiguration","topologyManagerPolicy":"restricted"}`))
	f.Add([]byte("a: &x [*x, *x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := preflight.ParseKubeletConfig(data); err != nil && !errors.Is(err, preflight.ErrKubeletConfig) {
			t.Fatalf("error without ErrKubeletConfig: %v", err)
		}
	})
}

func FuzzParseMounts(f *testing.F) {
	f.Add([]byte("hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"))
	f.Add([]byte("a /b\\040c\\ d e\n\\777 x y z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range preflight.ParseMounts(data) {
			if m.FSType == "" || len(m.Options) == 0 {
				t.Fatalf("mount %+v from %q", m, data)
			}
			m.Option("pagesize")
		}
	})
}
