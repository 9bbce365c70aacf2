// Package netattach answers one question for a pod with Multus secondary
// networks: which address does this pod have on network NAME? Multus writes
// the answer into the pod's `k8s.v1.cni.cncf.io/network-status` annotation
// after the CNI plugins ran (for an SR-IOV VF: its interface, IPs and PCI
// address); the kubelet projects the annotation into a file through a
// downward-API volume. `wirelog ingest --bind-network NAME` reads that file
// and binds its HTTP and syslog listeners to the address, so the gateway
// listens on the VF and nowhere else.
package netattach

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	// StatusAnnotation is the annotation Multus writes (the Network Plumbing
	// Working Group's multi-net spec, v1.3 §4.1).
	StatusAnnotation = "k8s.v1.cni.cncf.io/network-status"

	// DefaultStatusFile is where the chart mounts the downward-API volume
	// item holding the annotation (deploy/helm/wirelog, --network-status-file).
	DefaultStatusFile = "/etc/podinfo/network-status"

	// DefaultWait bounds how long Resolve waits for the network to appear in
	// the file: the kubelet refreshes downward-API volumes on its sync
	// period (about a minute), so a pod that started before Multus finished
	// annotating sees the status on the next refresh.
	DefaultWait = 90 * time.Second

	// pollInterval is how often Resolve re-reads the file while waiting.
	pollInterval = 250 * time.Millisecond
)

// ErrNotFound means the file holds no status for the network (yet).
var ErrNotFound = errors.New("network not in the network-status annotation")

// Status is one entry of the network-status annotation. Only the fields
// wirelog uses are decoded; others (dns, device-info) are ignored.
type Status struct {
	Name      string   `json:"name"`      // "namespace/name" of the NetworkAttachmentDefinition, or the cluster network's name
	Interface string   `json:"interface"` // interface name inside the pod, e.g. net1
	IPs       []string `json:"ips"`
	MAC       string   `json:"mac"`
	Default   bool     `json:"default"` // true for the cluster (eth0) network
}

// ParseStatus decodes the downward-API file. It accepts both forms the
// kubelet writes: the annotation's value alone (a volume item with
// fieldRef metadata.annotations['k8s.v1.cni.cncf.io/network-status']), or
// every annotation as `key="quoted value"` lines (fieldRef
// metadata.annotations).
func ParseStatus(data []byte) ([]Status, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, nil // not annotated yet
	}
	if data[0] != '[' {
		v, ok, err := annotationLine(data, StatusAnnotation)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		data = []byte(v)
	}
	var st []Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode %s: %w", StatusAnnotation, err)
	}
	return st, nil
}

// annotationLine finds key in the kubelet's `key="value"` lines.
func annotationLine(data []byte, key string) (string, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || k != key {
			continue
		}
		s, err := strconv.Unquote(v)
		if err != nil {
			return "", false, fmt.Errorf("annotation %s: value is not a quoted string: %w", key, err)
		}
		return s, true, nil
	}
	return "", false, sc.Err()
}

// Find picks the entry for name: "namespace/name" matches exactly; a bare
// name matches an entry "name" or "<any namespace>/name" when exactly one
// does.
func Find(st []Status, name string) (Status, error) {
	var hits []Status
	for _, s := range st {
		if s.Name == name {
			return s, nil
		}
		if !strings.Contains(name, "/") {
			if _, n, ok := strings.Cut(s.Name, "/"); ok && n == name {
				hits = append(hits, s)
			}
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		names := make([]string, len(st))
		for i, s := range st {
			names[i] = s.Name
		}
		return Status{}, fmt.Errorf("%w: %q (the pod has %s)", ErrNotFound, name, strings.Join(names, ", "))
	default:
		return Status{}, fmt.Errorf("network %q is attached from %d namespaces: name it as namespace/name", name, len(hits))
	}
}

// Addr is the address to bind: the entry's first IPv4 address, else its
// first IPv6 address.
func (s Status) Addr() (netip.Addr, error) {
	var v6 netip.Addr
	for _, ip := range s.IPs {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			// Some IPAMs report CIDRs.
			p, perr := netip.ParsePrefix(ip)
			if perr != nil {
				return netip.Addr{}, fmt.Errorf("network %s: address %q: %w", s.Name, ip, err)
			}
			a = p.Addr()
		}
		if a.Is4() || a.Is4In6() {
			return a.Unmap(), nil
		}
		if !v6.IsValid() {
			v6 = a
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, fmt.Errorf("network %s (interface %s) has no IP address: give its NetworkAttachmentDefinition an IPAM (static, whereabouts, host-local)", s.Name, s.Interface)
}

// Resolve reads file until it names network name, and returns that
// network's entry and address. It waits at most wait (ctx may end it
// sooner); a file that does not exist yet is waited for too.
func Resolve(ctx context.Context, file, name string, wait time.Duration) (Status, netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		s, a, err := resolveOnce(file, name)
		if err == nil {
			return s, a, nil
		}
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
			return Status{}, netip.Addr{}, err
		}
		select {
		case <-ctx.Done():
			return Status{}, netip.Addr{}, fmt.Errorf("after %v: %w (is the pod annotated with k8s.v1.cni.cncf.io/networks naming it, and is %s a downward-API file of %s?)",
				wait, err, file, StatusAnnotation)
		case <-time.After(pollInterval):
		}
	}
}

func resolveOnce(file, name string) (Status, netip.Addr, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Status{}, netip.Addr{}, fmt.Errorf("read network status: %w", err)
	}
	st, err := ParseStatus(data)
	if err != nil {
		return Status{}, netip.Addr{}, fmt.Errorf("%s: %w", file, err)
	}
	s, err := Find(st, name)
	if err != nil {
		return Status{}, netip.Addr{}, err
	}
	a, err := s.Addr()
	return s, a, err
}

// Rebind replaces the host of a listen address ("host:port", ":port") with
// ip, keeping the port. An empty address (a disabled listener) stays empty.
func Rebind(addr string, ip netip.Addr) (string, error) {
	if addr == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	return net.JoinHostPort(ip.String(), port), nil
}
