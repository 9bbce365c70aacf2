package podresources_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wirelog/wirelog/internal/dataplane/podresources"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// kubelet is a pod-resources v1 server speaking the real generated API on
// a unix socket, as the kubelet does.
type kubelet struct {
	v1.UnimplementedPodResourcesListerServer
	pods          []*v1.PodResources
	alloc         *v1.AllocatableResourcesResponse // nil: Unimplemented, like a kubelet < 1.23
	listDelay     time.Duration
	lists, allocs atomic.Int64
	accepted      atomic.Int64 // connections the listener accepted
}

func (k *kubelet) List(ctx context.Context, _ *v1.ListPodResourcesRequest) (*v1.ListPodResourcesResponse, error) {
	k.lists.Add(1)
	if k.listDelay > 0 {
		select {
		case <-time.After(k.listDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &v1.ListPodResourcesResponse{PodResources: k.pods}, nil
}

func (k *kubelet) GetAllocatableResources(context.Context, *v1.AllocatableResourcesRequest) (*v1.AllocatableResourcesResponse, error) {
	k.allocs.Add(1)
	if k.alloc == nil {
		return nil, status.Error(codes.Unimplemented, "method GetAllocatableResources not implemented")
	}
	return k.alloc, nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serve starts k on socket and stops it in cleanup (or when stop is called).
func serve(t *testing.T, socket string, k *kubelet) (stop func()) {
	t.Helper()
	_ = os.Remove(socket) // a stale socket from a previous kubelet, as after a crash
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1.RegisterPodResourcesListerServer(srv, k)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(countingListener{ln, &k.accepted}) }()
	var once sync.Once
	stop = func() { once.Do(func() { srv.Stop(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func sriovPods() []*v1.PodResources {
	return []*v1.PodResources{
		{Name: "cnf-0", Namespace: "telco", Containers: []*v1.ContainerResources{
			{Name: "dpdk", CpuIds: []int64{4, 5, 6, 7},
				Devices: []*v1.ContainerDevices{{ResourceName: "intel.com/sriov_dpdk", DeviceIds: []string{"0000:3b:01.0", "0000:3B:01.1"},
					Topology: &v1.TopologyInfo{Nodes: []*v1.NUMANode{{ID: 0}}}}}},
			{Name: "sidecar"},
		}},
		{Name: "gpu-job", Namespace: "ml", Containers: []*v1.ContainerResources{
			{Name: "train", Devices: []*v1.ContainerDevices{{ResourceName: "nvidia.com/gpu", DeviceIds: []string{"GPU-8f2c"}}}},
		}},
		{Name: "web", Namespace: "default", Containers: []*v1.ContainerResources{{Name: "nginx"}}},
	}
}

func newCollector(t *testing.T, socket string, timeout time.Duration) *sysfstest.Adapter {
	t.Helper()
	c, err := podresources.New(podresources.Options{Socket: socket, Node: "worker-1", CallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sysfstest.Adapter{C: c}
}

func socketPath(t *testing.T) string {
	// Unix socket paths are limited to 108 bytes; t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "podres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "kubelet.sock")
}

func TestInfoMetricsCarryThePods(t *testing.T) {
	sock := socketPath(t)
	k := &kubelet{pods: sriovPods(), alloc: &v1.AllocatableResourcesResponse{
		CpuIds:  []int64{2, 3, 4, 5, 6, 7, 7},
		Devices: []*v1.ContainerDevices{{ResourceName: "intel.com/sriov_dpdk", DeviceIds: []string{"0000:3b:01.0", "0000:3b:01.1", "0000:3b:01.2"}}, {ResourceName: "intel.com/sriov_dpdk", DeviceIds: []string{"0000:3b:01.3"}}},
	}}
	serve(t, sock, k)
	a := newCollector(t, sock, 0)
	want := `
# HELP podresources_pod_device_info A device the kubelet assigned to a container; always 1. pci_address is device_id when that is a PCI address (SR-IOV device plugin), so it joins sriov_vf_* on (instance, pci_address).
# TYPE podresources_pod_device_info gauge
podresources_pod_device_info{container="dpdk",device_id="0000:3b:01.0",namespace="telco",node="worker-1",pci_address="0000:3b:01.0",pod="cnf-0",resource_name="intel.com/sriov_dpdk"} 1
podresources_pod_device_info{container="dpdk",device_id="0000:3B:01.1",namespace="telco",node="worker-1",pci_address="0000:3b:01.1",pod="cnf-0",resource_name="intel.com/sriov_dpdk"} 1
podresources_pod_device_info{container="train",device_id="GPU-8f2c",namespace="ml",node="worker-1",pci_address="",pod="gpu-job",resource_name="nvidia.com/gpu"} 1
# HELP podresources_pod_cpu_info An exclusive CPU the kubelet's static CPU manager assigned to a container; always 1.
# TYPE podresources_pod_cpu_info gauge
podresources_pod_cpu_info{container="dpdk",cpu="4",namespace="telco",node="worker-1",pod="cnf-0"} 1
podresources_pod_cpu_info{container="dpdk",cpu="5",namespace="telco",node="worker-1",pod="cnf-0"} 1
podresources_pod_cpu_info{container="dpdk",cpu="6",namespace="telco",node="worker-1",pod="cnf-0"} 1
podresources_pod_cpu_info{container="dpdk",cpu="7",namespace="telco",node="worker-1",pod="cnf-0"} 1
# HELP podresources_allocatable_devices Devices of a resource the node can hand to pods (GetAllocatableResources).
# TYPE podresources_allocatable_devices gauge
podresources_allocatable_devices{node="worker-1",resource_name="intel.com/sriov_dpdk"} 4
# HELP podresources_allocatable_cpus CPUs the node can hand out exclusively (GetAllocatableResources; the static CPU manager's pool).
# TYPE podresources_allocatable_cpus gauge
podresources_allocatable_cpus{node="worker-1"} 6
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
	if problems, err := testutil.CollectAndLint(a); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// The pod → VF join the docs give in PromQL, done on gathered metrics: every
// VF a pod holds is found among the SR-IOV collector's VFs by pci_address.
func TestPodDevicesJoinVFsOnPCIAddress(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 4))
	sock := socketPath(t)
	serve(t, sock, &kubelet{pods: sriovPods()})
	reg := prometheus.NewPedanticRegistry()
	sc := sriov.New(sriov.Options{Sys: tree.Sys})
	defer sc.Close()
	reg.MustRegister(&sysfstest.Adapter{C: sc}, newCollector(t, sock, 0))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vfByPCI := map[string]string{}
	var podDevs []map[string]string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := labels(m)
			switch mf.GetName() {
			case "sriov_vf_rx_packets_total":
				vfByPCI[l["pci_address"]] = l["pf"] + "/" + l["vf"]
			case "podresources_pod_device_info":
				if l["pci_address"] != "" {
					podDevs = append(podDevs, l)
				}
			}
		}
	}
	if len(podDevs) != 2 {
		t.Fatalf("got %d pod VFs, want 2", len(podDevs))
	}
	for _, d := range podDevs {
		if vf, ok := vfByPCI[d["pci_address"]]; !ok {
			t.Errorf("pod %s device %s joins no VF (have %v)", d["pod"], d["pci_address"], vfByPCI)
		} else if d["pci_address"] == "0000:3b:01.1" && vf != "ens1f0/1" {
			t.Errorf("0000:3b:01.1 joined %s, want ens1f0/1", vf)
		}
	}
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestOneConnectionAcrossScrapes(t *testing.T) {
	sock := socketPath(t)
	k := &kubelet{pods: sriovPods(), alloc: &v1.AllocatableResourcesResponse{CpuIds: []int64{1}}}
	serve(t, sock, k)
	a := newCollector(t, sock, 0)
	const scrapes = 20
	for i := 0; i < scrapes; i++ {
		if n := testutil.CollectAndCount(a, "podresources_pod_device_info"); n != 3 || a.Err() != nil {
			t.Fatalf("scrape %d: %d series, err %v", i, n, a.Err())
		}
	}
	if got := k.accepted.Load(); got != 1 {
		t.Errorf("kubelet accepted %d connections over %d scrapes, want 1", got, scrapes)
	}
	if got := k.lists.Load(); got != scrapes {
		t.Errorf("List called %d times, want %d", got, scrapes)
	}
}

func TestRecoversWhenKubeletRestarts(t *testing.T) {
	sock := socketPath(t)
	k1 := &kubelet{pods: sriovPods()}
	stop := serve(t, sock, k1)
	a := newCollector(t, sock, time.Second)
	if testutil.CollectAndCount(a, "podresources_pod_device_info") != 3 || a.Err() != nil {
		t.Fatalf("first scrape: %v", a.Err())
	}
	stop()
	os.Remove(sock)
	if n := testutil.CollectAndCount(a); n != 0 {
		t.Errorf("kubelet down: %d series, want none", n)
	}
	if !errors.Is(a.Err(), podresources.ErrUnavailable) || !strings.Contains(a.Err().Error(), sock) {
		t.Fatalf("kubelet down: error %v, want ErrUnavailable naming the socket", a.Err())
	}

	k2 := &kubelet{pods: sriovPods()[:1]}
	serve(t, sock, k2)
	var n int
	for try := 0; try < 40; try++ { // bounded: reconnect back-off is capped at 5 s
		if n = testutil.CollectAndCount(a, "podresources_pod_device_info"); a.Err() == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if a.Err() != nil || n != 2 {
		t.Fatalf("after kubelet restart: %d series, err %v", n, a.Err())
	}
	for i := 0; i < 5; i++ {
		testutil.CollectAndCount(a)
	}
	if got := k2.accepted.Load(); got != 1 {
		t.Errorf("restarted kubelet accepted %d connections, want 1 kept-alive", got)
	}
}

func TestKubeletWithoutAllocatable(t *testing.T) {
	sock := socketPath(t)
	k := &kubelet{pods: sriovPods()} // alloc nil: Unimplemented
	serve(t, sock, k)
	a := newCollector(t, sock, 0)
	if n := testutil.CollectAndCount(a, "podresources_allocatable_cpus", "podresources_allocatable_devices"); n != 0 {
		t.Errorf("allocatable series from a kubelet without the call: %d", n)
	}
	if a.Err() != nil {
		t.Errorf("Unimplemented GetAllocatableResources is not an error: %v", a.Err())
	}
	if k.allocs.Load() == 0 {
		t.Error("collector never asked for allocatable resources")
	}
}

func TestNoKubeletAndSlowKubeletAreBounded(t *testing.T) {
	a := newCollector(t, filepath.Join(t.TempDir(), "missing.sock"), 500*time.Millisecond)
	testutil.CollectAndCount(a)
	if !errors.Is(a.Err(), podresources.ErrUnavailable) {
		t.Errorf("missing socket: %v, want ErrUnavailable", a.Err())
	}

	sock := socketPath(t)
	k := &kubelet{pods: sriovPods(), listDelay: time.Minute}
	serve(t, sock, k)
	slow := newCollector(t, sock, 300*time.Millisecond)
	done := make(chan struct{})
	go func() { defer close(done); testutil.CollectAndCount(slow) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("scrape of a kubelet that never answers did not end")
	}
	if !errors.Is(slow.Err(), podresources.ErrUnavailable) || !strings.Contains(slow.Err().Error(), "DeadlineExceeded") {
		t.Errorf("slow kubelet: %v, want a deadline error", slow.Err())
	}
}
