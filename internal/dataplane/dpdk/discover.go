package dpdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// socketName is the telemetry v2 socket's file name inside a process's
// runtime directory (<runtime dir>/<file-prefix>/). A second process with
// the same file prefix (a secondary process, or --in-memory processes that
// share a prefix) finds the name taken and binds "dpdk_telemetry.v2:N".
const socketName = "dpdk_telemetry.v2"

// Socket is one discovered telemetry socket.
type Socket struct {
	// Path is the socket's absolute path.
	Path string
	// FilePrefix is the process's --file-prefix: the name of the runtime
	// directory the socket lives in ("rte" when none was given).
	FilePrefix string
	// Name is the socket's file name, "dpdk_telemetry.v2" or
	// "dpdk_telemetry.v2:N".
	Name string
}

// Discover lists the telemetry sockets under each runtime directory
// (/var/run/dpdk for root processes, $XDG_RUNTIME_DIR/dpdk for others). A
// runtime directory that does not exist has no processes yet and is not an
// error: DPDK creates it when the first process starts.
func Discover(runtimeDirs []string) ([]Socket, error) {
	var out []Socket
	for _, dir := range runtimeDirs {
		prefixes, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list dpdk runtime dir %s (set --dpdk-runtime-dir): %w", dir, err)
		}
		for _, p := range prefixes {
			if !p.IsDir() {
				continue
			}
			pdir := filepath.Join(dir, p.Name())
			entries, err := os.ReadDir(pdir)
			if err != nil {
				// The process may have exited and removed its directory
				// between the two reads; nothing to scrape there.
				continue
			}
			for _, e := range entries {
				if !isSocketName(e.Name()) || e.Type()&fs.ModeSocket == 0 {
					continue
				}
				out = append(out, Socket{Path: filepath.Join(pdir, e.Name()), FilePrefix: p.Name(), Name: e.Name()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// isSocketName accepts "dpdk_telemetry.v2" and "dpdk_telemetry.v2:N".
func isSocketName(name string) bool {
	rest, ok := strings.CutPrefix(name, socketName)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	n, ok := strings.CutPrefix(rest, ":")
	if !ok || n == "" {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
