package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/transport"
)

// Row is one event read from the log, with where it came from.
type Row struct {
	Topic     string
	Partition int32
	Offset    int64
	Bytes     int // size of the record as received, summed into rollups
	Event     event.Event
}

type rollupKey struct {
	sec     int64
	service string
	level   event.Level
	tenant  string
}

type rollupAgg struct{ count, bytes int64 }

// Write stores rows and advances the stored next offset of every
// (topic, partition) in the batch, in one transaction. A row whose Offset is
// below the stored next offset of its partition (or below an earlier row of
// the same partition in this batch) is skipped as already stored, so a replay
// after a crash never double-counts. Write returns how many rows it stored.
// On error nothing of the batch is stored and no offset moves.
//
// Rows of one partition must come in offset order, as a Consumer delivers them.
func (s *Store) Write(ctx context.Context, rows []Row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	start := time.Now()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.seg != nil {
		return s.writeSegmented(ctx, rows)
	}

	// Decide which rows are new, and the next offset of every partition.
	next := make(map[offsetKey]int64, 4)
	keep := make([]bool, len(rows))
	stored := 0
	for i := range rows {
		r := &rows[i]
		k := offsetKey{r.Topic, r.Partition}
		n, ok := next[k]
		if !ok {
			n, ok = s.offsets[k]
			if !ok {
				n = -1 << 63
			}
		}
		if r.Offset < n {
			continue
		}
		keep[i] = true
		stored++
		next[k] = r.Offset + 1
	}
	skipped := len(rows) - stored
	if stored == 0 {
		s.metrics.rowsSkipped.Add(float64(skipped))
		return 0, nil
	}

	rollups := make(map[rollupKey]rollupAgg, 64)
	for i := range rows {
		if !keep[i] {
			continue
		}
		r := &rows[i]
		sec := r.Event.Time.Unix()
		k := rollupKey{sec, r.Event.Service, r.Event.Level, r.Event.Tenant}
		a := rollups[k]
		a.count++
		a.bytes += int64(r.Bytes)
		rollups[k] = a
	}

	walBefore := s.walSize(s.active)
	err := s.withWriter(func(conn driver.Conn) error {
		return s.writeTx(ctx, conn, rows, keep, rollups, next)
	})
	if err == nil && s.walSize(s.active) < walBefore {
		// DuckDB checkpointed inside this COMMIT (the WAL passed
		// checkpoint_threshold before Checkpoint was called): the stall
		// the twins exist to avoid.
		s.metrics.inlineCheckpoints.Inc()
	}
	if err != nil {
		s.metrics.writeErrors.Inc()
		return 0, fmt.Errorf("store batch of %d rows: %w", len(rows), err)
	}
	for k, n := range next {
		s.offsets[k] = n
	}
	for k := range rollups {
		s.dirty[s.active][minuteOf(k.sec)] = struct{}{}
	}
	s.uncheckpointed += int64(stored)
	s.metrics.rowsWritten.Add(float64(stored))
	s.metrics.rowsSkipped.Add(float64(skipped))
	s.metrics.batchRows.Observe(float64(stored))
	s.metrics.writeSeconds.Observe(time.Since(start).Seconds())
	return stored, nil
}

