package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricsText renders the metrics a wirelog exports that the sampler reads.
// writeBuckets are the cumulative counts of wirelog_store_write_seconds
// for le = 0.128, 0.256, 0.512, +Inf.
func metricsText(acked, stored, backlog, rss, cpu float64, writeBuckets [4]int, fresh [3]int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE wirelog_ingest_events_total counter\nwirelog_ingest_events_total{result=\"accepted\"} %g\nwirelog_ingest_events_total{result=\"rejected\"} 7\n", acked)
	fmt.Fprintf(&b, "# TYPE wirelog_processor_events_stored_total counter\nwirelog_processor_events_stored_total %g\n", stored)
	fmt.Fprintf(&b, "# TYPE wirelog_disklog_backlog_bytes gauge\nwirelog_disklog_backlog_bytes %g\n", backlog)
	fmt.Fprintf(&b, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %g\n", rss)
	fmt.Fprintf(&b, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
	b.WriteString("# TYPE wirelog_store_write_seconds histogram\n")
	for i, le := range []string{"0.128", "0.256", "0.512", "+Inf"} {
		fmt.Fprintf(&b, "wirelog_store_write_seconds_bucket{le=%q} %d\n", le, writeBuckets[i])
	}
	fmt.Fprintf(&b, "wirelog_store_write_seconds_sum 1\nwirelog_store_write_seconds_count %d\n", writeBuckets[3])
	b.WriteString("# TYPE wirelog_processor_ingest_to_stored_seconds histogram\n")
	for i, le := range []string{"0.5", "1", "+Inf"} {
		fmt.Fprintf(&b, "wirelog_processor_ingest_to_stored_seconds_bucket{le=%q} %d\n", le, fresh[i])
	}
	fmt.Fprintf(&b, "wirelog_processor_ingest_to_stored_seconds_sum 1\nwirelog_processor_ingest_to_stored_seconds_count %d\n", fresh[2])
	return b.String()
}

// TestSoakVerdict serves a scripted series of /metrics pages and checks
// the samples and the verdict: stored rate, a write over the stall bound in
// the one interval it happened, a second with nothing stored, backlog and
// RSS slopes, CPU per event and freshness p99 from histogram deltas.
func TestSoakVerdict(t *testing.T) {
	pages := []string{
		metricsText(0, 0, 0, 100e6, 0, [4]int{0, 0, 0, 0}, [3]int{0, 0, 0}),
		metricsText(1000, 1000, 0, 100e6, 0.001, [4]int{10, 10, 10, 10}, [3]int{1000, 1000, 1000}),
		metricsText(2000, 1000, 1e6, 100e6, 0.001, [4]int{10, 10, 10, 10}, [3]int{1000, 1000, 1000}), // stalled
		metricsText(3000, 3000, 0, 400e6, 0.003, [4]int{19, 19, 20, 20}, [3]int{2900, 2990, 3000}),   // one write ≤0.512s
		metricsText(4000, 4000, 0, 400e6, 0.004, [4]int{28, 28, 30, 30}, [3]int{3900, 3990, 4000}),   // another
	}
	var mu sync.Mutex
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write([]byte(pages[min(i, len(pages)-1)]))
		i++
	}))
	defer srv.Close()
	s, err := StartSoak(context.Background(), SoakConfig{MetricsURL: srv.URL, Interval: 20 * time.Millisecond, MaxRSS: 300e6})
	if err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := i
		mu.Unlock()
		if n >= len(pages) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	samples := s.Stop()[:len(pages)-1]
	if samples[0].StoredPerSec != 1000 || samples[1].StoredPerSec != 0 || samples[2].WriteMax != 0.512 || samples[0].WriteMax != 0.128 {
		t.Fatalf("samples: %+v", samples)
	}
	if samples[2].FreshP99 != 1 || samples[0].FreshP99 != 0.5 {
		t.Fatalf("freshness p99 per sample: %v %v", samples[0].FreshP99, samples[2].FreshP99)
	}
	sum := s.Summarize(samples)
	if sum.Stored != 4000 || sum.Acked != 4000 || sum.Pauses != 2 || sum.StalledSeconds != 1 || sum.RSSPeak != 400e6 || sum.Pass {
		t.Fatalf("summary: %+v", sum)
	}
	if math.Abs(sum.CPUPerEvent-1) > 1e-9 {
		t.Fatalf("CPU per event %v µs, want 1", sum.CPUPerEvent)
	}
	if sum.FreshP99 != 1 {
		t.Fatalf("run freshness p99 %v, want 1 (bucket bound)", sum.FreshP99)
	}
	sum.AddReport(Report{Latency: LatencyMs{P50: 1.5, P99: 24, Max: 80}, Errors: map[string]int64{"429": 3, "503": 2, "transport": 7}})
	var out bytes.Buffer
	if err := sum.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verdict: FAIL", "2 seconds had a store write over 250ms", "nothing was stored in 1", "peak RSS 400 MB",
		"p50 1.50 ms, p99 24.00 ms", "5 requests refused (429/503)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	var csv, html bytes.Buffer
	if err := WriteSoakCSV(&csv, samples); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(csv.String(), "\n"); lines != len(samples)+1 {
		t.Fatalf("CSV has %d lines for %d samples:\n%s", lines, len(samples), csv.String())
	}
	if err := WriteSoakHTML(&html, "t", sum, samples); err != nil || !strings.Contains(html.String(), "<polyline") {
		t.Fatalf("HTML: %v\n%s", err, html.String())
	}
}

