package process

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// benchConsumer hands out the same batch of records b.N/batch times, then
// cancels the run.
type benchConsumer struct {
	recs   []transport.Record
	polls  int
	cancel context.CancelFunc
	out    []transport.Record
}

func (c *benchConsumer) Poll(ctx context.Context, max int) ([]transport.Record, error) {
	if c.polls == 0 {
		c.cancel()
		return nil, ctx.Err()
	}
	c.polls--
	c.out = append(c.out[:0], c.recs...)
	return c.out, nil
}
func (c *benchConsumer) Commit(context.Context, map[transport.TopicPartition]int64) error { return nil }
func (c *benchConsumer) Close() error                                                     { return nil }

// nullStore keeps nothing: the benchmark measures the processor alone.
type nullStore struct{ rows int }

func (s *nullStore) Write(_ context.Context, rows []store.Row) (int, error) {
	s.rows += len(rows)
	return len(rows), nil
}

// BenchmarkProcessBatch is the processor's own cost per record, without a
// store: decode (JSON or binary record), build the rows, observe freshness,
// commit. One op is one record; batches of 4,096 records of a ~250-byte
// loadgen-shaped event.
func BenchmarkProcessBatch(b *testing.B) {
	line := []byte(`{"ts":"2026-11-27T10:00:00.123456789Z","service":"payments-api","level":"info","message":"charge captured for order 81723 in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","duration_ms":42,"status":200,"client.address":"127.0.0.1","client.port":41234}`)
	var d event.Decoder
	var e event.Event
	if err := d.Decode(line, time.Now(), &e); err != nil {
		b.Fatal(err)
	}
	const batch = 4096
	for _, f := range []struct {
		name   string
		format event.RecordFormat
	}{{"json", event.RecordJSON}, {"binary", event.RecordBinary}} {
		b.Run(fmt.Sprintf("record=%s", f.name), func(b *testing.B) {
			rec := event.AppendRecord(nil, &e, f.format)
			recs := make([]transport.Record, batch)
			for i := range recs {
				recs[i] = transport.Record{Topic: "wirelog.logs", Offset: int64(i), Value: rec, Timestamp: time.Now()}
			}
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cons := &benchConsumer{recs: recs, polls: (b.N + batch - 1) / batch, cancel: cancel}
			st := &nullStore{}
			p := New(cons, st, Options{MaxBatch: batch})
			b.ResetTimer()
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			if st.rows < b.N {
				b.Fatalf("stored %d rows, want %d", st.rows, b.N)
			}
		})
	}
}
