package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

func TestHistogramQuantilesMatchExactSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	h := newHistogram()
	var vals []time.Duration
	for range 200_000 {
		// Log-normal around 1 ms with a long tail, like ack latencies.
		d := time.Duration(float64(time.Millisecond) * math.Exp(rng.NormFloat64()*1.5))
		vals = append(vals, d)
		h.record(d)
	}
	slices.Sort(vals)
	s := h.snapshot(false)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals)-1))]
		got := s.quantile(q)
		if rel := float64(got-exact) / float64(exact); rel < -0.01 || rel > 0.01 {
			t.Errorf("q%.3f = %v; exact %v (off by %.2f%%, want under 1%%)", q, got, exact, rel*100)
		}
	}
	if s.total != 200_000 || time.Duration(s.max) != vals[len(vals)-1] {
		t.Errorf("total %d max %v; want 200000 and %v", s.total, time.Duration(s.max), vals[len(vals)-1])
	}
	reset := h.snapshot(true)
	if reset.total != 200_000 || h.snapshot(false).total != 0 {
		t.Errorf("snapshot(reset) kept %d, left %d; want 200000 and 0", reset.total, h.snapshot(false).total)
	}
	if (histSnapshot{}).quantile(0.99) != 0 {
		t.Error("an empty histogram must report 0")
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<20 + 12345, histMaxValue} {
		i := histIndex(v)
		if i >= histBuckets || histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Errorf("value %d → bucket %d [%d, %d]; bucket does not hold it", v, i, histUpper(i-1)+1, histUpper(i))
		}
	}
}

func TestEventSizeFollowsSizeFlag(t *testing.T) {
	for _, size := range []int{200, 512, 1000, 4096} {
		cat := newCatalogue(1, catalogueSize, size, headLen("abcdef", 7))
		gen := newGenerator(cat, "abcdef", 1, 1)
		var total int
		const n = 5000
		buf := make([]byte, 0, 8192)
		for i := range n {
			buf = gen.appendEvent(buf[:0], uint64(1_000_000+i), time.Now().UnixNano())
			if !json.Valid(buf) {
				t.Fatalf("size %d: invalid JSON %s", size, buf)
			}
			total += len(buf)
		}
		mean := float64(total) / n
		t.Logf("--size %d: mean event %.0f bytes", size, mean)
		// 200 is near the floor of required fields; bigger sizes are met
		// by padding and should be close.
		lo, hi := float64(size)*0.95, float64(size)*1.25
		if size > 200 {
			hi = float64(size) * 1.08
		}
		if mean < lo || mean > hi {
			t.Errorf("--size %d: mean event is %.0f bytes; want within [%.0f, %.0f]", size, mean, lo, hi)
		}
	}
}

