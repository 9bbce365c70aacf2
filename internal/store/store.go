// Package store keeps wirelog's events, per-second rollups and the consumed
// log offsets in an embedded DuckDB database, and answers the queries of the
// HTTP API (stats, rollups, search).
//
// One writer (the processor) calls Write with a batch of records; the rows,
// the partial rollups of the batch and the next offset of every partition in
// the batch are committed in one DuckDB transaction. The store, not the log,
// is therefore the source of truth for where to resume: a replay after a crash
// skips what is already stored and never double-counts.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/wirelog/wirelog/internal/event"
)

// Defaults. Every zero field of Options takes the value here.
const (
	// DefaultRetention is how long events and rollups are kept (by event time).
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultRetentionInterval is how often expired events are deleted.
	DefaultRetentionInterval = time.Minute
	// DefaultCompactInterval is how often the partial rollup rows that each
	// batch appends are summed into one row per (second, service, level,
	// tenant).
	// Queries are correct without it; it keeps the rollups table small.
	DefaultCompactInterval = 30 * time.Second
	// DefaultMemoryLimit caps DuckDB's buffer pool; larger sorts and
	// aggregations spill to the temp directory beside the database file.
	// wirelog aims for well under 300 MB RSS in total on one machine.
	DefaultMemoryLimit = "256MB"
	// DefaultCheckpointThreshold is DuckDB's checkpoint_threshold: how much
	// WAL accumulates before DuckDB folds it into the database file by
	// itself, inside the COMMIT that crosses it. That inline checkpoint is
	// what stalled the writer for 2-4 s every ~25 s at 60k events/s
	// (docs/bench/store.md), so the store checkpoints on its own schedule
	// (DefaultCheckpointRows) and this is only the backstop for a caller
	// that never calls Checkpoint. Every checkpoint recompresses the
	// table's last, partly filled row group, so DuckDB's 16MB default costs
	// 2.4x the CPU per stored event; a larger WAL costs a longer replay on
	// restart.
	DefaultCheckpointThreshold = "256MB"
	// DefaultCheckpointRows is how many stored events make a checkpoint due
	// (CheckpointDue): one DuckDB row group (122,880 rows). Checkpointing
	// whole row groups costs the same CPU per event as DuckDB's 256MB
	// threshold, while every 10,000 rows costs 2.1x and every 40,000 1.5x
	// (each checkpoint recompresses the partly filled last row group); one
	// row group is also what bounds the pause: a checkpoint's time grows
	// with the rows it folds in (docs/bench/store.md).
	DefaultCheckpointRows = 122880
	// DefaultCheckpointInterval makes a checkpoint due when anything was
	// written and the last one is older than this, so a slow trickle of
	// events does not leave a large WAL to replay after a crash.
	DefaultCheckpointInterval = 5 * time.Minute
	// checkpointPoll is how often the maintenance loop asks CheckpointDue,
	// for a store that stopped receiving batches.
	checkpointPoll = 5 * time.Second
	// DefaultThreads is DuckDB's thread count. One thread: with two, DuckDB
	// hands every batch insert to a worker thread and waits for it, which
	// costs 1.7x the CPU per stored event on the Arrow path (1.2x on the
	// Appender path), and on a 2-core machine that ingest keeps busy the
	// second thread did not make queries faster either (docs/bench/store.md).
	DefaultThreads = 1
	// DefaultQueryTimeout bounds every query method (Stats, Rollups, Search).
	DefaultQueryTimeout = 30 * time.Second
	// DefaultMaxReaders is how many queries run at once; more wait for a slot.
	DefaultMaxReaders = 4
	// DefaultSearchLimit and MaxSearchLimit bound the events one Search returns.
	DefaultSearchLimit = 100
	MaxSearchLimit     = 10000
	// MaxRollupBuckets bounds (to-from)/step of one Rollups request.
	MaxRollupBuckets = 10000
)

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrClosed means the store was closed; nothing more can be written or read.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidRequest means a query request has a bad field (bad window,
	// limit out of range, unknown dimension). The message names the field.
	// The HTTP API answers it with 400.
	ErrInvalidRequest = errors.New("store: invalid request")
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Retention is how long events are kept, by event time. Zero means
	// DefaultRetention; a negative value keeps everything.
	Retention time.Duration
	// RetentionInterval is how often retention runs (zero: default).
	RetentionInterval time.Duration
	// CompactInterval is how often rollups are compacted (zero: default).
	CompactInterval time.Duration
	// MemoryLimit is DuckDB's memory_limit ("256MB", "1GB"); "" = default.
	MemoryLimit string
	// CheckpointThreshold is DuckDB's checkpoint_threshold; "" = default.
	CheckpointThreshold string
	// CheckpointRows is how many stored rows make a checkpoint due; zero
	// means DefaultCheckpointRows, a negative value never makes one due
	// (DuckDB then checkpoints inside the COMMIT that passes
	// CheckpointThreshold, as before the twin files).
	CheckpointRows int64
	// CheckpointInterval makes a checkpoint due when rows were stored and
	// the last checkpoint is older (zero: default).
	CheckpointInterval time.Duration
	// Threads is DuckDB's thread count; 0 means DefaultThreads, a negative
	// value lets DuckDB use every core (faster full scans on an idle machine).
	Threads int
	// QueryTimeout bounds each query method (zero: default).
	QueryTimeout time.Duration
	// MaxReaders is how many queries run at once (zero: default).
	MaxReaders int
	// Logger receives maintenance errors; nil means slog.Default().
	Logger *slog.Logger
	// Format is how events are kept: FormatTable (also ""), FormatParquet
	// (segment files, segment.go) or FormatAuto (parquet with a data
	// directory, table in memory; `run`'s DefaultFormat).
	Format string
	// SegmentRows and SegmentInterval bound the events FormatParquet
	// buffers before writing a segment (zero: DefaultSegmentRows,
	// DefaultSegmentInterval).
	SegmentRows     int
	SegmentInterval time.Duration
	// DisableMaintenance turns off the background retention and compaction
	// loop; the caller then runs EnforceRetention and Compact itself.
	DisableMaintenance bool
}

