package store

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// Store formats, the values of Options.Format (--store-format).
const (
	// FormatTable stores events as rows of a DuckDB table, each batch in
	// its own transaction (the store since the first release).
	FormatTable = "table"
	// FormatParquet buffers events in memory and writes them as immutable
	// Parquet segment files that DuckDB reads; the offsets a segment covers
	// commit in the DuckDB transaction that registers it (segment.go).
	FormatParquet = "parquet"
	// FormatAuto is FormatParquet for a store with a data directory and
	// FormatTable for an in-memory one, which has nowhere to put files.
	FormatAuto = "auto"
	// DefaultFormat (--store-format) is FormatAuto: on two cores segments
	// store 376k events/s where the table stores ~165k, at 4.0 against
	// ~10 CPU µs per event, without the table's COMMIT stalls; the
	// Explore page's load is as fast (14 vs 11 ms at 10M events), filtered
	// scans 1-3x slower, attribute filters 6x (docs/BENCHMARKS.md, "The
	// default store format").
	// Options' zero Format stays FormatTable (tests and embedders that
	// write and read back at once, without a segment interval between).
	DefaultFormat = FormatAuto
)

// Formats lists the --store-format values, for help texts and errors.
var Formats = []string{FormatAuto, FormatTable, FormatParquet}

// resolveFormat is the format a store at path (empty: in memory) uses.
func resolveFormat(format, path string) string {
	switch format {
	case "":
		return FormatTable
	case FormatAuto:
		if path == "" {
			return FormatTable
		}
		return FormatParquet
	}
	return format
}

// Segment defaults (Options.SegmentRows, Options.SegmentInterval).
const (
	// DefaultSegmentRows is how many buffered events make a segment: one
	// Parquet row group. arrow-go encodes 100,000-300,000 events at
	// ~1.0-1.2 CPU µs each but 20,000 at ~1.4 (BenchmarkSegmentEncode),
	// and fewer, larger files are what DuckDB scans fastest.
	DefaultSegmentRows = 122880
	// DefaultSegmentInterval is the longest an event waits in the buffer
	// before its segment is written: the freshness bound (ingest to
	// queryable) is this plus one encode.
	DefaultSegmentInterval = 500 * time.Millisecond
	// segmentDirSuffix names the directory of segment files beside the
	// database file: wirelog.duckdb → wirelog.duckdb.segments/.
	segmentDirSuffix = ".segments"
)

// segmentCompression: snappy cost 1.0-1.2 CPU µs/event with 34 bytes per
// ~300-byte event on disk; zstd 1.4-1.9 µs for 11 bytes; lz4 about snappy's
// CPU for 29 bytes (BenchmarkSegmentEncode, docs/bench/store.md). Its
// blocks are encoded by s2 (segment_codec.go), measured against the other
// writer settings by BenchmarkSegmentEncodeProps.
var segmentCompression = compress.Codecs.Snappy

// segmentTable registers the segment files: a file is part of the store
// exactly when its row is committed here, in the same transaction as the
// consumer offsets it moves past, so exactly-once rests on DuckDB's commit
// as it does for table rows. Created in both twins; the view over them is
// what the store lists on Open.
const segmentTable = `CREATE TABLE IF NOT EXISTS segments (
	file VARCHAR NOT NULL,
	"rows" BIGINT NOT NULL,
	min_ts TIMESTAMP NOT NULL,
	max_ts TIMESTAMP NOT NULL,
	file_bytes BIGINT NOT NULL,
	created TIMESTAMP NOT NULL
)`

