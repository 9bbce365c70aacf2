package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/agent/agenttest"
)

// testCollector is a collector whose behaviour the test scripts: the
// exporter's job is to survive collectors that misbehave.
type testCollector struct {
	name    string
	collect func(ctx context.Context, ch chan<- prometheus.Metric) error
}

var (
	descThing    = prometheus.NewDesc("test_thing", "A test metric.", []string{"from"}, nil)
	descPodThing = prometheus.NewDesc("test_pod_thing", "A test metric with its own node label.", []string{"node"}, nil)
)

func (c *testCollector) Name() string                        { return c.name }
func (c *testCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descThing }
func (c *testCollector) Collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	return c.collect(ctx, ch)
}

func thing(from string) prometheus.Metric {
	return prometheus.MustNewConstMetric(descThing, prometheus.GaugeValue, 1, from)
}

func gather(t *testing.T, reg *prometheus.Registry) agenttest.Families {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := agenttest.Families{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// TestExporterIsolatesFailingCollectors: a collector that errors, one that
// hangs past the timeout ignoring its context, and one that panics are
// each reported down with their reason, while the healthy one and the
// scrape itself are unaffected.
func TestExporterIsolatesFailingCollectors(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	cs := []dataplane.Collector{
		&testCollector{"good", func(ctx context.Context, ch chan<- prometheus.Metric) error {
			ch <- thing("good")
			return nil
		}},
		&testCollector{"pods", func(ctx context.Context, ch chan<- prometheus.Metric) error {
			// A collector that labels node itself (pod resources does)
			// keeps its value; the exporter does not add a second one.
			ch <- prometheus.MustNewConstMetric(descPodThing, prometheus.GaugeValue, 1, "other-node")
			return nil
		}},
		&testCollector{"failing", func(ctx context.Context, ch chan<- prometheus.Metric) error {
			ch <- thing("failing")
			return errors.New("socket gone")
		}},
		&testCollector{"hung", func(ctx context.Context, ch chan<- prometheus.Metric) error {
			<-release // ignores ctx, as a buggy collector would
			for range 1000 {
				ch <- thing("hung") // after the scrape ended: must be drained, not block or leak into a later scrape
			}
			return nil
		}},
		&testCollector{"panics", func(ctx context.Context, ch chan<- prometheus.Metric) error {
			var m map[string]int
			m["x"]++
			return nil
		}},
	}
	e, err := New(cs, Options{Timeout: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(e)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan agenttest.Families, 1)
	go func() { done <- gather(t, reg) }()
	var mfs agenttest.Families
	select {
	case mfs = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("scrape hung: a collector ignoring its context held up the whole scrape")
	}

	for name, want := range map[string]float64{"good": 1, "pods": 1, "failing": 0, "hung": 0, "panics": 0} {
		got, ok := mfs.Value("wirelog_dataplane_collector_success", map[string]string{"collector": name, "node": "node-a"})
		if !ok || got != want {
			t.Errorf("collector_success{%s} = %v (present %v), want %v", name, got, ok, want)
		}
		if _, ok := mfs.Value("wirelog_dataplane_collector_duration_seconds", map[string]string{"collector": name}); !ok {
			t.Errorf("duration of %s missing", name)
		}
	}
	for _, tc := range []struct{ collector, reason string }{{"failing", ReasonError}, {"hung", ReasonTimeout}, {"panics", ReasonPanic}} {
		if got, _ := mfs.Value("wirelog_dataplane_scrape_errors_total", map[string]string{"collector": tc.collector, "reason": tc.reason}); got != 1 {
			t.Errorf("scrape_errors_total{%s,%s} = %v, want 1", tc.collector, tc.reason, got)
		}
	}
	if got, _ := mfs.Value("wirelog_dataplane_scrape_errors_total", map[string]string{"collector": "good", "reason": ReasonError}); got != 0 {
		t.Errorf("good collector has %v errors", got)
	}
	if n := mfs.Count("test_thing", map[string]string{"from": "good", "node": "node-a"}); n != 1 {
		t.Errorf("good collector's metric: %d series", n)
	}
	if n := mfs.Count("test_thing", map[string]string{"from": "failing"}); n != 1 {
		t.Errorf("metrics sent before the error are kept: %d series", n)
	}
	if n := mfs.Count("test_pod_thing", map[string]string{"node": "other-node"}); n != 1 {
		t.Errorf("a collector's own node label was replaced or doubled: %v", mfs["test_pod_thing"])
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("agent's own Go metrics missing")
	}
}

func TestExporterRejectsDuplicateNames(t *testing.T) {
	ok := func(context.Context, chan<- prometheus.Metric) error { return nil }
	_, err := New([]dataplane.Collector{&testCollector{"dpdk", ok}, &testCollector{"dpdk", ok}}, Options{})
	if !errors.Is(err, ErrDuplicateCollector) {
		t.Errorf("err = %v, want ErrDuplicateCollector", err)
	}
}

// TestHandlerServesMetricsAndHealth: /metrics answers in the Prometheus
// text format (and OpenMetrics when asked), /healthz says ok while a
// collector is failing.
func TestHandlerServesMetricsAndHealth(t *testing.T) {
	e, _ := New([]dataplane.Collector{&testCollector{"failing", func(context.Context, chan<- prometheus.Metric) error {
		return errors.New("down")
	}}}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	reg, err := NewRegistry(e)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	get := func(path, accept string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/healthz", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	resp, body = get("/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `wirelog_dataplane_collector_success{collector="failing"} 0`) {
		t.Errorf("/metrics = %d, body lacks collector_success 0:\n%s", resp.StatusCode, body)
	}
	resp, body = get("/metrics", "application/openmetrics-text; version=1.0.0")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics not served: %s", resp.Header.Get("Content-Type"))
	}
	if resp, _ := get("/nope", ""); resp.StatusCode != 404 {
		t.Errorf("/nope = %d", resp.StatusCode)
	}
}
