package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// preflightNode is a fake node that passes every preflight check, with the
// kubelet state and config files beside it.
func preflightNode(t *testing.T) (tree *sysfstest.Tree, state, config string) {
	t.Helper()
	tree = sysfstest.New(t)
	tree.DataplaneNode()
	pf := sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 2)
	pf.VFDriver = "vfio-pci"
	tree.AddPF(pf)
	dir := t.TempDir()
	state, config = filepath.Join(dir, "cpu_manager_state"), filepath.Join(dir, "config.yaml")
	os.WriteFile(state, []byte(`{"policyName":"static","defaultCpuSet":"0-3","checksum":1}`), 0o644)
	os.WriteFile(config, []byte("kind: KubeletConfiguration\ncpuManagerPolicy: static\ntopologyManagerPolicy: single-numa-node\n"), 0o644)
	return tree, state, config
}

func runWirelog(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(wirelogBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run wirelog: %v", err)
	}
	return o.String(), e.String(), code
}

func TestPreflightExitStatus(t *testing.T) {
	tree, state, config := preflightNode(t)
	args := []string{"preflight", "--sysfs", tree.Sys, "--procfs", tree.Proc, "--cpu-manager-state", state, "--kubelet-config", config}

	out, errOut, code := runWirelog(t, args...)
	if code != 0 || !strings.Contains(out, "0 warn, 0 fail") {
		t.Fatalf("ready node: exit %d\n%s%s", code, out, errOut)
	}

	os.WriteFile(state, []byte(`{"policyName":"none","defaultCpuSet":"","checksum":1}`), 0o644)
	out, errOut, code = runWirelog(t, args...)
	if code != 1 || !strings.Contains(out, "FAIL    cpu-manager-policy") || !strings.Contains(errOut, "node not ready: 1 of") {
		t.Fatalf("CPU manager none: exit %d, want 1\n%s%s", code, out, errOut)
	}

	out, _, code = runWirelog(t, append(args, "--json")...)
	var rep struct {
		Results []struct{ Check, Status, Fix string }
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Summary["fail"] != 1 {
		t.Fatalf("--json: exit %d, %v, %s", code, err, out)
	}

	_, errOut, code = runWirelog(t, "preflight", "--no-such-flag")
	if code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("bad flag: exit %d, %s", code, errOut)
	}
	out, errOut, code = runWirelog(t, "preflight", "--help")
	if code != 0 || !strings.Contains(out+errOut, "kubelet-config string") {
		t.Errorf("--help: exit %d", code)
	}
}

func TestNodeCollectorsFlags(t *testing.T) {
	tree, state, _ := preflightNode(t)
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.String("node", "", "registered by the dataplane command")
	build := nodeCollectors(fs)
	for _, f := range []string{"collector.sriov", "collector.hugepages", "collector.cpu", "collector.podresources", "sysfs", "procfs", "podresources-socket", "cpu-manager-state"} {
		if fl := fs.Lookup(f); fl == nil || fl.Usage == "" {
			t.Errorf("flag --%s missing or without help", f)
		}
	}
	if err := fs.Parse([]string{"--node", "worker-7", "--sysfs", tree.Sys, "--procfs", tree.Proc, "--cpu-manager-state", state, "--collector.hugepages=false"}); err != nil {
		t.Fatal(err)
	}
	cs, err := build()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name())
		if cl, ok := c.(interface{ Close() error }); ok {
			t.Cleanup(func() { cl.Close() })
		}
	}
	if got := strings.Join(names, ","); got != "sriov,cpu,podresources" {
		t.Errorf("collectors = %s", got)
	}
	if got := nodeName(fs); got != "worker-7" {
		t.Errorf("node label = %q, want the --node flag", got)
	}
}
