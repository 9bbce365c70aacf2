package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/loadgen"
)

// Issue 12's query targets at scale: a store of WIRELOG_SCALE_ROWS events
// (default 1,000,000; the figure is 100,000,000) of the shape
// `wirelog loadgen` sends, spread evenly over the 24 hours before the
// build, in WIRELOG_SCALE_DIR (default: a temporary directory) as
// wirelog.duckdb, so `wirelog run --data DIR` serves it afterwards.
//
//	WIRELOG_SCALE_ROWS=100000000 WIRELOG_SCALE_DIR=/var/tmp/wl-100m WIRELOG_SCALE_FORMAT=parquet \
//	  go test -run '^$' -bench StoreScale -benchtime 30x -timeout 3h ./internal/store
//
// WIRELOG_SCALE_FORMAT is parquet (default; built through Store.Write in
// batches of 20,000, segments, the trace and token index written by the
// write path) or table. A table store is built the same way, or, with
// WIRELOG_SCALE_FROM=<directory of a built parquet store>, converted from
// it (the same events, rollups and index blocks copied into the twins'
// tables by DuckDB: minutes instead of the better part of an hour at 100M).
// A directory holding a complete build (its wirelog.duckdb.built marker) is
// reused; the marker holds the end of the events' 24 hours.
const (
	scaleTopic = "bench.seed" // not the topic `wirelog run` consumes: its offsets stay its own
	scaleSpan  = 24 * time.Hour
	scaleBatch = 20000
)

var (
	scaleServices = loadgen.Services()
	scaleMethods  = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"}
	scaleTails    = []string{"", "/{id}", "/{id}/items", "/search", "/{id}/status", "/batch"}
	scaleRegions  = []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"}
	scaleTables   = []string{"orders", "users", "line_items", "payments", "sessions", "inventory", "events"}
	scaleReasons  = []string{"card declined", "insufficient funds", "context deadline exceeded",
		"connection reset by peer", "no such host", "invalid signature", "too many open files", "EOF", "broken pipe", "quota exceeded"}
	scaleHosts = func() [][]string { // five pods per service
		h := make([][]string, len(scaleServices))
		for i, s := range scaleServices {
			for p := 0; p < 5; p++ {
				h[i] = append(h[i], fmt.Sprintf("%s-%05x", s, mix64(uint64(i*5+p))&0xfffff))
			}
		}
		return h
	}()
)

// scaleRand is the randomness of event i: a pure function of i, so any
// event can be generated again (the benchmark finds a rare word that way).
type scaleRand struct{ x uint64 }

func (r *scaleRand) n(k int) int {
	r.x = mix64(r.x + 0x9e3779b97f4a7c15)
	return int(r.x % uint64(k))
}

func (r *scaleRand) u32() uint32 { r.x = mix64(r.x + 0x9e3779b97f4a7c15); return uint32(r.x >> 16) }

