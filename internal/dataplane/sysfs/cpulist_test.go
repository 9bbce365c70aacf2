package sysfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"\n", nil},
		{"0", []int{0}},
		{"0-3,8,10-11\n", []int{0, 1, 2, 3, 8, 10, 11}},
		{"3,1,2,1", []int{1, 2, 3}},
		{"4-15,20-31", append(seq(4, 15), seq(20, 31)...)},
		{"0-15:2/4", []int{0, 1, 4, 5, 8, 9, 12, 13}}, // boot-parameter stride form
		{" 1 - 2 , 5 ", []int{1, 2, 5}},
	} {
		got, err := sysfs.ParseCPUList(tc.in)
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCPUListRejects(t *testing.T) {
	for _, in := range []string{"a", "1,,2", "3-1", "-1", "1-", "0-99999999", "16384", "0-7:0/4", "0-7:5/4", "3:1/2", "0-7:1", "+1", "1-2-3", "(null)"} {
		if got, err := sysfs.ParseCPUList(in); err == nil || !errors.Is(err, sysfs.ErrCPUList) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want ErrCPUList", in, got, err)
		}
	}
}

func TestFormatCPUListRoundTrip(t *testing.T) {
	for _, s := range []string{"", "0", "0-3,8,10-11", "1,3,5", "0-63"} {
		cpus, err := sysfs.ParseCPUList(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := sysfs.FormatCPUList(cpus); got != s {
			t.Errorf("FormatCPUList(ParseCPUList(%q)) = %q", s, got)
		}
	}
}

func TestReadCPUListNullAndGarbage(t *testing.T) {
	dir := t.TempDir()
	null := filepath.Join(dir, "nohz_full")
	os.WriteFile(null, []byte("(null)\n"), 0o644)
	if cpus, err := sysfs.ReadCPUList(null); err != nil || cpus != nil {
		t.Errorf("(null) = %v, %v; want empty", cpus, err)
	}
	bad := filepath.Join(dir, "isolated")
	os.WriteFile(bad, []byte("2-x\n"), 0o644)
	_, err := sysfs.ReadCPUList(bad)
	if !errors.Is(err, sysfs.ErrMalformed) || !errors.Is(err, sysfs.ErrCPUList) || !strings.Contains(err.Error(), bad) {
		t.Errorf("garbage: %v; want ErrMalformed+ErrCPUList naming %s", err, bad)
	}
	if _, err := sysfs.ReadCPUList(filepath.Join(dir, "missing")); !sysfs.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadNumbersNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sriov_numvfs")
	os.WriteFile(p, []byte("-4\n"), 0o644)
	if _, err := sysfs.ReadUint(p); !errors.Is(err, sysfs.ErrMalformed) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadUint(-4) = %v", err)
	}
	os.WriteFile(p, []byte(strings.Repeat("9", 500)), 0o644)
	if _, err := sysfs.ReadInt(p); err == nil || len(err.Error()) > 300 {
		t.Errorf("huge garbage must give a short error, got %v", err)
	}
	fifo := filepath.Join(dir, "numa_node")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := sysfs.ReadInt(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), fifo) {
			t.Errorf("FIFO: %v, want an error naming it", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO in place of a sysfs file hung")
	}
	if _, err := sysfs.ReadString(dir); err == nil {
		t.Error("reading a directory gave no error")
	}
	link := filepath.Join(dir, "driver")
	os.Symlink("../../bus/pci/drivers/vfio-pci", link)
	if d, err := sysfs.LinkBase(link); err != nil || d != "vfio-pci" {
		t.Errorf("LinkBase of a dangling link = %q, %v", d, err)
	}
}

// FuzzParseCPUList: never panics, and whatever it accepts formats and parses
// back to the same set within the CPU bound.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,8,10-11", "", "0", "4-15,20-31", "0-15:2/4", "1,,2", "3-1", "0-16383", "(null)", "1-2:1/1,5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := sysfs.ParseCPUList(s)
		if err != nil {
			return
		}
		if !slices.IsSorted(cpus) {
			t.Fatalf("%q: unsorted %v", s, cpus)
		}
		for i, c := range cpus {
			if c < 0 || c >= sysfs.MaxCPU || (i > 0 && cpus[i-1] == c) {
				t.Fatalf("%q: bad CPU %d in %v", s, c, cpus)
			}
		}
		again, err := sysfs.ParseCPUList(sysfs.FormatCPUList(cpus))
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("%q: round trip %v -> %q -> %v, %v", s, cpus, sysfs.FormatCPUList(cpus), again, err)
		}
	})
}

func seq(a, b int) []int {
	var s []int
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}
