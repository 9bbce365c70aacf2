// Package dpdktest starts real DPDK processes for tests: dpdk-testpmd on
// net_null virtual devices, which needs no NIC and no hugepages and still
// forwards millions of packets per second, so its counters move.
package dpdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RuntimeDir is where a DPDK process running as root puts its runtime
// directory; the EAL chooses it, a test cannot.
const RuntimeDir = "/var/run/dpdk"

// Testpmd is a running dpdk-testpmd.
type Testpmd struct {
	FilePrefix string
	Socket     string // its telemetry v2 socket
	Cmd        *exec.Cmd
	Log        string // path of its stdout and stderr

	done chan struct{}
}

// Binary returns the dpdk-testpmd path, failing the test with the fix when
// it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		t.Fatalf("dpdk-testpmd not found (Debian package dpdk-dev; run scripts/deps/20-dpdk-ovs.sh as root): %v", err)
	}
	return p
}

// UniquePrefix returns a DPDK --file-prefix no other test or process uses.
func UniquePrefix(tag string) string {
	var b [4]byte
	rand.Read(b[:])
	return "dpt" + tag + hex.EncodeToString(b[:])
}

// StartTestpmd starts dpdk-testpmd with ports net_null0..net_null<ports-1>
// forwarding on lcore 1, waits for its telemetry socket to answer, and stops
// it and removes its runtime directory when the test ends. It spins a CPU
// core while it runs: stop it (Stop) as soon as the test no longer needs it.
func StartTestpmd(t testing.TB, ports int) *Testpmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dpdk-testpmd needs root: its telemetry socket is created under /var/run/dpdk")
	}
	bin := Binary(t)
	prefix := UniquePrefix("tp")
	args := []string{"--no-huge", "-m", "1024", "--no-pci", "-l", "0-1", "--file-prefix=" + prefix}
	for i := range ports {
		args = append(args, "--vdev=net_null"+strconv.Itoa(i))
	}
	// --stats-period keeps testpmd running without reading stdin (it would
	// exit at EOF otherwise) and prints stats to its log.
	args = append(args, "--", "--total-num-mbufs=16384", "--auto-start", "--stats-period", "5")
	logPath := filepath.Join(t.TempDir(), "testpmd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	tp := &Testpmd{
		FilePrefix: prefix,
		Socket:     filepath.Join(RuntimeDir, prefix, "dpdk_telemetry.v2"),
		Cmd:        cmd,
		Log:        logPath,
		done:       make(chan struct{}),
	}
	go func() { cmd.Wait(); close(tp.done) }()
	t.Cleanup(func() {
		tp.Stop()
		os.RemoveAll(filepath.Join(RuntimeDir, prefix))
	})
	if err := WaitSocket(tp.Socket, 30*time.Second, tp.done); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("testpmd telemetry socket %s: %v\ntestpmd log:\n%s", tp.Socket, err, log)
	}
	return tp
}

// Stop ends testpmd the way an operator would (SIGTERM, then SIGKILL after
// 10 s) and waits for it. Stopping twice is harmless.
func (tp *Testpmd) Stop() {
	select {
	case <-tp.done:
		return
	default:
	}
	tp.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tp.done:
	case <-time.After(10 * time.Second):
		tp.Cmd.Process.Kill()
		<-tp.done
	}
}

// Kill ends testpmd with SIGKILL, leaving its telemetry socket file behind
// like a crashed process does.
func (tp *Testpmd) Kill() {
	tp.Cmd.Process.Kill()
	<-tp.done
}

// PID is testpmd's process id.
func (tp *Testpmd) PID() int { return tp.Cmd.Process.Pid }

// WaitSocket waits until a SEQPACKET socket at path accepts a connection and
// sends its greeting, or until exited is closed or timeout passes.
func WaitSocket(path string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error = errors.New("not created yet")
	for {
		if c, err := net.Dial("unixpacket", path); err == nil {
			c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4096)
			n, err := c.Read(buf)
			c.Close()
			if err == nil && n > 0 {
				return nil
			}
			last = err
		} else {
			last = err
		}
		select {
		case <-exited:
			return errors.New("process exited before its socket answered")
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}
