package dpseries

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/api"
	"github.com/wirelog/wirelog/internal/dpseries/dpseriestest"
	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/testproc"
)

// The page's series come from a real Prometheus scraping a real agent on a
// real testpmd: the DPDK port rx rate is there and moving, and the API route
// answers the same through wirelog.
func TestSeriesFromRealPrometheus(t *testing.T) {
	bin, dir, err := testproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	base := dpseriestest.StartChain(t, bin)
	src, err := NewPrometheus(base)
	if err != nil {
		t.Fatal(err)
	}
	var res *api.DataPlaneSeries
	testproc.Eventually(t, 90*time.Second, func() error {
		res, err = src.Series(context.Background(), time.Now().Add(-2*time.Minute), time.Now(), 2*time.Second)
		if err != nil {
			return err
		}
		for _, s := range res.Series {
			if s.Name == "DPDK port rx packets/s" && s.Labels["node"] == "test-node" {
				for _, v := range s.Values {
					if v != nil && *v > 0 {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no positive DPDK rx rate yet (%d series, errors %v)", len(res.Series), res.Errors)
	})
	if len(res.Errors) != 0 {
		t.Errorf("panel errors: %v", res.Errors)
	}
	for _, s := range res.Series {
		if len(s.Values) != len(res.Times) {
			t.Errorf("%s: %d values for %d times", s.Name, len(s.Values), len(res.Times))
		}
		if _, ok := s.Labels["instance"]; ok {
			t.Errorf("%s keeps the target label instance", s.Name)
		}
	}
	srv := httptest.NewServer(api.New(api.Options{DashboardOptions: api.DashboardOptions{DataPlane: src}}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/dataplane/series?from=-2m&step=5s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/v1/dataplane/series: %d", resp.StatusCode)
	}
}

func TestPrometheusDownAndBadURL(t *testing.T) {
	if _, err := NewPrometheus("127.0.0.1:9090"); err == nil || !strings.Contains(err.Error(), "--prometheus") {
		t.Errorf("a URL without a scheme: %v, want an error naming --prometheus", err)
	}
	src, _ := NewPrometheus("http://" + freeport.Addr(t))
	srv := httptest.NewServer(api.New(api.Options{DashboardOptions: api.DashboardOptions{DataPlane: src}}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/dataplane/series?from=-5m")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") == "" {
		t.Errorf("Prometheus down: %d, want 502 with Retry-After", resp.StatusCode)
	}
}

// Without Prometheus the node scrapes the real agent itself and computes
// the same panels: testpmd's port rx rate is there and moving.
func TestScraperFromRealAgent(t *testing.T) {
	bin, dir, err := testproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	agent := dpseriestest.StartAgent(t, bin)
	if _, err := NewScraper("127.0.0.1:9810", 0, slog.Default()); err == nil || !strings.Contains(err.Error(), "--dataplane-scrape") {
		t.Errorf("a URL without a scheme: %v, want an error naming --dataplane-scrape", err)
	}
	src, err := NewScraper("http://"+agent+"/metrics", time.Second, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	// The node's own registry rides along: its consumer lag is a panel.
	local := prometheus.NewRegistry()
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wirelog_disklog_group_lag_records", Help: "lag"}, []string{"group", "partition"})
	local.MustRegister(lag)
	lag.WithLabelValues("wirelog-processor", "0").Set(1234)
	src.SetLocal(local)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testproc.Eventually(t, 60*time.Second, func() error {
		res, err := src.Series(context.Background(), time.Now().Add(-time.Minute), time.Now(), time.Second)
		if err != nil {
			return err
		}
		for _, s := range res.Series {
			if s.Name == "DPDK port rx packets/s" {
				for _, v := range s.Values {
					if v != nil && *v > 0 {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no positive DPDK rx rate from %d series yet (errors %v)", len(res.Series), res.Errors)
	})
	res, err := src.Series(context.Background(), time.Now().Add(-time.Minute), time.Now(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var lagSeen bool
	for _, s := range res.Series {
		if s.Name != ConsumerLagPanel {
			continue
		}
		for _, v := range s.Values {
			if v != nil && *v == 1234 && s.Labels["partition"] == "0" {
				lagSeen = true
			}
		}
	}
	if !lagSeen {
		t.Errorf("the %q panel does not carry this node's lag of 1234 records: %+v", ConsumerLagPanel, res.Series)
	}
}
