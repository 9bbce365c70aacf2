package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// DeadLetterRawBytes bounds the copy of a dead-lettered record kept in the
// dead_letters table: enough to see what it was, never the size that made
// it fail.
const DeadLetterRawBytes = 64 << 10

// DeadLetter is a record the processor could not store, set aside with the
// reason so the records after it are stored.
type DeadLetter struct {
	Topic     string
	Partition int32
	Offset    int64
	Time      time.Time // the record's log timestamp (its arrival at ingest)
	Reason    string    // the store's error for this record alone
	Raw       []byte    // the record as read from the log; truncated to DeadLetterRawBytes
}

// deadLetterSchema is created on the first dead letter, so a store that
// never had one has no such table.
const deadLetterSchema = `CREATE TABLE IF NOT EXISTS dead_letters (
	topic VARCHAR NOT NULL,
	"partition" INTEGER NOT NULL,
	"offset" BIGINT NOT NULL,
	ts TIMESTAMP NOT NULL,
	stored_at TIMESTAMP NOT NULL,
	reason VARCHAR NOT NULL,
	raw_bytes BIGINT NOT NULL,
	raw VARCHAR NOT NULL
)`

// WriteDeadLetters stores dls in the dead_letters table and advances the
// stored next offset past each of them, in one transaction, so a replay
// skips them just as it skips stored rows. Dead letters of one partition
// must come in offset order, after every row of that partition stored
// before them.
func (s *Store) WriteDeadLetters(ctx context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.seg != nil {
		// The offsets below move past the dead letters: every event before
		// them must be durable first.
		if err := s.flushSegment(ctx); err != nil {
			return fmt.Errorf("store the events before %d dead letters: %w", len(dls), err)
		}
	}
	next := make(map[offsetKey]int64, 1)
	for _, d := range dls {
		k := offsetKey{d.Topic, d.Partition}
		next[k] = max(next[k], d.Offset+1)
	}
	// In both twin files, with the view queries read (store.go).
	if err := s.ensureTable(ctx, "dead_letters", deadLetterSchema); err != nil {
		return fmt.Errorf("create dead_letters table: %w", err)
	}
	// The same writer connection, and the same explicit transaction, as
	// Write: the dead letters and the offsets past them commit together.
	err := s.withWriter(func(conn driver.Conn) (err error) {
		ex := conn.(driver.ExecerContext)
		exec := func(q string, args ...any) error {
			nv := make([]driver.NamedValue, len(args))
			for i, a := range args {
				nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			_, err := ex.ExecContext(ctx, q, nv)
			return err
		}
		if err := exec("BEGIN TRANSACTION"); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer func() {
			if err != nil {
				exec("ROLLBACK")
			}
		}()
		now := time.Now().UTC()
		for _, d := range dls {
			raw := d.Raw
			if len(raw) > DeadLetterRawBytes {
				raw = raw[:DeadLetterRawBytes]
			}
			ts := d.Time
			if ts.IsZero() {
				ts = now
			}
			if err := exec(`INSERT INTO dead_letters VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				validString(d.Topic), int64(d.Partition), d.Offset, ts.UTC(), now, validString(d.Reason), int64(len(d.Raw)),
				strings.ToValidUTF8(string(raw), string(utf8.RuneError))); err != nil {
				return fmt.Errorf("insert dead letter %s/%d@%d: %w", d.Topic, d.Partition, d.Offset, err)
			}
		}
		for k, n := range next {
			if err := exec(`INSERT INTO consumer_offsets VALUES ($1, $2, $3)
				ON CONFLICT DO UPDATE SET next_offset = greatest(next_offset, excluded.next_offset)`, k.topic, int64(k.partition), n); err != nil {
				return fmt.Errorf("advance offset of %s/%d past dead letter to %d: %w", k.topic, k.partition, n, err)
			}
		}
		if err := exec("COMMIT"); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d dead letters: %w", len(dls), err)
	}
	for k, n := range next {
		if cur, ok := s.offsets[k]; !ok || n > cur {
			s.offsets[k] = n
		}
	}
	return nil
}

// DeadLetterCount is how many records the dead_letters table holds.
func (s *Store) DeadLetterCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM dead_letters`).Scan(&n)
	if err != nil && strings.Contains(err.Error(), "dead_letters does not exist") {
		return 0, nil
	}
	return n, err
}