func (o *Options) setDefaults() {
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = DefaultRetentionInterval
	}
	if o.CompactInterval <= 0 {
		o.CompactInterval = DefaultCompactInterval
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.CheckpointThreshold == "" {
		o.CheckpointThreshold = DefaultCheckpointThreshold
	}
	if o.CheckpointRows == 0 {
		o.CheckpointRows = DefaultCheckpointRows
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.Threads == 0 {
		o.Threads = DefaultThreads
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = DefaultMaxReaders
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SegmentRows <= 0 {
		o.SegmentRows = DefaultSegmentRows
	}
	if o.SegmentInterval <= 0 {
		o.SegmentInterval = DefaultSegmentInterval
	}
}

// levelEnum is the column type of levels: one byte per row, and the append
// path skips the string copy, UTF-8 check and statistics of a VARCHAR.
var levelEnum = func() string {
	names := make([]string, 0, 8)
	for l := event.LevelUnknown; l <= event.LevelFatal; l++ {
		names = append(names, "'"+l.String()+"'")
	}
	return "ENUM(" + strings.Join(names, ", ") + ")"
}()

// schema is applied on every Open; each statement is idempotent.
//
// events keeps every field of an event plus where it came from (topic,
// partition, offset) and its size in bytes. rollups holds per-second counts:
// each Write appends one partial row per (second, service, level) of its
// batch, Compact sums them, and queries always aggregate with SUM, so the
// table is correct before and after compaction. Rollups are keyed by
// (second, service, level, tenant). consumer_offsets holds the
// next offset to read per partition, written in the same transaction as the
// rows.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS events (
		topic VARCHAR NOT NULL,
		"partition" INTEGER NOT NULL,
		"offset" BIGINT NOT NULL,
		ts TIMESTAMP NOT NULL,
		service VARCHAR NOT NULL,
		level ` + levelEnum + ` NOT NULL,
		message VARCHAR NOT NULL,
		host VARCHAR NOT NULL,
		trace_id VARCHAR NOT NULL,
		span_id VARCHAR NOT NULL,
		tenant VARCHAR NOT NULL,
		attrs JSON,
		bytes INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS rollups (
		sec BIGINT NOT NULL,
		service VARCHAR NOT NULL,
		level ` + levelEnum + ` NOT NULL,
		count BIGINT NOT NULL,
		bytes BIGINT NOT NULL
	)`,
	// Tenants came after the first release: a rollups table created before
	// them gets the column here, its rows the tenant '' (events without a
	// token). New tables take the same path, so the column order (which the
	// rollups Appender follows) is the same in every database.
	`ALTER TABLE rollups ADD COLUMN IF NOT EXISTS tenant VARCHAR DEFAULT ''`,
	`CREATE TABLE IF NOT EXISTS consumer_offsets (
		topic VARCHAR NOT NULL,
		"partition" INTEGER NOT NULL,
		next_offset BIGINT NOT NULL,
		PRIMARY KEY (topic, "partition")
	)`,
}

// Store is an open DuckDB database holding wirelog's events.
// All methods are safe for concurrent use; writes are serialised.
type Store struct {
	opts      Options
	connector *duckdb.Connector
	db        *sql.DB
	readers   chan struct{} // query slots
	metrics   *metrics
	isClosed  atomic.Bool // set by Close, read by queries without the write lock

	writeMu sync.Mutex // serialises Write, Compact, EnforceRetention
	wconn   *sql.Conn  // the one connection that writes, USE'd to the active twin
	active  int        // index in twins of the twin being written
	offsets map[offsetKey]int64
	dirty   [2]map[int64]struct{} // per twin: minutes (unix/60) that got partial rollup rows since its last Compact
	closed  bool
	// checkpointing is the twin a background checkpoint is folding
	// (-1: none), on ckconn; ckDone is closed when it ends. Under writeMu.
	checkpointing int
	ckconn        *sql.Conn
	ckDone        chan struct{}
	tables        map[string]bool // tables ensureTable made in both twins
	// uncheckpointed counts rows stored since the last checkpoint;
	// lastCheckpoint is when that was. Both under writeMu.
	uncheckpointed int64
	lastCheckpoint time.Time
	path           string // the database file; "" in memory
	// traces is the trace-id skip index's open blocks (traceindex.go).
	traces traceIndex
	// patternsPruned is when WritePatterns last expired old pattern counts.
	patternsPruned time.Time
	// seg is the segment-file state of FormatParquet; nil for FormatTable.
	seg *segments
	// lowSec is the second from which rollups_minute may be read: the
	// oldest per-second rollup at Open, then the last retention cutoff
	// (rollup_minutes.go).
	lowSec atomic.Int64

	// beforeCommit, when set (by tests), runs on the writer's connection
	// just before COMMIT; an error aborts the transaction.
	beforeCommit func(driver.Conn) error
	// appendEvents writes the kept rows in the open transaction; the
	// benchmarks swap in a multi-row INSERT to compare with the Appender.
	appendEvents func(conn driver.Conn, rows []Row, keep []bool) error

	stop chan struct{}
	done chan struct{}
}

type offsetKey struct {
	topic     string
	partition int32
}

// The store keeps its tables in two DuckDB databases, twins with the same
// schema, attached to one in-memory DuckDB instance. Writes go to the active
// twin; Checkpoint switches them to the other and checkpoints the one left
// behind in the background. A DuckDB checkpoint blocks every commit into the
// database it checkpoints for as long as it runs (2-4 s every ~25 s at 60k
// events/s, issue 21) but not commits into another attached database
// (BenchmarkCommitDuringCheckpoint), so the writer never waits for one.
// Queries read views in the instance's own catalog that UNION ALL both twins;
// each twin holds the offsets committed with its own rows, and where to
// resume is the larger of the two.
var twins = [2]string{"wl_a", "wl_b"}

// Files returns the database files of a store opened at path: path itself
// and its twin. Back them up, move them and delete them together.
func Files(path string) []string {
	return []string{path, strings.TrimSuffix(path, ".duckdb") + ".twin.duckdb"}
}

// Open opens (or creates) the database at path and its twin (Files); ""
// opens in-memory databases that are lost on Close. It applies the schema
// and, unless opts.DisableMaintenance, starts the retention and compaction
// loop.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	opts.Format = resolveFormat(opts.Format, path)
	where := path
	if where == "" {
		where = "in-memory database"
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("start DuckDB for %s: %w", where, err)
	}
	db := sql.OpenDB(connector)
	// The writer, the background checkpoint, and MaxReaders for queries.
	db.SetMaxOpenConns(opts.MaxReaders + 2)
	db.SetMaxIdleConns(opts.MaxReaders + 2)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)

	s := &Store{
		opts:           opts,
		connector:      connector,
		db:             db,
		readers:        make(chan struct{}, opts.MaxReaders),
		metrics:        newMetrics(),
		offsets:        make(map[offsetKey]int64),
		dirty:          [2]map[int64]struct{}{make(map[int64]struct{}), make(map[int64]struct{})},
		appendEvents:   defaultAppendEvents,
		path:           path,
		lastCheckpoint: time.Now(),
		checkpointing:  -1,
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
	}
	fail := func(err error) (*Store, error) {
		db.Close()
		connector.Close()
		return nil, err
	}
	ctx := context.Background()
	settings := []string{
		fmt.Sprintf("SET memory_limit = '%s'", strings.ReplaceAll(opts.MemoryLimit, "'", "")),
		fmt.Sprintf("SET checkpoint_threshold = '%s'", strings.ReplaceAll(opts.CheckpointThreshold, "'", "")),
	}
	if path != "" {
		// Without a file as the main database DuckDB would spill to ./.tmp.
		settings = append(settings, fmt.Sprintf("SET temp_directory = '%s'", sqlString(path+".tmp")))
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	for _, q := range settings {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fail(fmt.Errorf("configure DuckDB %s (%s): %w", where, q, err))
		}
	}
	files := Files(path)
	for i, name := range twins {
		file := ":memory:"
		if path != "" {
			file = files[i]
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("ATTACH '%s' AS %s", sqlString(file), name)); err != nil {
			return fail(fmt.Errorf("open DuckDB %s: %w (is another wirelog using this data directory?)", file, err))
		}
	}
	if err := applySchema(ctx, db, where); err != nil {
		return fail(err)
	}
	s.wconn, err = db.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("open writer connection to %s: %w", where, err))
	}
	if _, err := s.wconn.ExecContext(ctx, "USE "+twins[0]); err != nil {
		s.wconn.Close()
		return fail(fmt.Errorf("select the writer's database in %s: %w", where, err))
	}
	s.ckconn, err = db.Conn(ctx)
	if err != nil {
		s.wconn.Close()
		return fail(fmt.Errorf("open checkpoint connection to %s: %w", where, err))
	}
	if err := s.loadOffsets(ctx); err != nil {
		s.wconn.Close()
		s.ckconn.Close()
		return fail(err)
	}
	var low int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(min(sec), 0) FROM memory.main.rollups`).Scan(&low); err != nil {
		s.wconn.Close()
		s.ckconn.Close()
		return fail(fmt.Errorf("read the oldest rollup of %s: %w", where, err))
	}
	s.lowSec.Store(low)
	switch opts.Format {
	case FormatTable:
		if err := s.refuseSegments(ctx); err != nil {
			s.wconn.Close()
			s.ckconn.Close()
			return fail(err)
		}
	case FormatParquet:
		if err := s.openSegments(ctx); err != nil {
			s.wconn.Close()
			s.ckconn.Close()
			return fail(err)
		}
	default:
		s.wconn.Close()
		s.ckconn.Close()
		return fail(fmt.Errorf("store format %q is not one of %s (--store-format)", opts.Format, strings.Join(Formats, ", ")))
	}
	if err := s.openTraceIndex(ctx); err != nil {
		s.wconn.Close()
		s.ckconn.Close()
		return fail(fmt.Errorf("%s: %w", where, err))
	}
	if opts.DisableMaintenance {
		close(s.done)
	} else {
		go s.maintain()
	}
	return s, nil
}

