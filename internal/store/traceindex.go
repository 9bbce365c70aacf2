package store

// Trace-id lookups (issue 21). Trace ids are random, so DuckDB's min/max
// zone maps cannot skip anything and a search by trace id scans every
// trace_id of the store (416-610 ms at 54M rows). The store therefore keeps
// a skip structure of its own, built in Go as rows are written: per block of
// TraceBlockRows events of one twin, a blocked bloom filter of their trace
// ids and the block's event-time range. A lookup reads one 64-byte chunk of
// each block's bloom, keeps the blocks that may hold the id, and searches
// only their time ranges, where the zone maps on ts do skip.
// docs/bench/store.md ("Trace-id lookups") has the alternatives measured
// (an ART index, UHUGEINT ids) and why this one was kept.
//
// Exactly-once: a block's bloom rows are written in the transaction of the
// batch that fills it, together with the twin's consumer offsets at that
// point (trace_cover), so the sealed blocks cover exactly the rows below
// those offsets. The rows after them (the open block) are kept in memory and
// rebuilt from the events on Open. A crash therefore never leaves a stored
// event that a lookup cannot find; at worst the open block holds the keys of
// a rolled-back batch as well (a false positive, never a miss).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Trace index sizes.
const (
	// TraceBlockRows is how many events of one twin one bloom block covers.
	// Smaller blocks narrow the time range a hit scans but make more bloom
	// chunks to read per lookup; 65,536 is about half a DuckDB row group, so
	// a hit scans one or two row groups of trace ids (docs/bench/store.md).
	TraceBlockRows = 65536
	// traceBloomBits is the bits of bloom per event of a full block: at 16
	// bits and 8 probes a blocked bloom answers "maybe" for about 0.1% of the
	// blocks that do not hold an id (2 bytes on disk per event).
	traceBloomBits = 16
	// traceChunkWords is one bloom chunk: 512 bits, a cache line. Every probe
	// of one id falls in the same chunk, so a lookup reads one chunk per block.
	traceChunkWords = 8
	// traceBloomChunks is the chunks of one block's bloom.
	traceBloomChunks = TraceBlockRows * traceBloomBits / (traceChunkWords * 64)
	// traceBloomProbes is the bits set per id.
	traceBloomProbes = 8
	// traceRebuildMax bounds the unsealed rows Open indexes from the events
	// table per twin; a crash leaves at most about one block. A store written
	// before the index existed has more, and is searched by a full scan.
	traceRebuildMax = 4 * TraceBlockRows
)

// traceSchema is applied in both twins with the rest of the schema.
// trace_blocks holds each sealed block's time range, trace_bloom its bloom
// as one row per 64-byte chunk (all-zero chunks are left out) in eight
// BIGINT columns (the bits of uint64 words; database/sql cannot bind a
// uint64 with its top bit set): a lookup reads one row in every 2,048, and DuckDB fetches
// such scattered rows from fixed-width columns 4x faster than from a BLOB
// (12-29 vs 2.7-5 ms for 343 blocks, docs/bench/store.md); trace_cover
// the twin's consumer offsets when its last block was sealed.
var traceSchema = []string{
	`CREATE TABLE IF NOT EXISTS trace_blocks (
		block BIGINT NOT NULL,
		ts_min TIMESTAMP NOT NULL,
		ts_max TIMESTAMP NOT NULL,
		rows INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS trace_bloom (
		block BIGINT NOT NULL,
		chunk INTEGER NOT NULL,
		w0 BIGINT NOT NULL, w1 BIGINT NOT NULL, w2 BIGINT NOT NULL, w3 BIGINT NOT NULL,
		w4 BIGINT NOT NULL, w5 BIGINT NOT NULL, w6 BIGINT NOT NULL, w7 BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS trace_cover (
		topic VARCHAR NOT NULL,
		"partition" INTEGER NOT NULL,
		next_offset BIGINT NOT NULL,
		PRIMARY KEY (topic, "partition")
	)`,
	// The free-text index shares the blocks (tokenindex.go).
	tokenSchema[0], tokenSchema[1],
}

// traceKey is where an id's bits are: chunk, and the two values its probe
// positions are derived from.
type traceKey struct {
	chunk int
	a, b  uint32
}

