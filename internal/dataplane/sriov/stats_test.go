package sriov_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

func TestParseStatsFile(t *testing.T) {
	got, err := sriov.ParseStatsFile([]byte("tx_packets    : 5\ntx_bytes      : 320\n\nrx_packets: 7\nrx_dropped 2\n"))
	want := map[string]uint64{"tx_packets": 5, "tx_bytes": 320, "rx_packets": 7, "rx_dropped": 2}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"rx_packets : -1", "rx_packets", ": 5", "rx packets : 5", "rx_packets : 1 2", "tx_packets : 18446744073709551616", strings.Repeat("x", 70000)} {
		if _, err := sriov.ParseStatsFile([]byte(bad)); !errors.Is(err, sysfs.ErrMalformed) {
			t.Errorf("%.40q: %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParseStatsFile(f *testing.F) {
	f.Add([]byte("tx_packets    : 5\ntx_bytes      : 320\nrx_dropped 2\n"))
	f.Add([]byte("a:1\n\n b : 2 \n"))
	f.Add([]byte("rx_pack"))
	f.Fuzz(func(t *testing.T, data []byte) {
		stats, err := sriov.ParseStatsFile(data)
		if err != nil {
			if !errors.Is(err, sysfs.ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		for name := range stats {
			if name == "" || strings.ContainsAny(name, " \t\n") {
				t.Fatalf("bad counter name %q from %q", name, data)
			}
		}
	})
}
