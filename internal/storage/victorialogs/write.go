package victorialogs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// Field names of a wirelog row in VictoriaLogs besides _time, _msg and the
// event's own (service, host, tenant, level, trace_id, span_id, attrs.*).
const (
	fieldTopic     = "wl_topic"
	fieldPartition = "wl_partition"
	fieldOffset    = "wl_offset"
	fieldBytes     = "wl_bytes"
	fieldAttrs     = "wl_attrs"
	// fieldReplay marks a row that may already be stored (a replay); its
	// value names the replay zone (the zone's first offset). Queries collapse
	// duplicates only among zones' rows, so counting stays cheap.
	fieldReplay = "wl_replay"
)

// ContentType is what /insert/jsonline needs: without it VictoriaLogs
// answers 200 and stores nothing.
const ContentType = "application/stream+json"

// defaultMsgValue is what VictoriaLogs stores as _msg when a row has none
// (its -defaultMsgValue); read back, it is wirelog's empty message.
const defaultMsgValue = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field"

// appendRow encodes one row as a JSON line; zone >= 0 marks it as a
// possible replay in that zone.
func appendRow(b []byte, r *store.Row, zone int64) []byte {
	e := &r.Event
	b = append(b, `{"_time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","_msg":`...)
	b = event.AppendString(b, e.Message)
	b = append(b, `,"service":`...)
	b = event.AppendString(b, e.Service)
	b = append(b, `,"host":`...)
	b = event.AppendString(b, e.Host)
	b = append(b, `,"tenant":`...)
	b = event.AppendString(b, e.Tenant)
	b = append(b, `,"level":"`...)
	b = append(b, e.Level.String()...)
	b = append(b, '"')
	if e.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = event.AppendString(b, e.TraceID)
	}
	if e.SpanID != "" {
		b = append(b, `,"span_id":`...)
		b = event.AppendString(b, e.SpanID)
	}
	b = append(b, `,"`+fieldTopic+`":`...)
	b = event.AppendString(b, r.Topic)
	b = append(b, `,"`+fieldPartition+`":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"`+fieldOffset+`":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"`+fieldBytes+`":`...)
	b = strconv.AppendInt(b, int64(r.Bytes), 10)
	if zone >= 0 {
		b = append(b, `,"`+fieldReplay+`":"`...)
		b = strconv.AppendInt(b, zone, 10)
		b = append(b, '"')
	}
	if a := bytes.TrimSpace(e.Attrs); len(a) > 2 && a[0] == '{' {
		// attrs as fields (VictoriaLogs flattens the object to attrs.<key>)
		// for LogsQL filters, and verbatim so they come back with their types.
		b = append(b, `,"attrs":`...)
		b = append(b, a...)
		b = append(b, `,"`+fieldAttrs+`":`...)
		b = event.AppendString(b, string(a))
	}
	return append(b, "}\n"...)
}

// encoder holds the buffers of one insert; pooled.
type encoder struct {
	raw, wire []byte
	zw        *zstd.Encoder
}

var encoders = sync.Pool{New: func() any {
	zw, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	return &encoder{zw: zw}
}}

// insertError is one failed insert attempt; retry says whether another
// attempt may succeed.
type insertError struct {
	kind  string
	retry bool
	err   error
}

func (e *insertError) Error() string { return e.err.Error() }

// Unwrap makes a retryable failure (network, 5xx, 429) a
// storage.ErrUnavailable: it says nothing about the rows, so the processor
// retries the batch whole and never dead-letters it.
func (e *insertError) Unwrap() []error {
	if e.retry {
		return []error{e.err, storage.ErrUnavailable}
	}
	return []error{e.err}
}