// traceKeyOf hashes a trace id: stable across processes and releases,
// since the bits are stored.
func traceKeyOf(id string) traceKey {
	x := mix64(hashString(id))
	y := mix64(x ^ 0x9e3779b97f4a7c15)
	chunk, _ := bits.Mul64(x, traceBloomChunks)
	return traceKey{chunk: int(chunk), a: uint32(y), b: uint32(y>>32) | 1}
}

// hashString is FNV-1a (64-bit) of s, inline so nothing is allocated;
// traceKeyOf runs its result through mix64 so every bit of the key depends
// on every byte.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// set sets k's probes bits in chunk c; has reports whether all are set.
// The trace index uses traceBloomProbes, the token index tokenBloomProbes.
func (k traceKey) set(c []uint64, probes uint32) {
	for i := uint32(0); i < probes; i++ {
		p := (k.a + i*k.b) & 511
		c[p>>6] |= 1 << (p & 63)
	}
}

func (k traceKey) has(c []uint64, probes uint32) bool {
	for i := uint32(0); i < probes; i++ {
		p := (k.a + i*k.b) & 511
		if c[p>>6]&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

// traceBlock is the bloom and time range of the events of one block, and
// the bloom of the words of their messages (tokenindex.go).
type traceBlock struct {
	bits         []uint64 // traceBloomChunks × traceChunkWords
	tokens       []uint64 // tokenBloomChunks × traceChunkWords; nil: not indexed (benchmarks)
	tsMin, tsMax time.Time
	rows         int
	noFold       bool // seal the token bloom at full size (tests: blocks as written before folding)
}

func newTraceBlock() *traceBlock {
	return &traceBlock{bits: make([]uint64, traceBloomChunks*traceChunkWords), tokens: make([]uint64, tokenBloomChunks*traceChunkWords)}
}

func (b *traceBlock) chunk(i int) []uint64 {
	return b.bits[i*traceChunkWords : (i+1)*traceChunkWords]
}

// add indexes one event: its trace id and the words of its message.
// Events without a trace id count toward the block (its time range covers
// them) but set no trace bits.
func (b *traceBlock) add(ts time.Time, id, msg string) {
	if b.rows == 0 || ts.Before(b.tsMin) {
		b.tsMin = ts
	}
	if b.rows == 0 || ts.After(b.tsMax) {
		b.tsMax = ts
	}
	b.rows++
	if id != "" {
		k := traceKeyOf(id)
		k.set(b.chunk(k.chunk), traceBloomProbes)
	}
	if b.tokens != nil {
		addText(b.tokens, msg)
	}
}

// traceIndex is the store's open (unsealed) block per twin.
type traceIndex struct {
	mu        sync.Mutex // guards open; writers hold writeMu as well
	open      [2]*traceBlock
	next      [2]int64 // next block id per twin
	unindexed [2]bool  // the twin has more unsealed rows than Open indexes
	off       bool     // benchmarks: measure the write path without the index
	noTokens  bool     // benchmarks: blocks without the token bloom (tokenindex.go)
	noFold    bool     // tests: token blooms sealed at full size, as before foldTokenBloom
}

// newBlock is a new open block; the caller holds mu.
func (ix *traceIndex) newBlock() *traceBlock {
	b := newTraceBlock()
	if ix.noTokens {
		b.tokens = nil
	}
	b.noFold = ix.noFold
	return b
}

// indexTraces is the write path's one call: it adds the kept rows to the
// open block of twin and, when that block is full, writes it (bloom chunks,
// time range, and the twin's consumer offsets as its cover) in the open
// transaction on conn, after the batch's offsets. The returned func must
// run once that transaction committed: only then is the block sealed and a
// new one opened, so a rolled-back seal is written again by the next batch.
func (s *Store) indexTraces(ctx context.Context, conn driver.Conn, twin int, rows []Row, keep []bool) (committed func(), err error) {
	ix := &s.traces
	// A twin with rows no bloom covers (written before the index) is never
	// sealed: a seal would record every offset as covered, hiding those
	// rows from lookups after the next restart. Its lookups scan.
	if ix.off || ix.unindexed[twin] {
		return func() {}, nil
	}
	ix.mu.Lock()
	b := ix.open[twin]
	for i := range rows {
		if keep == nil || keep[i] {
			b.add(rows[i].Event.Time, rows[i].Event.TraceID, rows[i].Event.Message)
		}
	}
	full := b.rows >= TraceBlockRows
	var id int64
	if full {
		// Reserved now: a rolled-back seal leaves a gap, never a reuse.
		id = ix.next[twin]
		ix.next[twin]++
	}
	ix.mu.Unlock()
	if !full {
		return func() {}, nil
	}
	if _, err := writeTraceBlock(ctx, conn, id, b); err != nil {
		return nil, err
	}
	ex := conn.(driver.ExecerContext)
	if _, err := ex.ExecContext(ctx, `INSERT OR REPLACE INTO trace_cover SELECT topic, "partition", next_offset FROM consumer_offsets`, nil); err != nil {
		return nil, fmt.Errorf("record what trace block %d covers: %w", id, err)
	}
	return func() {
		ix.mu.Lock()
		ix.open[twin] = ix.newBlock()
		ix.mu.Unlock()
	}, nil
}

// indexTracesSealed is indexTraces for a write path whose rows do not go
// to the twin's events table (segment files, issue 12): the kept rows get
// a block of their own, sealed at once in the open transaction on conn
// (the writer's twin, where the caller commits the rows' offsets), so
// nothing of them is left to rebuild from the events table after a crash.
// Lookups restrict the events view by the block's time range, so the rows
// must be readable through it. Call it with one segment's rows (at most a
// few blocks' worth: the bloom is sized for TraceBlockRows).
func (s *Store) indexTracesSealed(ctx context.Context, conn driver.Conn, twin int, rows []Row, keep []bool) error {
	ix := &s.traces
	ix.mu.Lock()
	b := ix.newBlock()
	ix.mu.Unlock()
	for i := range rows {
		if keep == nil || keep[i] {
			b.add(rows[i].Event.Time, rows[i].Event.TraceID, rows[i].Event.Message)
		}
	}
	if b.rows == 0 {
		return nil
	}
	ix.mu.Lock()
	id := ix.next[twin]
	ix.next[twin]++
	ix.mu.Unlock()
	_, err := writeTraceBlock(ctx, conn, id, b)
	return err
}

// traceBlocksOf is the trace hook of the segment path (segment.go): the
// events of one segment's record (segmentSchema) get blocks of their own,
// TraceBlockRows each. It reads only the record, so the segment's writer
// builds them before it takes the store's write lock; writeTraceBlocks
// then seals them in the transaction that registers the segment, so a
// segment is never stored without its blocks. Nil when the index is off.
func (s *Store) traceBlocksOf(rec arrow.RecordBatch) ([]*traceBlock, error) {
	tsIdx := rec.Schema().FieldIndices("ts")
	idIdx := rec.Schema().FieldIndices("trace_id")
	msgIdx := rec.Schema().FieldIndices("message")
	if len(tsIdx) != 1 || len(idIdx) != 1 || len(msgIdx) != 1 {
		return nil, fmt.Errorf("index trace ids of a segment: its record has no ts, trace_id or message column")
	}
	ts, ok := rec.Column(tsIdx[0]).(*array.Timestamp)
	text := func(col arrow.Array) func(int) string {
		switch c := col.(type) {
		case *array.String:
			return c.Value
		case *array.Binary:
			return c.ValueString
		}
		ok = false
		return nil
	}
	idOf, msgOf := text(rec.Column(idIdx[0])), text(rec.Column(msgIdx[0]))
	if !ok {
		return nil, fmt.Errorf("index trace ids of a segment: ts is %T, trace_id %T, message %T", rec.Column(tsIdx[0]), rec.Column(idIdx[0]), rec.Column(msgIdx[0]))
	}
	n := int(rec.NumRows())
	ix := &s.traces
	ix.mu.Lock()
	off := ix.off
	ix.mu.Unlock()
	if off {
		return nil, nil
	}
	var blocks []*traceBlock
	for lo := 0; lo < n; lo += TraceBlockRows {
		ix.mu.Lock()
		b := ix.newBlock()
		ix.mu.Unlock()
		for i := lo; i < min(n, lo+TraceBlockRows); i++ {
			b.add(time.UnixMicro(int64(ts.Value(i))).UTC(), idOf(i), msgOf(i))
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// writeTraceBlocks seals blocks (traceBlocksOf) in the open transaction
// on conn, in twin, and returns how many index rows it added (what the
// twin holds in memory until its next checkpoint).
func (s *Store) writeTraceBlocks(ctx context.Context, conn driver.Conn, twin int, blocks []*traceBlock) (rows int64, err error) {
	ix := &s.traces
	for _, b := range blocks {
		ix.mu.Lock()
		id := ix.next[twin]
		ix.next[twin]++
		ix.mu.Unlock()
		n, err := writeTraceBlock(ctx, conn, id, b)
		rows += n
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// writeTraceBlock appends block id's range and non-empty bloom chunks in
// the open transaction on conn (the writer's current twin). The token
// bloom is folded to its block's size first (foldTokenBloom): a block of
// a few thousand events writes tens of rows, not tokenBloomChunks. A
// folded block is written with tokens = false, so a binary from before
// folding scans it rather than miss its words; this one knows it by its
// marker row (tokenindex.go). It returns the rows it appended: the
// range, and the bloom chunks that are not empty.
func writeTraceBlock(ctx context.Context, conn driver.Conn, id int64, b *traceBlock) (rows int64, err error) {
	var tokens []uint64
	n := 0
	switch {
	case b.tokens != nil && b.noFold:
		tokens, n = b.tokens, tokenBloomChunks
	case b.tokens != nil:
		tokens, n = foldTokenBloom(b.tokens)
	}
	ex := conn.(driver.ExecerContext)
	if _, err := ex.ExecContext(ctx, `INSERT INTO trace_blocks VALUES ($1, $2, $3, $4, $5)`, []driver.NamedValue{
		{Ordinal: 1, Value: id}, {Ordinal: 2, Value: b.tsMin.UTC()}, {Ordinal: 3, Value: b.tsMax.UTC()}, {Ordinal: 4, Value: int64(b.rows)},
		{Ordinal: 5, Value: n == tokenBloomChunks}}); err != nil {
		return 0, fmt.Errorf("write trace block %d: %w", id, err)
	}
	rows = 1
	if b.tokens != nil {
		base, marker := tokenChunkNumber(n, 0), n < tokenBloomChunks
		c, err := appendBloomChunks(conn, "token_bloom", id, tokens, base, marker)
		rows += c
		if err != nil {
			return rows, err
		}
	}
	c, err := appendBloomChunks(conn, "trace_bloom", id, b.bits, 0, false)
	return rows + c, err
}

// appendBloomChunks appends block id's non-empty 512-bit chunks of bloom
// (trace_bloom or token_bloom, same columns) in the open transaction on
// conn, chunk i as chunk number base+i; with marker, a row of chunk number
// tokenFoldedBase and no bits first (a folded token bloom, tokenindex.go).
// It returns the rows it appended.
func appendBloomChunks(conn driver.Conn, table string, id int64, bloom []uint64, base int, marker bool) (rows int64, err error) {
	app, err := duckdb.NewAppender(conn, "", "", table)
	if err != nil {
		return 0, fmt.Errorf("open %s appender: %w", table, err)
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flush %s of block %d: %w", table, id, cerr)
		}
	}()
	if marker {
		if err := app.AppendRow(id, int32(tokenFoldedBase), int64(0), int64(0), int64(0), int64(0),
			int64(0), int64(0), int64(0), int64(0)); err != nil {
			return rows, fmt.Errorf("append %s marker: %w", table, err)
		}
		rows++
	}
	for c := 0; c < len(bloom)/traceChunkWords; c++ {
		w := bloom[c*traceChunkWords : (c+1)*traceChunkWords]
		if !slices.ContainsFunc(w, func(w uint64) bool { return w != 0 }) {
			continue
		}
		if err := app.AppendRow(id, int32(base+c), int64(w[0]), int64(w[1]), int64(w[2]), int64(w[3]),
			int64(w[4]), int64(w[5]), int64(w[6]), int64(w[7])); err != nil {
			return rows, fmt.Errorf("append %s chunk: %w", table, err)
		}
		rows++
	}
	return rows, nil
}

// openTraceIndex loads the next block ids and rebuilds each twin's open
// block from the events its trace_cover does not cover.
func (s *Store) openTraceIndex(ctx context.Context) error {
	for i, twin := range twins {
		s.traces.open[i] = s.traces.newBlock()
		err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT coalesce(max(block) + 1, 0) FROM %s.main.trace_blocks`, twin)).Scan(&s.traces.next[i])
		if err != nil {
			return fmt.Errorf("read the trace index of %s: %w", twin, err)
		}
		if err := s.rebuildOpenTraceBlock(ctx, i); err != nil {
			return err
		}
	}
	if s.seg != nil {
		// Segments written before the index have no blocks: then searches
		// by trace id scan, rather than miss their events.
		var segRows, blockRows int64
		err := s.db.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum("rows"), 0) FROM memory.main.segments),
			(SELECT coalesce(sum("rows"), 0) FROM memory.main.trace_blocks)`).Scan(&segRows, &blockRows)
		if err != nil {
			return fmt.Errorf("compare segments with the trace index: %w", err)
		}
		if segRows > blockRows {
			s.traces.unindexed[0] = true
			s.opts.Logger.Warn("store: segments written before the trace index existed; searches by trace id scan every event")
		}
	}
	return nil
}

// rebuildOpenTraceBlock indexes the events of twin i above its cover: per
// partition the twin holds, the rows at or above the covered offset (all of
// them when none is covered), in offset order. The offset predicate lets
// DuckDB skip the row groups below it.
func (s *Store) rebuildOpenTraceBlock(ctx context.Context, i int) error {
	twin := twins[i]
	q := fmt.Sprintf(`SELECT o.topic, o."partition", c.next_offset FROM %[1]s.main.consumer_offsets o
		LEFT JOIN %[1]s.main.trace_cover c ON c.topic = o.topic AND c."partition" = o."partition"`, twin)
	type part struct {
		topic string
		p     int32
		from  sql.NullInt64
	}
	var parts []part
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("read the trace index cover of %s: %w", twin, err)
	}
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.topic, &p.p, &p.from); err != nil {
			rows.Close()
			return fmt.Errorf("read the trace index cover of %s: %w", twin, err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the trace index cover of %s: %w", twin, err)
	}
	b := s.traces.open[i]
	for _, p := range parts {
		from := int64(-1 << 63)
		if p.from.Valid {
			from = p.from.Int64
		}
		// Count first, stopping at the bound: a store from before the index
		// would otherwise sort all its rows at every start.
		var n int
		err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s.main.events
			WHERE topic = $1 AND "partition" = $2 AND "offset" >= $3 LIMIT $4)`, twin), p.topic, p.p, from, traceRebuildMax+1-b.rows).Scan(&n)
		if err != nil {
			return fmt.Errorf("rebuild the trace index of %s: %w", twin, err)
		}
		if b.rows+n > traceRebuildMax {
			s.traces.unindexed[i] = true
			s.opts.Logger.Warn("store: events written before the trace index existed; searches by trace id scan every event",
				"database", twin)
			return nil
		}
		q := fmt.Sprintf(`SELECT ts, trace_id, message FROM %s.main.events WHERE topic = $1 AND "partition" = $2 AND "offset" >= $3
			ORDER BY "offset" LIMIT $4`, twin)
		rows, err := s.db.QueryContext(ctx, q, p.topic, p.p, from, traceRebuildMax+1-b.rows)
		if err != nil {
			return fmt.Errorf("rebuild the trace index of %s: %w", twin, err)
		}
		for rows.Next() {
			var ts time.Time
			var id, msg string
			if err := rows.Scan(&ts, &id, &msg); err != nil {
				rows.Close()
				return fmt.Errorf("rebuild the trace index of %s: %w", twin, err)
			}
			b.add(ts, id, msg)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("rebuild the trace index of %s: %w", twin, err)
		}
		if b.rows > traceRebuildMax {
			s.traces.unindexed[i] = true
			s.opts.Logger.Warn("store: events written before the trace index existed; searches by trace id scan every event",
				"database", twin)
			return nil
		}
	}
	return nil
}

// tsRange is a closed range of event times; rows is how many events the
// index blocks it was made of hold (0 when not counted).
type tsRange struct {
	from, to time.Time
	rows     int64
}

// traceRanges returns the event-time ranges that may hold events of trace
// id, merged and sorted; indexed is false when the index cannot answer (a
// twin written before it existed), and the caller must scan everything.
func (s *Store) traceRanges(ctx context.Context, id string) (ranges []tsRange, indexed bool, err error) {
	k := traceKeyOf(id)
	ix := &s.traces
	// The open blocks first: a block sealed after this snapshot is in the
	// table by the time the query below runs, so nothing falls in between.
	ix.mu.Lock()
	for i := range twins {
		if ix.unindexed[i] {
			ix.mu.Unlock()
			return nil, false, nil
		}
		if b := ix.open[i]; b != nil && b.rows > 0 && k.has(b.chunk(k.chunk), traceBloomProbes) {
			ranges = append(ranges, tsRange{from: b.tsMin, to: b.tsMax, rows: int64(b.rows)})
		}
	}
	ix.mu.Unlock()
	// The bloom test runs in DuckDB: a block may hold the id when every
	// probe bit is set in its chunk, i.e. (w & mask) = mask for each word.
	var mask [traceChunkWords]uint64
	k.set(mask[:], traceBloomProbes)
	args := []any{int32(k.chunk)}
	var test strings.Builder
	for i, m := range mask {
		if m != 0 {
			args = append(args, int64(m))
			fmt.Fprintf(&test, " AND (b.w%d & $%d) = $%[2]d", i, len(args))
		}
	}
	var branches []string
	for _, twin := range twins {
		branches = append(branches, fmt.Sprintf(`SELECT k.ts_min, k.ts_max FROM %[1]s.main.trace_bloom b JOIN %[1]s.main.trace_blocks k ON k.block = b.block
			WHERE b.chunk = $1%[2]s`, twin, test.String()))
	}
	err = s.query(ctx, "trace_index", strings.Join(branches, " UNION ALL "), args, func(rows *sql.Rows) error {
		var r tsRange
		if err := rows.Scan(&r.from, &r.to); err != nil {
			return err
		}
		ranges = append(ranges, r)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return mergeRanges(ranges), true, nil
}

// mergeRanges sorts ranges and joins the ones that overlap.
func mergeRanges(rs []tsRange) []tsRange {
	slices.SortFunc(rs, func(a, b tsRange) int { return a.from.Compare(b.from) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && !r.from.After(out[n-1].to) {
			if r.to.After(out[n-1].to) {
				out[n-1].to = r.to
			}
			out[n-1].rows += r.rows
			continue
		}
		out = append(out, r)
	}
	return out
}

// rangeSource is the FROM source of an events query restricted to the
// ranges rs: one UNION ALL branch per range, each with w's conditions, so
// DuckDB's zone maps on ts skip in each (an OR of ranges is not pushed into
// the scan: a lookup with two ranges read every row, 4.4 s at 54M events),
// and each reading only the segment files of its range (eventsSource).
// The ranges are disjoint (mergeRanges), so no row is returned twice. It
// moves w's conditions into the branches and leaves w empty for the
// caller's further parameters.
func (s *Store) rangeSource(w *where, rs []tsRange) string {
	base := w.String()
	branches := make([]string, len(rs))
	for i, r := range rs {
		w.args = append(w.args, r.from.UTC(), r.to.UTC())
		n := len(w.args)
		and := " AND "
		if base == "" {
			and = " WHERE "
		}
		branches[i] = fmt.Sprintf("SELECT * FROM %s%s%sts BETWEEN $%d AND $%d", s.eventsSource(r.from, r.to.Add(time.Microsecond)), base, and, n-1, n)
	}
	w.conds = nil
	return "(" + strings.Join(branches, " UNION ALL ") + ")"
}

// expireTraceBlocks deletes the blocks whose events are all older than
// cutoff, in the retention transaction of one twin.
func expireTraceBlocks(exec exec, cutoff time.Time) error {
	if _, err := exec(`DELETE FROM trace_bloom WHERE block IN (SELECT block FROM trace_blocks WHERE ts_max < $1)`, cutoff); err != nil {
		return fmt.Errorf("delete trace blooms before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	if _, err := exec(`DELETE FROM token_bloom WHERE block IN (SELECT block FROM trace_blocks WHERE ts_max < $1)`, cutoff); err != nil {
		return fmt.Errorf("delete token blooms before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	if _, err := exec(`DELETE FROM trace_blocks WHERE ts_max < $1`, cutoff); err != nil {
		return fmt.Errorf("delete trace blocks before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return nil
}
