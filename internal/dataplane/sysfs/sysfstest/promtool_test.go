package sysfstest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// Prometheus's own linter (promtool, Debian package prometheus) finds no
// naming or type problem in what the node collectors expose.
func TestPromtoolChecksNodeMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (scripts/deps/45-dataplane-node.sh installs Debian's prometheus): %v", err)
	}
	tree := sysfstest.New(t)
	tree.DataplaneNode()
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4))
	tree.AddPF(sysfstest.MLX5("ens3f0", "0000:af:00.0", 1, 2))
	state := filepath.Join(t.TempDir(), "cpu_manager_state")
	os.WriteFile(state, []byte(`{"policyName":"static","defaultCpuSet":"0-3","entries":{"uid":{"c":"4-5"}},"checksum":1}`), 0o644)

	sc := sriov.New(sriov.Options{Sys: tree.Sys})
	defer sc.Close()
	// The pod-resources series need a kubelet; they are linted in the
	// podresources tests (testutil.CollectAndLint, the same rules).
	reg := prometheus.NewPedanticRegistry()
	for _, c := range []*sysfstest.Adapter{{C: sc}, {C: hugepages.New(tree.Sys)}, {C: cpuiso.New(cpuiso.Options{Sys: tree.Sys, Proc: tree.Proc, CPUManagerState: state})}} {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), "sriov_vf_rx_packets_total{") {
		t.Fatalf("exposition lacks VF counters:\n%.2000s", buf.String())
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
