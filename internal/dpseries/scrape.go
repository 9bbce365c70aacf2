package dpseries

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wirelog/wirelog/internal/api"
)

// Scrape defaults.
const (
	// DefaultScrapeInterval is how often the node scrapes the agent.
	DefaultScrapeInterval = 15 * time.Second
	// DefaultScrapeKeep is how much history the node keeps in memory; the
	// page can look back this far (use --prometheus for longer).
	DefaultScrapeKeep = time.Hour
	// MaxScrapeSeries bounds the series kept from one scrape (a node with
	// thousands of VFs keeps the first ones by name).
	MaxScrapeSeries = 5000
)

// Scraper is the source without Prometheus: the node scrapes one agent's
// /metrics itself (--dataplane-scrape) and keeps the panels' metrics of the
// last DefaultScrapeKeep in memory: at most Keep/Interval scrapes of at most
// MaxScrapeSeries values each.
type Scraper struct {
	url      string
	interval time.Duration
	keep     int
	client   *http.Client
	log      *slog.Logger
	wanted   map[string]bool
	// Local, when set, is gathered with every scrape: this node's own
	// registry, for the consumer-lag panel (SetLocal).
	local prometheus.Gatherer

	mu      sync.Mutex
	scrapes []scrape // oldest first
	lastErr error
}

type scrape struct {
	at   time.Time
	vals map[string]sample // by metric name + labels
}

type sample struct {
	name   string
	labels map[string]string
	v      float64
}

// NewScraper checks rawURL (the --dataplane-scrape flag) and returns a
// scraper; call Run to start it. interval 0 means DefaultScrapeInterval.
func NewScraper(rawURL string, interval time.Duration, log *slog.Logger) (*Scraper, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--dataplane-scrape %q is not an http(s) URL like http://127.0.0.1:9810/metrics", rawURL)
	}
	if interval <= 0 {
		interval = DefaultScrapeInterval
	}
	w := map[string]bool{}
	for _, p := range append(append([]Panel{}, Panels...), vfInfoLookup, podDeviceLookup) {
		for _, m := range p.Metrics {
			w[m] = true
		}
	}
	return &Scraper{url: u.String(), interval: interval, keep: int(DefaultScrapeKeep/interval) + 1,
		client: &http.Client{Timeout: min(interval, DefaultQueryTimeout)}, log: log, wanted: w}, nil
}

// SetLocal makes every scrape also gather g (the node's own registry), so
// the page's consumer-lag panel has data without a Prometheus. Call it
// before Run.
func (s *Scraper) SetLocal(g prometheus.Gatherer) { s.local = g }

// Kind implements api.DataPlaneSource.
func (s *Scraper) Kind() string { return "scrape" }

// URL implements api.DataPlaneSource.
func (s *Scraper) URL() string { return s.url }

// Run scrapes every interval until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		err := s.scrapeOnce(ctx)
		s.mu.Lock()
		changed := (err == nil) != (s.lastErr == nil)
		s.lastErr = err
		s.mu.Unlock()
		if changed && err != nil {
			s.log.Warn("dataplane: scrape failed; the Data plane page shows a gap until it answers", "url", s.url, "err", err)
		} else if changed {
			s.log.Info("dataplane: scraping again", "url", s.url)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Scraper) scrapeOnce(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("scrape the agent (--dataplane-scrape %s): %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape the agent (--dataplane-scrape %s): HTTP %d", s.url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("agent at %s answered something that is not Prometheus text: %w", s.url, err)
	}
	if s.local != nil {
		local, err := s.local.Gather()
		if err != nil {
			s.log.Warn("dataplane: gather this node's own metrics", "err", err)
		}
		for _, f := range local {
			if _, dup := fams[f.GetName()]; !dup {
				fams[f.GetName()] = f
			}
		}
	}
	sc := scrape{at: time.Now(), vals: map[string]sample{}}
	for name, f := range fams {
		if !s.wanted[name] {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(sc.vals) >= MaxScrapeSeries {
				break
			}
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			sc.vals[name+"\x00"+labelKey(labels)] = sample{name: name, labels: labels, v: v}
		}
	}
	s.mu.Lock()
	s.scrapes = append(s.scrapes, sc)
	if len(s.scrapes) > s.keep {
		s.scrapes = append(s.scrapes[:0], s.scrapes[len(s.scrapes)-s.keep:]...)
	}
	s.mu.Unlock()
	return nil
}

