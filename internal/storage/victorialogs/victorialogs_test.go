package victorialogs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/storage/victorialogs"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/testproc"
	"github.com/wirelog/wirelog/internal/transport"
)

func rows(partition int32, from, n int64) []store.Row {
	out := make([]store.Row, 0, n)
	for o := from; o < from+n; o++ {
		out = append(out, store.Row{Topic: "events", Partition: partition, Offset: o, Bytes: 100, Event: event.Event{
			Time: time.Now().UTC(), Service: fmt.Sprintf("svc-%d", o%5), Host: fmt.Sprintf("host-%d", o%3),
			Level: event.LevelInfo, Message: fmt.Sprintf("event %d of partition %d", o, partition),
		}})
	}
	return out
}

// TestInsertRequest checks what Write puts on the wire: without
// Content-Type application/stream+json VictoriaLogs answers 200 and stores
// nothing, so the header is asserted, with the compression, the tenant
// headers, the stream fields and the row mapping.
func TestInsertRequest(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/insert/jsonline" {
			return // the replay-zone lookup: nothing stored yet
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, body = r, b
		mu.Unlock()
	}))
	defer srv.Close()
	st, err := victorialogs.Open(victorialogs.Options{URL: srv.URL, AccountID: 7, ProjectID: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs := rows(2, 40, 3)
	rs[1].Event.Attrs = []byte(`{"status":200,"path":"/x"}`)
	if n, err := st.Write(context.Background(), rs); err != nil || n != 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.URL.Path != "/insert/jsonline" {
		t.Errorf("path %s, want /insert/jsonline", got.URL.Path)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/stream+json" {
		t.Errorf("Content-Type %q, want application/stream+json (without it VictoriaLogs stores nothing)", ct)
	}
	if ce := got.Header.Get("Content-Encoding"); ce != "zstd" {
		t.Errorf("Content-Encoding %q, want zstd", ce)
	}
	if a, p := got.Header.Get("AccountID"), got.Header.Get("ProjectID"); a != "7" || p != "3" {
		t.Errorf("tenant headers AccountID=%q ProjectID=%q, want 7 and 3", a, p)
	}
	if sf := got.URL.Query().Get("_stream_fields"); sf != strings.Join(victorialogs.StreamFields, ",") {
		t.Errorf("_stream_fields %q", sf)
	}
	zr, err := zstd.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("body is not zstd: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(plain))
	var lines int
	for sc.Scan() {
		v, err := fastjson.ParseBytes(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if string(v.GetStringBytes("_msg")) != rs[lines].Event.Message || v.GetInt("wl_offset") != 40+lines || v.GetInt("wl_partition") != 2 ||
			string(v.GetStringBytes("service")) == "" || len(v.GetStringBytes("_time")) == 0 {
			t.Errorf("line %d does not map the row: %s", lines, sc.Text())
		}
		if lines == 1 && (v.GetInt("attrs", "status") != 200 || string(v.GetStringBytes("wl_attrs")) != `{"status":200,"path":"/x"}`) {
			t.Errorf("attributes not mapped: %s", sc.Text())
		}
		lines++
	}
	if lines != 3 {
		t.Errorf("%d lines, want 3", lines)
	}
}

// TestInsertPerAccount: rows go to their tenant's account (--store-tenants),
// one insert per account, unlisted tenants and events without one to the
// default; a row VictoriaLogs would skip as too long is refused before
// anything is sent, naming the limit, so the processor dead-letters it.
func TestInsertPerAccount(t *testing.T) {
	var mu sync.Mutex
	byAccount := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/insert/jsonline" {
			return
		}
		zr, _ := zstd.NewReader(r.Body)
		plain, _ := io.ReadAll(zr)
		mu.Lock()
		defer mu.Unlock()
		acct := r.Header.Get("AccountID") + ":" + r.Header.Get("ProjectID")
		for _, l := range strings.Split(strings.TrimSpace(string(plain)), "\n") {
			v, _ := fastjson.Parse(l)
			byAccount[acct] = append(byAccount[acct], string(v.GetStringBytes("tenant")))
		}
	}))
	defer srv.Close()
	st, err := victorialogs.Open(victorialogs.Options{URL: srv.URL, AccountID: 1, MaxLineBytes: 4096,
		Tenants: map[string]victorialogs.Account{"acme": {AccountID: 10}, "beta": {AccountID: 20, ProjectID: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs := rows(0, 0, 6)
	for i, ten := range []string{"acme", "", "beta", "acme", "other", "beta"} {
		rs[i].Event.Tenant = ten
	}
	if n, err := st.Write(context.Background(), rs); err != nil || n != 6 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := map[string][]string{"10:0": {"acme", "acme"}, "1:0": {"", "other"}, "20:2": {"beta", "beta"}}
	mu.Lock()
	if !reflect.DeepEqual(byAccount, want) {
		t.Errorf("rows by account %v, want %v", byAccount, want)
	}
	clear(byAccount)
	mu.Unlock()

	long := rows(0, 6, 3)
	long[1].Event.Message = strings.Repeat("é", 3000) // 6000 bytes as JSON
	if _, err := st.Write(context.Background(), long); err == nil || !strings.Contains(err.Error(), "4096") || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Write of a row longer than MaxLineBytes: %v; want a refusal naming the limit, not an unavailable store", err)
	}
	mu.Lock()
	if len(byAccount) != 0 {
		t.Errorf("a refused batch was sent: %v", byAccount)
	}
	mu.Unlock()
	if _, err := victorialogs.Open(victorialogs.Options{URL: srv.URL, Tenants: map[string]victorialogs.Account{"acme": victorialogs.DefaultDeadLetters}}); err == nil {
		t.Error("Open with a tenant mapped to the dead-letter account succeeded")
	}
}

// TestLoadTenants reads a --store-tenants file and refuses bad lines by
// number.
func TestLoadTenants(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants")
	os.WriteFile(path, []byte("# comment\n\nacme 12:0\n  beta\t 12:1 \n* 3:4\n"), 0o600)
	m, def, err := victorialogs.LoadTenants(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, map[string]victorialogs.Account{"acme": {AccountID: 12}, "beta": {AccountID: 12, ProjectID: 1}}) || def == nil || *def != (victorialogs.Account{AccountID: 3, ProjectID: 4}) {
		t.Errorf("LoadTenants = %v, default %v", m, def)
	}
	for bad, line := range map[string]string{"acme\n": "line 2", "acme 1\n": "line 2", "acme x:1\n": "line 2", "acme 1:2\nacme 3:4\n": "line 3",
		"* 1:1\n* 2:2\n": "line 3", "acme 1:2 extra\n": "line 2", "acme 4294967296:0\n": "line 2"} {
		os.WriteFile(path, []byte("# ok\n"+bad), 0o600)
		if _, _, err := victorialogs.LoadTenants(path); err == nil || !strings.Contains(err.Error(), line+":") {
			t.Errorf("LoadTenants(%q) = %v, want an error naming %s", bad, err, line)
		}
	}
}

// TestInsertRetries: 5xx answers are retried with backoff up to the bound,
// a 4xx is not retried, and neither reports rows as sent.
func TestInsertRetries(t *testing.T) {
	var mu sync.Mutex
	var calls int
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/insert/jsonline" {
			return // the replay-zone lookup: nothing stored yet
		}
		mu.Lock()
		calls++
		code := status
		mu.Unlock()
		w.WriteHeader(code)
	}))
	defer srv.Close()
	st, err := victorialogs.Open(victorialogs.Options{URL: srv.URL, MaxAttempts: 3, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Write(context.Background(), rows(0, 0, 2))
	mu.Lock()
	if err == nil || calls != 3 {
		t.Errorf("503 three times: err=%v after %d calls, want an error after 3", err, calls)
	}
	mu.Unlock()
	mu.Lock()
	calls, status = 0, http.StatusBadRequest
	mu.Unlock()
	_, err = st.Write(context.Background(), rows(0, 0, 2))
	mu.Lock()
	if err == nil || calls != 1 {
		t.Errorf("400: err=%v after %d calls, want an error after 1", err, calls)
	}
	mu.Unlock()
}

// TestLossIsDetectedAndReplayed is the commit protocol against a real node:
// rows answered 200 are not reported durable before DurableAfter; a node
// killed with SIGKILL inside its flush window loses them, and the store
// reports the partition lost from the first missing offset instead of
// durable; once the rows are sent again and flushed, they are reported
// durable, and a batch of another partition that survived is durable.
func TestLossIsDetectedAndReplayed(t *testing.T) {
	vl := vltest.Start(t, false, "5s")
	durableAfter := 7 * time.Second
	st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL, DurableAfter: durableAfter, VerifyInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	p0 := transport.TopicPartition{Topic: "events", Partition: 0}
	p1 := transport.TopicPartition{Topic: "events", Partition: 1}

	// Partition 1's rows are made durable by a clean restart (SIGTERM
	// flushes), before partition 0's rows are sent and the node is killed.
	if _, err := st.Write(ctx, rows(1, 0, 500)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // searchable and forwarded
	vl.Term("single")
	vl.Start()
	if _, err := st.Write(ctx, rows(0, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	vl.Kill9("single")
	vl.Start()
	if d := st.Durable(); len(d) != 0 {
		t.Fatalf("durable %v reported before the flush window passed", d)
	}
	var lost map[transport.TopicPartition]int64
	durable := map[transport.TopicPartition]int64{}
	testproc.Eventually(t, 60*time.Second, func() error {
		for tp, o := range st.Durable() {
			durable[tp] = o
		}
		if l := st.Lost(); l != nil {
			lost = l
		}
		if lost == nil || durable[p1] == 0 {
			return fmt.Errorf("lost %v, durable %v: want partition 0 lost and partition 1 durable", lost, durable)
		}
		return nil
	})
	if lost[p0] != 0 || durable[p1] != 500 {
		t.Fatalf("lost %v durable %v: want partition 0 lost from offset 0, partition 1 durable up to 500", lost, durable)
	}
	if _, ok := durable[p0]; ok {
		t.Fatalf("partition 0 reported durable (%v) although its rows were lost", durable)
	}
	// Records fetched before the rewind (offsets past the hole) may still
	// be written: they are taken but never make the partition durable
	// while the hole is open, and the hole is reported until it is refilled.
	if n, err := st.Write(ctx, rows(0, 700, 10)); err != nil || n != 10 {
		t.Fatalf("Write past the hole = %d, %v", n, err)
	}
	time.Sleep(durableAfter + time.Second)
	if d := st.Durable(); d[p0] != 0 {
		t.Fatalf("partition 0 reported durable up to %d over its hole at 0", d[p0])
	}
	if l := st.Lost(); l[p0] != 0 || len(l) != 1 {
		t.Fatalf("Lost() = %v, want partition 0 again until its rows are sent again", l)
	}
	// The replay from the hole is taken, and becomes durable.
	if n, err := st.Write(ctx, rows(0, 0, 1000)); err != nil || n != 1000 {
		t.Fatalf("replay Write = %d, %v", n, err)
	}
	if l := st.Lost(); len(l) != 0 {
		t.Fatalf("Lost() = %v after the replay was sent", l)
	}
	testproc.Eventually(t, 60*time.Second, func() error {
		if o := st.Durable()[p0]; o == 1000 {
			return nil
		} else if l := st.Lost(); len(l) != 0 {
			return fmt.Errorf("lost again: %v", l)
		}
		return fmt.Errorf("partition 0 not durable yet")
	})
	s, err := st.Stats(ctx, store.StatsRequest{NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Events != 1500 {
		t.Errorf("stats: %d events, want 1500 (each id once)", s.Events)
	}
}

// TestPartialAnswer: with a storage node down, an answer says partial and
// names the node, or fails with storage.ErrUnavailable when partial answers
// are refused; with the node back, it is complete again.
func TestPartialAnswer(t *testing.T) {
	vl := vltest.Start(t, true, "")
	st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var all []store.Row
	for p := int32(0); p < 4; p++ {
		all = append(all, rows(p, 0, 250)...)
	}
	if _, err := st.Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	testproc.Eventually(t, 30*time.Second, func() error {
		vl.Flush()
		s, err := st.Stats(ctx, store.StatsRequest{NoPartial: true})
		if err != nil || s.Events != 1000 {
			return fmt.Errorf("stats %v %v", s, err)
		}
		return nil
	})
	vl.Term("storage2")
	down := vl.StorageAddr(2)

	s, err := st.Stats(ctx, store.StatsRequest{})
	if err != nil {
		t.Fatalf("stats with a node down, partial allowed: %v", err)
	}
	if !s.Partial || !slices.Contains(s.Missing, down) || s.Events >= 1000 {
		t.Fatalf("stats with %s down: partial=%v missing=%v events=%d; want partial naming it and fewer than 1000", down, s.Partial, s.Missing, s.Events)
	}
	r, err := st.Search(ctx, store.SearchRequest{Limit: 10})
	if err != nil || !r.Partial || !slices.Contains(r.Missing, down) {
		t.Fatalf("search with %s down: %v partial=%v missing=%v", down, err, r != nil && r.Partial, r)
	}
	if _, err := st.Stats(ctx, store.StatsRequest{NoPartial: true}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("stats with a node down, partial refused: %v, want storage.ErrUnavailable", err)
	}
	vl.Start()
	s, err = st.Stats(ctx, store.StatsRequest{})
	if err != nil || s.Partial || s.Events != 1000 {
		t.Fatalf("stats with the node back: %+v %v", s, err)
	}
}

// TestFollow: the live tail `wirelog serve` publishes from is VictoriaLogs'
// own tail; a row written twice (a replay) is published once.
func TestFollow(t *testing.T) {
	vl := vltest.Start(t, true, "")
	st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Follow(ctx, func(es []event.Event) {
			mu.Lock()
			for _, e := range es {
				got[e.Message]++
			}
			mu.Unlock()
		})
	}()
	time.Sleep(2 * time.Second) // the tail is connected
	rs := rows(3, 0, 50)
	for range 2 {
		if _, err := st.Write(ctx, append([]store.Row(nil), rs...)); err != nil {
			t.Fatal(err)
		}
	}
	testproc.Eventually(t, 30*time.Second, func() error {
		vl.Flush()
		mu.Lock()
		defer mu.Unlock()
		if len(got) < len(rs) {
			return fmt.Errorf("tail published %d of %d events", len(got), len(rs))
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	mu.Lock()
	for m, n := range got {
		if n != 1 {
			t.Errorf("event %q published %d times", m, n)
		}
	}
	mu.Unlock()
	cancel()
	<-done

	// The newest page of recent rows comes from the recent window first,
	// each id once although every row was written twice.
	res, err := st.Search(context.Background(), store.SearchRequest{Limit: 10, NoPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 10 || !res.More {
		t.Fatalf("newest 10: %d events, more=%v", len(res.Events), res.More)
	}
	for i, e := range res.Events {
		if e.Offset != int64(49-i) || e.Partition != 3 {
			t.Errorf("newest event %d is %d/%d, want 3/%d", i, e.Partition, e.Offset, 49-i)
		}
	}
}

// TestOutsideRetentionIsDeadLettered: VictoriaLogs drops a row whose time
// is outside its retention with a 200; such rows go to the dead-letter
// account instead, and the partition is verified durable past them
// (without this it would be found missing and replayed forever).
func TestOutsideRetentionIsDeadLettered(t *testing.T) {
	vl := vltest.Start(t, false, "1s")
	st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL, DurableAfter: 3 * time.Second, VerifyInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs := rows(3, 0, 6)
	rs[1].Event.Time = time.Now().Add(-10 * 24 * time.Hour)
	rs[4].Event.Time = time.Now().Add(5 * 24 * time.Hour)
	if n, err := st.Write(context.Background(), rs); err != nil || n != 6 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	p3 := transport.TopicPartition{Topic: "events", Partition: 3}
	durable := map[transport.TopicPartition]int64{}
	testproc.Eventually(t, 60*time.Second, func() error {
		for tp, o := range st.Durable() {
			durable[tp] = o
		}
		if l := st.Lost(); l != nil {
			return fmt.Errorf("lost %v: the dropped rows made a hole", l)
		}
		if durable[p3] != 6 {
			return fmt.Errorf("durable %v, want partition 3 up to 6", durable)
		}
		return nil
	})
	vl.Flush()
	dead := map[int64]string{}
	q := url.Values{"query": {"* | fields wl_offset, _msg, wl_raw"}}
	req, _ := http.NewRequest(http.MethodPost, vl.URL+"/select/logsql/query", strings.NewReader(q.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("AccountID", "4294967295")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		v, err := fastjson.ParseBytes(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		o, _ := strconv.ParseInt(string(v.GetStringBytes("wl_offset")), 10, 64)
		dead[o] = string(v.GetStringBytes("_msg"))
		if !strings.Contains(string(v.GetStringBytes("wl_raw")), rs[o].Event.Message) {
			t.Errorf("dead letter %d does not hold the row: %s", o, sc.Text())
		}
	}
	if len(dead) != 2 || !strings.Contains(dead[1], "--store-retention") || !strings.Contains(dead[4], "retain") {
		t.Errorf("dead letters %v, want offsets 1 and 4 with the reason", dead)
	}
	s, err := st.Stats(context.Background(), store.StatsRequest{NoPartial: true})
	if err != nil || s.Events != 4 {
		t.Errorf("stats: %v events, %v; want the 4 rows inside retention", s, err)
	}
}
