package sysfs

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPU bounds the CPU ids a list may name. The kernel's NR_CPUS tops out at
// 8192 on x86 and arm64; a larger id is a corrupt file, and refusing it keeps
// "0-4294967295" from allocating gigabytes.
const MaxCPU = 1 << 14

// ErrCPUList marks a CPU list that is not in the kernel's list format.
var ErrCPUList = errors.New("bad CPU list")

// ParseCPUList parses the kernel's CPU list format, as written to
// devices/system/cpu/isolated, nodeN/cpulist and the kubelet's cpuset
// strings: comma-separated ids and ranges ("0-3,8,10-11"), optionally with
// the stride form the boot parameters accept ("0-15:2/4": of each group of 4
// starting at 0, use the first 2). Blank input is the empty set. The result
// is sorted and has no duplicates.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var set []bool
	add := func(cpu int) {
		if cpu >= len(set) {
			set = append(set, make([]bool, cpu+1-len(set))...)
		}
		set[cpu] = true
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w %q: empty element", ErrCPUList, clip(s))
		}
		rng, stride, hasStride := strings.Cut(part, ":")
		lo, hi, isRange := strings.Cut(rng, "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrCPUList, clip(s), err)
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("%w %q: %v", ErrCPUList, clip(s), err)
			}
			if last < first {
				return nil, fmt.Errorf("%w %q: range %s ends before it starts", ErrCPUList, clip(s), part)
			}
		}
		used, group := 1, 1
		if hasStride {
			if !isRange {
				return nil, fmt.Errorf("%w %q: stride %s needs a range", ErrCPUList, clip(s), part)
			}
			u, g, ok := strings.Cut(stride, "/")
			if !ok {
				return nil, fmt.Errorf("%w %q: stride %s is not used/group", ErrCPUList, clip(s), part)
			}
			if used, err = parseCPU(u); err != nil {
				return nil, fmt.Errorf("%w %q: %v", ErrCPUList, clip(s), err)
			}
			if group, err = parseCPU(g); err != nil {
				return nil, fmt.Errorf("%w %q: %v", ErrCPUList, clip(s), err)
			}
			if used == 0 || group == 0 || used > group {
				return nil, fmt.Errorf("%w %q: stride %s must have 0 < used <= group", ErrCPUList, clip(s), part)
			}
		}
		for cpu := first; cpu <= last; cpu++ {
			if (cpu-first)%group < used {
				add(cpu)
			}
		}
	}
	var out []int
	for cpu, ok := range set {
		if ok {
			out = append(out, cpu)
		}
	}
	return out, nil
}

func parseCPU(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= MaxCPU {
		return 0, fmt.Errorf("%q is not a CPU number below %d", s, MaxCPU)
	}
	return int(n), nil
}

// FormatCPUList writes cpus (any order, duplicates allowed) in the kernel's
// list format with ranges, the inverse of ParseCPUList.
func FormatCPUList(cpus []int) string {
	if len(cpus) == 0 {
		return ""
	}
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// ReadCPUList reads a file in CPU list format. The kernel writes "(null)" to
// devices/system/cpu/nohz_full when no CPU is nohz_full; that is the empty set.
func ReadCPUList(path string) ([]int, error) {
	s, err := ReadString(path)
	if err != nil {
		return nil, err
	}
	if s == "(null)" {
		return nil, nil
	}
	cpus, err := ParseCPUList(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, path, err)
	}
	return cpus, nil
}
