package process

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// TestBinaryEventRecords: binary event records (HTTP ingest's default on
// the embedded log) beside the JSON records of the same events, in a real
// embedded log, are stored by a real store as the same events, with the
// same size (what the rollups' bytes sum); a damaged
// binary record is kept as an error event, never dropped.
func TestBinaryEventRecords(t *testing.T) {
	lg, st := openRealLog(t, store.Options{})
	lines := []string{
		`{"ts":"2026-03-01T11:59:59.5Z","service":"checkout","level":"warn","message":"card declined","host":"web-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","status":402}`,
		`{"message":"no time: arrival time","tenant":"kept as an attribute"}`,
		`{"service":"\xff bad utf-8","message":"tab\there","nested":{"a":[1,"x",null]}}`,
	}
	arrival := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []transport.Record
	var d event.Decoder
	for _, l := range lines {
		var e event.Event
		if err := d.Decode([]byte(l), arrival, &e); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, transport.Record{Value: event.AppendRecord(nil, &e, event.RecordJSON)},
			transport.Record{Value: event.AppendRecord(nil, &e, event.RecordBinary)})
	}
	damaged := event.AppendRecord(nil, &event.Event{Time: arrival, Message: "cut"}, event.RecordBinary)
	recs = append(recs, transport.Record{Value: damaged[:len(damaged)-2]})
	if err := lg.Producer().Produce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	p := processUntil(t, lg, st, int64(len(recs)))
	res, err := st.Search(context.Background(), store.SearchRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byOffset := map[int64]store.StoredEvent{}
	for _, e := range res.Events {
		byOffset[e.Offset] = e
	}
	for i, l := range lines {
		js, bin := byOffset[int64(2*i)], byOffset[int64(2*i+1)]
		if bin.Time.IsZero() || !bin.Time.Equal(js.Time) || bin.Service != js.Service || bin.Level != js.Level ||
			bin.Message != js.Message || bin.Host != js.Host || bin.TraceID != js.TraceID || !bytes.Equal(bin.Attrs, js.Attrs) || bin.Bytes != js.Bytes {
			t.Errorf("%q:\nbinary %+v\njson   %+v", l, bin, js)
		}
	}
	bad := byOffset[int64(len(recs)-1)]
	if bad.Service != "wirelog" || !bytes.Contains(bad.Attrs, []byte("malformed binary event record")) {
		t.Errorf("damaged record stored as %+v", bad)
	}
	if n := testutil.ToFloat64(p.m.errors.WithLabelValues("decode")); n != 1 {
		t.Errorf("%v decode errors, want 1 (the damaged record)", n)
	}
}
