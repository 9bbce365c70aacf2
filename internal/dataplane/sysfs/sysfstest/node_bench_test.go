package sysfstest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	v1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/podresources"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

const (
	benchPFs = 4
	benchVFs = 64
)

type lister struct {
	v1.UnimplementedPodResourcesListerServer
	pods  []*v1.PodResources
	alloc *v1.AllocatableResourcesResponse
}

func (l *lister) List(context.Context, *v1.ListPodResourcesRequest) (*v1.ListPodResourcesResponse, error) {
	return &v1.ListPodResourcesResponse{PodResources: l.pods}, nil
}

func (l *lister) GetAllocatableResources(context.Context, *v1.AllocatableResourcesRequest) (*v1.AllocatableResourcesResponse, error) {
	return l.alloc, nil
}

// benchNode is the fake node: 4 ice PFs × 64 VFs with per-VF sysfs
// stats, a two-socket CPU/huge page layout, a kubelet with one pod per VF
// (each with 2 exclusive CPUs where there are CPUs to give) and a static
// CPU manager state.
func benchNode(b *testing.B) []dataplane.Collector {
	b.Helper()
	tree := sysfstest.New(b)
	tree.DataplaneNode()
	buses := []string{"3b", "5e", "af", "d8"}
	var pods []*v1.PodResources
	var allocIDs []string
	for p := 0; p < benchPFs; p++ {
		pci := "0000:" + buses[p] + ":00.0"
		pf := sysfstest.ICE(fmt.Sprintf("ens%df0", p+1), pci, p/2, benchVFs)
		pf.VFDrivers = map[int]string{}
		for v := 0; v < benchVFs; v += 2 {
			pf.VFDrivers[v] = "vfio-pci"
		}
		tree.AddPF(pf)
		for v := 0; v < benchVFs; v++ {
			addr := sysfstest.VFAddress(pci, v)
			allocIDs = append(allocIDs, addr)
			pods = append(pods, &v1.PodResources{Name: fmt.Sprintf("cnf-%d-%d", p, v), Namespace: "telco", Containers: []*v1.ContainerResources{{
				Name:    "dpdk",
				Devices: []*v1.ContainerDevices{{ResourceName: "intel.com/sriov_dpdk", DeviceIds: []string{addr}}},
				CpuIds:  []int64{int64(4 + (p*benchVFs+v)%28), int64(5 + (p*benchVFs+v)%27)},
			}}})
		}
	}
	var entries []string
	for i := 0; i < 14; i++ {
		entries = append(entries, fmt.Sprintf(`"pod-%d":{"dpdk":"%d-%d"}`, i, 4+2*i, 5+2*i))
	}
	state := filepath.Join(b.TempDir(), "cpu_manager_state")
	os.WriteFile(state, []byte(`{"policyName":"static","defaultCpuSet":"0-3","entries":{`+strings.Join(entries, ",")+`},"checksum":1}`), 0o644)

	dir, err := os.MkdirTemp("", "podres-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "kubelet.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	v1.RegisterPodResourcesListerServer(srv, &lister{pods: pods, alloc: &v1.AllocatableResourcesResponse{
		Devices: []*v1.ContainerDevices{{ResourceName: "intel.com/sriov_dpdk", DeviceIds: allocIDs}}, CpuIds: []int64{4, 5, 6, 7}}})
	go srv.Serve(ln)
	b.Cleanup(srv.Stop)

	pr, err := podresources.New(podresources.Options{Socket: sock, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	sc := sriov.New(sriov.Options{Sys: tree.Sys})
	b.Cleanup(func() { pr.Close(); sc.Close() })
	return []dataplane.Collector{
		sc,
		hugepages.New(tree.Sys),
		cpuiso.New(cpuiso.Options{Sys: tree.Sys, Proc: tree.Proc, CPUManagerState: state}),
		pr,
	}
}

// BenchmarkNodeScrape is one scrape of all node collectors through a
// Prometheus registry, as the agent serves /metrics.
func BenchmarkNodeScrape(b *testing.B) {
	cs := benchNode(b)
	reg := prometheus.NewRegistry()
	adapters := make([]*sysfstest.Adapter, len(cs))
	for i, c := range cs {
		adapters[i] = &sysfstest.Adapter{C: c}
		reg.MustRegister(adapters[i])
	}
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	for _, a := range adapters {
		if a.Err() != nil {
			b.Fatalf("%s: %v", a.C.Name(), a.Err())
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time is what a busy shared machine does not inflate the way it
	// inflates wall time: the scrape's own cost, all goroutines included.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/scrape")
	b.ReportMetric(float64(series), "series/scrape")
	b.ReportMetric(peakRSSMiB(b), "peak-RSS-MiB")
}

// BenchmarkNodeCollector is each collector alone on the same node.
func BenchmarkNodeCollector(b *testing.B) {
	cs := benchNode(b)
	for _, c := range cs {
		b.Run(c.Name(), func(b *testing.B) {
			ch := make(chan prometheus.Metric, 1<<16)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := c.Collect(context.Background(), ch); err != nil {
					b.Fatal(err)
				}
				for len(ch) > 0 {
					<-ch
				}
			}
		})
	}
}

// BenchmarkBaselineReadEveryFile reads every regular file of the same fake
// sysfs tree once: the floor for any exporter that reads sysfs.
func BenchmarkBaselineReadEveryFile(b *testing.B) {
	tree := sysfstest.New(b)
	tree.DataplaneNode()
	buses := []string{"3b", "5e", "af", "d8"}
	for p := 0; p < benchPFs; p++ {
		tree.AddPF(sysfstest.ICE("ens"+strconv.Itoa(p+1)+"f0", "0000:"+buses[p]+":00.0", p/2, benchVFs))
	}
	var files []string
	filepath.Walk(tree.Sys, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	b.ReportMetric(float64(len(files)), "files")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			if _, err := os.ReadFile(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM): the test binary
// with Prometheus, gRPC and netlink loaded, an upper bound for the
// collectors' share of the agent.
func peakRSSMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkSysfsRead is one read of a real sysfs attribute, the unit cost
// a scrape multiplies: sysfs.ReadString (open+read+close) against
// os.ReadFile (which adds fstat and a second read).
func BenchmarkSysfsRead(b *testing.B) {
	const path = "/sys/devices/system/cpu/online"
	b.Run("ReadString", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := sysfs.ReadString(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os.ReadFile", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := os.ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// processCPU is the process's user+system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
