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
//
// rollups_10s does the same per 10 seconds (issue 12, fourth session): the
// dashboard's 1 h series is asked at step 10 s, which minutes cannot
// answer, and summing it from the per-second rows read ~500k of them at
// this shape. A step that is a whole number of minutes reads minutes; one
// that is a whole multiple of 10 s reads rollups_10s; any other step the
// seconds.

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
var minuteSchema = append(rollupTierSchema("rollups_minute", "minute", 60), rollupTierSchema("rollups_10s", "span", 10)...)

// rollupTierSchema is a coarser rollup table: counts and bytes per col,
// the number of a secs-second span, filled once from the per-second rows.
func rollupTierSchema(table, col string, secs int) []string {
	n := strconv.Itoa(secs)
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (
		` + col + ` BIGINT NOT NULL,
		service VARCHAR NOT NULL,
		level ` + levelEnum + ` NOT NULL,
		tenant VARCHAR NOT NULL,
		count BIGINT NOT NULL,
		bytes BIGINT NOT NULL
	)`,
		`INSERT INTO ` + table + `
		SELECT (sec - ((sec % ` + n + `) + ` + n + `) % ` + n + `) // ` + n + `, service, level, coalesce(tenant, ''), sum(count), sum(bytes)
		FROM rollups WHERE NOT EXISTS (SELECT 1 FROM ` + table + `) GROUP BY ALL`,
	}
}

// rollupTier is a table of rollups summed over width seconds, keyed by
// col = floor(sec / width). Coarsest first: rollupSource takes the first
// whose width divides the step.
type rollupTier struct {
	table, col string
	width      int64
}

var rollupTiers = []rollupTier{{"rollups_minute", "minute", 60}, {"rollups_10s", "span", 10}}

// minuteKey is the key of a tier row; minute is its unit, floor(sec /
// width) (a minute, or a 10 s span).
type minuteKey struct {
	minute  int64
	service string
	level   event.Level
	tenant  string
}

// minuteRollupsOff turns the per-minute rows off, for the write benchmarks
// that measure what they cost (queries are then wrong).
var minuteRollupsOff = false

// appendMinuteRollups appends the batch's partial rows of every tier
// (per minute, per 10 s), summed from its per-second ones, in the open
// transaction on conn.
func appendMinuteRollups(conn driver.Conn, rollups map[rollupKey]rollupAgg) (err error) {
	if minuteRollupsOff {
		return nil
	}
	for _, t := range rollupTiers {
		units := make(map[minuteKey]rollupAgg, len(rollups)/int(t.width)+1)
		for k, a := range rollups {
			uk := minuteKey{floorDiv(k.sec, t.width), k.service, k.level, k.tenant}
			u := units[uk]
			u.count += a.count
			u.bytes += a.bytes
			units[uk] = u
		}
		if err := appendTierRows(conn, t.table, units); err != nil {
			return err
		}
	}
	return nil
}

func appendTierRows(conn driver.Conn, table string, units map[minuteKey]rollupAgg) (err error) {
	app, err := duckdb.NewAppender(conn, "", "", table)
	if err != nil {
		return fmt.Errorf("open %s appender: %w", table, err)
	}
	defer func() {
		if cerr := app.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flush %s appender: %w", table, cerr)
		}
	}()
	for k, a := range units {
		if err := app.AppendRow(k.minute, validString(k.service), k.level.String(), validString(k.tenant), a.count, a.bytes); err != nil {
			return fmt.Errorf("append to %s: %w", table, err)
		}
	}
	return nil
}

// compactMinuteRows replaces the rows of every tier in the seconds [lo, hi)
// (whole minutes, so whole 10 s spans too) by their sums from
// rollups_compact, the summed per-second rows of the same seconds
// (compactMinutes), in the open transaction.
func compactMinuteRows(exec exec, lo, hi int64) error {
	for _, t := range rollupTiers {
		if _, err := exec(`DELETE FROM `+t.table+` WHERE `+t.col+` >= $1 AND `+t.col+` < $2`, lo/t.width, hi/t.width); err != nil {
			return fmt.Errorf("delete partial rows of %s: %w", t.table, err)
		}
		if _, err := exec(fmt.Sprintf(`INSERT INTO %s
			SELECT (sec - ((sec %% %[2]d) + %[2]d) %% %[2]d) // %[2]d, service, level, tenant, sum(count)::BIGINT, sum(bytes)::BIGINT
			FROM rollups_compact GROUP BY ALL`, t.table, t.width)); err != nil {
			return fmt.Errorf("insert summed rows of %s: %w", t.table, err)
		}
	}
	return nil
}

// deleteTierRows deletes, in the open transaction, the rows of every tier
// whose span ends at or before cutoff (retention): the span holding the
// cutoff stays until the next run, and queries skip it (lowSec).
func deleteTierRows(exec exec, cutoff int64) error {
	for _, t := range rollupTiers {
		if _, err := exec(`DELETE FROM `+t.table+` WHERE `+t.col+` < $1`, floorDiv(cutoff, t.width)); err != nil {
			return fmt.Errorf("delete rows of %s before second %d: %w", t.table, cutoff, err)
		}
	}
	return nil
}

// rollupSource is the FROM source of a rollups query over the seconds
// [from, to) (math.MinInt64 and math.MaxInt64 leave an end open), with the
// columns sec, service, level, tenant, count, bytes: the whole spans of the
// coarsest tier that fits (a span's sec is its first second), the seconds
// before and after them from rollups. step > 0 asks for buckets of step
// seconds: a tier is used only when its width divides step, so that a span
// never straddles a bucket; step 0 (totals) takes minutes. Spans before
// lowSec are never read from a tier: retention deletes per-second rows up
// to a second and may leave the tier row of that second's span, counting
// events that are gone. Its parameters are appended to w.args. width is
// the seconds of the tier it reads (1: the per-second rows only).
func (s *Store) rollupSource(w *where, from, to, step int64) (src string, width int64) {
	arg := func(v int64) string {
		w.args = append(w.args, v)
		return "$" + strconv.Itoa(len(w.args))
	}
	seconds := func(lo, hi int64) string {
		return `SELECT sec, service, level, tenant, count, bytes FROM rollups WHERE sec >= ` + arg(lo) + ` AND sec < ` + arg(hi)
	}
	for _, t := range rollupTiers {
		if step%t.width != 0 {
			continue
		}
		lo := max(from, s.lowSec.Load(), math.MinInt64/2) // u0*width must not overflow
		u0 := floorDiv(lo, t.width)
		if u0*t.width < lo {
			u0++
		}
		u1 := floorDiv(to, t.width)
		if to == math.MaxInt64 {
			u1 = math.MaxInt64 / t.width
		}
		if u1-u0 < 2 {
			continue // too short a window: a finer tier or the seconds
		}
		return `(SELECT ` + t.col + ` * ` + strconv.FormatInt(t.width, 10) + ` AS sec, service, level, tenant, count, bytes FROM ` + t.table +
			` WHERE ` + t.col + ` >= ` + arg(u0) + ` AND ` + t.col + ` < ` + arg(u1) + `
		UNION ALL ` + seconds(from, u0*t.width) + `
		UNION ALL ` + seconds(u1*t.width, to) + `)`, t.width
	}
	return `(` + seconds(from, to) + `)`, 1
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
