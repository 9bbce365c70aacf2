package netattach

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStatusBothDownwardAPIForms(t *testing.T) {
	raw, err := os.ReadFile("testdata/network-status.json")
	if err != nil {
		t.Fatal(err)
	}
	// The form of a volume item with fieldRef metadata.annotations: every
	// annotation as key="quoted value", one a line.
	all := "k8s.v1.cni.cncf.io/networks=\"wirelog-sriov\"\n" +
		StatusAnnotation + "=" + strconv.Quote(string(raw)) + "\n" +
		"sidecar.istio.io/status=\"{}\"\n"
	for name, data := range map[string]string{"value": string(raw), "all-annotations": all} {
		st, err := ParseStatus([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s, err := Find(st, "wirelog-sriov")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := s.Addr()
		if err != nil {
			t.Fatal(err)
		}
		if s.Interface != "net1" || a != netip.MustParseAddr("198.18.60.2") {
			t.Fatalf("%s: got %s on %s, want 198.18.60.2 on net1", name, a, s.Interface)
		}
	}
}

func TestFind(t *testing.T) {
	st := []Status{{Name: "cbr0", Default: true}, {Name: "a/sriov"}, {Name: "b/sriov"}, {Name: "b/dpdk"}}
	if s, err := Find(st, "b/sriov"); err != nil || s.Name != "b/sriov" {
		t.Fatalf("exact name: %v %v", s, err)
	}
	if s, err := Find(st, "dpdk"); err != nil || s.Name != "b/dpdk" {
		t.Fatalf("bare name: %v %v", s, err)
	}
	if _, err := Find(st, "sriov"); err == nil || !strings.Contains(err.Error(), "namespace/name") {
		t.Fatalf("ambiguous bare name: want an error asking for namespace/name, got %v", err)
	}
	if _, err := Find(st, "vf"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "a/sriov") {
		t.Fatalf("missing network: want ErrNotFound listing the pod's networks, got %v", err)
	}
}

func TestAddr(t *testing.T) {
	for _, c := range []struct {
		ips  []string
		want string
	}{
		{[]string{"fd00::5", "198.18.0.9"}, "198.18.0.9"}, // IPv4 first, whatever the order
		{[]string{"fd00::5"}, "fd00::5"},
		{[]string{"198.18.0.9/24"}, "198.18.0.9"}, // some IPAMs report a CIDR
		{[]string{"::ffff:198.18.0.9"}, "198.18.0.9"},
	} {
		a, err := Status{Name: "n", IPs: c.ips}.Addr()
		if err != nil || a.String() != c.want {
			t.Errorf("%v: got %v %v, want %s", c.ips, a, err, c.want)
		}
	}
	if _, err := (Status{Name: "n", Interface: "net1"}).Addr(); err == nil || !strings.Contains(err.Error(), "IPAM") {
		t.Fatalf("no IPs: want an error about IPAM, got %v", err)
	}
	if _, err := (Status{Name: "n", IPs: []string{"not-an-ip"}}).Addr(); err == nil {
		t.Fatal("bad IP accepted")
	}
}

func TestRebind(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::2")
	for _, c := range []struct {
		in   string
		ip   netip.Addr
		want string
	}{
		{"127.0.0.1:8080", v4, "198.18.0.2:8080"},
		{":5514", v4, "198.18.0.2:5514"},
		{"0.0.0.0:0", v6, "[fd00::2]:0"},
		{"", v4, ""},
	} {
		got, err := Rebind(c.in, c.ip)
		if err != nil || got != c.want {
			t.Errorf("Rebind(%q, %s) = %q, %v; want %q", c.in, c.ip, got, err, c.want)
		}
	}
	if _, err := Rebind("8080", v4); err == nil {
		t.Fatal("address without a port accepted")
	}
}

// TestResolveWaitsForTheAnnotation: the kubelet may project the file before
// Multus annotated the pod; Resolve keeps reading until the network shows up.
func TestResolveWaitsForTheAnnotation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "network-status")
	raw, err := os.ReadFile("testdata/network-status.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(`[{"name":"cbr0","interface":"eth0","ips":["10.244.1.17"],"default":true}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(600 * time.Millisecond)
		// Replace atomically, as the kubelet's atomic writer does.
		tmp := file + ".new"
		os.WriteFile(tmp, raw, 0o644)
		os.Rename(tmp, file)
	}()
	s, a, err := Resolve(context.Background(), file, "wirelog/wirelog-sriov", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != "198.18.60.2" || s.Interface != "net1" {
		t.Fatalf("got %s on %s", a, s.Interface)
	}
}

func TestResolveGivesUpNamingTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "absent")
	_, _, err := Resolve(context.Background(), file, "sriov", 700*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "k8s.v1.cni.cncf.io/networks") {
		t.Fatalf("want an error naming the file and the annotation to check, got %v", err)
	}
	// A file that is not JSON is a configuration error: no waiting.
	if err := os.WriteFile(file, []byte("[not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := Resolve(context.Background(), file, "sriov", time.Minute); err == nil || time.Since(start) > 30*time.Second {
		t.Fatalf("malformed file: want an immediate error, got %v after %v", err, time.Since(start))
	}
}

// FuzzParseStatus: the file is written by the kubelet from an annotation any
// pod editor can set; no input may panic, and every entry found must give
// Find and Addr an answer or an error.
func FuzzParseStatus(f *testing.F) {
	raw, err := os.ReadFile("testdata/network-status.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(StatusAnnotation + "=" + strconv.Quote(string(raw))))
	f.Add([]byte(StatusAnnotation + `="[{\"name\":\"x\",\"ips\":[\"1.2.3.4/33\"]}]"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatus(data)
		if err != nil {
			return
		}
		for _, s := range st {
			if got, err := Find(st, s.Name); err == nil && got.Name != s.Name {
				t.Fatalf("Find(%q) returned %q", s.Name, got.Name)
			}
			s.Addr()
		}
	})
}