// segments is the store's state in FormatParquet (nil in FormatTable); all
// of it under writeMu.
type segments struct {
	// maxRowBytes is the largest event a segment takes (segmentRowLimit);
	// zero: no limit.
	maxRowBytes int64
	dir         string
	maxRows     int
	interval    time.Duration

	buf *segmentBuilder // events written but not yet in a file
	// nextRows and nextText size the next buffer from the last one (seal):
	// reserving maxRows of typical text for a buffer the interval seals at
	// 50,000 events held 2-3x the memory its events need, twice over
	// (filling and being written).
	nextRows int
	nextText segmentTextSizes
	bufSince time.Time // when the oldest buffered event was written
	// bufNext is each partition's next offset counting buffered events; a
	// replayed row below it is skipped. s.offsets stays what is durable.
	bufNext    map[offsetKey]int64
	bufRollups *segmentRollups // by buf's dictionary ids

	// inflight is the sealed buffer being written in the background
	// (nil: none); one at a time, so segments commit in order. closing
	// makes it give up after one failed try instead of retrying.
	inflight *sealedSegment
	closing  bool

	files   []segmentFile                      // registered, oldest first: what the events view reads
	durable map[transport.TopicPartition]int64 // advanced since the last Durable call
	doomed  []string                           // deregistered; deleted by the next retention run (queries may still read them)

	// onQueryable is told, after a segment became visible to queries, each
	// partition's offset below which every row is queryable (OnQueryable).
	onQueryable func(map[transport.TopicPartition]int64)

	stop, done  chan struct{}
	compactDone chan struct{} // compactLoop ended

	// listed is files as the events view reads them, for queries that
	// list only the files of their window (segment_query.go).
	listed atomic.Pointer[[]listedFile]
	// buffered is buf.n as of the last Write or seal, for the gauge: a
	// /metrics scrape must not wait for writeMu, which a segment's
	// registration and each buffered batch hold.
	buffered atomic.Int64

	compactions   prometheus.Counter
	flushes       prometheus.Counter
	flushErrors   prometheus.Counter
	flushSeconds  prometheus.Histogram
	fileBytes     prometheus.Counter
	bufferedRows  prometheus.GaugeFunc
	bufferBytes   prometheus.GaugeFunc
	segmentsGauge prometheus.GaugeFunc
}

type segmentFile struct {
	name         string
	rows         int64
	minTS, maxTS time.Time
	twin         int       // index in twins of the database that registered it
	created      time.Time // when it was registered
}

