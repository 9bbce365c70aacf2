// Package dpseries reads the data-plane agent's metrics over time for the
// dashboard's Data plane page: PMD busy share and cycles per packet, DPDK
// port and SR-IOV VF packet and drop rates, free hugepages per NUMA node and
// isolated CPUs. The browser never calls Prometheus: the serving node asks
// it (Prometheus, --prometheus) and answers GET /api/v1/dataplane/series.
package dpseries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirelog/wirelog/internal/api"
)

// Defaults.
const (
	// DefaultQueryTimeout bounds one query_range call to Prometheus.
	DefaultQueryTimeout = 10 * time.Second
	// MaxSeriesPerPanel keeps a panel readable and the answer small: a node
	// with hundreds of VFs shows the first ones by label order.
	MaxSeriesPerPanel = 32
	// maxBody bounds one Prometheus answer read into memory.
	maxBody = 32 << 20
)

// Panel is one chart of the page: a PromQL expression over the agent's
// metrics (docs/DATAPLANE-METRICS.md, docs/dataplane-node-metrics.md), and
// the same formula for the node's own scrapes (Scraper): Rate sums the
// per-second rates of Metrics by label set, Gauge their values, and BusyOf
// is 100 * rate(Metrics[0]) / (rate(Metrics[0]) + rate(Metrics[1])).
type Panel struct {
	Name, Unit, Query string
	Kind              panelKind
	Metrics           []string
}

type panelKind int

const (
	kindRate panelKind = iota
	kindGauge
	kindBusy
)

// Panels are the charts, in page order.
var Panels = []Panel{
	{"PMD busy %", "%", `100 * rate(ovs_pmd_processing_cycles_total[1m]) / (rate(ovs_pmd_processing_cycles_total[1m]) + rate(ovs_pmd_idle_cycles_total[1m]))`,
		kindBusy, []string{"ovs_pmd_processing_cycles_total", "ovs_pmd_idle_cycles_total"}},
	{"PMD cycles per packet", "cycles", `ovs_pmd_cycles_per_packet`, kindGauge, []string{"ovs_pmd_cycles_per_packet"}},
	{"DPDK port rx packets/s", "pps", `rate(dpdk_ethdev_rx_packets_total[1m])`, kindRate, []string{"dpdk_ethdev_rx_packets_total"}},
	{"DPDK port tx packets/s", "pps", `rate(dpdk_ethdev_tx_packets_total[1m])`, kindRate, []string{"dpdk_ethdev_tx_packets_total"}},
	{"DPDK port drops/s (rx missed + no mbuf + rx errors)", "pps", `rate(dpdk_ethdev_rx_missed_total[1m]) + rate(dpdk_ethdev_rx_nombuf_total[1m]) + rate(dpdk_ethdev_rx_errors_total[1m])`,
		kindRate, []string{"dpdk_ethdev_rx_missed_total", "dpdk_ethdev_rx_nombuf_total", "dpdk_ethdev_rx_errors_total"}},
	{"SR-IOV VF rx packets/s", "pps", `rate(sriov_vf_rx_packets_total[1m])`, kindRate, []string{"sriov_vf_rx_packets_total"}},
	{"SR-IOV VF drops/s", "pps", `rate(sriov_vf_rx_dropped_total[1m]) + rate(sriov_vf_tx_dropped_total[1m])`,
		kindRate, []string{"sriov_vf_rx_dropped_total", "sriov_vf_tx_dropped_total"}},
	{"Hugepages free per NUMA node", "pages", `hugepages_numa_free_pages`, kindGauge, []string{"hugepages_numa_free_pages"}},
	{"Isolated CPUs", "cpus", `cpu_isolation_isolated`, kindGauge, []string{"cpu_isolation_isolated"}},
	// wirelog's own consumer lag, beside the data plane's: when the log
	// rate falls while it rises, events are late, not lost (the page's
	// verdict). From Prometheus it needs Prometheus to scrape wirelog too
	// (the chart's ServiceMonitor does); the Scraper reads this node's own.
	{ConsumerLagPanel, "records", `sum by (partition) (wirelog_disklog_group_lag_records) or sum by (partition) (wirelog_kafka_consumer_lag_records)`,
		kindGauge, []string{"wirelog_disklog_group_lag_records", "wirelog_kafka_consumer_lag_records"}},
}

// ConsumerLagPanel names the consumer-lag chart (the dashboard's verdict
// looks for it by name).
const ConsumerLagPanel = "Consumer lag (records)"

// dropLabels are target labels that say nothing about the data plane.
// instance is kept until the VF → pod join (on instance and pci_address)
// is done, then dropped too.
var dropLabels = map[string]bool{"__name__": true, "job": true}

// Prometheus answers the page from a Prometheus server's HTTP API.
type Prometheus struct {
	base   *url.URL
	client *http.Client
}

