package preflight

import (
	"errors"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

// maxKubeletConfig bounds a kubelet config read; real ones are a few kB.
const maxKubeletConfig = 1 << 20

// ErrKubeletConfig marks a --kubelet-config file that is not a
// KubeletConfiguration in YAML or JSON.
var ErrKubeletConfig = errors.New("bad kubelet config file")

// KubeletConfig holds the fields of a KubeletConfiguration
// (kubelet.config.k8s.io/v1beta1) that decide whether a pod gets its
// devices, CPUs and memory from one NUMA node.
type KubeletConfig struct {
	Kind                  string `json:"kind"`
	CPUManagerPolicy      string `json:"cpuManagerPolicy"`
	TopologyManagerPolicy string `json:"topologyManagerPolicy"`
	TopologyManagerScope  string `json:"topologyManagerScope"`
	ReservedSystemCPUs    string `json:"reservedSystemCPUs"`
	MemoryManagerPolicy   string `json:"memoryManagerPolicy"`
}

// ParseKubeletConfig parses a kubelet config file, YAML or JSON. Unknown
// fields are ignored (the full schema is large and versioned); a kind other
// than KubeletConfiguration is an error, since its policies would be read
// from the wrong file.
func ParseKubeletConfig(data []byte) (KubeletConfig, error) {
	var c KubeletConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return KubeletConfig{}, fmt.Errorf("%w: %v", ErrKubeletConfig, err)
	}
	if c.Kind != "" && c.Kind != "KubeletConfiguration" {
		return KubeletConfig{}, fmt.Errorf("%w: kind is %q, want KubeletConfiguration", ErrKubeletConfig, c.Kind)
	}
	return c, nil
}

// ReadKubeletConfig reads and parses the file at path.
func ReadKubeletConfig(path string) (KubeletConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return KubeletConfig{}, fmt.Errorf("--kubelet-config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKubeletConfig+1))
	if err != nil {
		return KubeletConfig{}, fmt.Errorf("--kubelet-config %s: %w", path, err)
	}
	if len(data) > maxKubeletConfig {
		return KubeletConfig{}, fmt.Errorf("%w: --kubelet-config %s is larger than %d bytes", ErrKubeletConfig, path, maxKubeletConfig)
	}
	c, err := ParseKubeletConfig(data)
	if err != nil {
		return KubeletConfig{}, fmt.Errorf("--kubelet-config %s: %w", path, err)
	}
	return c, nil
}