// TestSoakNeedsTheTarget: a soak that cannot scrape its first sample says
// which URL and flag to check instead of running blind.
func TestSoakNeedsTheTarget(t *testing.T) {
	_, err := StartSoak(context.Background(), SoakConfig{MetricsURL: "http://127.0.0.1:1/metrics"})
	if err == nil || !strings.Contains(err.Error(), "--metrics-url") {
		t.Fatalf("err = %v", err)
	}
}

// TestSoakKafkaLag: a target on Kafka exports no disklog backlog; the
// summary reads its consumer lag (summed over partitions) instead, in
// records, and judges its slope in records.
func TestSoakKafkaLag(t *testing.T) {
	page := func(stored, lag float64) string {
		var b strings.Builder
		fmt.Fprintf(&b, "# TYPE wirelog_processor_events_stored_total counter\nwirelog_processor_events_stored_total %g\n", stored)
		b.WriteString("# TYPE wirelog_kafka_consumer_lag_records gauge\n")
		for p := 0; p < 2; p++ {
			fmt.Fprintf(&b, "wirelog_kafka_consumer_lag_records{topic=\"wirelog.logs\",partition=\"%d\"} %g\n", p, lag/2)
		}
		return b.String()
	}
	var mu sync.Mutex
	lag := 0.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write([]byte(page(1000+lag, lag)))
		lag += 10000 // grows ~10k records per 20 ms sample: far past any slack
	}))
	defer srv.Close()
	s, err := StartSoak(context.Background(), SoakConfig{MetricsURL: srv.URL, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	samples := s.Stop()
	if len(samples) < 2 {
		t.Fatalf("%d samples", len(samples))
	}
	sum := s.Summarize(samples)
	if sum.BacklogUnit != "records" || sum.BacklogMax != samples[len(samples)-1].Backlog || sum.BacklogMax < 20000 {
		t.Fatalf("summary: unit %q, max %v, samples %+v", sum.BacklogUnit, sum.BacklogMax, samples)
	}
	var out bytes.Buffer
	if err := sum.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"consumer lag   slope +", "records (Kafka)", "the Kafka consumer lag grew"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "  backlog ") {
		t.Errorf("summary reports Kafka lag as a byte backlog:\n%s", out.String())
	}
}
