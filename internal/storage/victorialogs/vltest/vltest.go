// Package vltest starts a real VictoriaLogs (a single node, or two storage
// nodes behind a front node) for tests, through scripts/vl.sh, in a folder
// and on ports of the test's own; the nodes are stopped by their pid files
// when the test ends, and by a watchdog if the test process dies.
package vltest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VL is a running VictoriaLogs.
type VL struct {
	t       testing.TB
	Dir     string
	env     []string
	cluster bool
	// URL is the front node (cluster) or the single node.
	URL string
	// StoragePorts are the storage nodes' ports (cluster).
	StoragePorts []int
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts VictoriaLogs; cluster selects two storage nodes and a front
// node. flush is -inmemoryDataFlushInterval ("" = VictoriaLogs' 5s).
func Start(t testing.TB, cluster bool, flush string) *VL {
	t.Helper()
	v := &VL{t: t, Dir: t.TempDir(), cluster: cluster}
	v.env = append(os.Environ(), "VL_DIR="+v.Dir, "VL_OWNER_PID="+strconv.Itoa(os.Getpid()))
	if flush != "" {
		v.env = append(v.env, "VL_FLUSH_INTERVAL="+flush)
	}
	front := freePort(t)
	if cluster {
		v.StoragePorts = []int{freePort(t), freePort(t)}
		v.env = append(v.env, "VL_FRONT_PORT="+strconv.Itoa(front),
			fmt.Sprintf("VL_STORAGE_PORTS=%d,%d", v.StoragePorts[0], v.StoragePorts[1]))
	} else {
		v.env = append(v.env, "VL_PORT="+strconv.Itoa(front))
	}
	v.URL = "http://127.0.0.1:" + strconv.Itoa(front)
	v.Start()
	t.Cleanup(v.Stop)
	return v
}

func (v *VL) script(arg string) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(), "scripts", "vl.sh"), arg)
	cmd.Env = v.env
	if out, err := cmd.CombinedOutput(); err != nil {
		v.t.Fatalf("scripts/vl.sh %s: %v\n%s", arg, err, out)
	}
}

// Start starts the node(s) that are down.
func (v *VL) Start() {
	if v.cluster {
		v.script("cluster-start")
	} else {
		v.script("start")
	}
}

// Stop stops every node (SIGTERM).
func (v *VL) Stop() {
	if v.cluster {
		v.script("cluster-stop")
	} else {
		v.script("stop")
	}
}

// NodeDir is the folder of a node: "single", "front", "storage1", "storage2".
func (v *VL) nodeDir(node string) string { return filepath.Join(v.Dir, node) }

// Kill9 kills a node with SIGKILL, as a crashed machine, and waits for it
// to be gone.
func (v *VL) Kill9(node string) {
	v.t.Helper()
	v.signal(node, syscall.SIGKILL)
}

// Term stops a node with SIGTERM and waits for it to be gone.
func (v *VL) Term(node string) {
	v.t.Helper()
	v.signal(node, syscall.SIGTERM)
}

func (v *VL) signal(node string, sig syscall.Signal) {
	b, err := os.ReadFile(filepath.Join(v.nodeDir(node), "pid"))
	if err != nil {
		v.t.Fatalf("VictoriaLogs node %s has no pid file: %v", node, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, sig); err != nil {
		v.t.Fatalf("signal %s (pid %d): %v", node, pid, err)
	}
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.t.Fatalf("VictoriaLogs node %s (pid %d) still runs 30s after %v", node, pid, sig)
}

// StorageAddr is storage node i's (1-based) host:port, as VictoriaLogs
// names it in its errors.
func (v *VL) StorageAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(v.StoragePorts[i-1]) }

// Flush makes rows sent so far searchable (/internal/force_flush); it does
// not make them durable.
func (v *VL) Flush() {
	v.t.Helper()
	resp, err := http.Get(v.URL + "/internal/force_flush")
	if err != nil {
		v.t.Fatalf("force_flush: %v", err)
	}
	resp.Body.Close()
}
