// Package cpuiso reads how a node keeps CPUs for the data plane: the
// kernel's isolated and nohz_full sets, the boot parameters that made them,
// which NUMA node each CPU is on, and the kubelet CPU manager's
// assignments, and exports them.
package cpuiso

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Isolation is the kernel's view of CPU isolation.
type Isolation struct {
	Online   []int       // devices/system/cpu/online
	Isolated []int       // devices/system/cpu/isolated (isolcpus= domain CPUs)
	NohzFull []int       // devices/system/cpu/nohz_full; empty when the kernel lacks it
	NUMANode map[int]int // CPU → NUMA node; CPUs missing here have no NUMA node (-1)
}

// ReadIsolation reads the isolation state under the sysfs root sys.
func ReadIsolation(sys string) (Isolation, error) {
	cpuDir := filepath.Join(sys, "devices", "system", "cpu")
	var iso Isolation
	var errs []error
	var err error
	if iso.Online, err = sysfs.ReadCPUList(filepath.Join(cpuDir, "online")); err != nil {
		return iso, fmt.Errorf("read online CPUs: %w", err)
	}
	// isolated exists since Linux 4.2 and nohz_full only with
	// CONFIG_NO_HZ_FULL; a missing file means "none".
	if iso.Isolated, err = sysfs.ReadCPUList(filepath.Join(cpuDir, "isolated")); err != nil && !sysfs.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("read isolated CPUs: %w", err))
	}
	if iso.NohzFull, err = sysfs.ReadCPUList(filepath.Join(cpuDir, "nohz_full")); err != nil && !sysfs.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("read nohz_full CPUs: %w", err))
	}
	iso.NUMANode, err = CPUNodes(sys)
	if err != nil {
		errs = append(errs, err)
	}
	return iso, errors.Join(errs...)
}

// CPUNodes maps each CPU to its NUMA node from devices/system/node/nodeN/cpulist.
func CPUNodes(sys string) (map[int]int, error) {
	nodes, err := hugepages.NUMANodes(sys)
	if err != nil {
		return nil, err
	}
	m := map[int]int{}
	var errs []error
	for _, n := range nodes {
		cpus, err := sysfs.ReadCPUList(filepath.Join(sys, "devices", "system", "node", "node"+strconv.Itoa(n), "cpulist"))
		if err != nil {
			errs = append(errs, fmt.Errorf("read CPUs of NUMA node %d: %w", n, err))
			continue
		}
		for _, c := range cpus {
			m[c] = n
		}
	}
	return m, errors.Join(errs...)
}

// NodeOf returns the CPU's NUMA node, -1 if unknown.
func (iso Isolation) NodeOf(cpu int) int {
	if n, ok := iso.NUMANode[cpu]; ok {
		return n
	}
	return -1
}

// ReadCmdline reads and parses <procfs>/cmdline.
func ReadCmdline(proc string) (map[string]string, error) {
	s, err := sysfs.ReadString(filepath.Join(proc, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("read kernel command line: %w", err)
	}
	return ParseCmdline(s), nil
}

// ParseCmdline splits a kernel command line into parameters the way the
// kernel does: blank-separated, double quotes group blanks, and everything
// after a lone "--" belongs to init, not the kernel. A parameter without
// "=" maps to "". For a repeated parameter, the values are joined with ","
// in order (isolcpus=… given twice is seen whole).
func ParseCmdline(s string) map[string]string {
	params := map[string]string{}
	var cur strings.Builder
	inQuote, started := false, false
	flush := func() bool {
		if !started {
			return true
		}
		tok := strings.ReplaceAll(cur.String(), "\"", "")
		cur.Reset()
		started = false
		if tok == "--" {
			return false
		}
		k, v, _ := strings.Cut(tok, "=")
		if old, ok := params[k]; ok && old != "" && v != "" {
			v = old + "," + v
		}
		params[k] = v
		return true
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
			started = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == 0):
			if !flush() {
				return params
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	flush()
	return params
}
