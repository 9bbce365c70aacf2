package victorialogs

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
)

// DefaultDeadLetters is the VictoriaLogs account dead letters go to: the
// highest AccountID, which no tenant mapping is likely to use. Read them
// with the headers AccountID: 4294967295, ProjectID: 0.
var DefaultDeadLetters = Account{AccountID: 1<<32 - 1}

// Dead-letter row fields besides the id fields and _time (the record's log
// time); _msg is the store's error.
const (
	fieldDeadRaw      = "wl_raw"
	fieldDeadRawBytes = "wl_raw_bytes"
)

// writtenAccounts is every account this store writes: the tenants' and
// the dead letters'. Verification counts a partition's offsets across
// them all, so a dead letter takes its record's place in the count.
func (s *Store) writtenAccounts() []Account {
	return append(s.accounts(), s.opts.DeadLetters)
}

// lineTooLong is returned by Write for a batch holding rows VictoriaLogs
// would skip (longer than MaxLineBytes as a JSON line). It is about the
// rows, not the store, so the processor splits the batch after its tries
// and dead-letters the rows alone (internal/process/poison.go).
type lineTooLong struct {
	topic         string
	partition     int32
	offset        int64
	bytes, limit  int
	rowsOverLimit int
}

func (e *lineTooLong) Error() string {
	return fmt.Sprintf("VictoriaLogs skips JSON lines over %d bytes (-insert.maxLineSizeBytes, --store-max-line-bytes) and %d rows of the batch are longer, the first %s/%d@%d with %d bytes",
		e.limit, e.rowsOverLimit, e.topic, e.partition, e.offset, e.bytes)
}

// checkLines returns a *lineTooLong when a row would be longer than
// MaxLineBytes; rows far below it are not encoded twice.
func (s *Store) checkLines(rows []store.Row) error {
	var err *lineTooLong
	var buf []byte
	for i := range rows {
		r := &rows[i]
		e := &r.Event
		// A JSON-escaped string is at most 6 bytes a byte; attrs go twice.
		if rough := 6*(len(e.Message)+len(e.Service)+len(e.Host)+len(e.Tenant)+len(e.TraceID)+len(e.SpanID)) + 7*len(e.Attrs) + 512; rough <= s.opts.MaxLineBytes {
			continue
		}
		buf = appendRow(buf[:0], r, 1<<62)
		if n := len(buf) - 1; n > s.opts.MaxLineBytes {
			if err == nil {
				err = &lineTooLong{topic: r.Topic, partition: r.Partition, offset: r.Offset, bytes: n, limit: s.opts.MaxLineBytes}
			}
			err.rowsOverLimit++
		}
	}
	if err != nil {
		s.m.rowsRefused.WithLabelValues("line_too_long").Add(float64(err.rowsOverLimit))
		return err
	}
	return nil
}

// WriteDeadLetters implements the processor's dead-letter sink
// (process.DeadLetterStore) as the DuckDB store's dead_letters table does:
// each record the store refused is written, with the reason and its first
// store.DeadLetterRawBytes, to the dead-letter account (Options.DeadLetters)
// under its own id (wl_topic, wl_partition, wl_offset). The durability
// tracker verifies it with the partition's rows, so the partition's offset
// is committed past a dead letter only once the dead letter is durable.
func (s *Store) WriteDeadLetters(ctx context.Context, dls []store.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	rows := deadLetterRows(dls)
	sentAt := time.Now()
	s.tracker.attempted(rows)
	if err := s.insertDeadLetters(ctx, dls); err != nil {
		return err
	}
	s.tracker.sent(rows, sentAt)
	return nil
}

// deadLetterRows are the rows the tracker verifies for dls: their ids at
// the dead letters' times.
func deadLetterRows(dls []store.DeadLetter) []store.Row {
	rows := make([]store.Row, len(dls))
	for i, d := range dls {
		rows[i] = store.Row{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Event: event.Event{Time: deadLetterTime(d)}}
	}
	return rows
}

func deadLetterTime(d store.DeadLetter) time.Time {
	if d.Time.IsZero() {
		return time.Now()
	}
	return d.Time
}

// insertDeadLetters writes dls to the dead-letter account, without telling
// the tracker.
func (s *Store) insertDeadLetters(ctx context.Context, dls []store.DeadLetter) error {
	var raw []byte
	for _, d := range dls {
		body := d.Raw
		if len(body) > store.DeadLetterRawBytes {
			body = body[:store.DeadLetterRawBytes]
		}
		body = bytes.ToValidUTF8(body, []byte(string(utf8.RuneError)))
		raw = append(raw, `{"_time":"`...)
		raw = deadLetterTime(d).UTC().AppendFormat(raw, time.RFC3339Nano)
		raw = append(raw, `","_msg":`...)
		raw = event.AppendString(raw, d.Reason)
		raw = append(raw, `,"`+fieldTopic+`":`...)
		raw = event.AppendString(raw, d.Topic)
		raw = append(raw, `,"`+fieldPartition+`":`...)
		raw = strconv.AppendInt(raw, int64(d.Partition), 10)
		raw = append(raw, `,"`+fieldOffset+`":`...)
		raw = strconv.AppendInt(raw, d.Offset, 10)
		raw = append(raw, `,"`+fieldDeadRawBytes+`":`...)
		raw = strconv.AppendInt(raw, int64(len(d.Raw)), 10)
		raw = append(raw, `,"`+fieldDeadRaw+`":`...)
		raw = event.AppendString(raw, string(body))
		raw = append(raw, "}\n"...)
	}
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	enc.wire = enc.zw.EncodeAll(raw, enc.wire[:0])
	if err := s.insertTo(inAccount(ctx, s.opts.DeadLetters), deadLetterStreams, enc.wire, nil, nil); err != nil {
		return fmt.Errorf("write %d dead letters to VictoriaLogs account %s (--store-dead-letters): %w", len(dls), s.opts.DeadLetters, err)
	}
	s.m.deadLetters.Add(float64(len(dls)))
	return nil
}

// outsideRetention splits off the rows VictoriaLogs would drop with a 200
// for their _time: before the first day it retains (-retentionPeriod,
// counted from the start of today, UTC) or past -futureRetention from it.
// A minute of margin on each side takes clock skew toward refusing.
func (s *Store) outsideRetention(rows []store.Row, now time.Time) (dead []store.DeadLetter) {
	day := now.UTC().Truncate(24 * time.Hour)
	oldest := day.Add(-s.opts.Retention).Add(time.Minute)
	newest := day.Add(s.opts.FutureRetention).Add(-time.Minute)
	var line []byte
	for i := range rows {
		t := rows[i].Event.Time
		if !t.Before(oldest) && t.Before(newest) {
			continue
		}
		r := &rows[i]
		line = appendRow(line[:0], r, -1)
		dead = append(dead, store.DeadLetter{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: now,
			Reason: fmt.Sprintf("event time %s is outside what VictoriaLogs retains, %s to %s (-retentionPeriod %s, -futureRetention %s; --store-retention, --store-future-retention): it would drop the row",
				t.UTC().Format(time.RFC3339), oldest.Format(time.RFC3339), newest.Format(time.RFC3339), s.opts.Retention, s.opts.FutureRetention),
			Raw: append([]byte(nil), bytes.TrimSuffix(line, []byte("\n"))...)})
	}
	return dead
}

// deadLetterStreams are the stream fields of dead letters.
var deadLetterStreams = []string{fieldTopic, fieldPartition}
