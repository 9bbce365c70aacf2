package store

import (
	"context"
	"fmt"
	"math/bits"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestQueryTokens(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string // the words the index may use
	}{
		{"orders/77777 ", []string{"77777"}},
		{"timeout", nil},                   // may be part of "timeouts": not a whole word
		{"timeout after", nil},             // neither word has a delimiter on both sides
		{" Timeout ", []string{"timeout"}}, // case-insensitive
		{"a b_c d", []string{"b_c"}},
		{"x caf\u00e9 y", nil}, // non-ASCII words are left to the scan
		{"order 1a2b3c4d created", []string{"1a2b3c4d"}},
		{"", nil},
	} {
		got := queryTokens(c.q)
		var want []traceKey
		for _, w := range c.want {
			want = append(want, tokenKeyOf(wordHash(w)))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("queryTokens(%q) = %v, want the keys of %q", c.q, got, c.want)
		}
	}
}

// TestTokenHashMatchesScan: the write path hashes ASCII words while it
// scans, lower-casing by table; a query hashes the lower-cased word. Both
// must give the same key, and a Unicode letter that lower-cases to ASCII
// (the Kelvin sign) must index as the ASCII word.
func TestTokenHashMatchesScan(t *testing.T) {
	for _, c := range []struct{ msg, word string }{
		{"GET /API/v1/Orders/77777 done", "orders"},
		{"GET /API/v1/Orders/77777 done", "77777"},
		{"user_42 ok", "user_42"},
		{"300 \u212Aelvin reached", "kelvin"},
		{"end", "end"},
		{"an_Identifier_longer_than_8_bytes x", "an_identifier_longer_than_8_bytes"},
	} {
		tb := make([]uint64, tokenBloomChunks*traceChunkWords)
		addText(tb, c.msg)
		k := tokenKeyOf(wordHash(c.word))
		if !k.has(tb[k.chunk*traceChunkWords:(k.chunk+1)*traceChunkWords], tokenBloomProbes) {
			t.Errorf("the bloom of %q does not hold %q", c.msg, c.word)
		}
	}
}

// textRows are rows whose messages hold a word unique to each event
// (id-<offset>) and words common to all.
func textRows(n int, first int64, start time.Time) []Row {
	rows := genRows(n, "logs", 0, first, start, time.Millisecond)
	for i := range rows {
		rows[i].Event.Message = fmt.Sprintf("Charge for order ID-%d failed: card declined", rows[i].Offset)
	}
	return rows
}

// searchBoth runs q through SearchNewest and Search with the index, and
// Search without it, and fails unless all three agree.
func searchBoth(t *testing.T, st *Store, q string) int {
	t.Helper()
	ctx := context.Background()
	req := SearchRequest{Query: q, Limit: 1000}
	idx, err := st.Search(ctx, req)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	newest, err := st.SearchNewest(ctx, req)
	if err != nil {
		t.Fatalf("SearchNewest(%q): %v", q, err)
	}
	st.traces.mu.Lock()
	st.traces.off = true
	st.traces.mu.Unlock()
	scan, err := st.Search(ctx, req)
	st.traces.mu.Lock()
	st.traces.off = false
	st.traces.mu.Unlock()
	if err != nil {
		t.Fatalf("Search(%q) without the index: %v", q, err)
	}
	if fmt.Sprint(idx.Events) != fmt.Sprint(scan.Events) || fmt.Sprint(newest.Events) != fmt.Sprint(scan.Events) {
		t.Fatalf("text %q: the index found %d events (SearchNewest %d), a scan %d", q, len(idx.Events), len(newest.Events), len(scan.Events))
	}
	return len(scan.Events)
}

func checkTextSearches(t *testing.T, st *Store, total int64) {
	t.Helper()
	for _, off := range []int64{0, 4242, 70000, total - 1000, total - 1} { // sealed blocks and the open one
		if n := searchBoth(t, st, fmt.Sprintf("order id-%d failed", off)); n != 1 {
			t.Fatalf("order id-%d: %d events, want 1", off, n)
		}
	}
	if n := searchBoth(t, st, "order id-999999999 failed"); n != 0 {
		t.Fatalf("a word never stored: %d events", n)
	}
	searchBoth(t, st, "card declined")       // no whole word: a scan
	searchBoth(t, st, "for order ")          // a common word: every block
	searchBoth(t, st, "order ID-12 failed:") // upper case in the query
}

