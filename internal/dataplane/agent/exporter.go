// Package agent is the data-plane agent's exporter: on each Prometheus
// scrape it runs every dataplane.Collector in parallel, bounds each in
// time, and reports a collector that fails, hangs or panics as
// wirelog_dataplane_collector_success 0 and a scrape error, instead of failing
// the scrape.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/wirelog/wirelog/internal/dataplane"
)

// DefaultTimeout bounds one collector in one scrape. Prometheus's default
// scrape_timeout is 10 s; leaving half of it keeps the HTTP answer in time
// even when a collector hangs for its whole budget.
const DefaultTimeout = 5 * time.Second

// Scrape error reasons of wirelog_dataplane_scrape_errors_total.
const (
	ReasonError   = "error"   // the collector returned an error
	ReasonTimeout = "timeout" // it did not finish within the timeout
	ReasonPanic   = "panic"   // it panicked; the agent recovered
)

// ErrDuplicateCollector means two collectors share a name, so their
// collector_success series would collide.
var ErrDuplicateCollector = errors.New("agent: two collectors with the same name")

// Options configure an Exporter.
type Options struct {
	// Timeout bounds each collector in each scrape.
	Timeout time.Duration
	// Logger receives a line when a collector starts or stops failing.
	Logger *slog.Logger
	// Node, when set, is added as the node label to every series that
	// does not carry one already (pod-resources metrics label their own).
	Node string
}

// Exporter is a prometheus.Collector that runs dataplane collectors.
type Exporter struct {
	collectors []dataplane.Collector
	timeout    time.Duration
	log        *slog.Logger
	node       *dto.LabelPair // nil when no node label is added

	scrapeErrors *prometheus.CounterVec

	mu      sync.Mutex
	lastErr map[string]string // collector → last logged error, "" when up
}

var (
	descUp = prometheus.NewDesc("wirelog_dataplane_collector_success",
		"1 if the collector succeeded in this scrape, 0 if it failed, timed out or panicked.",
		[]string{"collector"}, nil)
	descDuration = prometheus.NewDesc("wirelog_dataplane_collector_duration_seconds",
		"How long the collector took in this scrape (the timeout, if it timed out).",
		[]string{"collector"}, nil)
)

// New returns an Exporter over collectors.
func New(collectors []dataplane.Collector, opts Options) (*Exporter, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Exporter{
		collectors: collectors,
		timeout:    opts.Timeout,
		log:        opts.Logger,
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_dataplane_scrape_errors_total",
			Help: "Scrapes in which the collector failed, by reason: error, timeout, panic. The agent log says why.",
		}, []string{"collector", "reason"}),
		lastErr: map[string]string{},
	}
	if opts.Node != "" {
		e.node = &dto.LabelPair{Name: proto.String("node"), Value: proto.String(opts.Node)}
	}
	seen := map[string]bool{}
	for _, c := range collectors {
		if seen[c.Name()] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateCollector, c.Name())
		}
		seen[c.Name()] = true
		for _, r := range []string{ReasonError, ReasonTimeout, ReasonPanic} {
			e.scrapeErrors.WithLabelValues(c.Name(), r)
		}
	}
	return e, nil
}

// Describe implements prometheus.Collector. It sends nothing, which makes
// the Exporter an "unchecked" collector: the node label is added to series
// at collect time, only where a collector did not set one, so the
// described and collected label sets cannot be known up front. The
// registry still rejects inconsistent or duplicate series at gather time,
// and each collector's own Describe is checked by its tests
// (agenttest.Collect uses a pedantic registry).
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {}

// Descs returns every descriptor the collectors and the exporter declare,
// for documentation and tests.
func (e *Exporter) Descs() []*prometheus.Desc {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		ch <- descUp
		ch <- descDuration
		e.scrapeErrors.Describe(ch)
		for _, c := range e.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// Collect implements prometheus.Collector: every collector runs at once,
// each under its own timeout.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, c := range e.collectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.collectOne(c, ch)
		}()
	}
	wg.Wait()
	// One child per collector and reason, all created in New.
	errs := make(chan prometheus.Metric, 3*len(e.collectors))
	e.scrapeErrors.Collect(errs)
	close(errs)
	for m := range errs {
		ch <- e.withNode(m)
	}
}

// withNode adds the node label to m unless m has one or no node is set.
func (e *Exporter) withNode(m prometheus.Metric) prometheus.Metric {
	if e.node == nil {
		return m
	}
	return nodeMetric{m, e.node}
}

// nodeMetric is a metric with the node label added when writing it.
type nodeMetric struct {
	prometheus.Metric
	node *dto.LabelPair
}

func (m nodeMetric) Write(out *dto.Metric) error {
	if err := m.Metric.Write(out); err != nil {
		return err
	}
	for _, lp := range out.Label {
		if lp.GetName() == "node" {
			return nil
		}
	}
	out.Label = append(out.Label, m.node)
	sort.Slice(out.Label, func(i, j int) bool { return out.Label[i].GetName() < out.Label[j].GetName() })
	return nil
}

type outcome struct {
	err    error
	reason string
}

// collectOne runs c, forwarding its metrics to ch until it returns or its
// time is up. A collector that overruns keeps running in the background
// (Go cannot stop it), but what it sends afterwards is drained and
// dropped, never written to ch after Collect returned.
func (e *Exporter) collectOne(c dataplane.Collector, ch chan<- prometheus.Metric) {
	name := c.Name()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	start := time.Now()

	metrics := make(chan prometheus.Metric, 64)
	done := make(chan outcome, 1)
	go func() {
		var out outcome
		defer func() {
			if r := recover(); r != nil {
				out = outcome{err: fmt.Errorf("panic: %v\n%s", r, debug.Stack()), reason: ReasonPanic}
			}
			done <- out
			close(metrics)
		}()
		if err := c.Collect(ctx, metrics); err != nil {
			out = outcome{err: err, reason: ReasonError}
			if ctx.Err() != nil {
				out.reason = ReasonTimeout
			}
		}
	}()

	var res outcome
forward:
	for {
		select {
		case m, ok := <-metrics:
			if !ok {
				res = <-done
				break forward
			}
			ch <- e.withNode(m)
		case <-ctx.Done():
			res = outcome{err: fmt.Errorf("no answer within %v (--scrape-timeout): %w", e.timeout, ctx.Err()), reason: ReasonTimeout}
			go func() {
				for range metrics {
				}
			}()
			break forward
		}
	}
	elapsed := time.Since(start)

	up := 1.0
	if res.err != nil {
		up = 0
		e.scrapeErrors.WithLabelValues(name, res.reason).Inc()
	}
	e.logChange(name, res)
	ch <- e.withNode(prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name))
	ch <- e.withNode(prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, elapsed.Seconds(), name))
}

// logChange logs a collector's failure when it starts or its message
// changes, and its recovery, rather than on every scrape.
func (e *Exporter) logChange(name string, res outcome) {
	msg := ""
	if res.err != nil {
		msg = res.err.Error()
	}
	e.mu.Lock()
	prev, seen := e.lastErr[name]
	e.lastErr[name] = msg
	e.mu.Unlock()
	switch {
	case msg == prev:
	case msg == "" && seen:
		e.log.Info("collector recovered", "collector", name)
	case msg != "":
		e.log.Warn("collector failed; reported as wirelog_dataplane_collector_success 0", "collector", name, "reason", res.reason, "err", res.err)
	}
}
