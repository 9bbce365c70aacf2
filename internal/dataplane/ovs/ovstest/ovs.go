// Package ovstest starts a private, real OVS-DPDK for tests: its own
// ovsdb-server and Debian's ovs-vswitchd-dpdk in a temporary run directory,
// with 2 MB hugepages, a netdev bridge and DPDK ports on net_null devices
// (which generate packets on receive, so the PMD thread has work).
package ovstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Programs and files of Debian 12's openvswitch-switch-dpdk.
const (
	VswitchdDPDK = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
	Schema       = "/usr/share/openvswitch/vswitch.ovsschema"
	nrHugepages  = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
	dpdkRunDir   = "/var/run/dpdk"
	// hugepagesWanted is what the test reserves (1 GiB); ovs-vswitchd is
	// given 256 MB of it (dpdk-socket-mem).
	hugepagesWanted = 512
)

// OVS is a running private OVS-DPDK.
type OVS struct {
	RunDir     string // OVS_RUNDIR: pid files, control sockets, db.sock
	DBSock     string
	FilePrefix string // the DPDK --file-prefix of ovs-vswitchd
	Bridge     string
	Ports      []string

	env      []string
	vswitchd *proc
	dbserver *proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Start brings up ovsdb-server and ovs-vswitchd-dpdk with a netdev bridge
// and nPorts DPDK ports on net_null0..N-1. Everything is stopped, unmounted
// and restored (nr_hugepages) when the test ends. The PMD thread spins
// one core (core 1) while OVS runs.
func Start(t testing.TB, nPorts int) *OVS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("OVS-DPDK needs root: it reserves hugepages and mounts hugetlbfs")
	}
	for _, bin := range []string{VswitchdDPDK, Schema} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s missing (Debian package openvswitch-switch-dpdk; run scripts/deps/20-dpdk-ovs.sh as root): %v", bin, err)
		}
	}
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vsctl", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (Debian packages openvswitch-common, openvswitch-switch): %v", bin, err)
		}
	}
	// A short path: unix socket paths are limited to 107 bytes, and
	// t.TempDir() embeds the test name.
	dir, err := os.MkdirTemp("", "ovsdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	reserveHugepages(t)
	huge := filepath.Join(dir, "huge")
	os.Mkdir(huge, 0o755)
	if out, err := exec.Command("mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", huge).CombinedOutput(); err != nil {
		t.Fatalf("mount hugetlbfs at %s: %v: %s", huge, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", huge).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", huge, err, out)
		}
	})

	o := &OVS{
		RunDir:     dir,
		DBSock:     filepath.Join(dir, "db.sock"),
		FilePrefix: "dpovs" + randHex(4),
		Bridge:     "br0",
	}
	o.env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(dpdkRunDir, o.FilePrefix)) })

	db := filepath.Join(dir, "conf.db")
	o.run(t, "ovsdb-tool", "create", db, Schema)
	o.dbserver = o.start(t, "ovsdb-server", db,
		"--remote=punix:"+o.DBSock,
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	t.Cleanup(o.dbserver.stop)
	waitFile(t, o.DBSock, 15*time.Second, o.dbserver.done)

	o.vsctl(t, "--no-wait", "init")
	o.vsctl(t, "--no-wait", "set", "Open_vSwitch", ".",
		"other_config:dpdk-init=true",
		"other_config:dpdk-extra=--no-pci --file-prefix="+o.FilePrefix+" --huge-dir="+huge,
		"other_config:dpdk-socket-mem=256",
		// The PMD on core 1, leaving core 0 to the main thread (and the
		// rest of the machine).
		"other_config:pmd-cpu-mask=0x2")
	// In a network namespace of its own: the netdev datapath creates tap
	// devices named "ovs-netdev" and after each bridge, and a second
	// OVS-DPDK on the host (another test, another engineer's) would find
	// them busy. The namespace goes away with the process. unshare execs,
	// so the pid is ovs-vswitchd's.
	o.vswitchd = o.start(t, "unshare", "--net", "--", VswitchdDPDK, "unix:"+o.DBSock,
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
	t.Cleanup(o.vswitchd.stop)
	waitFile(t, filepath.Join(dir, "ovs-vswitchd.pid"), 30*time.Second, o.vswitchd.done)

	// --no-wait, then poll: ovs-vsctl's own wait ends in SIGALRM and says
	// nothing about why; the ofport column tells whether a port made it.
	args := []string{"--no-wait", "add-br", o.Bridge, "--", "set", "bridge", o.Bridge, "datapath_type=netdev"}
	for i := range nPorts {
		name := "p" + strconv.Itoa(i)
		o.Ports = append(o.Ports, name)
		args = append(args, "--", "add-port", o.Bridge, name, "--", "set", "Interface", name,
			"type=dpdk", "options:dpdk-devargs=net_null"+strconv.Itoa(i))
	}
	o.vsctl(t, args...)
	// DPDK port setup (EAL, mempools) takes seconds, more on a loaded node.
	deadline := time.Now().Add(120 * time.Second)
	for _, p := range o.Ports {
		for {
			ofport := strings.TrimSpace(o.vsctl(t, "get", "Interface", p, "ofport"))
			if ofport == "-1" {
				t.Fatalf("OVS failed to add DPDK port %s (ofport -1); ovs-vswitchd log:\n%s", p, o.Log())
			}
			if ofport != "[]" {
				break
			}
			select {
			case <-o.vswitchd.done:
				t.Fatalf("ovs-vswitchd exited while adding port %s; its log:\n%s", p, o.Log())
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("OVS has not added DPDK port %s after 120 s; ovs-vswitchd log:\n%s", p, o.Log())
			}
		}
	}
	return o
}

// Log returns ovs-vswitchd's log, for failure messages.
func (o *OVS) Log() string {
	b, _ := os.ReadFile(filepath.Join(o.RunDir, "ovs-vswitchd.log"))
	return string(b)
}

// Stop stops ovs-vswitchd and ovsdb-server now rather than at cleanup.
func (o *OVS) Stop() {
	o.vswitchd.stop()
	o.dbserver.stop()
}

// VswitchdPID is ovs-vswitchd's process id.
func (o *OVS) VswitchdPID() int { return o.vswitchd.cmd.Process.Pid }

func (o *OVS) vsctl(t testing.TB, args ...string) string {
	t.Helper()
	return o.run(t, "ovs-vsctl", append([]string{"--db=unix:" + o.DBSock}, args...)...)
}

func (o *OVS) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = o.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s\novs-vswitchd log:\n%s", name, strings.Join(args, " "), err, errb.String(), o.Log())
	}
	return out.String()
}

