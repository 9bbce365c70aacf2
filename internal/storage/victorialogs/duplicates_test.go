package victorialogs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/storage/victorialogs"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/testproc"
	"github.com/wirelog/wirelog/internal/transport"
)

// insertProxy stands between stores and a real VictoriaLogs. For the next
// insert it is told to, it either delivers the insert and keeps
// VictoriaLogs' 200 from the client until the client times out ("answer
// lost": stored, but the writer saw a failure), or keeps the insert until
// the client timed out and delivers it only when released ("late": the
// writer gave up, VictoriaLogs stores it afterwards), or answers 200 and
// drops it ("swallow": what a node killed inside its flush window does).
// Everything else passes through.
type insertProxy struct {
	t      *testing.T
	target string
	URL    string
	rp     *httputil.ReverseProxy

	mu   sync.Mutex
	next string
	held []heldInsert
}

type heldInsert struct {
	uri  string
	hdr  http.Header
	body []byte
}

func newInsertProxy(t *testing.T, target string) *insertProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &insertProxy{t: t, target: target, rp: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// failNext makes the next insert fail as mode says ("answer-lost", "late").
func (p *insertProxy) failNext(mode string) {
	p.mu.Lock()
	p.next = mode
	p.mu.Unlock()
}

func (p *insertProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode := ""
	if r.URL.Path == "/insert/jsonline" {
		mode, p.next = p.next, ""
	}
	p.mu.Unlock()
	if mode == "" {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		p.t.Errorf("proxy: read insert: %v", err)
		return
	}
	if mode == "swallow" {
		return // 200, nothing stored
	}
	in := heldInsert{uri: r.URL.RequestURI(), hdr: r.Header.Clone(), body: body}
	if mode == "answer-lost" {
		if err := p.deliver(in); err != nil {
			p.t.Errorf("proxy: %v", err)
		}
	}
	// The client times out: it never hears an answer.
	<-r.Context().Done()
	if mode == "late" {
		p.mu.Lock()
		p.held = append(p.held, in)
		p.mu.Unlock()
	}
}

func (p *insertProxy) deliver(in heldInsert) error {
	req, err := http.NewRequest(http.MethodPost, p.target+in.uri, bytes.NewReader(in.body))
	if err != nil {
		return err
	}
	req.Header = in.hdr
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("deliver insert: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("deliver insert: VictoriaLogs answered %s", resp.Status)
	}
	return nil
}

// release delivers the inserts kept in "late" mode.
func (p *insertProxy) release() int {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, in := range held {
		if err := p.deliver(in); err != nil {
			p.t.Fatal(err)
		}
	}
	return len(held)
}

// vlCount runs a LogsQL stats query straight against VictoriaLogs and
// returns its one answered row's field.
func vlCount(t *testing.T, base, q, field string) int64 {
	t.Helper()
	resp, err := http.PostForm(base+"/select/logsql/query", url.Values{"query": {q}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("query %q: %s %s", q, resp.Status, b)
	}
	v, err := fastjson.ParseBytes(bytes.TrimSpace(b))
	if err != nil {
		return 0 // no row: nothing matched
	}
	n, _ := strconv.ParseInt(string(v.GetStringBytes(field)), 10, 64)
	return n
}

// counter reads one counter of a store's collector.
func counter(t *testing.T, st *victorialogs.Store, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// TestDuplicatesCountOnce stores ids twice the ways a real pipeline does
// against a real VictoriaLogs, and checks that every answer counts each id
// once, as the DuckDB store does:
//
//   - p0: VictoriaLogs stored an insert but its answer was lost (the client
//     timed out); Write's retry stores the rows again.
//   - p1: the same on Write's last attempt: Write fails, the processor
//     writes the batch again.
//   - p2: a takeover. The owner's insert times out before VictoriaLogs got
//     it; the partition moves to another processor, which writes the same
//     records; then the first insert reaches VictoriaLogs. Neither writer
//     could know the other's copy when it wrote: the copies carry no
//     replay mark. Before verification looked for duplicates, stats
//     counted p2 twice (4,000 for 3,000 ids). The first mark is lost
//     after its 200, as a storage node killed in its flush window loses it.
//   - p3: the same takeover, the first insert arriving after the new owner
//     verified the range: the writer whose insert failed looks for it.
func TestDuplicatesCountOnce(t *testing.T) {
	vl := vltest.Start(t, false, "1s")
	px := newInsertProxy(t, vl.URL)
	open := func(attempts int, durableAfter time.Duration) *victorialogs.Store {
		st, err := victorialogs.Open(victorialogs.Options{URL: px.URL, Timeout: 2 * time.Second, MaxAttempts: attempts,
			RetryBackoff: 50 * time.Millisecond, DurableAfter: durableAfter, VerifyInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ctx := context.Background()
	const n = 1000
	start := time.Now()
	batch := [4][]store.Row{rows(0, 0, n), rows(1, 0, n), rows(2, 0, n), rows(3, 0, n)}
	again := func(p int) []store.Row { return append([]store.Row(nil), batch[p]...) }

	a := open(3, 4*time.Second)
	px.failNext("answer-lost")
	if _, err := a.Write(ctx, again(0)); err != nil {
		t.Fatalf("p0: Write with one lost answer: %v", err)
	}

	// a1 looks at its failed inserts later than b verifies (8 s, 4 s), so
	// that p3's late insert arrives after b's verification.
	a1 := open(1, 8*time.Second)
	px.failNext("answer-lost")
	if _, err := a1.Write(ctx, again(1)); err == nil {
		t.Fatal("p1: Write whose only attempt timed out succeeded")
	}
	if _, err := a1.Write(ctx, again(1)); err != nil {
		t.Fatalf("p1: the processor's second Write: %v", err)
	}

	p2 := transport.TopicPartition{Topic: "events", Partition: 2}
	px.failNext("late")
	if _, err := a1.Write(ctx, again(2)); err == nil {
		t.Fatal("p2: Write whose only attempt timed out succeeded")
	}
	a1.Forget([]transport.TopicPartition{p2}) // revoked: the group moves p2
	b := open(3, 4*time.Second)
	if _, err := b.Write(ctx, again(2)); err != nil {
		t.Fatalf("p2: the new owner's Write: %v", err)
	}
	if got := px.release(); got != 1 {
		t.Fatalf("the proxy kept %d inserts, want 1", got)
	}
	// p3: the same takeover, but the first insert arrives after the new
	// owner verified the range: only the writer whose insert failed can
	// find the duplicates, when it looks at its failed inserts.
	p3 := transport.TopicPartition{Topic: "events", Partition: 3}
	px.failNext("late")
	if _, err := a1.Write(ctx, again(3)); err == nil {
		t.Fatal("p3: Write whose only attempt timed out succeeded")
	}
	a1.Forget([]transport.TopicPartition{p3})
	if _, err := b.Write(ctx, again(3)); err != nil {
		t.Fatalf("p3: the new owner's Write: %v", err)
	}
	// The next insert is b's mark of p2's duplicates, at its verification:
	// lost after its 200, so the range must be found unmarked again
	// DurableAfter later and marked again.
	px.failNext("swallow")
	durable := map[transport.TopicPartition]int64{}
	testproc.Eventually(t, 30*time.Second, func() error {
		for tp, o := range b.Durable() {
			durable[tp] = o
		}
		if durable[p3] != n {
			return fmt.Errorf("p3 not durable at the new owner yet: %v", durable)
		}
		return nil
	})
	if got := px.release(); got != 1 {
		t.Fatalf("the proxy kept %d inserts, want 1", got)
	}

	// VictoriaLogs holds every id twice (it does not deduplicate).
	vl.Flush()
	testproc.Eventually(t, 30*time.Second, func() error {
		rowsStored := vlCount(t, vl.URL, "* | stats count() as c", "c")
		ids := vlCount(t, vl.URL, "* | stats count_uniq(wl_partition, wl_offset) as c", "c")
		if ids != 4*n || rowsStored < 8*n {
			return fmt.Errorf("VictoriaLogs holds %d rows of %d ids, want at least %d of %d", rowsStored, ids, 8*n, 4*n)
		}
		return nil
	})
	// Every row is verified durable; verification marked the takeover's
	// duplicates on the way.
	testproc.Eventually(t, 60*time.Second, func() error {
		for _, st := range []*victorialogs.Store{a, a1, b} {
			for tp, o := range st.Durable() {
				durable[tp] = o
			}
		}
		for p := range int32(4) {
			if o := durable[transport.TopicPartition{Topic: "events", Partition: p}]; o != n {
				return fmt.Errorf("durable %v, want every partition durable up to %d", durable, n)
			}
		}
		return nil
	})

	// Every answer counts each id once.
	q := open(1, 4*time.Second)
	window := store.Filter{From: start.Add(-time.Minute), To: time.Now().Add(time.Minute)}
	testproc.Eventually(t, 30*time.Second, func() error {
		st, err := q.Stats(ctx, store.StatsRequest{NoPartial: true})
		if err != nil {
			return err
		}
		if st.Events != 4*n || st.Bytes != 4*n*100 {
			return fmt.Errorf("stats: %d events, %d bytes; want %d, %d (each id once)", st.Events, st.Bytes, 4*n, 4*n*100)
		}
		return nil
	})
	h, err := q.Histogram(ctx, store.HistogramRequest{Filter: window, Step: 10 * time.Second, NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if h.Total != 4*n {
		t.Errorf("histogram: %d events, want %d", h.Total, 4*n)
	}
	ro, err := q.Rollups(ctx, store.RollupsRequest{From: window.From, To: window.To, Step: 10 * time.Second, NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	var rolled int64
	for _, s := range ro.Series {
		for _, pt := range s.Points {
			rolled += pt.Count
		}
	}
	if rolled != 4*n {
		t.Errorf("rollups: %d events, want %d", rolled, 4*n)
	}
	f, err := q.Fields(ctx, store.FieldsRequest{Filter: window, NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.Total != 4*n {
		t.Errorf("fields: counted over %d events, want %d", f.Total, 4*n)
	}
	exported := map[string]int{}
	if err := q.Export(ctx, window, func(e *store.StoredEvent) error {
		exported[fmt.Sprintf("%d/%d", e.Partition, e.Offset)]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(exported) != 4*n {
		t.Errorf("export: %d distinct ids, want %d", len(exported), 4*n)
	}
	for id, c := range exported {
		if c != 1 {
			t.Fatalf("export: id %s %d times", id, c)
		}
	}
	// p2's ids were marked by b, then again when the lost mark was found
	// (by b's second look or a1's look at its failed insert, maybe both);
	// p3's by a1 alone. The retries' copies were marked by Write.
	mb, ma1 := counter(t, b, "wirelog_vl_duplicates_marked_total"), counter(t, a1, "wirelog_vl_duplicates_marked_total")
	if mb < n || ma1 < n || mb+ma1 < 3*n || mb+ma1 > 4*n {
		t.Errorf("ids marked at verification: new owner %v, failed writer %v; want at least %d each and %d to %d in all", mb, ma1, n, 3*n, 4*n)
	}
	if m := counter(t, a, "wirelog_vl_duplicates_marked_total"); m != 0 {
		t.Errorf("%v duplicated ids marked at verification where Write had marked the retry", m)
	}
	se, err := q.Search(ctx, store.SearchRequest{Limit: 5 * n, NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(se.Events) != 4*n {
		t.Errorf("search: %d events, want %d once each", len(se.Events), 4*n)
	}
}

// BenchmarkDedupCost is what counting each id once costs on a real
// cluster, by way of comparison: VictoriaLogs' plain stats (counts every
// stored copy), Stats (replay zones: plain stats, minus the duplicates
// inside zones, here one zone of 20,000 rows), and collapsing every id
// first, with uniq (what stats would need without zones) or count_uniq
// (a total only, no groups).
//
//	WIRELOG_BENCH_EVENTS=1000000 go test -run '^$' -bench DedupCost -benchtime 3x ./internal/storage/victorialogs/
func BenchmarkDedupCost(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("WIRELOG_BENCH_EVENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	vl := vltest.Start(b, true, "")
	st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	const batch = 20000
	var last []store.Row
	for off := 0; off < n; off += batch {
		last = rows(int32(off/batch%4), int64(off/batch/4*batch), int64(min(batch, n-off)))
		if _, err := st.Write(ctx, last); err != nil {
			b.Fatal(err)
		}
	}
	// The last batch again, as a replay: one zone.
	if _, err := st.Write(ctx, last); err != nil {
		b.Fatal(err)
	}
	vl.Flush()
	testproc.Eventually(b, 5*time.Minute, func() error {
		s, err := st.Stats(ctx, store.StatsRequest{NoPartial: true})
		if err != nil || s.Events != int64(n) {
			return fmt.Errorf("%d of %d rows visible (%v)", s.Events, n, err)
		}
		return nil
	})
	raw := func(q string) func() error {
		return func() error {
			resp, err := http.PostForm(vl.URL+"/select/logsql/query", url.Values{"query": {q}})
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != 200 {
				return fmt.Errorf("%q: %s", q, resp.Status)
			}
			return nil
		}
	}
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"stats_plain_counts_copies", raw("* | stats by (level, service) count() as c, sum(wl_bytes) as b")},
		{"stats_replay_zones", func() error { _, err := st.Stats(ctx, store.StatsRequest{NoPartial: true}); return err }},
		{"stats_uniq_every_id", raw("* | uniq by (wl_topic, wl_partition, wl_offset, wl_bytes, level, service) | stats by (level, service) count() as c, sum(wl_bytes) as b")},
		{"count_uniq_every_id", raw("* | stats count_uniq(wl_topic, wl_partition, wl_offset) as c")},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}
