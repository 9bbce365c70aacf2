package cpuiso_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

const staticState = `{"policyName":"static","defaultCpuSet":"0-3,16-19","entries":{"7d3f7a52-1c1e-4a36-9d2e-5f0c0a1b2c3d":{"dpdk":"4-7","sidecar":"8"},"0b9e2d34-aaaa-bbbb-cccc-123456789abc":{"testpmd":"20-23"}},"checksum":2547295417}`

func writeState(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cpu_manager_state")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCollectorOnDataplaneNode(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddNUMANode(0, "0-3")
	tree.AddNUMANode(1, "4-7")
	tree.SetCPUs("0-7", "2-3,6-7", "3,7")
	tree.WriteProc("cmdline", "BOOT_IMAGE=/vmlinuz ro isolcpus=managed_irq,domain,2-3,6-7 nohz_full=3,7 rcu_nocbs=2-3,6-7 quiet -- irqaffinity=9\n")
	c := cpuiso.New(cpuiso.Options{Sys: tree.Sys, Proc: tree.Proc, CPUManagerState: writeState(t, staticState)})
	a := &sysfstest.Adapter{C: c}
	want := `
# HELP cpu_isolation_isolated 1 if the online CPU is isolated from the scheduler's load balancing (devices/system/cpu/isolated, set by isolcpus=), else 0.
# TYPE cpu_isolation_isolated gauge
cpu_isolation_isolated{cpu="0",numa_node="0"} 0
cpu_isolation_isolated{cpu="1",numa_node="0"} 0
cpu_isolation_isolated{cpu="2",numa_node="0"} 1
cpu_isolation_isolated{cpu="3",numa_node="0"} 1
cpu_isolation_isolated{cpu="4",numa_node="1"} 0
cpu_isolation_isolated{cpu="5",numa_node="1"} 0
cpu_isolation_isolated{cpu="6",numa_node="1"} 1
cpu_isolation_isolated{cpu="7",numa_node="1"} 1
# HELP cpu_isolation_kernel_cmdline_info The CPU isolation boot parameters from /proc/cmdline (empty when not given); always 1.
# TYPE cpu_isolation_kernel_cmdline_info gauge
cpu_isolation_kernel_cmdline_info{irqaffinity="",isolcpus="managed_irq,domain,2-3,6-7",nohz_full="3,7",rcu_nocbs="2-3,6-7"} 1
# HELP cpu_manager_exclusive_cpus CPUs the kubelet assigned to one container alone (state file entries).
# TYPE cpu_manager_exclusive_cpus gauge
cpu_manager_exclusive_cpus{container="dpdk",pod_uid="7d3f7a52-1c1e-4a36-9d2e-5f0c0a1b2c3d"} 4
cpu_manager_exclusive_cpus{container="sidecar",pod_uid="7d3f7a52-1c1e-4a36-9d2e-5f0c0a1b2c3d"} 1
cpu_manager_exclusive_cpus{container="testpmd",pod_uid="0b9e2d34-aaaa-bbbb-cccc-123456789abc"} 4
# HELP cpu_manager_policy_info The kubelet CPU manager policy recorded in its state file; always 1.
# TYPE cpu_manager_policy_info gauge
cpu_manager_policy_info{policy="static"} 1
# HELP cpu_manager_shared_pool_cpus CPUs in the kubelet's shared pool (defaultCpuSet), where containers without exclusive CPUs run.
# TYPE cpu_manager_shared_pool_cpus gauge
cpu_manager_shared_pool_cpus 8
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "cpu_isolation_isolated", "cpu_isolation_kernel_cmdline_info",
		"cpu_manager_exclusive_cpus", "cpu_manager_policy_info", "cpu_manager_shared_pool_cpus"); err != nil {
		t.Fatal(err)
	}
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
	if n := testutil.CollectAndCount(a, "cpu_isolation_nohz_full"); n != 8 {
		t.Errorf("nohz_full series = %d, want one per online CPU", n)
	}
	if problems, err := testutil.CollectAndLint(a); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestNoKubeletNoNohzFullNoNUMA(t *testing.T) {
	tree := sysfstest.New(t)
	tree.SetCPUs("0-1", "", "-")
	c := cpuiso.New(cpuiso.Options{Sys: tree.Sys, Proc: tree.Proc, CPUManagerState: filepath.Join(t.TempDir(), "absent")})
	a := &sysfstest.Adapter{C: c}
	want := `
# HELP cpu_isolation_nohz_full 1 if the online CPU runs without the periodic tick when it has one task (devices/system/cpu/nohz_full), else 0.
# TYPE cpu_isolation_nohz_full gauge
cpu_isolation_nohz_full{cpu="0",numa_node="-1"} 0
cpu_isolation_nohz_full{cpu="1",numa_node="-1"} 0
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "cpu_isolation_nohz_full"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a, "cpu_manager_policy_info"); n != 0 {
		t.Errorf("policy without a state file: %d series", n)
	}
	if a.Err() != nil {
		t.Errorf("a node without kubelet or nohz_full is not an error: %v", a.Err())
	}
}

