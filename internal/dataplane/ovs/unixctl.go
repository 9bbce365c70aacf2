package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoVswitchd means no running ovs-vswitchd was found in the run
// directory: OVS is not running on this node, or runs with another
// --ovs-rundir.
var ErrNoVswitchd = errors.New("ovs: no ovs-vswitchd control socket")

// FindVswitchdCtl returns the control socket of the ovs-vswitchd whose pid
// is in <rundir>/ovs-vswitchd.pid. The socket is named after the program:
// ovs-vswitchd.<pid>.ctl, or ovs-vswitchd-dpdk.<pid>.ctl when Debian's DPDK
// build is started by its own name.
func FindVswitchdCtl(rundir string) (string, error) {
	pidPath := filepath.Join(rundir, "ovs-vswitchd.pid")
	b, err := os.ReadFile(pidPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist (is ovs-vswitchd running? set --ovs-rundir, or --collector.ovs=false on nodes without OVS)", ErrNoVswitchd, pidPath)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", pidPath, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("%w: %s holds %q, not a pid", ErrNoVswitchd, pidPath, strings.TrimSpace(string(b)))
	}
	for _, prog := range []string{"ovs-vswitchd", "ovs-vswitchd-dpdk"} {
		p := filepath.Join(rundir, fmt.Sprintf("%s.%d.ctl", prog, pid))
		if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no ovs-vswitchd.%d.ctl in %s (stale pid file? ovs-vswitchd may have exited)", ErrNoVswitchd, pid, rundir)
}

// Unixctl is a connection to an OVS daemon's control socket, the one
// ovs-appctl uses: the method is the command name and the params are its
// arguments as strings; the result is the command's text output.
type Unixctl struct {
	rc *rpcConn
}

// DialUnixctl connects to a control socket; ctx bounds the connect and
// every Run on the connection.
func DialUnixctl(ctx context.Context, path string) (*Unixctl, error) {
	rc, err := dialRPC(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("connect to ovs control socket %s: %w", path, err)
	}
	return &Unixctl{rc: rc}, nil
}

// Run runs one command, as "ovs-appctl <command> <args...>" would.
func (u *Unixctl) Run(command string, args ...string) (string, error) {
	if args == nil {
		args = []string{}
	}
	raw, err := u.rc.call(command, args)
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("%w: %s result from %s is not a string", ErrProtocol, command, u.rc.path)
	}
	return out, nil
}

// Close closes the connection.
func (u *Unixctl) Close() error { return u.rc.Close() }
