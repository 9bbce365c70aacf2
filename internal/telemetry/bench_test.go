package telemetry

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkHooksOff is what every hook costs one stored batch of 1000
// records and its request while tracing is off (the default): it must stay
// at a few nanoseconds and zero allocations.
func BenchmarkHooksOff(b *testing.B) {
	enabled.Store(false)
	benchHooks(b)
}

// BenchmarkHooksSampledOut is the same with tracing on and nothing
// sampled (a 1% ratio leaves 99% of requests here).
func BenchmarkHooksSampledOut(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()), sdktrace.WithSampler(linkSampler{sdktrace.ParentBased(sdktrace.NeverSample())}))
	install(tp)
	defer enabled.Store(false)
	benchHooks(b)
}

// BenchmarkBaseline is the same work without the hooks: the histogram
// observations the processor and ingest make anyway.
func BenchmarkBaseline(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Help: "x"})
	b.ReportAllocs()
	b.SetBytes(1000)
	defer cpuPerOp(b)()
	for b.Loop() {
		h.Observe(0.001)
		for range 1000 {
			h.Observe(0.01)
		}
	}
}

// cpuPerOp reports the process's CPU time per op beside wall time: on a
// machine shared with other work, time spent waiting for a core is not
// counted, so it compares runs taken at different loads far better.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

func benchHooks(b *testing.B) {
	recs := make([]transport.Record, 1000)
	for i := range recs {
		recs[i] = transport.Record{Topic: "wirelog.logs", Offset: int64(i), Value: []byte(`{}`)}
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Help: "x"})
	ctx := context.Background()
	var e event.Event
	b.ReportAllocs()
	b.SetBytes(int64(len(recs)))
	defer cpuPerOp(b)()
	for b.Loop() {
		in := RequestTrace(ctx)
		for range recs {
			in.Apply(&e)
		}
		Observe(ctx, h, 0.001)
		s := StartBatch(ctx, recs)
		s.Phase(PhaseStore)
		for range recs {
			s.Observe(h, 0.01)
		}
		s.Phase(PhaseCommit)
		s.End(len(recs))
	}
}
