// Package sysfs reads the small text files and symlinks of sysfs and procfs
// under a configurable root, so the node collectors and preflight run the
// same against the host's /sys and /proc, a container's /host/sys, or a fake
// tree in a test. Every error names the file it came from, because the
// operator's next step is to cat that file.
package sysfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Defaults for the roots: the host's own mounts. In a DaemonSet these are
// usually the host's /sys and /proc mounted read-only at the same paths
// (sysfs and procfs are not namespaced for the files read here, except
// class/net, which follows the network namespace of the mount).
const (
	DefaultSys  = "/sys"
	DefaultProc = "/proc"
)

// ErrMalformed marks a file whose content is not what the kernel writes
// there: a truncated write, a wrong --sysfs root, or a kernel format this
// build does not know.
var ErrMalformed = errors.New("malformed sysfs/procfs file")

// attrSize is a sysfs attribute's largest size: the kernel hands show()
// one page.
const attrSize = 4096

// ReadString returns the file's content without the trailing newline and
// surrounding blanks.
//
// A scrape of a node with 256 VFs reads about 3,500 such files, so this is
// open+read+close on the raw descriptor: os.Open adds an fstat and a
// poller registration, os.ReadFile another fstat and a second read, which
// doubles the syscalls. A sysfs attribute comes whole in one read of a
// page; a longer regular file (a test tree, procfs) is read to the end.
func ReadString(path string) (string, error) {
	fd, err := openRetry(path)
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [attrSize]byte
	n, err := readRetry(fd, buf[:])
	if err != nil {
		return "", &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if n < len(buf) {
		return strings.TrimSpace(string(buf[:n])), nil
	}
	var b strings.Builder
	b.Write(buf[:n])
	for n > 0 && b.Len() < maxFile {
		if n, err = readRetry(fd, buf[:]); err != nil {
			return "", &fs.PathError{Op: "read", Path: path, Err: err}
		}
		b.Write(buf[:n])
	}
	return strings.TrimSpace(b.String()), nil
}

// maxFile bounds ReadString on a file that is not a sysfs attribute.
const maxFile = 4 << 20

func openRetry(path string) (int, error) {
	for {
		// O_NONBLOCK: a FIFO in a broken --sysfs tree gives EAGAIN, not a
		// scrape that hangs in open(2); regular and sysfs files ignore it.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func readRetry(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

// ReadUint reads a file holding one unsigned decimal number, as
// sriov_numvfs, nr_hugepages and the per-VF stats files do.
func ReadUint(path string) (uint64, error) {
	s, err := ReadString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: want an unsigned number, got %q", ErrMalformed, path, clip(s))
	}
	return v, nil
}

// ReadInt reads a file holding one signed decimal number, as numa_node does
// (-1 when the platform does not say).
func ReadInt(path string) (int64, error) {
	s, err := ReadString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: want a number, got %q", ErrMalformed, path, clip(s))
	}
	return v, nil
}

// LinkBase returns the last element of a symlink's target without following
// it: the driver name of device/driver, the PCI address of virtfnN. It works
// on a dangling link, which sysfs never has but a broken copy of it may.
func LinkBase(path string) (string, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return "", err
	}
	base := filepath.Base(target)
	if base == "." || base == "/" || base == "" {
		return "", fmt.Errorf("%w: %s: symlink target %q has no name", ErrMalformed, path, clip(target))
	}
	return base, nil
}

// Exists reports whether path exists (following symlinks).
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// IsNotExist reports whether err says a file is missing, so a collector can
// tell "this node has no such feature" from "this file is broken".
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// ReadUintsAt reads the named one-number files of directory dir, as a
// driver's per-VF stats directory holds them, skipping names the directory
// does not have. It opens dir once and each file relative to it, so the
// kernel resolves dir's path once rather than per counter. A dir that is
// not a directory gives an error wrapping syscall.ENOTDIR; a missing dir
// one wrapping fs.ErrNotExist.
func ReadUintsAt(dir string, names []string) (map[string]uint64, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	out := make(map[string]uint64, len(names))
	var buf [64]byte
	for _, name := range names {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return out, &fs.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
		}
		n, err := readRetry(fd, buf[:])
		unix.Close(fd)
		if err != nil {
			return out, &fs.PathError{Op: "read", Path: filepath.Join(dir, name), Err: err}
		}
		s := strings.TrimSpace(string(buf[:n]))
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == len(buf) {
			return out, fmt.Errorf("%w: %s: want an unsigned number, got %q", ErrMalformed, filepath.Join(dir, name), clip(s))
		}
		out[name] = v
	}
	return out, nil
}

// UintFiles are the one-number files of a directory held open, so that a
// collector reading the same counters every scrape pays one pread(2) per
// counter instead of open+read+close: a sysfs attribute re-runs the
// driver's show() on every read at offset 0 (seq_file restarts there), so
// a held descriptor always reads the current value.
type UintFiles struct {
	dir   string
	names []string
	fds   []int
}

// OpenUintsAt opens the named files of dir that exist, with the errors of
// ReadUintsAt: a dir that is not a directory wraps syscall.ENOTDIR, a
// missing one fs.ErrNotExist.
func OpenUintsAt(dir string, names []string) (*UintFiles, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	u := &UintFiles{dir: dir}
	for _, name := range names {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			u.Close()
			return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
		}
		u.names, u.fds = append(u.names, name), append(u.fds, fd)
	}
	return u, nil
}

// Len is how many of the asked-for files exist.
func (u *UintFiles) Len() int { return len(u.fds) }

// Read reads every held file into out (name → value).
func (u *UintFiles) Read(out map[string]uint64) error {
	var buf [64]byte
	for i, fd := range u.fds {
		var n int
		var err error
		for {
			n, err = unix.Pread(fd, buf[:], 0)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: filepath.Join(u.dir, u.names[i]), Err: err}
		}
		s := strings.TrimSpace(string(buf[:max(n, 0)]))
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == len(buf) {
			return fmt.Errorf("%w: %s: want an unsigned number, got %q", ErrMalformed, filepath.Join(u.dir, u.names[i]), clip(s))
		}
		out[u.names[i]] = v
	}
	return nil
}

// Close releases the descriptors.
func (u *UintFiles) Close() {
	for _, fd := range u.fds {
		unix.Close(fd)
	}
	u.fds, u.names = nil, nil
}
