package cpuiso

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Defaults.
const (
	// DefaultCPUManagerState is where the kubelet keeps its CPU manager
	// checkpoint (--root-dir /var/lib/kubelet).
	DefaultCPUManagerState = "/var/lib/kubelet/cpu_manager_state"
	// maxStateFile bounds a state file read; a node with 1,000 pods of 8
	// containers writes ~500 kB.
	maxStateFile = 4 << 20
)

// ErrCPUManagerState marks a CPU manager state file the kubelet would not
// have written: a corrupt checkpoint (the kubelet itself refuses to start on
// one) or a wrong --cpu-manager-state path.
var ErrCPUManagerState = errors.New("bad kubelet CPU manager state")

// CPUManagerState is the kubelet CPU manager checkpoint
// (pkg/kubelet/cm/cpumanager/state/checkpoint.go, format v2).
type CPUManagerState struct {
	Policy     string // "none" or "static"
	DefaultSet []int  // the shared pool every non-exclusive container runs on
	// Exclusive maps pod UID → container name → CPUs assigned to it alone.
	Exclusive map[string]map[string][]int
}

type stateFile struct {
	PolicyName    *string                      `json:"policyName"`
	DefaultCPUSet string                       `json:"defaultCpuSet"`
	Entries       map[string]map[string]string `json:"entries"`
	Checksum      json.Number                  `json:"checksum"`
}

// ParseCPUManagerState parses the kubelet's cpu_manager_state JSON, e.g.
//
//	{"policyName":"static","defaultCpuSet":"0-1,6-7","entries":{"<pod uid>":{"dpdk":"2-5"}},"checksum":1}
//
// The checksum is not verified: its algorithm is an implementation detail
// of the kubelet version that wrote the file.
func ParseCPUManagerState(data []byte) (CPUManagerState, error) {
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return CPUManagerState{}, fmt.Errorf("%w: not the kubelet's JSON checkpoint: %v", ErrCPUManagerState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return CPUManagerState{}, fmt.Errorf("%w: trailing data after the JSON object", ErrCPUManagerState)
	}
	if f.PolicyName == nil || *f.PolicyName == "" {
		return CPUManagerState{}, fmt.Errorf("%w: no policyName", ErrCPUManagerState)
	}
	st := CPUManagerState{Policy: *f.PolicyName, Exclusive: map[string]map[string][]int{}}
	var err error
	if st.DefaultSet, err = sysfs.ParseCPUList(f.DefaultCPUSet); err != nil {
		return CPUManagerState{}, fmt.Errorf("%w: defaultCpuSet: %w", ErrCPUManagerState, err)
	}
	for pod, containers := range f.Entries {
		if pod == "" {
			return CPUManagerState{}, fmt.Errorf("%w: entry with an empty pod UID", ErrCPUManagerState)
		}
		for name, set := range containers {
			cpus, err := sysfs.ParseCPUList(set)
			if err != nil {
				return CPUManagerState{}, fmt.Errorf("%w: pod %s container %s: %w", ErrCPUManagerState, pod, name, err)
			}
			if st.Exclusive[pod] == nil {
				st.Exclusive[pod] = map[string][]int{}
			}
			st.Exclusive[pod][name] = cpus
		}
	}
	return st, nil
}

// ReadCPUManagerState reads the state file at path. A missing file gives
// ok=false and no error: the node runs no kubelet, or one that has not
// started its CPU manager yet.
func ReadCPUManagerState(path string) (st CPUManagerState, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		if sysfs.IsNotExist(err) {
			return st, false, nil
		}
		return st, false, fmt.Errorf("read kubelet CPU manager state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return st, false, fmt.Errorf("read kubelet CPU manager state %s: %w", path, err)
	}
	if len(data) > maxStateFile {
		return st, false, fmt.Errorf("%w: %s is larger than %d bytes", ErrCPUManagerState, path, maxStateFile)
	}
	st, err = ParseCPUManagerState(data)
	if err != nil {
		return st, false, fmt.Errorf("%s: %w", path, err)
	}
	return st, true, nil
}

// ExclusiveCPUs returns every CPU assigned exclusively to some container, sorted.
func (st CPUManagerState) ExclusiveCPUs() []int {
	seen := map[int]bool{}
	for _, cs := range st.Exclusive {
		for _, cpus := range cs {
			for _, c := range cpus {
				seen[c] = true
			}
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}