// Write sends rows to /insert/jsonline (zstd, retried with backoff) and
// registers them with the durability tracker. It returns when VictoriaLogs
// answered 2xx: the rows are then sent, not yet durable (see Durable).
func (s *Store) Write(ctx context.Context, rows []store.Row) (int, error) {
	select {
	case <-s.stop:
		return 0, errClosed
	default:
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if err := s.checkLines(rows); err != nil {
		return 0, err
	}
	if err := s.tracker.waitRoom(ctx, len(rows)); err != nil {
		s.m.insertErrors.WithLabelValues("backpressure").Inc()
		return 0, err
	}
	// Rows that may already be stored (a replay after a rewind, a retried
	// batch, or a partition taken over from another processor) are marked
	// with their replay zone.
	zones, err := s.tracker.zones(ctx, s, rows)
	if err != nil {
		return 0, err
	}
	sentAt := time.Now()
	// A failed attempt may have been stored all the same (a timeout after
	// VictoriaLogs took the rows): from then on every row of the batch is a
	// possible replay.
	s.tracker.attempted(rows)
	// Rows VictoriaLogs would drop for their time go to the dead letters
	// instead, so they neither vanish nor stall the partition as a hole.
	keep, tracked := rows, rows
	dead := s.outsideRetention(rows, sentAt)
	if len(dead) > 0 {
		keep = make([]store.Row, 0, len(rows)-len(dead))
		// The tracker looks for each dead letter at its own time.
		tracked = make([]store.Row, len(rows))
		isDead := make(map[[2]int64]bool, len(dead))
		for _, d := range dead {
			isDead[[2]int64{int64(d.Partition), d.Offset}] = true
		}
		for i := range rows {
			tracked[i] = rows[i]
			if isDead[[2]int64{int64(rows[i].Partition), rows[i].Offset}] {
				tracked[i].Event = event.Event{Time: sentAt}
			} else {
				keep = append(keep, rows[i])
			}
		}
		if err := s.insertDeadLetters(ctx, dead); err != nil {
			s.watchFailed(rows)
			return 0, err
		}
		s.m.rowsRefused.WithLabelValues("time_outside_retention").Add(float64(len(dead)))
		s.log.Warn("rows outside VictoriaLogs' retention went to the dead letters", "rows", len(dead), "first", dead[0].Reason)
	}
	// One insert per VictoriaLogs account (--store-tenants): the account is
	// a header of the request, not a field of the row.
	if len(keep) > 0 {
		for _, g := range s.byAccount(keep) {
			if err := s.writeAccount(ctx, g.acct, g.rows, zones); err != nil {
				s.watchFailed(rows)
				return 0, err
			}
		}
	}
	// The dead letters and the rows are verified together, in offset order.
	s.tracker.sent(tracked, sentAt)
	return len(rows), nil
}

// accountRows are the rows of one batch bound for one account.
type accountRows struct {
	acct Account
	rows []store.Row
}

// byAccount splits rows by account, keeping their order; a batch of one
// account (the usual case) is not copied.
func (s *Store) byAccount(rows []store.Row) []accountRows {
	first := s.accountOf(rows[0].Event.Tenant)
	i := 1
	for i < len(rows) && s.accountOf(rows[i].Event.Tenant) == first {
		i++
	}
	if i == len(rows) {
		return []accountRows{{first, rows}}
	}
	var out []accountRows
	idx := map[Account]int{}
	for k := range rows {
		a := s.accountOf(rows[k].Event.Tenant)
		j, ok := idx[a]
		if !ok {
			j = len(out)
			idx[a] = j
			out = append(out, accountRows{acct: a})
		}
		out[j].rows = append(out[j].rows, rows[k])
	}
	return out
}

// writeAccount encodes and inserts the rows of one account.
func (s *Store) writeAccount(ctx context.Context, acct Account, rows []store.Row, zones zoneSet) error {
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	encode := func(zoneOf func(r *store.Row) int64) {
		enc.raw = enc.raw[:0]
		for i := range rows {
			enc.raw = appendRow(enc.raw, &rows[i], zoneOf(&rows[i]))
		}
		enc.wire = enc.zw.EncodeAll(enc.raw, enc.wire[:0])
	}
	encode(zones.of)
	retry := func() { encode(zones.all(rows)) }
	if err := s.insert(inAccount(ctx, acct), enc.wire, retry, func() []byte { return enc.wire }); err != nil {
		return err
	}
	s.m.rowsSent.Add(float64(len(rows)))
	s.m.bytesSent.Add(float64(len(enc.raw)))
	return nil
}

// insert posts one compressed body, with bounded retries; before a retry
// it calls reencode and posts body() instead.
func (s *Store) insert(ctx context.Context, body []byte, reencode func(), next func() []byte) error {
	return s.insertTo(ctx, s.opts.StreamFields, body, reencode, next)
}

// insertTo is insert with the given stream fields.
func (s *Store) insertTo(ctx context.Context, streams []string, body []byte, reencode func(), next func() []byte) error {
	q := "_stream_fields=" + strings.Join(streams, ",") + "&_time_field=_time&_msg_field=_msg"
	target := s.base.String() + "/insert/jsonline?" + q
	backoff := s.opts.RetryBackoff
	var last error
	for attempt := 1; attempt <= s.opts.MaxAttempts; attempt++ {
		start := time.Now()
		err := s.insertOnce(ctx, target, body)
		if err == nil {
			s.m.insertSeconds.Observe(time.Since(start).Seconds())
			return nil
		}
		var ie *insertError
		if !errors.As(err, &ie) {
			ie = &insertError{kind: "network", retry: true, err: err}
		}
		s.m.insertErrors.WithLabelValues(ie.kind).Inc()
		last = ie
		if !ie.retry || attempt == s.opts.MaxAttempts {
			break
		}
		s.log.Warn("insert into VictoriaLogs failed; retrying", "attempt", attempt, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("insert into VictoriaLogs %s: %w (last error: %v)", s.base, ctx.Err(), last)
		case <-s.stop:
			t.Stop()
			return errClosed
		case <-t.C:
		}
		backoff = min(2*backoff, MaxRetryBackoff)
		if reencode != nil {
			reencode()
			body, reencode = next(), nil
		}
	}
	return fmt.Errorf("insert into VictoriaLogs %s (--store-url) failed: %w", s.base, last)
}

func (s *Store) insertOnce(ctx context.Context, target string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &insertError{kind: "request", err: err}
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Content-Encoding", "zstd")
	setAccount(req.Header, s.accountIn(ctx))
	s.m.bytesWire.Add(float64(len(body)))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return &insertError{kind: "network", retry: true, err: err}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return &insertError{kind: "status_5xx", retry: true, err: fmt.Errorf("VictoriaLogs answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
	default:
		return &insertError{kind: "status_4xx", err: fmt.Errorf("VictoriaLogs refused the batch with %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
	}
}
