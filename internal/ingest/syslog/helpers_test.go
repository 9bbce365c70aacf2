package syslog

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// record is the log-record JSON form (event.AppendJSON) as a test reads it.
type record struct {
	TS      time.Time      `json:"ts"`
	Service string         `json:"service"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Host    string         `json:"host"`
	Attrs   map[string]any `json:"attrs"`
	Key     string         `json:"-"`
}

// decode reads a JSON record, or a raw syslog record (--syslog-udp-raw)
// the way the processor does: into the event it stores, seen as its JSON.
func decode(t testing.TB, r transport.Record) record {
	t.Helper()
	var rec record
	v := r.Value
	if sysparse.IsRecord(v) {
		var d sysparse.RecordDecoder
		var arena event.Arena
		var e event.Event
		if _, err := d.Decode(v, &arena, &e); err != nil {
			t.Fatalf("raw syslog record does not decode: %v: %q", err, v)
		}
		v = event.AppendJSON(nil, &e)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		t.Fatalf("record value is not the log-record JSON: %v: %s", err, r.Value)
	}
	rec.Key = string(r.Key)
	return rec
}

func testConfig() Config {
	c := DefaultConfig()
	c.UDPAddr = "127.0.0.1:0"
	c.TCPAddr = "127.0.0.1:0"
	c.UDPSockets = 2
	c.Location = time.UTC
	c.DrainTimeout = 10 * time.Second
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return c
}

func start(t *testing.T, p transport.Producer, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openLog opens the embedded durable log in a temp dir: the real producer.
func openLog(t *testing.T) *disklog.Log {
	t.Helper()
	l, err := disklog.Open(t.TempDir(), disklog.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readLog polls the log until n records arrived or the deadline passes.
func readLog(t *testing.T, l *disklog.Log, n int, within time.Duration) []record {
	t.Helper()
	c := l.Consumer("test-"+t.Name(), nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []record
	for len(out) < n {
		recs, err := c.Poll(ctx, 1000)
		if err != nil {
			t.Fatalf("got %d of %d records: %v", len(out), n, err)
		}
		for _, r := range recs {
			out = append(out, decode(t, r))
		}
	}
	return out
}

// recorder is an in-test producer: it keeps every record it accepted and
// pushes back with transport.ErrBackpressure while its gate is closed.
type recorder struct {
	mu      sync.Mutex
	recs    []record
	closed  bool // gate: true = push back
	refused int
	calls   int
	t       testing.TB
	changed chan struct{}
}

func newRecorder(t testing.TB) *recorder { return &recorder{t: t, changed: make(chan struct{}, 1)} }

func (r *recorder) Produce(ctx context.Context, recs []transport.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.closed {
		r.refused++
		return transport.ErrBackpressure
	}
	for _, rec := range recs {
		r.recs = append(r.recs, decode(r.t, rec))
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) Ready(context.Context) error { return nil }
func (r *recorder) Close() error                { return nil }

func (r *recorder) gate(closed bool) {
	r.mu.Lock()
	r.closed = closed
	r.mu.Unlock()
}

func (r *recorder) snapshot() (recs []record, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...), r.refused
}

// waitFor waits until the recorder holds n records, or fails after within.
func (r *recorder) waitFor(t *testing.T, n int, within time.Duration) []record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		have := len(r.recs)
		r.mu.Unlock()
		if have >= n {
			recs, _ := r.snapshot()
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer got %d of %d records within %v", have, n, within)
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metrics gathers the server's collector into name{labels} → value.
func metrics(t testing.TB, s *Server) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[metricKey(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func metricKey(name string, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	if len(labels) == 0 {
		return name
	}
	return name + "{" + strings.Join(labels, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