// applySchema creates the tables in both twins and, in the instance's own
// catalog (where queries run), one view per table over both.
func applySchema(ctx context.Context, db *sql.DB, where string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("create schema in %s: %w", where, err)
	}
	defer conn.Close()
	defer conn.ExecContext(ctx, "USE memory") // the connection goes back to the query pool
	for _, twin := range twins {
		if _, err := conn.ExecContext(ctx, "USE "+twin); err != nil {
			return fmt.Errorf("create schema in %s: %w", where, err)
		}
		for _, q := range slices.Concat(schema, traceSchema, minuteSchema) {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("create schema in %s (%s): %w", where, twin, err)
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "USE memory"); err != nil {
		return fmt.Errorf("create schema in %s: %w", where, err)
	}
	// Tables created later, on demand (dead_letters), may exist in one twin
	// only: give the other an empty copy, then one view per table.
	rows, err := conn.QueryContext(ctx, `SELECT DISTINCT database_name, table_name FROM duckdb_tables()
		WHERE database_name IN (?, ?) AND schema_name = 'main' ORDER BY table_name`, twins[0], twins[1])
	if err != nil {
		return fmt.Errorf("list tables in %s: %w", where, err)
	}
	in := map[string][2]bool{}
	var tables []string
	for rows.Next() {
		var db, t string
		if err := rows.Scan(&db, &t); err != nil {
			rows.Close()
			return fmt.Errorf("list tables in %s: %w", where, err)
		}
		has, seen := in[t]
		if !seen {
			tables = append(tables, t)
		}
		i := 1
		if db == twins[0] {
			i = 0
		}
		has[i] = true
		in[t] = has
	}
	rows.Close()
	for _, t := range tables {
		for i, ok := range in[t] {
			if !ok {
				q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s.main.%[3]s AS FROM %[2]s.main.%[3]s LIMIT 0`, twins[i], twins[1-i], quoteIdent(t))
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("create %s in %s (%s): %w", t, where, twins[i], err)
				}
			}
		}
		if err := createTwinView(ctx, conn, t); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// createTwinView creates the view over both twins' copies of table t in
// the instance's catalog, where queries run.
func createTwinView(ctx context.Context, conn *sql.Conn, t string) error {
	q := fmt.Sprintf(`CREATE OR REPLACE VIEW memory.main.%[1]s AS SELECT * FROM %[2]s.main.%[1]s UNION ALL SELECT * FROM %[3]s.main.%[1]s`,
		quoteIdent(t), twins[0], twins[1])
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create view %s: %w", t, err)
	}
	return nil
}

// ensureTable runs ddl (CREATE TABLE IF NOT EXISTS name …, unqualified) in
// both twins and creates the view over them, once per Store: for tables
// made on demand. The caller holds writeMu.
func (s *Store) ensureTable(ctx context.Context, name, ddl string) error {
	if s.tables[name] {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	defer conn.Close()
	defer conn.ExecContext(context.Background(), "USE memory") // back to the query pool
	for _, twin := range twins {
		if _, err := conn.ExecContext(ctx, "USE "+twin); err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
		if _, err := conn.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create table %s in %s: %w", name, twin, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "USE memory"); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := createTwinView(ctx, conn, name); err != nil {
		return err
	}
	if s.tables == nil {
		s.tables = map[string]bool{}
	}
	s.tables[name] = true
	return nil
}

func sqlString(s string) string { return strings.ReplaceAll(s, "'", "''") }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (s *Store) loadOffsets(ctx context.Context) error {
	// Each twin holds the offsets committed with its rows: resume after the
	// larger.
	rows, err := s.wconn.QueryContext(ctx, `SELECT topic, "partition", max(next_offset) FROM memory.main.consumer_offsets GROUP BY ALL`)
	if err != nil {
		return fmt.Errorf("read consumer offsets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k offsetKey
		var next int64
		if err := rows.Scan(&k.topic, &k.partition, &next); err != nil {
			return fmt.Errorf("read consumer offsets: %w", err)
		}
		s.offsets[k] = next
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read consumer offsets: %w", err)
	}
	return nil
}

// Close stops maintenance, waits for a running Write, and closes the
// database (DuckDB checkpoints the WAL into the file).
func (s *Store) Close() error {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return nil
	}
	s.closed = true
	s.isClosed.Store(true)
	s.closeSegments() // writes what is buffered
	close(s.stop)
	ckDone := s.ckDone
	s.writeMu.Unlock()
	<-s.done
	if ckDone != nil {
		<-ckDone // a background checkpoint finishes before the files close
	}

	var errs []error
	if err := s.wconn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close writer connection: %w", err))
	}
	if err := s.ckconn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close checkpoint connection: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close DuckDB: %w", err))
	}
	if err := s.connector.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close DuckDB: %w", err))
	}
	return errors.Join(errs...)
}

// acquireReader takes a query slot and applies the query timeout.
func (s *Store) acquireReader(ctx context.Context) (context.Context, func(), error) {
	select {
	case s.readers <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("wait for a query slot: %w", ctx.Err())
	}
	qctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	return qctx, func() { cancel(); <-s.readers }, nil
}
