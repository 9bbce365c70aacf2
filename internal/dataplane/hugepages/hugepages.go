// Package hugepages reads the kernel's huge page pools, system-wide
// (<sysfs>/kernel/mm/hugepages) and per NUMA node
// (<sysfs>/devices/system/node/nodeN/hugepages), and exports them. DPDK
// takes its memory from these pools, and a pod pinned to a NUMA node can
// only use that node's pages, so the per-node view is the one that matters.
package hugepages

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// SystemWide is the NUMANode of a pool that is the sum over all nodes.
const SystemWide = -1

// Pool is one huge page size's pool, on one NUMA node or system-wide.
type Pool struct {
	SizeBytes uint64
	NUMANode  int // SystemWide for <sysfs>/kernel/mm/hugepages
	Total     uint64
	Free      uint64
	Surplus   uint64
	// Reserved (resv_hugepages) and Overcommit (nr_overcommit_hugepages)
	// exist only system-wide; the kernel keeps no per-node figure.
	Reserved   uint64
	Overcommit uint64
}

// Read returns the system-wide pools and the per-NUMA-node pools, each
// sorted by node then size. A kernel without huge pages (no
// kernel/mm/hugepages) or without NUMA (no devices/system/node) gives empty
// lists, not an error.
func Read(sys string) (system, perNode []Pool, err error) {
	var errs []error
	system, err = readPools(filepath.Join(sys, "kernel", "mm", "hugepages"), SystemWide)
	if err != nil {
		errs = append(errs, err)
	}
	nodes, err := NUMANodes(sys)
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range nodes {
		p, err := readPools(filepath.Join(sys, "devices", "system", "node", "node"+strconv.Itoa(n), "hugepages"), n)
		if err != nil {
			errs = append(errs, err)
		}
		perNode = append(perNode, p...)
	}
	return system, perNode, errors.Join(errs...)
}

// NUMANodes lists the node ids under <sysfs>/devices/system/node, sorted.
func NUMANodes(sys string) ([]int, error) {
	dir := filepath.Join(sys, "devices", "system", "node")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if sysfs.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list NUMA nodes: %w", err)
	}
	var nodes []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "node")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			continue
		}
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes, nil
}

func readPools(dir string, node int) ([]Pool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if sysfs.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list huge page pools: %w", err)
	}
	var (
		pools []Pool
		errs  []error
	)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "hugepages-") {
			continue
		}
		size, err := ParseSizeDir(e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err))
			continue
		}
		p := Pool{SizeBytes: size, NUMANode: node}
		d := filepath.Join(dir, e.Name())
		fields := []struct {
			file     string
			dst      *uint64
			optional bool
		}{
			{"nr_hugepages", &p.Total, false},
			{"free_hugepages", &p.Free, false},
			{"surplus_hugepages", &p.Surplus, false},
			{"resv_hugepages", &p.Reserved, node != SystemWide},
			{"nr_overcommit_hugepages", &p.Overcommit, node != SystemWide},
		}
		ok := true
		for _, f := range fields {
			v, err := sysfs.ReadUint(filepath.Join(d, f.file))
			if err != nil {
				if f.optional && sysfs.IsNotExist(err) {
					continue
				}
				errs = append(errs, fmt.Errorf("huge pages: %w", err))
				ok = false
				break
			}
			*f.dst = v
		}
		if ok {
			pools = append(pools, p)
		}
	}
	slices.SortFunc(pools, func(a, b Pool) int { return cmp.Compare(a.SizeBytes, b.SizeBytes) })
	return pools, errors.Join(errs...)
}

// ParseSizeDir turns a pool directory name such as "hugepages-2048kB" into
// its page size in bytes.
func ParseSizeDir(name string) (uint64, error) {
	s, ok := strings.CutPrefix(name, "hugepages-")
	if !ok {
		return 0, fmt.Errorf("%w: pool directory %q does not start with hugepages-", sysfs.ErrMalformed, name)
	}
	s, ok = strings.CutSuffix(s, "kB")
	if !ok {
		return 0, fmt.Errorf("%w: pool directory %q does not end in kB", sysfs.ErrMalformed, name)
	}
	kb, err := strconv.ParseUint(s, 10, 64)
	if err != nil || kb == 0 || kb > 1<<40 {
		return 0, fmt.Errorf("%w: pool directory %q has no page size", sysfs.ErrMalformed, name)
	}
	return kb << 10, nil
}
