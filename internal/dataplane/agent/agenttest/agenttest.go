// Package agenttest runs a dataplane.Collector once the way the exporter
// does and looks up series in the result, for the collectors' tests.
package agenttest

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wirelog/wirelog/internal/dataplane"
)

// Families are gathered metric families by name.
type Families map[string]*dto.MetricFamily

// Collect runs c once through a pedantic registry, which also checks every
// metric against the descriptions c gives, and returns the families and
// c's error. A registry error (an inconsistent metric) fails the test; it
// is reported with Errorf so Collect may run in a goroutine.
func Collect(t testing.TB, ctx context.Context, c dataplane.Collector) (Families, error) {
	t.Helper()
	a := &adapter{c: c, ctx: ctx}
	reg := prometheus.NewPedanticRegistry()
	out := Families{}
	if err := reg.Register(a); err != nil {
		t.Errorf("register %s: %v", c.Name(), err)
		return out, a.err
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Errorf("gather %s: %v", c.Name(), err)
	}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, a.err
}

type adapter struct {
	c   dataplane.Collector
	ctx context.Context
	err error
}

func (a *adapter) Describe(ch chan<- *prometheus.Desc) { a.c.Describe(ch) }
func (a *adapter) Collect(ch chan<- prometheus.Metric) { a.err = a.c.Collect(a.ctx, ch) }

// Value returns the value of the first series of family name whose labels
// include want, and whether there is one.
func (f Families) Value(name string, want map[string]string) (float64, bool) {
	ms := f.Match(name, want)
	if len(ms) == 0 {
		return 0, false
	}
	return MetricValue(ms[0]), true
}

// Count returns how many series of family name carry the labels in want.
func (f Families) Count(name string, want map[string]string) int {
	return len(f.Match(name, want))
}

// Match returns the series of family name whose labels include want.
func (f Families) Match(name string, want map[string]string) []*dto.Metric {
	mf, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range mf.GetMetric() {
		have := Labels(m)
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// Labels returns a series' labels as a map.
func Labels(m *dto.Metric) map[string]string {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	return have
}

// MetricValue is a counter's, gauge's or untyped series' value.
func MetricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}