// NewPrometheus checks rawURL (the --prometheus flag) and returns the source.
func NewPrometheus(rawURL string) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus %q is not an http(s) URL like http://127.0.0.1:9090", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Prometheus{base: u, client: &http.Client{Timeout: DefaultQueryTimeout}}, nil
}

// Kind implements api.DataPlaneSource.
func (p *Prometheus) Kind() string { return "prometheus" }

// URL implements api.DataPlaneSource.
func (p *Prometheus) URL() string { return p.base.String() }

// Series runs every panel's query over [from, to] at step. A panel whose
// query fails is named in Errors; the others are answered. It fails only
// when no query could be answered at all (Prometheus down).
func (p *Prometheus) Series(ctx context.Context, from, to time.Time, step time.Duration) (*api.DataPlaneSeries, error) {
	start := from.Truncate(step)
	res := &api.DataPlaneSeries{From: start.UTC(), To: to.UTC(), StepSeconds: int64(step / time.Second), Series: []api.DataPlaneTrace{}, VFs: []api.DataPlaneVF{}, Errors: []string{}}
	for t := start; !t.After(to); t = t.Add(step) {
		res.Times = append(res.Times, t.Unix())
	}
	index := make(map[int64]int, len(res.Times))
	for i, t := range res.Times {
		index[t] = i
	}
	type answer struct {
		series []api.DataPlaneTrace
		err    error
	}
	// The panels, then the VF → pod lookups (vfpods.go).
	queries := append(append([]Panel{}, Panels...), vfInfoLookup, podDeviceLookup)
	answers := make([]answer, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit := MaxSeriesPerPanel
			if i >= len(Panels) {
				limit = MaxVFs
			}
			s, err := p.queryRange(ctx, q, start, to, step, index, len(res.Times), limit)
			answers[i] = answer{s, err}
		}()
	}
	wg.Wait()
	failed := 0
	var firstErr error
	for i, a := range answers[:len(Panels)] {
		if a.err != nil {
			failed++
			if firstErr == nil {
				firstErr = a.err
			}
			res.Errors = append(res.Errors, Panels[i].Name+": "+a.err.Error())
			continue
		}
		res.Series = append(res.Series, a.series...)
	}
	if failed == len(Panels) {
		return nil, firstErr
	}
	for i, a := range answers[len(Panels):] {
		if a.err != nil {
			res.Errors = append(res.Errors, queries[len(Panels)+i].Name+": "+a.err.Error())
		}
	}
	res.Series, res.VFs = joinPods(res.Series, answers[len(Panels)].series, answers[len(Panels)+1].series)
	// instance served the join; the page names series by what they are.
	for _, tr := range res.Series {
		delete(tr.Labels, "instance")
	}
	return res, nil
}

// promResponse is the envelope of Prometheus's /api/v1/query_range.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

func (p *Prometheus) queryRange(ctx context.Context, panel Panel, from, to time.Time, step time.Duration, index map[int64]int, n, limit int) ([]api.DataPlaneTrace, error) {
	q := url.Values{}
	q.Set("query", panel.Query)
	q.Set("start", strconv.FormatInt(from.Unix(), 10))
	q.Set("end", strconv.FormatInt(to.Unix(), 10))
	q.Set("step", strconv.FormatInt(int64(step/time.Second), 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base.String()+"/api/v1/query_range", strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask Prometheus (--prometheus %s): %w", p.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read Prometheus's answer: %w", err)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, fmt.Errorf("Prometheus answered %d with something that is not its JSON API (is --prometheus %s a Prometheus?)", resp.StatusCode, p.base)
	}
	if pr.Status != "success" {
		return nil, errors.New("Prometheus: " + pr.ErrorType + ": " + pr.Error)
	}
	out := make([]api.DataPlaneTrace, 0, len(pr.Data.Result))
	for _, r := range pr.Data.Result {
		labels := map[string]string{}
		for k, v := range r.Metric {
			if !dropLabels[k] {
				labels[k] = v
			}
		}
		tr := api.DataPlaneTrace{Name: panel.Name, Unit: panel.Unit, Labels: labels, Values: make([]*float64, n)}
		for _, pt := range r.Values {
			ts, ok := pt[0].(float64)
			s, ok2 := pt[1].(string)
			if !ok || !ok2 {
				continue
			}
			i, ok := index[int64(ts)]
			if !ok {
				continue
			}
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				tr.Values[i] = &v
			}
		}
		out = append(out, tr)
	}
	return capSeries(out, limit), nil
}

// capSeries orders a panel's series by labels and keeps the first limit.
func capSeries(out []api.DataPlaneTrace, limit int) []api.DataPlaneTrace {
	sort.Slice(out, func(a, b int) bool { return labelKey(out[a].Labels) < labelKey(out[b].Labels) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + ",")
	}
	return b.String()
}
