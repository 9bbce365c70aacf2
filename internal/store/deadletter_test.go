package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// TestDeadLettersMoveTheOffset: a dead letter commits with the offset past
// it, so a replay skips it like a stored row, and its copy is bounded.
func TestDeadLettersMoveTheOffset(t *testing.T) {
	ctx := context.Background()
	s, err := Open("", Options{DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.DeadLetterCount(ctx); err != nil || n != 0 {
		t.Fatalf("empty store: %d dead letters, %v", n, err)
	}
	row := func(off int64, msg string) Row {
		return Row{Topic: "t", Partition: 0, Offset: off, Event: event.Event{Time: time.Now(), Message: msg}}
	}
	if _, err := s.Write(ctx, []Row{row(0, "a"), row(1, "b")}); err != nil {
		t.Fatal(err)
	}
	huge := bytes.Repeat([]byte("x"), 3*DeadLetterRawBytes)
	if err := s.WriteDeadLetters(ctx, []DeadLetter{{Topic: "t", Partition: 0, Offset: 2, Reason: "refused", Raw: huge}}); err != nil {
		t.Fatal(err)
	}
	next, ok, err := s.NextOffset(ctx, transport.TopicPartition{Topic: "t", Partition: 0})
	if err != nil || !ok || next != 3 {
		t.Fatalf("next offset %d %v %v, want 3", next, ok, err)
	}
	// A replay of 2..3 stores only 3.
	n, err := s.Write(ctx, []Row{row(2, "poison again"), row(3, "c")})
	if err != nil || n != 1 {
		t.Fatalf("replay stored %d (%v), want 1", n, err)
	}
	var cnt, rawLen, rawBytes int64
	var reason string
	if err := s.db.QueryRowContext(ctx, `SELECT count(*), max(length(raw)), max(raw_bytes), max(reason) FROM dead_letters`).Scan(&cnt, &rawLen, &rawBytes, &reason); err != nil {
		t.Fatal(err)
	}
	if cnt != 1 || rawLen != DeadLetterRawBytes || rawBytes != int64(len(huge)) || reason != "refused" {
		t.Errorf("dead_letters: count %d, raw %d of %d bytes, reason %q", cnt, rawLen, rawBytes, reason)
	}
}
