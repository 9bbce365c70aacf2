package store

// Per-minute rollups (issue 12). The per-second rollups hold a row per
// (second, service, level, tenant) that had events: with loadgen's 36
// services at ~1,200 events/s that is ~140 rows a second, 12M a day, and
// stats over the day summed all of them (hundreds of ms). rollups_minute
// holds the same counts per minute, written like the per-second rows:
// every batch appends its partial minute rows in its own transaction
// (appendRollups), Compact sums them, queries SUM, so the table is exact
// before and after compaction and after a crash. A query over a window
// reads whole minutes from rollups_minute and the ragged seconds at either
// end from rollups (rollupSource).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/wirelog/wirelog/internal/event"
)

// minuteSchema is applied in both twins after the rest of the schema. The
// INSERT fills the table once from the per-second rows of a store written
// before it existed (when it is empty and they are not).
var minuteSchema = []string{
	`CREATE TABLE IF NOT EXISTS rollups_minute (
		minute BIGINT NOT NULL,
		service VARCHAR NOT NULL,
		level ` + levelEnum + ` NOT NULL,
		tenant VARCHAR NOT NULL,
		count BIGINT NOT NULL,
		bytes BIGINT NOT NULL
	)`,
	`INSERT INTO rollups_minute
		SELECT (sec - ((sec % 60) + 60) % 60) // 60, service, level, coalesce(tenant, ''), sum(count), sum(bytes)
		FROM rollups WHERE NOT EXISTS (SELECT 1 FROM rollups_minute) GROUP BY ALL`,
}

type minuteKey struct {
	minute  int64
	service string
	level   event.Level
	tenant  string
}

// minuteRollupsOff turns the per-minute rows off, for the write benchmarks
// that measure what they cost (queries are then wrong).
var minuteRollupsOff = false

// appendMinuteRollups appends the batch's partial per-minute rows, summed
// from its per-second ones, in the open transaction on conn.
func appendMinuteRollups(conn driver.Conn, rollups map[rollupKey]rollupAgg) (err error) {
	if minuteRollupsOff {
		return nil
	}
	minutes := make(map[minuteKey]rollupAgg, len(rollups)/8+1)
	for k, a := range rollups {
		mk := minuteKey{minuteOf(k.sec), k.service, k.level, k.tenant}
		m := minutes[mk]
		m.count += a.count
		m.bytes += a.bytes
		minutes[mk] = m
	}
	app, err := duckdb.NewAppender(conn, "", "", "rollups_minute")
	if err != nil {
		return fmt.Errorf("open minute rollups appender: %w", err)
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flush minute rollups appender: %w", cerr)
		}
	}()
	for k, a := range minutes {
		if err := app.AppendRow(k.minute, validString(k.service), k.level.String(), validString(k.tenant), a.count, a.bytes); err != nil {
			return fmt.Errorf("append minute rollup: %w", err)
		}
	}
	return nil
}

// compactMinuteRows replaces the minute rows of the seconds [lo, hi) (whole
// minutes) by their sums from rollups_compact, the summed per-second rows of
// the same seconds (compactMinutes), in the open transaction.
func compactMinuteRows(exec exec, lo, hi int64) error {
	if _, err := exec(`DELETE FROM rollups_minute WHERE minute >= $1 AND minute < $2`, lo/60, hi/60); err != nil {
		return fmt.Errorf("delete partial minute rollups: %w", err)
	}
	if _, err := exec(`INSERT INTO rollups_minute
		SELECT (sec - ((sec % 60) + 60) % 60) // 60, service, level, tenant, sum(count)::BIGINT, sum(bytes)::BIGINT
		FROM rollups_compact GROUP BY ALL`); err != nil {
		return fmt.Errorf("insert summed minute rollups: %w", err)
	}
	return nil
}

// rollupSource is the FROM source of a rollups query over the seconds
// [from, to) (math.MinInt64 and math.MaxInt64 leave an end open), with the
// columns sec, service, level, tenant, count, bytes: the whole minutes
// from rollups_minute (a minute's sec is its first second), the seconds
// before and after them from rollups. step > 0 asks for buckets of step
// seconds: minutes are used only when step is a whole number of minutes,
// so that a minute row never straddles a bucket. Minutes before lowSec
// are never read from rollups_minute: retention deletes per-second rows
// up to a second and may leave the minute row of that second's minute,
// counting events that are gone. Its parameters are appended to w.args.
func (s *Store) rollupSource(w *where, from, to, step int64) string {
	arg := func(v int64) string {
		w.args = append(w.args, v)
		return "$" + strconv.Itoa(len(w.args))
	}
	lo := max(from, s.lowSec.Load(), math.MinInt64/2) // m0*60 must not overflow
	m0 := floorDiv(lo, 60)
	if m0*60 < lo {
		m0++
	}
	m1 := floorDiv(to, 60)
	if to == math.MaxInt64 {
		m1 = math.MaxInt64 / 60
	}
	if (step > 0 && step%60 != 0) || m1-m0 < 2 {
		return `(SELECT sec, service, level, tenant, count, bytes FROM rollups WHERE sec >= ` + arg(from) + ` AND sec < ` + arg(to) + `)`
	}
	return `(SELECT minute * 60 AS sec, service, level, tenant, count, bytes FROM rollups_minute WHERE minute >= ` + arg(m0) + ` AND minute < ` + arg(m1) + `
		UNION ALL SELECT sec, service, level, tenant, count, bytes FROM rollups WHERE sec >= ` + arg(from) + ` AND sec < ` + arg(m0*60) + `
		UNION ALL SELECT sec, service, level, tenant, count, bytes FROM rollups WHERE sec >= ` + arg(m1*60) + ` AND sec < ` + arg(to) + `)`
}

// cutFloor narrows the search for the newest second from which the events
// rw selects (conditions on sec, service, level, tenant) number at least n
// (fieldsCut, SearchNewest): the newest whole minute from which they do,
// read from rollups_minute (1,440 rows a day per key instead of 86,400).
// Only whole minutes before to's minute count, so the events of the
// seconds from the floor on are at least n; ok is false when the minutes
// hold fewer (the caller then reads every second of its window).
func (s *Store) cutFloor(ctx context.Context, rw *where, to time.Time, n int) (int64, bool, error) {
	lo := max(s.lowSec.Load(), math.MinInt64/2)
	m0 := floorDiv(lo, 60)
	if m0*60 < lo {
		m0++
	}
	m1 := int64(math.MaxInt64 / 60)
	if !to.IsZero() {
		m1 = floorDiv(to.Unix(), 60)
	}
	k := len(rw.args)
	args := append(slices.Clone(rw.args), m0, m1, n)
	q := fmt.Sprintf(`SELECT minute FROM (
			SELECT minute, sum(sum(count)) OVER (ORDER BY minute DESC ROWS UNBOUNDED PRECEDING) AS cum
			FROM (SELECT minute, minute * 60 AS sec, service, level, tenant, count FROM rollups_minute
				WHERE minute >= $%d AND minute < $%d)%s GROUP BY minute)
		WHERE cum >= $%d ORDER BY minute DESC LIMIT 1`, k+1, k+2, rw.String(), k+3)
	var minute int64
	found := false
	err := s.query(ctx, "fields", q, args, func(rows *sql.Rows) error { found = true; return rows.Scan(&minute) })
	if err != nil || !found {
		return 0, false, err
	}
	return minute * 60, true, nil
}