// scaleEvent fills row with event i of a store of n events ending at end:
// loadgen's services, level mix (10% debug, 75% info, 10% warn, 4.5%
// error, 0.5% fatal), message templates with their ids and numbers,
// attributes, and a trace on 30% of the events (a few consecutive events
// per trace).
func scaleEvent(row *Row, i, n int64, end time.Time, buf []byte) []byte {
	r := scaleRand{x: uint64(i) * 0x2545f4914f6cdd1d}
	ts := end.Add(-scaleSpan + time.Duration(float64(i)/float64(n)*float64(scaleSpan)))
	svcI := r.n(len(scaleServices))
	svc := scaleServices[svcI]
	noun, _, _ := strings.Cut(svc, "-")
	var lvl event.Level
	switch p := r.n(1000); {
	case p < 100:
		lvl = event.LevelDebug
	case p < 850:
		lvl = event.LevelInfo
	case p < 950:
		lvl = event.LevelWarn
	case p < 995:
		lvl = event.LevelError
	default:
		lvl = event.LevelFatal
	}
	method := scaleMethods[r.n(len(scaleMethods))]
	route := "/api/v1/" + noun + scaleTails[r.n(len(scaleTails))]
	status := []int{200, 200, 200, 200, 201, 204, 304}[r.n(7)]
	switch lvl {
	case event.LevelWarn:
		status = []int{400, 401, 404, 409, 429, 200}[r.n(6)]
	case event.LevelError, event.LevelFatal:
		status = []int{500, 502, 503, 504}[r.n(4)]
	}
	ms := 1 + r.n(40)
	if lvl >= event.LevelError {
		ms = 30 + r.n(3000)
	}
	peer := scaleServices[r.n(len(scaleServices))]
	b := buf[:0]
	app := func(parts ...any) {
		for _, p := range parts {
			switch v := p.(type) {
			case string:
				b = append(b, v...)
			case int:
				b = strconv.AppendInt(b, int64(v), 10)
			case uint32:
				b = fmt.Appendf(b, "%08x", v)
			}
		}
	}
	switch lvl {
	case event.LevelDebug:
		switch r.n(4) {
		case 0:
			app("cache lookup key=", noun, ":", r.u32(), " hit=", []string{"true", "false"}[r.n(2)])
		case 1:
			app("loaded ", r.n(5000), " rows from ", scaleTables[r.n(len(scaleTables))], " in ", ms, "ms")
		case 2:
			app("flag ", noun, "-v2 is on for u-", 1000000+r.n(9000000))
		default:
			app("span started op=", method, " ", route)
		}
	case event.LevelWarn:
		switch r.n(5) {
		case 0:
			app("slow query ", ms*10, "ms: SELECT * FROM ", scaleTables[r.n(len(scaleTables))], " WHERE id=$1")
		case 1:
			app("retrying call to ", peer, " attempt=", 1+r.n(3), "/3")
		case 2:
			app("rate limit at ", 80+r.n(20), "% for tenant t-", r.n(500))
		case 3:
			app("connection pool at ", 56+r.n(9), "/64, waiting")
		default:
			app(method, " ", route, " ", status, " ", ms, "ms")
		}
	case event.LevelError:
		switch r.n(4) {
		case 0:
			app("upstream ", peer, " returned ", status, ": ", scaleReasons[r.n(len(scaleReasons))])
		case 1:
			app("charge for order ", r.u32(), " failed: ", scaleReasons[r.n(len(scaleReasons))])
		case 2:
			app("timeout after ", ms, "ms calling ", peer)
		default:
			app("publish to ", noun, ".events failed: ", scaleReasons[r.n(len(scaleReasons))])
		}
	case event.LevelFatal:
		app("panic: runtime error: index out of range [", 5+r.n(50), "] with length ", r.n(5))
	default:
		switch r.n(7) {
		case 0, 1:
			app(method, " ", route, " ", status, " ", ms, "ms")
		case 2:
			app("user u-", 1000000+r.n(9000000), " signed in from 198.51.100.", 1+r.n(254))
		case 3:
			app("order ", r.u32(), " created items=", 1+r.n(9), " total=", r.n(500), ".", 10+r.n(90), " EUR")
		case 4:
			app("published ", 1+r.n(500), " messages to ", noun, ".events")
		case 5:
			app("job ", noun, "-", r.u32(), " finished in ", ms, "ms")
		default:
			app("connected to ", peer, " in ", ms, "ms")
		}
	}
	msg := string(b)
	b = b[:0]
	app(`{"duration_ms":`, ms, `,"http_status":`, status, `,"http_method":"`, method, `","region":"`, scaleRegions[r.n(len(scaleRegions))],
		`","user_id":"u-`, 1000000+r.n(9000000), `"}`)
	attrs := []byte(string(b))
	var traceID, spanID string
	if trace := uint64(i / 4); mix64(trace)%10 < 3 { // 30% of the events, four per trace
		var id [16]byte
		x, y := mix64(trace+1), mix64(trace+0x51ed27)
		for j := 0; j < 8; j++ {
			id[j], id[8+j] = byte(x>>(8*j)), byte(y>>(8*j))
		}
		traceID = hex.EncodeToString(id[:])
		spanID = traceID[:16]
	}
	*row = Row{Topic: scaleTopic, Partition: 0, Offset: i, Event: event.Event{
		Time: ts, Service: svc, Level: lvl, Message: msg, Host: scaleHosts[svcI][r.n(5)],
		TraceID: traceID, SpanID: spanID, Attrs: attrs,
	}}
	// The size a loadgen event of these fields has as JSON (ts, event_id
	// and keys included): what the rollups sum as bytes.
	row.Bytes = 110 + len(svc) + len(msg) + len(row.Event.Host) + len(attrs) + len(traceID) + len(spanID)
	return b
}