// openSegments prepares FormatParquet: the segments directory and table,
// the registered files (an unregistered file is what a crash between
// writing a segment and its commit leaves: deleted), the events view, and
// the loop that writes a buffer older than the interval.
func (s *Store) openSegments(ctx context.Context) error {
	if s.path == "" {
		return fmt.Errorf("--store-format %s needs a data directory (--data); an in-memory store has nowhere to put segment files", FormatParquet)
	}
	g := &segments{
		dir:         s.path + segmentDirSuffix,
		maxRows:     s.opts.SegmentRows,
		maxRowBytes: segmentRowLimit(s.opts.MemoryLimit),
		nextRows:    segmentReserveRows(s.opts.SegmentRows),
		nextText:    typicalTextSizes,
		interval:    s.opts.SegmentInterval,
		bufNext:     map[offsetKey]int64{},
		durable:     map[transport.TopicPartition]int64{},
		stop:        make(chan struct{}),
		done:        make(chan struct{}),

		compactDone: make(chan struct{}),
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return fmt.Errorf("create segment directory %s: %w", g.dir, err)
	}
	// Segment files never change once registered: keep their footers
	// (schema, row-group statistics) in memory instead of re-reading them
	// from every file at every query.
	if _, err := s.db.ExecContext(ctx, "SET parquet_metadata_cache = true"); err != nil {
		return fmt.Errorf("configure DuckDB for segment files: %w", err)
	}
	s.writeMu.Lock()
	err := s.ensureTable(ctx, "segments", segmentTable)
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT * FROM (SELECT 0 AS twin, file, "rows", min_ts, max_ts, created FROM %s.main.segments
		UNION ALL SELECT 1, file, "rows", min_ts, max_ts, created FROM %s.main.segments) ORDER BY min_ts, file`, twins[0], twins[1]))
	if err != nil {
		return fmt.Errorf("list segment files: %w", err)
	}
	registered := map[string]bool{}
	for rows.Next() {
		var f segmentFile
		if err := rows.Scan(&f.twin, &f.name, &f.rows, &f.minTS, &f.maxTS, &f.created); err != nil {
			rows.Close()
			return fmt.Errorf("list segment files: %w", err)
		}
		registered[f.name] = true
		if _, err := os.Stat(filepath.Join(g.dir, f.name)); err != nil {
			// The view would fail every query; leave it out, loudly.
			s.opts.Logger.Error("store: a registered segment file is missing; its events are not queryable (restore it from a backup of the data directory)",
				"file", filepath.Join(g.dir, f.name), "events", f.rows, "err", err)
			continue
		}
		g.files = append(g.files, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list segment files: %w", err)
	}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return fmt.Errorf("read segment directory %s: %w", g.dir, err)
	}
	for _, e := range entries {
		if !registered[e.Name()] {
			// Written but never committed (a crash before the registering
			// transaction), or deregistered by retention before a crash:
			// not part of the store. Its events, if any, are replayed.
			if err := os.Remove(filepath.Join(g.dir, e.Name())); err != nil {
				return fmt.Errorf("remove uncommitted segment %s: %w", e.Name(), err)
			}
			s.opts.Logger.Info("store: removed a segment file that was never committed", "file", e.Name())
		}
	}
	g.flushes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wirelog_store_segments_written_total",
		Help: "Parquet segment files written and registered (--store-format parquet).",
	})
	g.compactions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wirelog_store_segment_compactions_total",
		Help: "Merges of small segment files into one (errors count in wirelog_store_rollup_compaction_errors_total).",
	})
	g.flushErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wirelog_store_segment_errors_total",
		Help: "Segment writes that failed (see the log); the buffered events stay buffered and are written at the next try.",
	})
	g.flushSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wirelog_store_segment_write_seconds",
		Help:    "Time to encode, fsync and register one segment file; writes of the processor wait meanwhile.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	g.fileBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wirelog_store_segment_bytes_total",
		Help: "Bytes of segment files written.",
	})
	g.bufferedRows = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wirelog_store_segment_buffered_events",
		Help: "Events written to the store but not yet in a segment file (not yet queryable; replayed from the log after a crash).",
	}, func() float64 { return float64(g.buffered.Load()) })
	g.bufferBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wirelog_store_segment_buffer_bytes",
		Help: "Bytes mapped outside the Go heap for the segments being filled and written (reserved for a full segment: the part written to is in RSS, none of it in go_memstats).",
	}, func() float64 { return float64(segmentMapped.Load()) })
	g.segmentsGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wirelog_store_segment_files",
		Help: "Segment files the events view reads.",
	}, func() float64 {
		if l := g.listed.Load(); l != nil {
			return float64(len(*l))
		}
		return 0
	})
	s.writeMu.Lock()
	s.seg = g
	err = s.replaceEventsView(ctx)
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	go s.flushLoop(g)
	if s.opts.DisableMaintenance {
		close(g.compactDone)
	} else {
		go s.compactLoop(g)
	}
	return nil
}

// refuseSegments fails Open in FormatTable when the data directory holds
// segment files: the table format's events view would not read them, and
// their events would silently disappear from every answer.
func (s *Store) refuseSegments(ctx context.Context) error {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = 'segments' AND database_name IN (?, ?)`, twins[0], twins[1]).Scan(&n)
	if err != nil || n == 0 {
		return err
	}
	var events int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum("rows"), 0) FROM memory.main.segments`).Scan(&events); err != nil {
		return fmt.Errorf("read segments of %s: %w", s.path, err)
	}
	if events > 0 {
		return fmt.Errorf("%s holds %d events in Parquet segment files (%s%s): start with --store-format %s", s.path, events, s.path, segmentDirSuffix, FormatParquet)
	}
	return nil
}

func (s *Store) segmentCollectors() []prometheus.Collector {
	if s.seg == nil {
		return nil
	}
	g := s.seg
	return []prometheus.Collector{g.compactions, g.flushes, g.flushErrors, g.flushSeconds, g.fileBytes, g.bufferedRows, g.bufferBytes, g.segmentsGauge}
}

// flushLoop writes the buffer once its oldest event is older than the
// interval, for a processor that has stopped writing.
func (s *Store) flushLoop(g *segments) {
	defer close(g.done)
	t := time.NewTicker(max(g.interval/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			s.writeMu.Lock()
			if !s.closed && g.buf != nil && g.inflight == nil && time.Since(g.bufSince) >= g.interval {
				s.startFlush()
			}
			s.writeMu.Unlock()
		}
	}
}

// closeSegments stops the loop and writes what is buffered (Close; the
// caller holds writeMu). A failure is logged: the events are replayed from
// the log on the next start.
func (s *Store) closeSegments() {
	g := s.seg
	if g == nil {
		return
	}
	close(g.stop)
	s.writeMu.Unlock()
	<-g.done
	<-g.compactDone
	s.writeMu.Lock()
	g.closing = true
	if err := s.flushSegment(context.Background()); err != nil {
		s.opts.Logger.Error("store: writing the last segment at shutdown failed; its events are replayed from the log on restart", "err", err)
	}
}

// writeSegmented is Write in FormatParquet (the caller holds writeMu): the
// new rows go to the buffer, which becomes a segment file when it holds
// SegmentRows events or its oldest is SegmentInterval old. Write returns
// before the rows are durable: Durable reports them once their segment is
// committed, and the processor commits log offsets only then (the store is
// a storage.Deferred). When the buffer is due while the previous segment
// is still being written (or retried after an error), Write waits for it:
// memory stays bounded at two buffers, and the processor stops reading.
func (s *Store) writeSegmented(ctx context.Context, rows []Row) (int, error) {
	g := s.seg
	start := time.Now()
	if g.maxRowBytes > 0 {
		// Refused before anything is buffered: the batch fails whole, and
		// the processor's split sends this one row to the dead letters.
		for i := range rows {
			if n := segmentRowBytes(&rows[i]); n > g.maxRowBytes {
				r := &rows[i]
				return 0, fmt.Errorf("event %s/%d/%d is %d bytes, over the %d bytes one event of a segment file may take with --store-memory %s "+
					"(a quarter of it, so every query can still read the file): raise --store-memory, or lower --max-line-bytes and --max-attributes",
					r.Topic, r.Partition, r.Offset, n, g.maxRowBytes, s.opts.MemoryLimit)
			}
		}
	}
	stored := 0
	// The rows of a batch come from few partitions, in runs: the next
	// offset of the run's partition is looked up once per run, not per row
	// (a map lookup hashes the topic).
	var (
		k     offsetKey
		next  int64
		inRun bool
		moved bool
	)
	for i := range rows {
		r := &rows[i]
		if !inRun || r.Partition != k.partition || r.Topic != k.topic {
			if moved {
				g.bufNext[k] = next
			}
			k, inRun, moved = offsetKey{r.Topic, r.Partition}, true, false
			var ok bool
			if next, ok = g.bufNext[k]; !ok {
				if next, ok = s.offsets[k]; !ok {
					next = -1 << 63
				}
			}
		}
		if r.Offset < next {
			continue
		}
		next, moved = r.Offset+1, true
		if g.buf == nil {
			g.buf = newSegmentBuilderSized(g.nextRows, g.nextText)
			g.bufSince = time.Now()
			g.bufRollups = newSegmentRollups()
		}
		service, tenant := g.buf.add(r)
		// Keyed by the builder's dictionary ids: the strings are hashed
		// once, by the dictionary, not again here (seal names them).
		g.bufRollups.add(segmentRollupKey{r.Event.Time.Unix(), service, tenant, r.Event.Level}, int64(r.Bytes))
		stored++
	}
	if moved {
		g.bufNext[k] = next
	}
	s.metrics.rowsSkipped.Add(float64(len(rows) - stored))
	if stored > 0 {
		s.metrics.rowsWritten.Add(float64(stored))
		s.metrics.batchRows.Observe(float64(stored))
	}
	if g.buf != nil && (g.buf.n >= g.maxRows || time.Since(g.bufSince) >= g.interval) {
		// Waits only while the previous segment is still being written:
		// at most two buffers of events are in memory.
		s.startFlush()
		if s.closed {
			return stored, ErrClosed
		}
	}
	if g.buf != nil {
		g.buffered.Store(int64(g.buf.n))
	}
	s.metrics.writeSeconds.Observe(time.Since(start).Seconds())
	return stored, nil
}

// segmentRollupKey is a rollup row's key in the buffer: service and tenant
// are indices in the buffer's dictionaries of those columns.
type segmentRollupKey struct {
	sec             int64
	service, tenant int32
	level           event.Level
}

// segmentRollups sums the buffer's events per segmentRollupKey, one lookup
// per event: a key packs into a uint64 (the second relative to the
// buffer's first, the two dictionary ids, the level), whose map hashes
// one word and which indexes the sums, instead of hashing a 24-byte struct
// twice (read, then write back). A key that does not pack (an event
// months away from the buffer's first, over a million services or 4,096
// tenants in one buffer) goes to a plain map.
type segmentRollups struct {
	base  int64 // the first event's second; packed keys hold sec - base
	ids   map[uint64]int32
	keys  []segmentRollupKey
	aggs  []rollupAgg
	other map[segmentRollupKey]rollupAgg
}

// Bits of a packed key, low to high: level, tenant id, service id, second.
const (
	rollupTenantBits  = 12
	rollupServiceBits = 20
	rollupSecBits     = 64 - 8 - rollupTenantBits - rollupServiceBits
)

func newSegmentRollups() *segmentRollups {
	return &segmentRollups{base: math.MinInt64, ids: make(map[uint64]int32, 256)}
}

func (r *segmentRollups) add(k segmentRollupKey, size int64) {
	if r.base == math.MinInt64 {
		r.base = k.sec
	}
	d := k.sec - r.base + 1<<(rollupSecBits-1)
	if d < 0 || d >= 1<<rollupSecBits || k.service < 0 || k.service >= 1<<rollupServiceBits || k.tenant < 0 || k.tenant >= 1<<rollupTenantBits {
		if r.other == nil {
			r.other = map[segmentRollupKey]rollupAgg{}
		}
		a := r.other[k]
		a.count++
		a.bytes += size
		r.other[k] = a
		return
	}
	p := uint64(d)<<(64-rollupSecBits) | uint64(k.service)<<(8+rollupTenantBits) | uint64(k.tenant)<<8 | uint64(k.level)
	i, ok := r.ids[p]
	if !ok {
		i = int32(len(r.aggs))
		r.ids[p] = i
		r.keys = append(r.keys, k)
		r.aggs = append(r.aggs, rollupAgg{})
	}
	r.aggs[i].count++
	r.aggs[i].bytes += size
}

func (r *segmentRollups) len() int { return len(r.aggs) + len(r.other) }

func (r *segmentRollups) each(fn func(segmentRollupKey, rollupAgg)) {
	for i, k := range r.keys {
		fn(k, r.aggs[i])
	}
	for k, a := range r.other {
		fn(k, a)
	}
}

// sealedSegment is a buffer taken out of Write's way to become a file.
type sealedSegment struct {
	b       *segmentBuilder // frozen: b.rec is the record
	rollups map[rollupKey]rollupAgg
	next    map[offsetKey]int64 // each partition's next offset once this segment is committed
	done    chan struct{}       // closed when written, or given up at shutdown
	err     error               // the last try's error
	// discarded: its events were dropped (DiscardUnwritten, partitions
	// handed to another processor); it must never be committed.
	discarded bool
}

// seal takes the buffer for a segment (the caller holds writeMu); nil when
// it is empty.
func (s *Store) seal() *sealedSegment {
	g := s.seg
	if g.buf == nil || g.buf.n == 0 {
		return nil
	}
	g.nextRows, g.nextText = g.buf.sizeNext(g.maxRows)
	g.buf.freeze()
	rollups := make(map[rollupKey]rollupAgg, g.bufRollups.len())
	g.bufRollups.each(func(k segmentRollupKey, a rollupAgg) {
		// Two ids can name one string (invalid UTF-8 repaired alike): sum.
		rk := rollupKey{k.sec, g.buf.service.values[k.service], k.level, g.buf.tenant.values[k.tenant]}
		sum := rollups[rk]
		sum.count += a.count
		sum.bytes += a.bytes
		rollups[rk] = sum
	})
	f := &sealedSegment{b: g.buf, rollups: rollups, next: make(map[offsetKey]int64, len(g.bufNext)), done: make(chan struct{})}
	for k, n := range g.bufNext {
		f.next[k] = n
	}
	g.buf, g.bufRollups = nil, nil
	g.buffered.Store(0)
	return f
}

// waitInflight waits for the segment being written in the background (the
// caller holds writeMu, which is released meanwhile: the writer needs it to
// commit).
func (s *Store) waitInflight() *sealedSegment {
	g := s.seg
	var last *sealedSegment
	for g.inflight != nil {
		f := g.inflight
		s.writeMu.Unlock()
		<-f.done
		s.writeMu.Lock()
		last = f
	}
	return last
}

// startFlush seals the buffer and writes it in the background, after the
// previous segment (the caller holds writeMu). Encoding, the one CPU-heavy
// step, then overlaps the processor's decoding of the next batches.
func (s *Store) startFlush() {
	g := s.seg
	s.waitInflight()
	f := s.seal()
	if f == nil {
		return
	}
	g.inflight = f
	go s.writeInBackground(f, false)
}

// writeInBackground writes f until it is stored, retrying every second (a
// full disk, a DuckDB error); at shutdown it tries once more and gives up:
// the events are replayed from the log on restart.
func (s *Store) writeInBackground(f *sealedSegment, failed bool) {
	g := s.seg
	for {
		if failed {
			select {
			case <-g.stop:
			case <-time.After(time.Second):
			}
		}
		failed = true
		err := s.writeSealed(context.Background(), f, false)
		s.writeMu.Lock()
		f.err = err
		if err == nil || g.closing || f.discarded {
			if err != nil {
				f.b.release()
			}
			g.inflight = nil
			close(f.done)
			s.writeMu.Unlock()
			return
		}
		s.writeMu.Unlock()
		s.opts.Logger.Error("store: writing a segment failed; retrying in a second (its events stay buffered, the log keeps them)", "events", f.b.n, "err", err)
	}
}

// flushSegment writes everything buffered as segments and waits for them
// (the caller holds writeMu): Close, FlushSegments, dead letters. It
// returns the error of the last try when a segment could not be written;
// that segment is then retried in the background (but not at shutdown).
func (s *Store) flushSegment(ctx context.Context) error {
	g := s.seg
	if last := s.waitInflight(); last != nil && last.err != nil && !last.discarded && !g.closing {
		return last.err
	}
	f := s.seal()
	if f == nil {
		return nil
	}
	if err := s.writeSealed(ctx, f, true); err != nil {
		f.err = err
		if g.closing {
			f.b.release()
			return err
		}
		g.inflight = f
		go s.writeInBackground(f, true)
		return err
	}
	return nil
}

// writeSealed writes one segment; locked says whether the caller holds
// writeMu (else it is taken for the commit only):
//  1. encode it as Parquet to a new file in the segments directory, fsync
//     the file and the directory (without the lock: Write goes on);
//  2. one transaction in the active twin: the segments row, the segment's
//     partial rollups and every partition's next offset; COMMIT;
//  3. the events view now reads the file.
//
// A crash before 2 leaves an unregistered file, which Open deletes (its
// events are replayed from the log, whose offsets did not move); after 2
// the file is complete and durable. On error nothing is registered and f
// can be tried again.
func (s *Store) writeSealed(ctx context.Context, f *sealedSegment, locked bool) (err error) {
	g := s.seg
	start := time.Now()
	defer func() {
		if err != nil && !errors.Is(err, errSegmentDiscarded) {
			g.flushErrors.Inc()
		}
	}()
	name := fmt.Sprintf("%d.parquet", time.Now().UnixNano())
	path := filepath.Join(g.dir, name)
	size, err := writeSegmentFile(path, f.b.rec)
	if err != nil {
		os.Remove(path)
		return err
	}
	// Built before the lock: the processor's writes go on meanwhile.
	blocks, err := s.traceBlocksOf(f.b.rec) // traceindex.go
	if err != nil {
		os.Remove(path)
		return err
	}
	if !locked {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	if f.discarded {
		os.Remove(path)
		return errSegmentDiscarded
	}
	file := segmentFile{name: name, rows: int64(f.b.n), minTS: time.UnixMicro(f.b.minTS).UTC(), maxTS: time.UnixMicro(f.b.maxTS).UTC(),
		twin: s.active, created: time.Now().UTC()}
	next := make(map[offsetKey]int64, len(f.next))
	for k, n := range f.next {
		if cur, ok := s.offsets[k]; !ok || n > cur {
			next[k] = n
		}
	}
	var indexRows int64 // the trace and token index rows the transaction adds
	err = s.withWriter(func(conn driver.Conn) (err error) {
		ex := conn.(driver.ExecerContext)
		if _, err := ex.ExecContext(ctx, "BEGIN TRANSACTION", nil); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer func() {
			if err != nil {
				if _, rbErr := ex.ExecContext(context.Background(), "ROLLBACK", nil); rbErr != nil {
					err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
				}
			}
		}()
		if _, err := ex.ExecContext(ctx, `INSERT INTO segments VALUES ($1, $2, $3, $4, $5, $6)`, []driver.NamedValue{
			{Ordinal: 1, Value: name}, {Ordinal: 2, Value: file.rows}, {Ordinal: 3, Value: file.minTS}, {Ordinal: 4, Value: file.maxTS},
			{Ordinal: 5, Value: size}, {Ordinal: 6, Value: file.created}}); err != nil {
			return fmt.Errorf("register segment %s: %w", name, err)
		}
		if err := appendRollups(conn, f.rollups); err != nil {
			return err
		}
		for k, n := range next {
			if _, err := ex.ExecContext(ctx, `INSERT INTO consumer_offsets VALUES ($1, $2, $3)
				ON CONFLICT DO UPDATE SET next_offset = greatest(next_offset, excluded.next_offset)`,
				[]driver.NamedValue{{Ordinal: 1, Value: k.topic}, {Ordinal: 2, Value: int64(k.partition)}, {Ordinal: 3, Value: n}}); err != nil {
				return fmt.Errorf("advance offset of %s/%d to %d: %w", k.topic, k.partition, n, err)
			}
		}
		if indexRows, err = s.writeTraceBlocks(ctx, conn, s.active, blocks); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			if err := s.beforeCommit(conn); err != nil {
				return err
			}
		}
		if _, err := ex.ExecContext(ctx, "COMMIT", nil); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path) // never registered: not part of the store
		return fmt.Errorf("store segment of %d events: %w", file.rows, err)
	}
	for k, n := range next {
		s.offsets[k] = n
		g.durable[transport.TopicPartition{Topic: k.topic, Partition: k.partition}] = n
	}
	for k := range f.rollups {
		s.dirty[s.active][minuteOf(k.sec)] = struct{}{}
	}
	// What this transaction added to the twin's DuckDB tables, which stay in
	// memory (and in its WAL) until the twin is checkpointed: the segments
	// row, the rollups, and each trace block's range and the bloom chunk
	// rows it really appended (up to traceBloomChunks a trace bloom; a token
	// bloom is folded to its block's size, tokenindex.go). The events
	// themselves are in the file. Counting only the rollups made a
	// checkpoint due every CheckpointInterval (5 min) alone, while the bloom
	// rows grew DuckDB's IN_MEMORY_TABLE by ~12 MB a minute at 120k events/s
	// and RSS with it (docs/OPERATIONS.md, "Memory"); counting every block
	// at its unfolded size made checkpoints ~30x more frequent than the
	// rows folded blooms write.
	s.uncheckpointed += int64(len(f.rollups)) + 1 + indexRows
	f.b.release()
	g.files = append(g.files, file)
	if err := s.replaceEventsView(ctx); err != nil {
		// Committed and durable; queries see it once a view update works.
		s.opts.Logger.Error("store: a segment is stored but the events view could not be updated; retrying at the next segment", "err", err)
	} else if g.onQueryable != nil {
		q := make(map[transport.TopicPartition]int64, len(s.offsets))
		for k, n := range s.offsets {
			q[transport.TopicPartition{Topic: k.topic, Partition: k.partition}] = n
		}
		g.onQueryable(q)
	}
	g.flushes.Inc()
	g.fileBytes.Add(float64(size))
	g.flushSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// writeSegmentFile encodes b into a new file at path and makes the file
// and its directory entry durable. It returns the file's size.
func writeSegmentFile(path string, rec arrow.RecordBatch) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("create segment file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := encodeRecordWith(w, rec, segmentProps()); err != nil {
		return 0, fmt.Errorf("write segment %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write segment %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync segment %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat segment %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// replaceEventsView points the events view (in the instance's catalog,
// where every query runs) at both twins' events tables and every
// registered segment file, listed by name: no glob, so a file being written
// or left by a crash is never read. The caller holds writeMu.
func (s *Store) replaceEventsView(ctx context.Context) error {
	var q strings.Builder
	fmt.Fprintf(&q, `CREATE OR REPLACE VIEW memory.main.events AS SELECT * FROM %[1]s.main.events UNION ALL SELECT * FROM %[2]s.main.events`, twins[0], twins[1])
	if len(s.seg.files) > 0 {
		q.WriteString(` UNION ALL SELECT ` + segmentColumns + ` FROM read_parquet([`)
		for i, f := range s.seg.files {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("'" + sqlString(filepath.Join(s.seg.dir, f.name)) + "'")
		}
		q.WriteString(`])`)
	}
	return s.withWriter(func(conn driver.Conn) error {
		if _, err := conn.(driver.ExecerContext).ExecContext(ctx, q.String(), nil); err != nil {
			return fmt.Errorf("update the events view: %w", err)
		}
		s.seg.listFiles() // segment_query.go
		return nil
	})
}

// expireSegments drops the segments whose newest event is older than
// cutoff, whole (EnforceRetention; the caller holds writeMu): deregistered
// in each twin, left out of the view, and deleted at the next run, when
// no query that started before can still be reading them. A segment with
// any newer event stays until that one expires too.
func (s *Store) expireSegments(ctx context.Context, cutoff time.Time) (int64, error) {
	g := s.seg
	if g == nil {
		return 0, nil
	}
	for _, name := range g.doomed {
		if err := os.Remove(filepath.Join(g.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.opts.Logger.Warn("store: removing an expired segment file failed; retrying at the next run", "file", name, "err", err)
			continue
		}
	}
	g.doomed = g.doomed[:0]
	var expired []segmentFile
	for _, f := range g.files {
		if f.maxTS.Before(cutoff) {
			expired = append(expired, f)
		}
	}
	if len(expired) == 0 {
		return 0, nil
	}
	err := s.eachTwin(ctx, func(exec exec) error {
		_, err := exec(`DELETE FROM segments WHERE max_ts < $1`, cutoff)
		return err
	}, nil)
	if err != nil {
		return 0, fmt.Errorf("deregister expired segments: %w", err)
	}
	// A twin skipped while it is checkpointed keeps its registrations until
	// the next run: drop from the view only what is gone from the table.
	left := map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT file FROM memory.main.segments WHERE max_ts < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("list expired segments: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err == nil {
			left[name] = true
		}
	}
	rows.Close()
	var n int64
	kept := g.files[:0]
	for _, f := range g.files {
		if f.maxTS.Before(cutoff) && !left[f.name] {
			g.doomed = append(g.doomed, f.name)
			n += f.rows
			continue
		}
		kept = append(kept, f)
	}
	g.files = kept
	sort.Slice(g.files, func(i, j int) bool { return g.files[i].minTS.Before(g.files[j].minTS) })
	if err := s.replaceEventsView(ctx); err != nil {
		return n, err
	}
	return n, nil
}

// DeferredWrites reports whether Write returns before rows are durable
// (FormatParquet buffers them): the processor then commits log offsets as
// Durable reports them (storage.AsDeferred).
func (s *Store) DeferredWrites() bool { return s.seg != nil }

// Durable returns, per partition, the next offset below which every row is
// in a committed segment, for the partitions that advanced since the last
// call (storage.Deferred). The table format reports nothing: its Write is
// durable on return.
func (s *Store) Durable() map[transport.TopicPartition]int64 {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seg == nil || len(s.seg.durable) == 0 {
		return nil
	}
	out := s.seg.durable
	s.seg.durable = map[transport.TopicPartition]int64{}
	return out
}

// OnQueryable has fn called each time a segment became visible to queries,
// with every partition's offset below which all rows written are queryable
// (process.QueryableNotifier: the processor measures ingest → queryable
// with it). The table format never calls it: its rows are queryable when
// Write returns. fn runs with the store's write lock held and must not call
// the store.
func (s *Store) OnQueryable(fn func(next map[transport.TopicPartition]int64)) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seg != nil {
		s.seg.onQueryable = fn
	}
}

// Lost is always empty: a segment, once committed, is not lost by the
// store (storage.Deferred). Buffered rows lost in a crash were never
// reported durable, and the consumer resumes before them (NextOffset).
func (s *Store) Lost() map[transport.TopicPartition]int64 { return nil }

// Forget drops the durable reports of partitions this processor no longer
// owns (storage.Deferred). Their buffered rows are still written here: the
// DuckDB store is this processor's own, and its NextOffset stays right for
// them.
func (s *Store) Forget(tps []transport.TopicPartition) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.seg == nil {
		return
	}
	for _, tp := range tps {
		delete(s.seg.durable, tp)
	}
}

// FlushSegments writes the buffered events as a segment now (tests,
// benchmarks, and a dead letter that must not move an offset past them).
func (s *Store) FlushSegments(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.seg == nil {
		return nil
	}
	return s.flushSegment(ctx)
}

// segmentRowLimit is the largest event a segment file takes under DuckDB's
// memory_limit (--store-memory): a quarter of it. The table format's
// INSERT fails on a row DuckDB cannot hold, and the processor dead-letters
// it; a segment file is written in Go, so without this limit such a row
// would be stored and every later query over its file would fail for want
// of memory. Zero when the limit cannot be read (then there is none).
func segmentRowLimit(memoryLimit string) int64 {
	n, err := parseDuckDBSize(memoryLimit)
	if err != nil || n <= 0 {
		return 0
	}
	return n / 4
}

// segmentRowBytes is what an event takes in a segment row: its text
// columns (attrs and message dominate).
func segmentRowBytes(r *Row) int64 {
	e := &r.Event
	return int64(len(e.Message) + len(e.Attrs) + len(e.Service) + len(e.Host) + len(e.TraceID) + len(e.SpanID) + len(e.Tenant) + len(r.Topic))
}

// parseDuckDBSize reads a size as DuckDB's memory_limit takes it: a number
// and a unit (B, KB, MB, GB, TB powers of 1000; KiB, MiB, GiB, TiB of 1024),
// case-insensitive, with optional spaces.
func parseDuckDBSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", v, err)
	}
	units := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	mult, ok := units[strings.ToLower(strings.TrimSpace(v[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit", v)
	}
	return int64(num * mult), nil
}
