package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces live (the iproute2 convention, so
// `ip netns list` shows the lab's and `ip netns exec` enters them).
const netnsDir = "/var/run/netns"

// namespace is one named network namespace the lab created, with an open
// handle and a netlink socket inside it.
type namespace struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

// createNamespace creates the named namespace. It fails with ErrNameTaken
// when the name exists: the lab never adopts what it did not create.
func createNamespace(name string) (*namespace, error) {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
		return nil, fmt.Errorf("%w: %s exists (remove it with `wirelog netlab cleanup --prefix %s` if an earlier run left it)",
			ErrNameTaken, filepath.Join(netnsDir, name), strings.SplitN(name, "-", 2)[0])
	}
	var h netns.NsHandle
	err := onThread(func() error {
		// NewNamed moves this thread into the new namespace; onThread
		// throws the thread away afterwards, so no other goroutine ever
		// runs in it by accident.
		var err error
		h, err = netns.NewNamed(name)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrNameTaken, name)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("create namespace %s: %w", name, ErrNotRoot)
		}
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		netns.DeleteNamed(name)
		return nil, fmt.Errorf("open netlink in namespace %s: %w", name, err)
	}
	return &namespace{name: name, h: h, nl: nl}, nil
}

// close releases the handles and deletes the namespace; the kernel then
// destroys every link, address, route, rule and conntrack entry in it.
func (n *namespace) close() error {
	if n == nil {
		return nil
	}
	if n.nl != nil {
		n.nl.Close()
	}
	n.h.Close()
	if err := netns.DeleteNamed(n.name); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete namespace %s: %w", n.name, err)
	}
	return nil
}

// onThread runs fn on a fresh OS thread that is discarded afterwards, so
// whatever fn does to the thread (setns, affinity) never leaks into the Go
// scheduler's thread pool.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: a goroutine that exits locked takes its
		// thread with it.
		errc <- fn()
	}()
	return <-errc
}

// inNamespace runs fn on a discarded thread inside ns.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// writeSysctl sets a /proc/sys value inside ns (net.* sysctls are per
// namespace: the kernel resolves them against the writing thread's).
func (n *namespace) writeSysctl(key, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return inNamespace(n.h, func() error {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in namespace %s: %w", key, value, n.name, err)
		}
		return nil
	})
}

// readProcNet reads /proc/thread-self/net/<file> inside ns (/proc/net is
// /proc/self/net, which follows the process leader's namespace, not ours).
func (n *namespace) readProcNet(file string) ([]byte, error) {
	var b []byte
	err := inNamespace(n.h, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + file)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/%s in namespace %s: %w", file, n.name, err)
	}
	return b, nil
}

// exec runs a command inside the namespace with `ip netns exec`, which
// also mounts the namespace's own /sys (RPS masks live there). stdin, when
// not empty, is fed to the command.
func (n *namespace) exec(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 600 {
			msg = msg[:600] + "…"
		}
		return fmt.Errorf("%s %s in namespace %s: %w: %s", name, strings.Join(args, " "), n.name, err, msg)
	}
	return nil
}

// LabNamespaces lists the namespaces whose names start with prefix+"-".
func LabNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Cleanup removes every namespace whose name starts with prefix+"-",
// after ending the processes still inside them (a dpdk-testpmd of an
// interrupted run). It returns the names it removed.
func Cleanup(prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	names, err := LabNamespaces(prefix)
	if err != nil {
		return nil, err
	}
	var errs []error
	var removed []string
	for _, name := range names {
		if err := killInNamespace(filepath.Join(netnsDir, name)); err != nil {
			errs = append(errs, err)
		}
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			// A file that is not a mount point (half-created) still goes.
			if rmErr := os.Remove(filepath.Join(netnsDir, name)); rmErr != nil {
				errs = append(errs, fmt.Errorf("delete namespace %s: %w", name, err))
				continue
			}
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// killInNamespace ends the processes whose network namespace is the one
// bound at path: SIGTERM, then SIGKILL after a second.
func killInNamespace(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil
	}
	pids := pidsInNetns(st.Ino)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(time.Second)
	for len(pidsInNetns(st.Ino)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range pidsInNetns(st.Ino) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

func pidsInNetns(ino uint64) []int {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

// checkPrefix keeps prefixes short (interface and namespace names stay
// readable) and free of characters a path or `ip netns` would trip on.
func checkPrefix(p string) error {
	if p == "" || len(p) > 12 {
		return fmt.Errorf("--prefix %q: must be 1 to 12 characters", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("--prefix %q: use only a-z, 0-9 and _", p)
		}
	}
	return nil
}