// scaleStore opens (building when needed) the scale store and returns it
// with the end of its events' 24 hours.
func scaleStore(b *testing.B) (*Store, time.Time, int, string) {
	n := 1_000_000
	if v := os.Getenv("WIRELOG_SCALE_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100000 {
			b.Fatalf("WIRELOG_SCALE_ROWS=%q: want a number >= 100000", v)
		}
	}
	format := FormatParquet
	if v := os.Getenv("WIRELOG_SCALE_FORMAT"); v != "" {
		format = v
	}
	dir := os.Getenv("WIRELOG_SCALE_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "wirelog.duckdb")
	marker := path + ".built"
	// WIRELOG_SCALE_MEMORY: DuckDB's memory limit (default: the store's;
	// `wirelog run` gives it 128MB) — the buffer pool the queries read from.
	opts := Options{DisableMaintenance: true, Retention: -1, Format: format, MemoryLimit: os.Getenv("WIRELOG_SCALE_MEMORY")}
	if m, err := os.ReadFile(marker); err == nil {
		f := append(strings.Fields(string(m)), "", "", "")
		end, err := time.Parse(time.RFC3339, f[0])
		if err != nil || f[1] != strconv.Itoa(n) || f[2] != format {
			b.Fatalf("%s holds %q, not a build of %d %s events: delete the directory or point WIRELOG_SCALE_DIR elsewhere", marker, m, n, format)
		}
		st, err := Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		return st, end, n, dir
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		b.Fatalf("%s is not empty and holds no complete build: delete it first", dir)
	}
	var end time.Time
	var st *Store
	var err error
	if from := os.Getenv("WIRELOG_SCALE_FROM"); from != "" && format == FormatTable {
		st, end = convertScaleStore(b, path, from, n, opts)
	} else {
		end = time.Now().UTC().Truncate(time.Second)
		if st, err = Open(path, opts); err != nil {
			b.Fatal(err)
		}
		buildScaleStore(b, st, n, end)
	}
	// Fold both WALs into the files, so the size on disk is what stays.
	for _, tw := range twins {
		if _, err := st.db.Exec("CHECKPOINT " + tw); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(marker, fmt.Appendf(nil, "%s %d %s\n", end.Format(time.RFC3339), n, format), 0o644); err != nil {
		b.Fatal(err)
	}
	return st, end, n, dir
}

// buildScaleStore writes n events through Store.Write as the processor
// does (batches of 20,000, checkpoints when due, rollups compacted every
// million), generating the next batch while the store writes this one.
func buildScaleStore(b *testing.B, st *Store, n int, end time.Time) {
	ctx := context.Background()
	batches := make(chan []Row, 2)
	go func() {
		defer close(batches)
		var buf []byte
		for off := 0; off < n; off += scaleBatch {
			rows := make([]Row, min(scaleBatch, n-off))
			for j := range rows {
				buf = scaleEvent(&rows[j], int64(off+j), int64(n), end, buf)
			}
			batches <- rows
		}
	}()
	start, cpu0 := time.Now(), processCPU(b)
	done := 0
	for rows := range batches {
		if _, err := st.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
		done += len(rows)
		if st.CheckpointDue() {
			if err := st.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if done%1_000_000 < scaleBatch {
			if err := st.Compact(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if done%5_000_000 < scaleBatch || done == n {
			el := time.Since(start)
			fmt.Fprintf(os.Stderr, "scale store: %d of %d events written in %s (%.0f/s), ~%s left\n", done, n, el.Round(time.Second),
				float64(done)/el.Seconds(), (time.Duration(float64(el) * float64(n-done) / float64(done))).Round(time.Second))
		}
	}
	if err := st.FlushSegments(ctx); err != nil {
		b.Fatal(err)
	}
	if err := st.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d %s events in %s, %.2f CPU µs/event (generator included)", n, st.opts.Format, time.Since(start).Round(time.Second),
		float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(n))
}

// convertScaleStore builds a table store at path from the parquet scale
// store in dir from: its segment files' events into the first twin's events
// table, its rollups, offsets and index blocks twin by twin, and a trace
// cover that says every event is indexed (it is: by the segments' blocks).
func convertScaleStore(b *testing.B, path, from string, n int, opts Options) (*Store, time.Time) {
	m, err := os.ReadFile(filepath.Join(from, "wirelog.duckdb.built"))
	if err != nil {
		b.Fatalf("WIRELOG_SCALE_FROM=%s: no complete parquet build there: %v", from, err)
	}
	f := strings.Fields(string(m))
	if len(f) != 3 || f[1] != strconv.Itoa(n) || f[2] != FormatParquet {
		b.Fatalf("WIRELOG_SCALE_FROM=%s holds %q, not %d parquet events", from, m, n)
	}
	end, err := time.Parse(time.RFC3339, f[0])
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	src := Files(filepath.Join(from, "wirelog.duckdb"))
	run := func(q string) {
		if _, err := st.db.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	run("SET threads = 2")
	for i, f := range src {
		run(fmt.Sprintf("ATTACH '%s' AS src_%d (READ_ONLY)", sqlString(f), i))
	}
	rows, err := st.db.Query(`SELECT file FROM (SELECT file, min_ts FROM src_0.main.segments UNION ALL SELECT file, min_ts FROM src_1.main.segments) ORDER BY min_ts, file`)
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			b.Fatal(err)
		}
		files = append(files, "'"+sqlString(filepath.Join(from, "wirelog.duckdb"+segmentDirSuffix, name))+"'")
	}
	rows.Close()
	for lo := 0; lo < len(files); lo += 40 {
		chunk := files[lo:min(len(files), lo+40)]
		run(`INSERT INTO wl_a.main.events SELECT ` + segmentColumns + ` FROM read_parquet([` + strings.Join(chunk, ",") + `])`)
		fmt.Fprintf(os.Stderr, "scale store: %d of %d segment files copied into the table in %s\n", lo+len(chunk), len(files), time.Since(start).Round(time.Second))
	}
	for i, tw := range twins {
		for _, t := range []string{"rollups", "rollups_minute", "rollups_10s", "consumer_offsets", "trace_blocks", "trace_bloom", "token_bloom"} {
			run(fmt.Sprintf(`INSERT INTO %s.main.%s SELECT * FROM src_%d.main.%s`, tw, t, i, t))
		}
	}
	run(`INSERT INTO wl_a.main.consumer_offsets SELECT topic, "partition", max(next_offset) FROM wl_b.main.consumer_offsets GROUP BY ALL
		ON CONFLICT DO UPDATE SET next_offset = greatest(next_offset, excluded.next_offset)`)
	run(`DELETE FROM wl_b.main.consumer_offsets`)
	run(`INSERT INTO wl_a.main.trace_cover SELECT * FROM wl_a.main.consumer_offsets`)
	for i := range src {
		run(fmt.Sprintf("DETACH src_%d", i))
	}
	run("SET threads = 1")
	st.Close()
	// Open again: the trace index's state (next block ids, cover) is read
	// from the tables on Open.
	if st, err = Open(path, opts); err != nil {
		b.Fatal(err)
	}
	b.Logf("converted %d events from %s into a table store in %s", n, from, time.Since(start).Round(time.Second))
	return st, end
}

// BenchmarkStoreScale times issue 12's query mix over the scale store, the
// way the API asks (SearchNewest for searches), and reports p50 and p99 of
// each in ms, with the size on disk per event.
func BenchmarkStoreScale(b *testing.B) {
	st, end, n, dir := scaleStore(b)
	defer st.Close()
	ctx := context.Background()
	var disk int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				disk += fi.Size()
			}
		}
		return nil
	})
	var blooms int64
	if err := st.db.QueryRow(`SELECT (SELECT count(*) FROM trace_bloom) + (SELECT count(*) FROM token_bloom)`).Scan(&blooms); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s store of %d events: %.2f GB on disk, %.1f bytes/event (bloom chunks %.1f MB uncompressed)", st.opts.Format, n,
		float64(disk)/1e9, float64(disk)/float64(n), float64(blooms*72)/1e6)

	// A rare word: the id of the first "order … created" event after two
	// thirds of the store.
	var row Row
	var rare string
	for i := int64(n) * 2 / 3; rare == ""; i++ {
		scaleEvent(&row, i, int64(n), end, nil)
		if id, ok := strings.CutPrefix(row.Event.Message, "order "); ok {
			rare = "order " + id[:8] + " created"
		}
	}
	day := end.Add(-scaleSpan)
	hour := end.Add(-time.Hour)
	search := func(req SearchRequest, want bool) func() error {
		return func() error {
			r, err := st.SearchNewest(ctx, req)
			if err == nil && want && len(r.Events) == 0 {
				err = fmt.Errorf("%+v found nothing", req)
			}
			return err
		}
	}
	type queryCase struct {
		name string
		run  func() error
	}
	cases := []queryCase{
		{"stats", func() error { _, err := st.Stats(ctx, StatsRequest{}); return err }},
		{"stats-seconds-only", func() error { // before rollups_minute: every per-second row
			rows, err := st.db.Query(`SELECT grouping(level, service) AS g, level, service, sum(count)::BIGINT, sum(bytes)::BIGINT
				FROM rollups GROUP BY GROUPING SETS ((level), (service), ())`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}},
		{"stats-24h", func() error { _, err := st.Stats(ctx, StatsRequest{From: day, To: end}); return err }},
		{"rollups-24h-service-level-step-240s", func() error { // the API's step for 24 h
			_, err := st.Rollups(ctx, RollupsRequest{From: day, To: end, Step: 240 * time.Second, By: []string{ByService, ByLevel}})
			return err
		}},
		{"rollups-1h-service-level", func() error {
			_, err := st.Rollups(ctx, RollupsRequest{From: hour, To: end, Step: 10 * time.Second, By: []string{ByService, ByLevel}})
			return err
		}},
		{"rollups-1h-service-level-plain", func() error { // before the fourth session: a row per point, from the per-second rows
			_, err := rollupsPlain(st, RollupsRequest{From: hour, To: end, Step: 10 * time.Second, By: []string{ByService, ByLevel}})
			return err
		}},
		{"rollups-1h-service-level-json", func() error { // what the API writes besides: the answer as JSON
			r, err := st.Rollups(ctx, RollupsRequest{From: hour, To: end, Step: 10 * time.Second, By: []string{ByService, ByLevel}})
			if err == nil {
				_, err = r.AppendJSON(nil)
			}
			return err
		}},
		{"rollups-1h-service-level-json-marshal", func() error { // the same through encoding/json, as before
			r, err := st.Rollups(ctx, RollupsRequest{From: hour, To: end, Step: 10 * time.Second, By: []string{ByService, ByLevel}})
			if err == nil {
				_, err = json.Marshal(r)
			}
			return err
		}},
		{"histogram-1h-step-10s", func() error { // the dashboard's chart (rollups: 10 s spans)
			_, err := st.Histogram(ctx, HistogramRequest{Filter: Filter{From: hour, To: end}, Step: 10 * time.Second})
			return err
		}},
		{"histogram-24h-step-240s", func() error { // (rollups: minutes)
			_, err := st.Histogram(ctx, HistogramRequest{Filter: Filter{From: day, To: end}, Step: 240 * time.Second})
			return err
		}},
		{"token-lookup-rare", func() error { // the token index's part of search-text-rare-24h
			_, _, err := st.tokenRanges(ctx, queryTokens(rare))
			return err
		}},
		{"token-lookup-rare-main", func() error { // main's lookup: bound chunk numbers, a subquery per word
			_, err := tokenRangesMain(st, queryTokens(rare))
			return err
		}},
		// Whether a bound parameter filters inside the scan as a constant
		// does: an hour of the per-second rollups, both ways.
		{"rollups-seconds-1h-bound", scanCount(st, `SELECT count(*), sum(count) FROM rollups WHERE sec >= $1 AND sec < $2`, hour.Unix(), end.Unix())},
		{"rollups-seconds-1h-literal", scanCount(st, fmt.Sprintf(`SELECT count(*), sum(count) FROM rollups WHERE sec >= %d AND sec < %d`, hour.Unix(), end.Unix()))},
		{"search-service-1h", search(SearchRequest{Service: "payments-api", From: hour, To: end}, true)},
		{"search-text-rare-24h", search(SearchRequest{Query: rare, From: day, To: end}, true)},
		{"search-text-common-24h", search(SearchRequest{Query: "timeout after", From: day, To: end}, true)},
		{"search-text-none-24h", search(SearchRequest{Query: "order deadbeefcafe created", From: day, To: end}, false)},
		{"search-service-1h-plain-Search", func() error {
			_, err := st.Search(ctx, SearchRequest{Service: "payments-api", From: hour, To: end})
			return err
		}},
		// The same 10 s of one service read through the events view (every
		// segment file listed; DuckDB prunes by each file's row-group
		// statistics) and through eventsSource (only the files of the window).
		{"raw-10s-service-view", rawTop(st, "events", end)},
		{"raw-10s-service-listed", rawTop(st, st.eventsSource(end.Add(-10*time.Second), end), end)},
		{"search-text-rare-24h-no-index", func() error {
			st.traces.mu.Lock()
			st.traces.off = true
			st.traces.mu.Unlock()
			defer func() {
				st.traces.mu.Lock()
				st.traces.off = false
				st.traces.mu.Unlock()
			}()
			_, err := st.SearchNewest(ctx, SearchRequest{Query: rare, From: day, To: end})
			return err
		}},
	}
	// The full scan of 24 h (tens of seconds at 100M) only when named.
	keep := strings.Split(os.Getenv("WIRELOG_SCALE_QUERIES"), ",")
	cases = slices.DeleteFunc(cases, func(c queryCase) bool {
		if keep[0] == "" {
			return strings.HasSuffix(c.name, "-no-index")
		}
		return !slices.Contains(keep, c.name)
	})
	b.Logf("rare text %q", rare)
	if os.Getenv("WIRELOG_SCALE_EXPLAIN") != "" {
		for _, src := range []string{"events", st.eventsSource(end.Add(-10*time.Second), end)} {
			var kind, plan string
			err := st.db.QueryRow(`EXPLAIN ANALYZE SELECT ts, message FROM `+src+` WHERE service = 'payments-api' AND ts >= $1 AND ts < $2
				ORDER BY ts DESC LIMIT 101`, end.Add(-10*time.Second), end).Scan(&kind, &plan)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("EXPLAIN ANALYZE over %.60s…:\n%s", src, plan)
		}
	}
	// Beside ingest: a writer in this process stores WIRELOG_SCALE_INGEST
	// events/s while the queries run (scaleIngest).
	if v := os.Getenv("WIRELOG_SCALE_INGEST"); v != "" {
		rate, err := strconv.Atoi(v)
		if err != nil || rate <= 0 {
			b.Fatalf("WIRELOG_SCALE_INGEST=%q: want events per second", v)
		}
		stop := scaleIngest(b, st, n, end, rate)
		defer stop()
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The query runs on this goroutine's thread (DuckDB executes on
			// its caller's thread with threads = 1), so the thread's own
			// CPU time and context switches are the query's: wall time
			// minus thread CPU is waiting, for a core (involuntary
			// switches: preempted) or for a lock or I/O (voluntary).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var lat []time.Duration
			var own threadUsage
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				t, u0 := time.Now(), threadRusage(b)
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
				own.add(threadRusage(b).sub(u0))
			}
			cpu := processCPU(b) - cpu0
			var wall time.Duration
			for _, l := range lat {
				wall += l
			}
			slices.Sort(lat)
			// CPU per query (the whole process: DuckDB runs the query on
			// the calling thread) is what this host's load does not inflate.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(own.cpu.Microseconds())/1000/float64(b.N), "thread-cpu-ms/op")
			b.ReportMetric(float64((wall-own.cpu).Microseconds())/1000/float64(b.N), "wait-ms/op")
			b.ReportMetric(float64(own.vcsw)/float64(b.N), "vcsw/op")
			b.ReportMetric(float64(own.ivcsw)/float64(b.N), "ivcsw/op")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// threadUsage is getrusage(RUSAGE_THREAD): the calling thread's CPU time
// and its voluntary (blocked) and involuntary (preempted) context switches.
type threadUsage struct {
	cpu         time.Duration
	vcsw, ivcsw int64
}

func threadRusage(b testing.TB) threadUsage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatalf("getrusage(RUSAGE_THREAD): %v", err)
	}
	return threadUsage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), vcsw: ru.Nvcsw, ivcsw: ru.Nivcsw}
}

