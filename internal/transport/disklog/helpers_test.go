package disklog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as the producer it kills.
	if os.Getenv(crashHelperEnv) != "" {
		os.Exit(crashHelperMain())
	}
	os.Exit(m.Run())
}

// quiet keeps expected warnings (recovery, retention) out of test output
// unless -v is given.
func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openT(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// value is the deterministic payload of record i of a test batch.
func value(prefix string, i int) []byte {
	v := fmt.Appendf(nil, "%s-%06d|", prefix, i)
	return append(v, bytes.Repeat([]byte{'x'}, i%50)...)
}

func makeRecs(prefix string, n int) []transport.Record {
	recs := make([]transport.Record, n)
	for i := range recs {
		recs[i].Value = value(prefix, i)
		switch i % 3 {
		case 1:
			recs[i].Key = []byte(fmt.Sprintf("key-%d", i))
		case 2:
			recs[i].Key = []byte{}
			recs[i].Headers = []transport.Header{{Key: "traceparent", Value: []byte("00-abc-def-01")}, {Key: "nil"}}
		}
		recs[i].Timestamp = time.Unix(1700000000, int64(i)*1000)
	}
	return recs
}

func produceT(t testing.TB, l *Log, recs []transport.Record) {
	t.Helper()
	if err := l.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatalf("Produce %d records: %v", len(recs), err)
	}
}

// pollN reads exactly n records or fails after a deadline.
func pollN(t testing.TB, c transport.Consumer, n int) []transport.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []transport.Record
	for len(out) < n {
		recs, err := c.Poll(ctx, n-len(out))
		if err != nil {
			t.Fatalf("Poll after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

// pollNone asserts that nothing arrives within d.
func pollNone(t testing.TB, c transport.Consumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	recs, err := c.Poll(ctx, 10)
	if len(recs) != 0 || err == nil {
		t.Fatalf("Poll = %d records, %v; want none and a deadline error", len(recs), err)
	}
}

func sameRecord(t testing.TB, got, want transport.Record) {
	t.Helper()
	if !bytes.Equal(got.Value, want.Value) || !bytes.Equal(got.Key, want.Key) || (got.Key == nil) != (want.Key == nil) ||
		!got.Timestamp.Equal(want.Timestamp) || got.Offset != want.Offset || got.Partition != want.Partition || got.Topic != want.Topic {
		t.Fatalf("record mismatch:\n got %+v\nwant %+v", got, want)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("offset %d: %d headers, want %d", got.Offset, len(got.Headers), len(want.Headers))
	}
	for i := range got.Headers {
		g, w := got.Headers[i], want.Headers[i]
		if g.Key != w.Key || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("offset %d header %d = %+v, want %+v", got.Offset, i, g, w)
		}
	}
}

func commitT(t testing.TB, c transport.Consumer, topic string, next map[int32]int64) {
	t.Helper()
	m := map[transport.TopicPartition]int64{}
	for p, off := range next {
		m[transport.TopicPartition{Topic: topic, Partition: p}] = off
	}
	if err := c.Commit(context.Background(), m); err != nil {
		t.Fatalf("Commit %v: %v", next, err)
	}
}