func TestTokenIndexTable(t *testing.T) {
	st := openTest(t, tempDB(t))
	ctx := context.Background()
	total := int64(2*TraceBlockRows + 3000)
	for off := int64(0); off < total; off += 10000 {
		n := min(10000, total-off)
		mustWrite(t, st, textRows(int(n), off, t0.Add(time.Duration(off)*time.Millisecond)))
		if off == 60000 {
			if err := st.Checkpoint(ctx); err != nil { // the other twin, as the processor does
				t.Fatal(err)
			}
		}
	}
	var blocks, indexed int
	if err := st.db.QueryRow(`SELECT count(*), count(*) FILTER (tokens) FROM trace_blocks`).Scan(&blocks, &indexed); err != nil {
		t.Fatal(err)
	}
	if blocks < 1 || indexed != blocks {
		t.Fatalf("%d blocks sealed, %d with a token bloom", blocks, indexed)
	}
	checkTextSearches(t, st, total)
	// A rare word's blocks are a few of them, not all.
	p, err := st.planSearch(ctx, SearchRequest{Query: "order id-4242 failed"})
	if err != nil || !p.indexed {
		t.Fatalf("planSearch: indexed %v, %v", p.indexed, err)
	}
	if _, rows := p.within(time.Time{}, time.Time{}); rows >= total {
		t.Fatalf("the index kept %d of %d events for a word of one event", rows, total)
	}

	// After a restart the open block is rebuilt from the events, words included.
	path := st.path
	st.Close()
	st = openTest(t, path)
	checkTextSearches(t, st, total)
}

