package netlab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLabSetupAndTeardownLeaveNothing(t *testing.T) {
	needRoot(t)
	prefix := testPrefix(t, "lab")
	lab, err := NewLab(context.Background(), prefix, SteerNAPI)
	if err != nil {
		t.Fatal(err)
	}
	names := lab.Namespaces()
	if len(names) != 3 {
		t.Fatalf("lab has namespaces %v, want client, node and pod", names)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err != nil {
			t.Fatalf("namespace %s missing while the lab is up: %v", n, err)
		}
	}
	if len(lab.napi) != 3 {
		t.Errorf("NAPI threads pinned for %v, want the 3 receiving veths", lab.napi)
	}
	pids := lab.napi
	// The pod's VF stand-in is up with its 198.18.0.0/15 address.
	vf, err := lab.Pod.nl.LinkByName(ifPodVF)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := lab.Pod.nl.AddrList(vf, 2)
	if err != nil || len(addrs) != 1 || !addrs[0].IP.Equal(directPod.IP) {
		t.Fatalf("pod %s addresses %v (%v), want %s", ifPodVF, addrs, err, directPod.IP)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := LabNamespaces(prefix); len(left) != 0 {
		t.Fatalf("namespaces left after Close: %v", left)
	}
	// The veths died with their namespaces: so did their NAPI threads.
	waitGone(t, pids)
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func waitGone(t *testing.T, pids map[string]int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		alive := 0
		for _, pid := range pids {
			if b, err := os.ReadFile("/proc/" + itoa(pid) + "/comm"); err == nil && strings.HasPrefix(string(b), "napi/") {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		sleepMS(10)
	}
	t.Errorf("NAPI threads %v still alive after teardown", pids)
}

func TestLabFailedSetupTearsDownWhatItBuilt(t *testing.T) {
	needRoot(t)
	for _, step := range []string{"namespace-node", "namespace-pod", "links", "sysctls"} {
		t.Run(step, func(t *testing.T) {
			prefix := testPrefix(t, "f"+strings.ReplaceAll(step, "namespace-", "")[:3])
			boom := errors.New("injected failure")
			setupFault = func(s string) error {
				if s == step {
					return boom
				}
				return nil
			}
			defer func() { setupFault = nil }()
			lab, err := NewLab(context.Background(), prefix, SteerNAPI)
			if !errors.Is(err, boom) || lab != nil {
				t.Fatalf("NewLab = %v, %v; want the injected failure and no lab", lab, err)
			}
			if left, _ := LabNamespaces(prefix); len(left) != 0 {
				t.Fatalf("namespaces left after a failure at %s: %v", step, left)
			}
		})
	}
}

func TestNamespaceNameTakenIsRefused(t *testing.T) {
	needRoot(t)
	prefix := testPrefix(t, "tkn")
	ns, err := createNamespace(prefix + "-x-client")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.close()
	if _, err := createNamespace(prefix + "-x-client"); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("second create = %v, want ErrNameTaken", err)
	}
	// The refused attempt did not delete the one that exists.
	if _, err := os.Stat(filepath.Join(netnsDir, prefix+"-x-client")); err != nil {
		t.Fatalf("existing namespace gone after a refused create: %v", err)
	}
}

func TestCleanupRemovesLeftoversByPrefixOnly(t *testing.T) {
	needRoot(t)
	prefix := testPrefix(t, "cln")
	other := testPrefix(t, "oth")
	for _, n := range []string{prefix + "-aa-client", prefix + "-aa-pod", other + "-bb-pod"} {
		ns, err := createNamespace(n)
		if err != nil {
			t.Fatal(err)
		}
		ns.nl.Close()
		ns.h.Close() // leave it bound, as a killed run would
	}
	removed, err := Cleanup(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Fatalf("Cleanup removed %v, want the 2 %s-* namespaces", removed, prefix)
	}
	if left, _ := LabNamespaces(other); len(left) != 1 {
		t.Fatalf("Cleanup(%s) touched %s-*: %v left", prefix, other, left)
	}
	Cleanup(other)
	if _, err := Cleanup("bad/prefix"); err == nil {
		t.Fatal("Cleanup accepted a prefix with a slash")
	}
}