func TestTimestampsCrossSecondsCorrectly(t *testing.T) {
	gen := newGenerator(newCatalogue(1, 16, 200, 60), "x", 1, 1)
	base := time.Date(2026, 11, 25, 23, 59, 59, 999_999_998, time.UTC)
	for i := range 4 {
		ts := base.Add(time.Duration(i))
		got := gen.appendTime(nil, ts.UnixNano())
		if want := ts.Format("2006-01-02T15:04:05.000000000Z"); string(got) != want {
			t.Errorf("appendTime(%v) = %s; want %s", ts, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-5", 0, false},
		{"99999999999999", maxRetryAfter, true},
		{"soon", 0, false},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		body     string
		acked    int64
		rejected int64
		known    bool
		skip     []int64
	}{
		{"", 10, 0, true, nil},
		{"not json", 10, 0, true, nil},
		{`{"accepted":10,"rejected":0,"errors":[]}`, 10, 0, true, nil},
		{`{"accepted":9,"rejected":1,"errors":[{"line":4,"error":"bad"}]}`, 9, 1, true, []int64{3}},
		{`{"accepted":8,"rejected":2,"errors":[{"line":4,"error":"bad"}]}`, 8, 2, false, nil},
		{`{"accepted":0,"rejected":10}`, 0, 10, false, nil},
		{`{"accepted":99}`, 10, 0, true, nil},
	} {
		got := parseAck([]byte(tc.body), 10, FormatNDJSON)
		var skip []int64
		for k := range got.skip {
			skip = append(skip, k)
		}
		slices.Sort(skip)
		if got.acked != tc.acked || got.rejected != tc.rejected || got.idsKnown != tc.known || !slices.Equal(skip, tc.skip) {
			t.Errorf("parseAck(%s) = %+v; want acked %d rejected %d known %v skip %v", tc.body, got, tc.acked, tc.rejected, tc.known, tc.skip)
		}
	}
	// Elasticsearch bulk answers: per-item statuses, in order.
	ok := `{"create":{"status":201}}`
	bad := `{"create":{"status":400,"error":{"type":"x"}}}`
	for _, tc := range []struct {
		body          string
		acked, reject int64
		known         bool
		skip          []int64
	}{
		{`{"errors":false,"items":[` + ok + `,` + ok + `,` + ok + `]}`, 3, 0, true, nil},
		{`{"errors":true ,"items":[` + ok + `,` + bad + `,` + ok + `]}`, 2, 1, true, []int64{1}},
		{`{"errors":false,"items":[` + ok + `]}`, 0, 0, false, nil},
		{`not json`, 0, 0, false, nil},
	} {
		got := parseAck([]byte(tc.body), 3, FormatESBulk)
		var skip []int64
		for k := range got.skip {
			skip = append(skip, k)
		}
		slices.Sort(skip)
		if got.acked != tc.acked || got.rejected != tc.reject || got.idsKnown != tc.known || !slices.Equal(skip, tc.skip) {
			t.Errorf("parseAck(%s, es-bulk) = %+v", tc.body, got)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "120", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "1e9", "\x00"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > maxRetryAfter || (!ok && d != 0) {
			t.Fatalf("parseRetryAfter(%q) = %v, %v: outside [0, %v]", s, d, ok, maxRetryAfter)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte(`{"accepted":3,"rejected":1,"errors":[{"line":1,"error":"x"}]}`), 4)
	f.Add([]byte(`{"accepted":-3}`), 1)
	f.Add([]byte(`[]`), 5)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 1 || n > 100_000 {
			return
		}
		for _, f := range []Format{FormatNDJSON, FormatESBulk} {
			out := parseAck(body, n, f)
			if out.acked < 0 || out.acked > int64(n) || out.rejected < 0 {
				t.Fatalf("parseAck(%q, %d, %s) = %+v: counts out of range", body, n, f, out)
			}
		}
	})
}

func TestFlagsResolve(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f Flags
		f.Register(fs)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return f.Resolve()
	}
	c, err := parse()
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Target != DefaultTarget || c.Duration != DefaultDuration || c.Size != DefaultSize ||
		c.Concurrency != DefaultConcurrency || c.Batch != DefaultBatch || c.Format != FormatNDJSON || c.Encoding != EncodingIdentity {
		t.Fatalf("defaults resolve to %+v", c)
	}
	c, err = parse("--target", "http://127.0.0.1:9", "--rate", "1000", "--duration", "0", "--count", "5",
		"--size", "512", "--concurrency", "8", "--batch", "10", "--format", "json", "--zstd", "--seed", "42")
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate != 1000 || c.Duration != 0 || c.Count != 5 || c.Size != 512 || c.Concurrency != 8 ||
		c.Batch != 10 || c.Format != FormatJSON || c.Encoding != EncodingZstd || c.Seed != 42 {
		t.Fatalf("flags resolve to %+v", c)
	}
	for _, bad := range [][]string{
		{"--gzip", "--zstd"},
		{"--batch", "0"},
		{"--size", "-1"},
		{"--format", "csv"},
		{"--duration", "0"},
	} {
		if _, err := parse(bad...); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%v: error %v; want ErrInvalidConfig", bad, err)
		}
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	var f Flags
	f.Register(fs)
	fs.PrintDefaults()
	for _, name := range []string{"target", "rate", "duration", "count", "size", "concurrency", "batch", "format", "gzip", "zstd", "json", "ack-log", "seed", "quiet"} {
		if !strings.Contains(out.String(), "-"+name) {
			t.Errorf("--help does not mention --%s", name)
		}
	}
}

func TestEventsDecodeWithWirelogsDecoder(t *testing.T) {
	// The real ingest decoder, not just encoding/json: every generated
	// event keeps its service, level, message, host, ts and trace context,
	// and event_id and the other fields survive as attributes.
	gen := newGenerator(newCatalogue(3, catalogueSize, 300, headLen("run1", 5)), "run1", 3, 1)
	var d event.Decoder
	var e event.Event
	sent := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	for i := range 2000 {
		line := gen.appendEvent(nil, uint64(i), sent.UnixNano())
		e.Reset()
		if err := d.Decode(line, time.Now(), &e); err != nil {
			t.Fatalf("wirelog's decoder refuses %s: %v", line, err)
		}
		if e.Service == "" || e.Message == "" || e.Host == "" || e.Level < event.LevelDebug || !e.Time.Equal(sent) {
			t.Fatalf("decoded %s into %+v: a named field got lost", line, e)
		}
		if !bytes.Contains(e.Attrs, []byte(`"event_id":"run1-`+strconv.Itoa(i)+`"`)) || !bytes.Contains(e.Attrs, []byte(`"duration_ms":`)) {
			t.Fatalf("attributes %s lack event_id run1-%d or duration_ms", e.Attrs, i)
		}
		if bytes.Contains(line, []byte(`"trace_id"`)) && (len(e.TraceID) != 32 || len(e.SpanID) != 16) {
			t.Fatalf("trace context of %s decoded as %q/%q", line, e.TraceID, e.SpanID)
		}
	}
}
