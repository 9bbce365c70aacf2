package syslog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// TestUDPCoalescingBounds sets the pause after a read that emptied the
// socket (udpPause) and a batch's linger (--syslog-udp-linger) far longer than their
// defaults, so every datagram below waits in them: a lone datagram still
// reaches the log without more traffic (the linger's bound, with pauses
// inside it), a paced burst arrives whole, and Close — what `wirelog run`
// does on SIGTERM — makes everything the listener received durable while a
// batch is still lingering: the log, reopened, holds every datagram sent
// but the ones the kernel counted as dropped.
func TestUDPCoalescingBounds(t *testing.T) {
	dir := t.TempDir()
	opts := disklog.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l, err := disklog.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig()
	cfg.TCPAddr = ""
	cfg.UDPSockets = 1
	cfg.udpPauseTime = 5 * time.Millisecond
	cfg.UDPLinger = time.Second
	s, err := Start(context.Background(), l.Producer(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	fmt.Fprint(c, "<14>1 - host app - - - lone")
	if got := readLog(t, l, 1, 10*time.Second); got[0].Message != "lone" {
		t.Fatalf("first record %+v, want the lone datagram", got[0])
	}

	// Groups of 10 a millisecond apart: reads that empty the socket, each
	// followed by a pause, and datagrams that queue during it.
	const n = 1000
	for i := 0; i < n; i++ {
		fmt.Fprintf(c, "<14>1 - host app - - - burst %d", i)
		if i%10 == 9 {
			time.Sleep(time.Millisecond)
		}
	}
	// Close once the loop has read everything the kernel queued: the
	// burst (fewer than a full batch) is then inside its 1 s linger,
	// received but not yet handed to the log.
	var drops uint64
	for deadline := time.Now().Add(10 * time.Second); ; {
		k := readKernelUDP(s.udp).sockets[s.udp[0].inode]
		if k.queued == 0 {
			drops = k.drops
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receive loop left %d bytes in the socket for 10 s", k.queued)
		}
		time.Sleep(time.Millisecond)
	}
	if got := s.udpStats.accepted.Load(); got > 1 {
		t.Logf("%d records were already in the log before Close: the linger did not hold the burst (a slow host)", got)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v: it waited for the linger or the pause instead of draining", d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = disklog.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 + n - int(drops)
	got := readLog(t, l, want, 10*time.Second)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.Message] = true
	}
	missing := 0
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("burst %d", i)] {
			missing++
		}
	}
	if len(got) != want || uint64(missing) != drops {
		t.Fatalf("the reopened log holds %d records (%d of the burst missing); sent %d, the kernel dropped %d",
			len(got), missing, n+1, drops)
	}
}