func TestTokenIndexSegments(t *testing.T) {
	// Segments are written by FlushSegments only (the interval never
	// passes), so the test knows their bounds.
	st, err := Open(filepath.Join(t.TempDir(), "wirelog.duckdb"), Options{DisableMaintenance: true, Retention: -1, Format: FormatParquet,
		SegmentInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	total := int64(150000)
	for off := int64(0); off < total; off += 10000 {
		mustWrite(t, st, textRows(10000, off, t0.Add(time.Duration(off)*time.Millisecond)))
		if off%50000 == 40000 {
			if err := st.FlushSegments(ctx); err != nil { // three segments
				t.Fatal(err)
			}
		}
	}
	if err := st.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	checkTextSearches(t, st, total)
	// A window that holds one segment reads only that file.
	from, to := t0.Add(60*time.Second), t0.Add(70*time.Second)
	if src := st.eventsSource(from, to); countFiles(src) != 1 {
		t.Fatalf("the source of a 10 s window lists %d files, want 1: %s", countFiles(src), src)
	}
	res, err := st.Search(ctx, SearchRequest{From: from, To: to, Limit: MaxSearchLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != MaxSearchLimit || res.More || !res.Events[0].Time.Equal(to.Add(-time.Millisecond)) {
		t.Fatalf("a 10 s window of 1 event/ms: %d events (more %v), the newest at %s", len(res.Events), res.More, res.Events[0].Time)
	}
}

func countFiles(src string) int {
	n := 0
	for i := 0; i+len(".parquet'") <= len(src); i++ {
		if src[i:i+len(".parquet'")] == ".parquet'" {
			n++
		}
	}
	return n
}

// TestFoldTokenBloom: a folded bloom holds every word of the full one, at
// the chunk number tokenChunkTest names for its size, and is folded only
// while a quarter of its bits or fewer are set.
func TestFoldTokenBloom(t *testing.T) {
	for _, words := range []int{0, 1, 50, 3000, 40000, 200000} {
		tb := make([]uint64, tokenBloomChunks*traceChunkWords)
		var keys []traceKey
		for i := range words {
			w := fmt.Sprintf("w%d", i)
			addText(tb, w)
			keys = append(keys, tokenKeyOf(wordHash(w)))
		}
		before := slices.Clone(tb)
		folded, n := foldTokenBloom(tb)
		if !slices.Equal(tb, before) {
			t.Fatalf("%d words: foldTokenBloom changed the bloom it folded", words)
		}
		if len(folded) != n*traceChunkWords || n < 1 || n > tokenBloomChunks || n&(n-1) != 0 {
			t.Fatalf("%d words: %d chunks, %d words of bloom", words, n, len(folded))
		}
		set := 0
		for _, w := range folded {
			set += bits.OnesCount64(w)
		}
		if n < tokenBloomChunks && set*tokenFoldFill > len(folded)*64 {
			t.Fatalf("%d words folded to %d chunks with %d of %d bits set", words, n, set, len(folded)*64)
		}
		if words >= 40000 && n < tokenBloomChunks/2 {
			t.Fatalf("%d words folded to %d chunks: too few for them", words, n)
		}
		if words <= 50 && n > 8 {
			t.Fatalf("%d words kept %d chunks: not folded to their size", words, n)
		}
		for i, k := range keys {
			c := k.chunk / (tokenBloomChunks / n)
			if n < tokenBloomChunks {
				// The number stored for the word's chunk is the one the
				// lookup's arithmetic (tokenChunkTest) names for this size.
				x := tokenChunkNumber(n, c)
				if x < 2*tokenFoldedBase || x%tokenFoldedBase != k.chunk>>(tokenBloomLog+2-x/tokenFoldedBase) {
					t.Fatalf("%d chunks: chunk %d is stored as %d, which tokenChunkTest does not name for chunk %d", n, c, x, k.chunk)
				}
			}
			if !k.has(folded[c*traceChunkWords:(c+1)*traceChunkWords], tokenBloomProbes) {
				t.Fatalf("%d words folded to %d chunks: w%d is missing", words, n, i)
			}
		}
	}
}

// TestTokenIndexMixedBloomSizes: a store holding token blooms sealed at
// full size (every block before folding) beside blooms folded to their
// block's size finds every rare word in both, through compaction and a
// restart, and a folded block stores rows in proportion to its words.
func TestTokenIndexMixedBloomSizes(t *testing.T) {
	age := segmentCompactAge
	segmentCompactAge = 0
	t.Cleanup(func() { segmentCompactAge = age })
	path := filepath.Join(t.TempDir(), "wirelog.duckdb")
	opts := Options{DisableMaintenance: true, Retention: -1, Format: FormatParquet, SegmentInterval: time.Hour}
	st, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	var total int64
	var firsts []int64
	write := func(n int) {
		firsts = append(firsts, total)
		mustWrite(t, st, textRows(n, total, t0.Add(time.Duration(total)*time.Millisecond)))
		if err := st.FlushSegments(ctx); err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	st.traces.mu.Lock()
	st.traces.noFold = true
	st.traces.mu.Unlock()
	for range 4 {
		write(3000) // as before folding: 2,048 chunk numbers each
	}
	st.traces.mu.Lock()
	st.traces.noFold = false
	st.traces.mu.Unlock()
	for range 4 {
		write(3000)
	}
	write(TraceBlockRows + 5000) // a full block and a small one in one segment

	var full, folded, markers, foldedRows int
	if err := st.db.QueryRow(`SELECT count(*) FILTER (tokens), count(*) FILTER (NOT tokens) FROM trace_blocks`).Scan(&full, &folded); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRow(fmt.Sprintf(`SELECT count(*) FILTER (chunk = %d), count(*) FILTER (chunk > %[1]d) FROM token_bloom`, tokenFoldedBase)).
		Scan(&markers, &foldedRows); err != nil {
		t.Fatal(err)
	}
	if full != 5 || folded != 5 || markers != folded {
		t.Fatalf("%d blocks at full size (want 4 before folding + 1 of %d events), %d folded with %d markers (want 5)", full, TraceBlockRows, folded, markers)
	}
	if foldedRows > folded*tokenBloomChunks/8 {
		t.Fatalf("%d folded blocks of 3,000-5,000 events stored %d chunk rows: not in proportion to their words", folded, foldedRows)
	}

	check := func(stage string) {
		t.Helper()
		for _, first := range firsts {
			for _, off := range []int64{first, first + 1234, first + 2999} {
				if n := searchBoth(t, st, fmt.Sprintf("order id-%d failed", off)); n != 1 {
					t.Fatalf("%s: order id-%d: %d events, want 1", stage, off, n)
				}
			}
		}
		// Every rare word, through the index's plan: its block is kept.
		for off := int64(0); off < total; off += 199 {
			p, err := st.planSearch(ctx, SearchRequest{Query: fmt.Sprintf("order id-%d failed", off)})
			if err != nil || !p.indexed {
				t.Fatalf("%s: planSearch: indexed %v, %v", stage, p.indexed, err)
			}
			ts := t0.Add(time.Duration(off) * time.Millisecond)
			if rs, _ := p.within(ts, ts.Add(time.Millisecond)); len(rs) == 0 {
				t.Fatalf("%s: the index ruled out the block of order id-%d", stage, off)
			}
		}
		if n := searchBoth(t, st, "order id-999999999 failed"); n != 0 {
			t.Fatalf("%s: a word never stored: %d events", stage, n)
		}
		p, err := st.planSearch(ctx, SearchRequest{Query: "order id-7000 failed"})
		if err != nil {
			t.Fatal(err)
		}
		if _, rows := p.within(time.Time{}, time.Time{}); rows > 3*3000 {
			t.Fatalf("%s: the index kept %d of %d events for a word of one event", stage, rows, total)
		}
		searchBoth(t, st, "for order ") // a common word: every block, both sizes
	}
	check("written")
	merged, err := st.CompactSegments(ctx)
	if err != nil || merged < segmentCompactMin {
		t.Fatalf("CompactSegments merged %d files: %v", merged, err)
	}
	check("compacted")
	st.Close()
	if st, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	check("reopened")
}
