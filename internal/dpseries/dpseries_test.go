package dpseries

import (
	"context"
	"encoding/json"
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
	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
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
			if s.Name == "DPDK port rx packets/s" && s.Labels["node"] == dpseriestest.Node {
				for _, v := range s.Values {
					if v != nil && *v > 0 {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no positive DPDK rx rate yet (%d series, errors %v)", len(res.Series), res.Errors)
	})
	// The VF series carry the pod that holds each VF, joined on the agent
	// and the PCI address, and the VF → pod table lists every VF.
	testproc.Eventually(t, 60*time.Second, func() error {
		res, err = src.Series(context.Background(), time.Now().Add(-2*time.Minute), time.Now(), 2*time.Second)
		if err != nil {
			return err
		}
		return vfPodsJoined(res)
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
	// The documented JSON (docs/openapi.yaml DataPlaneSeries) has the table.
	// Asked again for up to 30 s: the HTTP query's own range and step can
	// land before Prometheus has a sample of every VF in it.
	var doc struct {
		VFs []map[string]any `json:"vfs"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get(srv.URL + "/api/v1/dataplane/series?from=-2m&step=5s")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Errorf("GET /api/v1/dataplane/series: %d", resp.StatusCode)
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.VFs) > 0 || time.Now().After(deadline) {
			break
		}
	}
	vf0 := sysfstest.VFAddress(dpseriestest.PF.PCI, 0)
	found := false
	for _, v := range doc.VFs {
		if v["pci_address"] == vf0 {
			found = true
			if v["pod"] != "cnf-0" || v["namespace"] != "telco" || v["container"] != "dpdk" || v["resource_name"] != "intel.com/sriov_dpdk" || v["pf"] != "ens1f0" || v["vf"] != 0.0 {
				t.Errorf("GET /api/v1/dataplane/series: vfs row of %s is %v", vf0, v)
			}
		}
	}
	if !found {
		t.Errorf("GET /api/v1/dataplane/series: no vfs row for %s in %v", vf0, doc.VFs)
	}
}

// vfPodsJoined says what is missing from res for the chain's fake node:
// every VF rx series moving and labelled with its holder (none for an
// unassigned VF), the dropping VF's drops under its pod, and one table row
// per VF with its holder.
func vfPodsJoined(res *api.DataPlaneSeries) error {
	moving := func(s api.DataPlaneTrace) bool {
		for _, v := range s.Values {
			if v != nil && *v > 0 {
				return true
			}
		}
		return false
	}
	for i := range dpseriestest.PF.NumVFs {
		pci := sysfstest.VFAddress(dpseriestest.PF.PCI, i)
		o, held := dpseriestest.VFOwners[pci]
		panels := []string{"SR-IOV VF rx packets/s"}
		if pci == dpseriestest.DroppingVF {
			panels = append(panels, "SR-IOV VF drops/s")
		}
		for _, panel := range panels {
			// A held VF may also have a part without pod labels (a
			// scrape where the kubelet had not answered yet), never a
			// part naming another pod.
			ok := false
			for _, s := range res.Series {
				if s.Name != panel || s.Labels["pci_address"] != pci {
					continue
				}
				l := s.Labels
				if l["node"] != dpseriestest.Node || l["pf"] != dpseriestest.PF.Name {
					return fmt.Errorf("%s %s: labels %v", panel, pci, l)
				}
				pod, has := l["pod"]
				switch {
				case has && (!held || pod != o.Pod):
					return fmt.Errorf("%s of %s (held by %q) is labelled with pod %q: %v", panel, pci, o.Pod, pod, l)
				case has && (l["namespace"] != o.Namespace || l["container"] != o.Container || l["resource_name"] != o.Resource):
					return fmt.Errorf("%s of %s, held by %s/%s %s, is labelled %v", panel, pci, o.Namespace, o.Pod, o.Container, l)
				case has == held && moving(s):
					ok = true
				}
			}
			if !ok {
				var seen []string
				for _, s := range res.Series {
					if s.Name == panel && s.Labels["pci_address"] == pci {
						seen = append(seen, fmt.Sprintf("%v %v", s.Labels, values(s)))
					}
				}
				return fmt.Errorf("no moving %q series for %s labelled with its holder %q yet (errors %v; series %v)", panel, pci, o.Pod, res.Errors, seen)
			}
		}
		var row *api.DataPlaneVF
		for j := range res.VFs {
			if res.VFs[j].PCIAddress == pci && res.VFs[j].Node == dpseriestest.Node {
				row = &res.VFs[j]
			}
		}
		want := api.DataPlaneVF{Node: dpseriestest.Node, PF: dpseriestest.PF.Name, VF: i, PCIAddress: pci, NUMANode: "0", Driver: dpseriestest.PF.VFDriver,
			Namespace: o.Namespace, Pod: o.Pod, Container: o.Container, Resource: o.Resource}
		if row == nil || *row != want {
			return fmt.Errorf("VF table row of %s: %+v, want %+v", pci, row, want)
		}
	}
	if len(res.VFs) != dpseriestest.PF.NumVFs {
		return fmt.Errorf("VF table has %d rows, want %d: %+v", len(res.VFs), dpseriestest.PF.NumVFs, res.VFs)
	}
	return nil
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
	// The same VF → pod join as from Prometheus, from the node's own scrapes.
	testproc.Eventually(t, 30*time.Second, func() error {
		res, err := src.Series(context.Background(), time.Now().Add(-time.Minute), time.Now(), time.Second)
		if err != nil {
			return err
		}
		return vfPodsJoined(res)
	})
}

// values are a series' samples, for failure messages.
func values(s api.DataPlaneTrace) []float64 {
	var out []float64
	for _, v := range s.Values {
		if v != nil {
			out = append(out, *v)
		}
	}
	return out
}