func TestCorruptStateAndGarbageSysfsAreErrors(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddNUMANode(0, "0-3")
	tree.SetCPUs("0-3", "2-x", "(null)")
	state := writeState(t, `{"policyName":"static","defaultCpuSet":"0-1","entries":{"uid":{"c":"3-2"}}}`)
	a := &sysfstest.Adapter{C: cpuiso.New(cpuiso.Options{Sys: tree.Sys, Proc: tree.Proc, CPUManagerState: state})}
	if n := testutil.CollectAndCount(a, "cpu_isolation_isolated"); n != 4 {
		t.Errorf("online CPUs still exported: got %d, want 4", n)
	}
	err := a.Err()
	if !errors.Is(err, cpuiso.ErrCPUManagerState) || !errors.Is(err, sysfs.ErrMalformed) {
		t.Fatalf("want both a state and a sysfs error, got %v", err)
	}
	for _, want := range []string{state, "pod uid container c", "isolated", `"2-x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	got := cpuiso.ParseCmdline(`BOOT_IMAGE=/vmlinuz root=UUID=ab-cd ro quiet intel_iommu=on iommu=pt isolcpus=2-3 isolcpus=6-7 dyndbg="file x.c +p" nomodeset -- isolcpus=9 single` + "\n")
	want := map[string]string{"BOOT_IMAGE": "/vmlinuz", "root": "UUID=ab-cd", "ro": "", "quiet": "", "intel_iommu": "on", "iommu": "pt",
		"isolcpus": "2-3,6-7", "dyndbg": "file x.c +p", "nomodeset": ""}
	if !maps.Equal(got, want) {
		t.Errorf("ParseCmdline = %v\nwant %v", got, want)
	}
}

func TestParseCPUManagerState(t *testing.T) {
	st, err := cpuiso.ParseCPUManagerState([]byte(staticState))
	if err != nil {
		t.Fatal(err)
	}
	if st.Policy != "static" || sysfs.FormatCPUList(st.DefaultSet) != "0-3,16-19" || sysfs.FormatCPUList(st.ExclusiveCPUs()) != "4-8,20-23" {
		t.Errorf("got %+v", st)
	}
	none, err := cpuiso.ParseCPUManagerState([]byte(`{"policyName":"none","defaultCpuSet":"","checksum":1353318690}`))
	if err != nil || none.Policy != "none" || len(none.DefaultSet) != 0 || len(none.Exclusive) != 0 {
		t.Errorf("none policy: %+v, %v", none, err)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"policyName":""}`, `{"policyName":"static","defaultCpuSet":"x"}`, `{"policyName":"static"} {}`,
		`{"policyName":"static","entries":{"":{"c":"1"}}}`, `{"policyName":"static","entries":{"u":{"c":"1-"}}}`, `{"policyName":7}`, `{"policyName":"static"`} {
		if _, err := cpuiso.ParseCPUManagerState([]byte(bad)); !errors.Is(err, cpuiso.ErrCPUManagerState) {
			t.Errorf("%s: %v, want ErrCPUManagerState", bad, err)
		}
	}
}

func TestReadsThisMachine(t *testing.T) {
	iso, err := cpuiso.ReadIsolation(sysfs.DefaultSys)
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.Online) == 0 {
		t.Fatal("no online CPUs read from /sys")
	}
	if _, err := cpuiso.ReadCmdline(sysfs.DefaultProc); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseCPUManagerState(f *testing.F) {
	f.Add([]byte(staticState))
	f.Add([]byte(`{"policyName":"none","defaultCpuSet":"","checksum":1353318690}`))
	f.Add([]byte(`{"policyName":"static","defaultCpuSet":"0-1","entries":{"u":{"c":"2-3:1/2"}}}`))
	f.Add([]byte(`{"policyName":"static","defaultCpuSet":"0-16383"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := cpuiso.ParseCPUManagerState(data)
		if err != nil {
			if !errors.Is(err, cpuiso.ErrCPUManagerState) {
				t.Fatalf("error without ErrCPUManagerState: %v", err)
			}
			return
		}
		if st.Policy == "" {
			t.Fatal("accepted a state without policy")
		}
		ex := st.ExclusiveCPUs()
		if !slices.IsSorted(ex) {
			t.Fatalf("unsorted %v", ex)
		}
	})
}

func FuzzParseCmdline(f *testing.F) {
	f.Add("BOOT_IMAGE=/vmlinuz ro intel_iommu=on isolcpus=2-3 -- single")
	f.Add(`a="b c" "d=e f" =x ==`)
	f.Fuzz(func(t *testing.T, s string) {
		for k, v := range cpuiso.ParseCmdline(s) {
			if strings.ContainsAny(k, " \t\n") && !strings.Contains(s, "\"") {
				t.Fatalf("%q: key %q has a blank without quotes", s, k)
			}
			_ = v
		}
	})
}
