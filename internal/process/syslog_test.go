package process

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/event"
	sysparse "github.com/wirelog/wirelog/internal/parse/syslog"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
	"github.com/wirelog/wirelog/internal/transport/disklog"
)

// TestRawSyslogRecords: raw syslog records (UDP with --syslog-udp-raw) in
// a real embedded log, beside the JSON records the ingest writes without
// it, are stored by a real store as the same events — queries cannot tell
// which form a line came in — and a line whose header does not parse is
// stored too and counted by reason.
func TestRawSyslogRecords(t *testing.T) {
	dir := t.TempDir()
	lg, err := disklog.Open(filepath.Join(dir, "log"), disklog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	st, err := store.Open(filepath.Join(dir, "wirelog.duckdb"), store.Options{DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
	cons := lg.Consumer("test", st.NextOffset)
	defer cons.Close()
	p := New(cons, st, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		next, ok, err := st.NextOffset(context.Background(), transport.TopicPartition{Topic: disklog.DefaultTopic, Partition: 0})
		if err != nil {
			t.Fatal(err)
		}
		if ok && next == int64(len(recs)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor did not reach offset %d (at %d)", len(recs), next)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
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
