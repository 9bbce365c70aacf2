package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// TestDataplaneNodeCollectorsEndToEnd runs the built binary as a DaemonSet
// would, on a fake SR-IOV node and a pod-resources server, and scrapes it:
// VF, huge page, CPU and pod series are there with the node label, the pod's
// VF joins a VF series on pci_address, and the kubelet sees one connection
// for all scrapes.
func TestDataplaneNodeCollectorsEndToEnd(t *testing.T) {
	tree := sysfstest.New(t)
	tree.DataplaneNode()
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4))
	state := filepath.Join(t.TempDir(), "cpu_manager_state")
	os.WriteFile(state, []byte(`{"policyName":"static","defaultCpuSet":"0-3","entries":{"uid-1":{"dpdk":"4-5"}},"checksum":1}`), 0o644)
	vf2 := sysfstest.VFAddress("0000:3b:00.0", 2)
	kubelet := sysfstest.StartKubelet(t, []*v1.PodResources{{Name: "cnf-0", Namespace: "telco", Containers: []*v1.ContainerResources{{
		Name: "dpdk", CpuIds: []int64{4, 5},
		Devices: []*v1.ContainerDevices{{ResourceName: "intel.com/sriov_dpdk", DeviceIds: []string{vf2}}},
	}}}}, nil)

	cmd := exec.Command(wirelogBin, "dataplane", "--listen", "127.0.0.1:0", "--node", "worker-3",
		"--collector.dpdk=false", "--collector.ovs=false",
		"--sysfs", tree.Sys, "--procfs", tree.Proc, "--cpu-manager-state", state, "--podresources-socket", kubelet.Socket)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	addrCh := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
				addrCh <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(30 * time.Second):
		t.Fatal("wirelog dataplane did not log its listening address")
	}
	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics %d", resp.StatusCode)
		}
		return string(b)
	}
	var body string
	for i := 0; i < 3; i++ {
		body = scrape()
	}
	for _, want := range []string{
		`wirelog_dataplane_collector_success{collector="sriov",node="worker-3"} 1`,
		`wirelog_dataplane_collector_success{collector="hugepages",node="worker-3"} 1`,
		`wirelog_dataplane_collector_success{collector="cpu",node="worker-3"} 1`,
		`wirelog_dataplane_collector_success{collector="podresources",node="worker-3"} 1`,
		`sriov_vf_rx_packets_total{node="worker-3",numa_node="0",pci_address="` + vf2 + `",pf="ens1f0",vf="2"} 3001`,
		`podresources_pod_device_info{container="dpdk",device_id="` + vf2 + `",namespace="telco",node="worker-3",pci_address="` + vf2 + `",pod="cnf-0",resource_name="intel.com/sriov_dpdk"} 1`,
		`podresources_pod_cpu_info{container="dpdk",cpu="5",namespace="telco",node="worker-3",pod="cnf-0"} 1`,
		`hugepages_numa_free_pages{node="worker-3",numa_node="0",page_size_bytes="1073741824"} 6`,
		`cpu_manager_policy_info{node="worker-3",policy="static"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	if got := kubelet.Accepted.Load(); got != 1 {
		t.Errorf("kubelet accepted %d connections over 3 scrapes, want 1", got)
	}
	if got := kubelet.Lists.Load(); got != 3 {
		t.Errorf("kubelet List called %d times over 3 scrapes, want 3", got)
	}
}