// writeTx runs one transaction on the writer's driver connection: the
// Appender's rows become part of the explicit transaction, so a ROLLBACK
// discards them together with the offsets (see TestWriteAbortLeavesNothing).
func (s *Store) writeTx(ctx context.Context, conn driver.Conn, rows []Row, keep []bool,
	rollups map[rollupKey]rollupAgg, next map[offsetKey]int64) (err error) {
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
	if err := s.appendEvents(conn, rows, keep); err != nil {
		return err
	}
	if err := appendRollups(conn, rollups); err != nil {
		return err
	}
	for k, n := range next {
		_, err := ex.ExecContext(ctx, `INSERT INTO consumer_offsets VALUES ($1, $2, $3)
			ON CONFLICT DO UPDATE SET next_offset = greatest(next_offset, excluded.next_offset)`,
			[]driver.NamedValue{{Ordinal: 1, Value: k.topic}, {Ordinal: 2, Value: int64(k.partition)}, {Ordinal: 3, Value: n}})
		if err != nil {
			return fmt.Errorf("advance offset of %s/%d to %d: %w", k.topic, k.partition, n, err)
		}
	}
	// After the offsets: a trace block sealed here covers them.
	traced, err := s.indexTraces(ctx, conn, s.active, rows, keep)
	if err != nil {
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
	traced()
	return nil
}

// eventColumns are the columns of the rows the Appender buffers; the
// INSERT below turns them into an events row. attrs arrive as VARCHAR and
// DuckDB validates them as JSON in C++ (yyjson), far cheaper than
// encoding/json in Go; bytes that are not JSON are kept as a JSON string
// rather than failing the batch (a poison record would otherwise stop the
// processor for good).
var eventColumns = func() []duckdb.TypeInfo {
	mk := func(t duckdb.Type) duckdb.TypeInfo {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			panic(fmt.Sprintf("duckdb type %v: %v", t, err)) // a programming error, caught by every test
		}
		return ti
	}
	levels := event.Levels()
	level, err := duckdb.NewEnumInfo(event.LevelUnknown.String(), levels...)
	if err != nil {
		panic(fmt.Sprintf("duckdb level enum: %v", err))
	}
	v := mk(duckdb.TYPE_VARCHAR)
	return []duckdb.TypeInfo{v, mk(duckdb.TYPE_INTEGER), mk(duckdb.TYPE_BIGINT), mk(duckdb.TYPE_TIMESTAMP),
		v, level, v, v, v, v, v, v, mk(duckdb.TYPE_INTEGER)}
}()

const insertAppended = `INSERT INTO events SELECT col1, col2, col3, col4, col5, col6, col7, col8, col9, col10, col11,
	CASE WHEN col12 IS NULL THEN NULL WHEN json_valid(col12) THEN col12::JSON ELSE to_json(col12) END,
	col13 FROM appended_data`

// appendEvents writes the kept rows through a query Appender. BenchmarkWrite
// compares it with the plain table Appender and with multi-row INSERTs.
func appendEvents(conn driver.Conn, rows []Row, keep []bool) (err error) {
	app, err := duckdb.NewQueryAppender(conn, insertAppended, "", eventColumns, nil)
	if err != nil {
		return fmt.Errorf("open events appender: %w", err)
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flush events appender: %w", cerr)
		}
	}()
	for i := range rows {
		if !keep[i] {
			continue
		}
		r := &rows[i]
		e := &r.Event
		var attrs driver.Value
		if len(e.Attrs) > 0 {
			attrs = validBytes(e.Attrs)
		}
		err := app.AppendRow(validString(r.Topic), r.Partition, r.Offset, e.Time, validString(e.Service), e.Level.String(),
			validString(e.Message), validString(e.Host), validString(e.TraceID), validString(e.SpanID),
			validString(e.Tenant), attrs, int32(r.Bytes))
		if err != nil {
			return fmt.Errorf("append event %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
	return nil
}

// validString replaces invalid UTF-8: DuckDB turns an invalid VARCHAR into
// NULL, which the NOT NULL columns would reject, failing the whole batch.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func validBytes(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}

func appendRollups(conn driver.Conn, rollups map[rollupKey]rollupAgg) (err error) {
	app, err := duckdb.NewAppender(conn, "", "", "rollups")
	if err != nil {
		return fmt.Errorf("open rollups appender: %w", err)
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flush rollups appender: %w", cerr)
		}
	}()
	for k, a := range rollups {
		if err := app.AppendRow(k.sec, validString(k.service), k.level.String(), a.count, a.bytes, validString(k.tenant)); err != nil {
			return fmt.Errorf("append rollup: %w", err)
		}
	}
	return appendMinuteRollups(conn, rollups) // rollup_minutes.go
}

// NextOffset returns the next offset to read of tp as committed with the
// stored rows, and ok=false when nothing of tp was ever stored. Its
// signature matches transport.OffsetSource: pass st.NextOffset.
func (s *Store) NextOffset(ctx context.Context, tp transport.TopicPartition) (int64, bool, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return 0, false, ErrClosed
	}
	n, ok := s.offsets[offsetKey{tp.Topic, tp.Partition}]
	return n, ok, nil
}

var _ transport.OffsetSource = (*Store)(nil).NextOffset
