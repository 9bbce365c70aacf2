package patterns

import (
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(svc, msg string, i int) event.Event {
	return event.Event{Service: svc, Message: msg, Time: t0.Add(time.Duration(i) * time.Second)}
}

func TestLinesDifferingInNumbersShareATemplate(t *testing.T) {
	m := New(Options{})
	var evs []event.Event
	for i := range 300 {
		evs = append(evs,
			ev("api", fmt.Sprintf("GET /orders/%d completed status=200 in %dms", i, i%97), i),
			ev("api", fmt.Sprintf("user u-%d logged in from 10.0.%d.%d", i, i%7, i%200), i),
			ev("api", fmt.Sprintf("cache users miss for key %x after %d retries", i*7919, i%4), i),
			ev("db", fmt.Sprintf("GET /orders/%d completed status=200 in %dms", i, i), i))
	}
	m.Observe(evs)
	ts, cs := m.Flush()
	got := map[string]int64{}
	byID := map[int64]string{}
	for _, x := range ts {
		byID[x.ID] = x.Service + ": " + x.Template
		re := regexp.MustCompile(x.Regex)
		if !re.MatchString(map[string]string{
			"GET /orders/<*> completed status=<*> in <*>": "GET /orders/77 completed status=200 in 5ms",
		}[x.Template]) && x.Template == "GET /orders/<*> completed status=<*> in <*>" {
			t.Errorf("regex %s does not match its own lines", x.Regex)
		}
	}
	for _, c := range cs {
		got[byID[c.ID]] += c.Count
	}
	want := map[string]int64{
		"api: GET <*> completed status=<*> in <*>":            300,
		"api: user <*> logged in from <*>":                    300,
		"api: cache users miss for key <*> after <*> retries": 300,
		"db: GET <*> completed status=<*> in <*>":             300,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q: %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d templates, want %d: %v", len(got), len(want), got)
	}
}

func TestTemplatesAreBounded(t *testing.T) {
	m := New(Options{MaxTemplates: 50})
	for i := range 2000 {
		// Every line a different shape: distinct words, no digits.
		w := fmt.Sprintf("%c%c%c", 'a'+i%26, 'a'+(i/26)%26, 'a'+(i/676)%26)
		m.Observe([]event.Event{ev("s", w+" unique words only "+w+"x", i)})
	}
	if n := m.Len(); n > 50 {
		t.Errorf("%d templates in memory, cap 50", n)
	}
}

func TestRegexMatchesTheTemplatesLines(t *testing.T) {
	for _, c := range []struct {
		toks []string
		yes  []string
		no   []string
	}{
		{[]string{"GET", "<*>", "status=<*>"}, []string{"GET /a status=200", "  GET /b\tstatus=500 "}, []string{"POST /a status=200", "GET /a status=200 extra"}},
		{[]string{"a.b", "(x)"}, []string{"a.b (x)"}, []string{"axb (x)"}},
	} {
		re := regexp.MustCompile("^(?:" + Regex(c.toks) + ")$")
		for _, s := range c.yes {
			if !re.MatchString(s) {
				t.Errorf("%v: %q does not match %s", c.toks, s, re)
			}
		}
		for _, s := range c.no {
			if re.MatchString(s) {
				t.Errorf("%v: %q matches %s", c.toks, s, re)
			}
		}
	}
}

// BenchmarkObserve is the miner's cost per stored event on realistic lines
// (compare with BenchmarkProcessorStore in docs/BENCHMARKS.md).
func BenchmarkObserve(b *testing.B) {
	m := New(Options{})
	evs := make([]event.Event, 20000)
	bytes := 0
	for i := range evs {
		evs[i] = ev([]string{"checkout", "payments", "search"}[i%3],
			fmt.Sprintf("GET /api/v1/orders/%d completed status=200 in %dms for user u-%d", i, i%97, i%1013), i)
		bytes += len(evs[i].Message)
	}
	b.SetBytes(int64(bytes / len(evs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i += len(evs) {
		m.Observe(evs[:min(len(evs), b.N-i)])
	}
	b.StopTimer()
	// CPU per event, as the store's BenchmarkWrite reports it: on a loaded
	// machine wall time per op measures the scheduler, not the miner.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/event")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