func (u threadUsage) sub(v threadUsage) threadUsage {
	return threadUsage{u.cpu - v.cpu, u.vcsw - v.vcsw, u.ivcsw - v.ivcsw}
}

func (u *threadUsage) add(v threadUsage) { u.cpu += v.cpu; u.vcsw += v.vcsw; u.ivcsw += v.ivcsw }

// scaleIngest stores rate events/s of the scale store's shape beside the
// queries, as the processor does with `wirelog loadgen` in front: a batch
// every 100 ms (segments are written every SegmentInterval, ~10,000
// events at 20k/s), a checkpoint when one is due, rollups compacted every
// DefaultCompactInterval. Their event times run from 5 minutes before the
// store's end, so the 1 h and 24 h windows of the queries hold them. The
// returned func stops it and logs what it stored.
func scaleIngest(b *testing.B, st *Store, n int, end time.Time, rate int) (stop func()) {
	ctx := context.Background()
	topic := fmt.Sprintf("bench.ingest.%d", time.Now().UnixNano())
	done, stopped := make(chan struct{}), make(chan struct{})
	var stored int64
	start := time.Now()
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		compact := time.NewTicker(DefaultCompactInterval)
		defer compact.Stop()
		var buf []byte
		per := max(1, rate/10)
		for {
			select {
			case <-done:
				return
			case <-compact.C:
				if err := st.Compact(ctx); err != nil {
					b.Error(err)
					return
				}
				continue
			case <-tick.C:
			}
			rows := make([]Row, per)
			base := end.Add(-5*time.Minute + time.Since(start))
			for j := range rows {
				// Event i of the shape at this position in a day of n
				// events, moved to now in the ingest's stream.
				buf = scaleEvent(&rows[j], (stored+int64(j))*7919%int64(n), int64(n), end, buf)
				rows[j].Topic, rows[j].Offset = topic, stored+int64(j)
				rows[j].Event.Time = base.Add(time.Duration(j) * 100 * time.Millisecond / time.Duration(per))
			}
			if _, err := st.Write(ctx, rows); err != nil {
				b.Error(err)
				return
			}
			stored += int64(len(rows))
			if st.CheckpointDue() {
				if err := st.Checkpoint(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		el := time.Since(start)
		b.Logf("ingest beside the queries: %d events in %s (%.0f/s) to topic %s", stored, el.Round(time.Second), float64(stored)/el.Seconds(), topic)
	}
}

// rawTop is the SQL of a first page of one service over the last 10 s of
// the scale store, from src.
func rawTop(st *Store, src string, end time.Time) func() error {
	return func() error {
		rows, err := st.db.Query(`SELECT ts, service, level, message, host, trace_id, span_id, tenant, attrs::VARCHAR, bytes, topic, "partition", "offset"
			FROM `+src+` WHERE service = 'payments-api' AND ts >= $1 AND ts < $2 ORDER BY ts DESC, "partition" DESC, "offset" DESC LIMIT 101`,
			end.Add(-10*time.Second), end)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if n == 0 {
			return fmt.Errorf("no events of payments-api in the last 10 s")
		}
		return rows.Err()
	}
}

// tokenRangesMain is main's token-index lookup before folded blooms (the
// stored blocks only, not the open ones): every number bound as a
// parameter, one IN subquery per word. For the A/B in BenchmarkStoreScale.
func tokenRangesMain(st *Store, keys []traceKey) (int, error) {
	var args []any
	var tests []string
	for _, k := range keys {
		var mask [traceChunkWords]uint64
		k.set(mask[:], tokenBloomProbes)
		args = append(args, int32(k.chunk))
		test := fmt.Sprintf("chunk = $%d", len(args))
		for i, m := range mask {
			if m != 0 {
				args = append(args, int64(m))
				test += fmt.Sprintf(" AND (w%d & $%d) = $%[2]d", i, len(args))
			}
		}
		tests = append(tests, test)
	}
	var branches []string
	for _, twin := range twins {
		var in []string
		for _, t := range tests {
			in = append(in, fmt.Sprintf("block IN (SELECT block FROM %s.main.token_bloom WHERE %s)", twin, t))
		}
		branches = append(branches, fmt.Sprintf(`SELECT ts_min, ts_max, "rows" FROM %s.main.trace_blocks WHERE NOT tokens OR (%s)`,
			twin, strings.Join(in, " AND ")))
	}
	rows, err := st.db.Query(strings.Join(branches, " UNION ALL "), args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// scanCount runs q (one row of two numbers) with args.
func scanCount(st *Store, q string, args ...any) func() error {
	return func() error {
		var a, b sql.NullInt64
		return st.db.QueryRow(q, args...).Scan(&a, &b)
	}
}