// Series computes every panel from the kept scrapes: a point per step holds
// the last value (or rate between two scrapes) that falls in its bucket.
func (s *Scraper) Series(ctx context.Context, from, to time.Time, step time.Duration) (*api.DataPlaneSeries, error) {
	s.mu.Lock()
	scrapes := append([]scrape(nil), s.scrapes...)
	lastErr := s.lastErr
	s.mu.Unlock()
	start := from.Truncate(step)
	res := &api.DataPlaneSeries{From: start.UTC(), To: to.UTC(), StepSeconds: int64(step / time.Second), Series: []api.DataPlaneTrace{}, VFs: []api.DataPlaneVF{}, Errors: []string{}}
	for t := start; !t.After(to); t = t.Add(step) {
		res.Times = append(res.Times, t.Unix())
	}
	if len(scrapes) == 0 && lastErr != nil {
		return nil, lastErr
	}
	if lastErr != nil {
		res.Errors = append(res.Errors, "latest scrape: "+lastErr.Error())
	}
	n := len(res.Times)
	for _, p := range Panels {
		res.Series = append(res.Series, capSeries(panelTraces(p, scrapes, start, to, step, n), MaxSeriesPerPanel)...)
	}
	sort.SliceStable(res.Series, func(a, b int) bool { return panelIndex(res.Series[a].Name) < panelIndex(res.Series[b].Name) })
	res.Series, res.VFs = joinPods(res.Series,
		capSeries(panelTraces(vfInfoLookup, scrapes, start, to, step, n), MaxVFs),
		capSeries(panelTraces(podDeviceLookup, scrapes, start, to, step, n), MaxVFs))
	return res, nil
}

// panelTraces computes one panel's series from the kept scrapes, n points
// from start: the last value (or rate between two scrapes) in each bucket.
func panelTraces(p Panel, scrapes []scrape, start, to time.Time, step time.Duration, n int) []api.DataPlaneTrace {
	bucket := func(t time.Time) int {
		if t.Before(start) || t.After(to) {
			return -1
		}
		return int(t.Sub(start) / step)
	}
	traces := map[string]*api.DataPlaneTrace{}
	put := func(labels map[string]string, i int, v float64) {
		k := labelKey(labels)
		tr := traces[k]
		if tr == nil {
			tr = &api.DataPlaneTrace{Name: p.Name, Unit: p.Unit, Labels: labels, Values: make([]*float64, n)}
			traces[k] = tr
		}
		tr.Values[i] = &v
	}
	for j := range scrapes {
		i := bucket(scrapes[j].at)
		if i < 0 || i >= n {
			continue
		}
		cur := scrapes[j].vals
		switch p.Kind {
		case kindGauge: // each metric's series (the lag panel has two sources)
			for _, sm := range cur {
				if slices.Contains(p.Metrics, sm.name) {
					put(sm.labels, i, sm.v)
				}
			}
		case kindRate, kindBusy:
			if j == 0 {
				continue
			}
			prev := scrapes[j-1]
			dt := scrapes[j].at.Sub(prev.at).Seconds()
			rates := map[string]map[int]float64{} // labels → metric index → rate
			lbls := map[string]map[string]string{}
			for mi, name := range p.Metrics {
				for k, sm := range cur {
					if sm.name != name {
						continue
					}
					old, ok := prev.vals[k]
					if !ok || sm.v < old.v || dt <= 0 {
						continue // new series or a counter reset: no rate yet
					}
					lk := labelKey(sm.labels)
					if rates[lk] == nil {
						rates[lk] = map[int]float64{}
						lbls[lk] = sm.labels
					}
					rates[lk][mi] = (sm.v - old.v) / dt
				}
			}
			for lk, r := range rates {
				if p.Kind == kindBusy {
					if tot := r[0] + r[1]; tot > 0 {
						put(lbls[lk], i, 100*r[0]/tot)
					}
					continue
				}
				var sum float64
				for _, v := range r {
					sum += v
				}
				put(lbls[lk], i, sum)
			}
		}
	}
	out := make([]api.DataPlaneTrace, 0, len(traces))
	for _, tr := range traces {
		out = append(out, *tr)
	}
	return out
}

func panelIndex(name string) int {
	for i, p := range Panels {
		if p.Name == name {
			return i
		}
	}
	return len(Panels)
}
