package sysfs

import (
	"net"
	"testing"
)

// TestUintFilesRereadRealSysfs: a held sysfs attribute read again at offset
// 0 shows the kernel's current value, which is what lets the SR-IOV
// collector keep VF counter files open between scrapes. The counters are
// the loopback interface's, moved by real packets.
func TestUintFilesRereadRealSysfs(t *testing.T) {
	u, err := OpenUintsAt("/sys/class/net/lo/statistics", []string{"tx_packets", "no_such_counter"})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.Len() != 1 {
		t.Fatalf("held %d files, want 1 (a missing name is skipped)", u.Len())
	}
	read := func() uint64 {
		out := map[string]uint64{}
		if err := u.Read(out); err != nil {
			t.Fatal(err)
		}
		return out["tx_packets"]
	}
	before := read()
	conn, err := net.Dial("udp", "127.0.0.1:9") // discard port: nothing needs to listen
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 20
	for i := 0; i < sent; i++ {
		conn.Write([]byte("x"))
	}
	if after := read(); after < before+sent {
		t.Errorf("lo tx_packets %d → %d after %d datagrams: the held file did not re-read", before, after, sent)
	}
}
