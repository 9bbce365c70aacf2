package sriov

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Where VF counters come from.
const (
	SourceSysfs   = "sysfs"   // the driver's <pf>/device/sriov/N/stats
	SourceNetlink = "netlink" // IFLA_VF_STATS in the PF's RTM_GETLINK reply
	SourceNone    = "none"    // neither: the driver reports no VF counters
)

// maxStatsFile bounds a stats file read: real ones are a few hundred bytes.
const maxStatsFile = 64 << 10

// sysfsStatsPath is where the ice, i40e (out-of-tree) and mlx5 (legacy
// mode) drivers put a VF's counters.
func sysfsStatsPath(pf PF, vf int) string {
	return filepath.Join(pf.DevicePath, "sriov", strconv.Itoa(vf), "stats")
}

// ReadSysfsStats reads a VF's counters from the driver's sysfs stats, which
// come in two shapes: a directory with one file per counter (ice, i40e:
// stats/rx_packets holding "123"), or one file of "name : value" lines
// (mlx5). It returns ok=false when the driver has no such files.
func ReadSysfsStats(pf PF, vf int) (stats map[string]uint64, ok bool, err error) {
	path := sysfsStatsPath(pf, vf)
	stats, err = sysfs.ReadUintsAt(path, statsFileNames)
	switch {
	case err == nil:
		return stats, true, nil
	case sysfs.IsNotExist(err) && stats == nil:
		return nil, false, nil
	case errors.Is(err, syscall.ENOTDIR):
		f, err := os.Open(path)
		if err != nil {
			return nil, false, fmt.Errorf("VF %d stats: %w", vf, err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxStatsFile))
		if err != nil {
			return nil, false, fmt.Errorf("VF %d stats: read %s: %w", vf, path, err)
		}
		stats, err = ParseStatsFile(data)
		if err != nil {
			return nil, false, fmt.Errorf("VF %d stats: %s: %w", vf, path, err)
		}
		return stats, true, nil
	default:
		return nil, false, fmt.Errorf("VF %d stats: %w", vf, err)
	}
}

// statsFileNames are the counter files looked for in a stats directory.
var statsFileNames = func() []string {
	var names []string
	for _, c := range vfCounters {
		names = append(names, c.name)
	}
	for alias := range counterAliases {
		names = append(names, alias)
	}
	return names
}()

// ParseStatsFile parses the one-file form of a VF's sysfs stats: a line per
// counter, "name : value", "name: value" or "name value". Blank lines are
// skipped; any other line is an error, so a format change is noticed rather
// than exported as zeros.
func ParseStatsFile(data []byte) (map[string]uint64, error) {
	stats := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxStatsFile)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			f := strings.Fields(text)
			if len(f) != 2 {
				return nil, fmt.Errorf("%w: line %d %q is not \"name : value\"", sysfs.ErrMalformed, line, clipLine(text))
			}
			name, value = f[0], f[1]
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: line %d %q has no counter name", sysfs.ErrMalformed, line, clipLine(text))
		}
		v, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: counter %s has value %q, want an unsigned number", sysfs.ErrMalformed, line, clipLine(name), clipLine(value))
		}
		stats[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", sysfs.ErrMalformed, err)
	}
	return stats, nil
}

func clipLine(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