func (o *OVS) start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = o.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

// hugepagesLock serialises changes to nr_hugepages between test
// processes (go test runs packages in parallel).
var hugepagesLock = filepath.Join(os.TempDir(), "wirelog-hugepages.lock")

// reserveHugepages adds 512 2 MB pages to the pool and takes them away
// again when the test ends. Both are relative to the value at that moment,
// under a file lock, so two OVS tests running at once (two packages) leave
// the pool as they found it; a saved absolute value would not.
func reserveHugepages(t testing.TB) {
	t.Helper()
	if err := addHugepages(hugepagesWanted); err != nil {
		t.Fatalf("reserve 2 MB hugepages: %v", err)
	}
	t.Cleanup(func() {
		if err := addHugepages(-hugepagesWanted); err != nil {
			t.Errorf("give back 2 MB hugepages: %v", err)
		}
	})
}

func addHugepages(delta int) error {
	lock, err := os.OpenFile(hugepagesLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", hugepagesLock, err)
	}
	b, err := os.ReadFile(nrHugepages)
	if err != nil {
		return err
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s holds %q", nrHugepages, b)
	}
	want := max(cur+delta, 0)
	if err := os.WriteFile(nrHugepages, []byte(strconv.Itoa(want)), 0o644); err != nil {
		return fmt.Errorf("write %d to %s: %w", want, nrHugepages, err)
	}
	b, _ = os.ReadFile(nrHugepages)
	if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); delta > 0 && got < want {
		// Give back what was granted so the pool is not left half grown.
		os.WriteFile(nrHugepages, []byte(strconv.Itoa(cur)), 0o644)
		return fmt.Errorf("asked the kernel for %d 2 MB hugepages, got %d: memory too fragmented or too little free; free memory or drop caches and retry", want, got)
	}
	return nil
}

// HugepagesInUse is how many 2 MB hugepages are taken on the host
// (nr_hugepages - free_hugepages): non-zero while OVS-DPDK holds its
// memory in them.
func HugepagesInUse() (int, error) {
	read := func(name string) (int, error) {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(nrHugepages), name))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	nr, err := read("nr_hugepages")
	if err != nil {
		return 0, err
	}
	free, err := read("free_hugepages")
	if err != nil {
		return 0, err
	}
	return nr - free, nil
}

func waitFile(t testing.TB, path string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("process exited before creating %s", path)
		case <-deadline:
			t.Fatalf("%s not created within %v", path, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
