package process

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// TestRawSyslogRecords: raw syslog records (UDP with --syslog-udp-raw) in
// a real embedded log, beside the JSON records the ingest writes without
// it, are stored by a real store as the same events — queries cannot tell
// which form a line came in — and a line whose header does not parse is
// stored too and counted by reason.
func TestRawSyslogRecords(t *testing.T) {
	lg, st := openRealLog(t, store.Options{})
	meta := sysparse.RecordMeta{Recv: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Peer: netip.MustParseAddrPort("198.18.0.9:40514"), Location: time.UTC}
	lines := []string{
		`<165>1 2026-03-01T11:59:59.5Z web01 nginx 812 ID7 [req@32473 id="a1" path="/x"] GET /x 200`,
		`<13>Mar  1 11:59:58 web02 sshd[99]: Accepted publickey for ops`,
		`no header at all`,
	}
	var recs []transport.Record
	for _, l := range lines {
		// The JSON record the listener writes with --syslog-udp-raw=false.
		p := sysparse.Parser{Location: meta.Location}
		var e event.Event
		p.Parse([]byte(l), meta.Recv, &e)
		e.Attrs = event.WithMembers(nil, e.Attrs, event.AppendClientAddr(nil, meta.Peer))
		recs = append(recs, transport.Record{Value: event.AppendJSON(nil, &e)},
			transport.Record{Value: sysparse.AppendRecord(nil, []byte(l), &meta)})
	}
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
		js, raw := byOffset[int64(2*i)], byOffset[int64(2*i+1)]
		if raw.Message == "" || !raw.Time.Equal(js.Time) || raw.Service != js.Service || raw.Level != js.Level ||
			raw.Message != js.Message || raw.Host != js.Host || !bytes.Equal(raw.Attrs, js.Attrs) {
			t.Errorf("%q:\nraw  %+v\njson %+v", l, raw, js)
		}
		if !bytes.Contains(raw.Attrs, []byte(`"client.address":"198.18.0.9"`)) {
			t.Errorf("%q: attrs %s lack the sender", l, raw.Attrs)
		}
	}
	if n := testutil.ToFloat64(p.m.syslogParse.WithLabelValues("pri")); n != 1 {
		t.Errorf("wirelog_processor_syslog_parse_errors_total{reason=pri} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(p.m.errors.WithLabelValues("decode")); n != 0 {
		t.Errorf("%v decode errors", n)
	}
}
