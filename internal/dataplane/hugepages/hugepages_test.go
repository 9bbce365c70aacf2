package hugepages_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

func TestPoolsPerSizeAndNUMANode(t *testing.T) {
	tree := sysfstest.New(t)
	tree.DataplaneNode()
	a := &sysfstest.Adapter{C: hugepages.New(tree.Sys)}
	want := `
# HELP hugepages_free_pages Huge pages not yet faulted in by anyone, all NUMA nodes (free_hugepages; includes reserved ones).
# TYPE hugepages_free_pages gauge
hugepages_free_pages{page_size_bytes="1073741824"} 12
hugepages_free_pages{page_size_bytes="2097152"} 1000
# HELP hugepages_numa_free_pages Free huge pages on one NUMA node (free_hugepages).
# TYPE hugepages_numa_free_pages gauge
hugepages_numa_free_pages{numa_node="0",page_size_bytes="1073741824"} 6
hugepages_numa_free_pages{numa_node="0",page_size_bytes="2097152"} 1000
hugepages_numa_free_pages{numa_node="1",page_size_bytes="1073741824"} 6
hugepages_numa_free_pages{numa_node="1",page_size_bytes="2097152"} 0
# HELP hugepages_numa_pool_pages Huge pages in the persistent pool of one NUMA node (devices/system/node/nodeN/hugepages/*/nr_hugepages).
# TYPE hugepages_numa_pool_pages gauge
hugepages_numa_pool_pages{numa_node="0",page_size_bytes="1073741824"} 8
hugepages_numa_pool_pages{numa_node="0",page_size_bytes="2097152"} 1024
hugepages_numa_pool_pages{numa_node="1",page_size_bytes="1073741824"} 8
hugepages_numa_pool_pages{numa_node="1",page_size_bytes="2097152"} 0
# HELP hugepages_pool_pages Huge pages in the persistent pool, all NUMA nodes (kernel/mm/hugepages/*/nr_hugepages).
# TYPE hugepages_pool_pages gauge
hugepages_pool_pages{page_size_bytes="1073741824"} 16
hugepages_pool_pages{page_size_bytes="2097152"} 1024
# HELP hugepages_reserved_pages Huge pages promised to a mapping but not yet faulted in (resv_hugepages); free minus reserved is what a new process can get.
# TYPE hugepages_reserved_pages gauge
hugepages_reserved_pages{page_size_bytes="1073741824"} 0
hugepages_reserved_pages{page_size_bytes="2097152"} 10
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want),
		"hugepages_free_pages", "hugepages_numa_free_pages", "hugepages_numa_pool_pages", "hugepages_pool_pages", "hugepages_reserved_pages"); err != nil {
		t.Fatal(err)
	}
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
	if problems, err := testutil.CollectAndLint(a); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestNoHugepagesNoNUMAIsEmpty(t *testing.T) {
	tree := sysfstest.New(t)
	tree.Remove("kernel/mm/hugepages")
	a := &sysfstest.Adapter{C: hugepages.New(tree.Sys)}
	if n := testutil.CollectAndCount(a); n != 0 || a.Err() != nil {
		t.Errorf("kernel without huge pages: %d series, err %v", n, a.Err())
	}
}

func TestGarbageLeavesPoolOutWithError(t *testing.T) {
	tree := sysfstest.New(t)
	tree.DataplaneNode()
	tree.Write("devices/system/node/node1/hugepages/hugepages-1048576kB/free_hugepages", "lots\n")
	tree.Remove("kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages")
	tree.Mkdir("kernel/mm/hugepages/hugepages-bogus")
	a := &sysfstest.Adapter{C: hugepages.New(tree.Sys)}
	if n := testutil.CollectAndCount(a, "hugepages_numa_pool_pages"); n != 3 {
		t.Errorf("got %d per-node pools, want 3 (node1 1G left out)", n)
	}
	if n := testutil.CollectAndCount(a, "hugepages_pool_pages"); n != 1 {
		t.Errorf("got %d system pools, want 1 (2M left out)", n)
	}
	err := a.Err()
	for _, want := range []string{"node1/hugepages/hugepages-1048576kB/free_hugepages", `"lots"`, "surplus_hugepages", "hugepages-bogus"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if !errors.Is(err, sysfs.ErrMalformed) {
		t.Errorf("error does not wrap ErrMalformed: %v", err)
	}
}

func TestParseSizeDir(t *testing.T) {
	for in, want := range map[string]uint64{"hugepages-2048kB": 2 << 20, "hugepages-1048576kB": 1 << 30, "hugepages-64kB": 64 << 10} {
		if got, err := hugepages.ParseSizeDir(in); err != nil || got != want {
			t.Errorf("%s = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"hugepages-", "hugepages-kB", "hugepages-2048", "hugepages-0kB", "hugepages--1kB", "x-2048kB"} {
		if _, err := hugepages.ParseSizeDir(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

// The real kernel's files on this machine parse, whatever pools other
// tests have reserved at the moment.
func TestReadsThisMachinesSysfs(t *testing.T) {
	system, _, err := hugepages.Read(sysfs.DefaultSys)
	if err != nil {
		t.Fatal(err)
	}
	if len(system) == 0 {
		t.Skip("this kernel has no huge page pools (kernel/mm/hugepages missing)")
	}
	for _, p := range system {
		if p.SizeBytes == 0 || p.Free > p.Total+p.Surplus {
			t.Errorf("implausible pool %+v", p)
		}
	}
}

func FuzzParseSizeDir(f *testing.F) {
	for _, s := range []string{"hugepages-2048kB", "hugepages-1048576kB", "hugepages-kB", "hugepages-99999999999999999999kB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		size, err := hugepages.ParseSizeDir(name)
		if err != nil {
			if !errors.Is(err, sysfs.ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		if size == 0 || size%1024 != 0 {
			t.Fatalf("%q: size %d", name, size)
		}
	})
}
