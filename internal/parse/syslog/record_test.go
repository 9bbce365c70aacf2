package syslog

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
)

// viaJSON is what the listener's JSON path stores for line: parse, the
// attribute limit, the sender's members, event.AppendJSON, and the
// processor's event.DecodeRecord.
func viaJSON(t testing.TB, line []byte, m *RecordMeta) (event.Event, error) {
	t.Helper()
	p := Parser{Location: m.Location}
	var e event.Event
	perr := p.Parse(line, m.Recv, &e)
	if m.MaxAttributes > 0 && p.Attributes() > m.MaxAttributes {
		e.Attrs = AppendLimitError(nil, p.Attributes(), m.MaxAttributes)
		if perr == nil {
			perr = ErrAttributeLimit
		}
	}
	if m.Peer.Addr().IsValid() {
		e.Attrs = event.WithMembers(nil, e.Attrs, event.AppendClientAddr(nil, m.Peer))
	}
	rec := event.AppendJSON(nil, &e)
	var fp fastjson.Parser
	var arena event.Arena
	var out event.Event
	if err := event.DecodeRecord(&fp, rec, &arena, &out); err != nil {
		t.Fatalf("the JSON path's own record does not decode: %v\n%s", err, rec)
	}
	return out, perr
}

func sameEvent(a, b *event.Event) bool {
	return a.Time.Equal(b.Time) && a.Time.Location() == b.Time.Location() &&
		a.Service == b.Service && a.Level == b.Level && a.Message == b.Message &&
		a.Host == b.Host && a.TraceID == b.TraceID && a.SpanID == b.SpanID &&
		a.Tenant == b.Tenant && bytes.Equal(a.Attrs, b.Attrs)
}

func checkRecord(t *testing.T, d *RecordDecoder, line []byte, m *RecordMeta) {
	t.Helper()
	want, wantErr := viaJSON(t, line, m)
	rec := AppendRecord([]byte("prefix"), line, m)[len("prefix"):]
	if !IsRecord(rec) {
		t.Fatalf("IsRecord(%q) = false", rec[:4])
	}
	var arena event.Arena
	var got event.Event
	perr, err := d.Decode(rec, &arena, &got)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if perr != wantErr {
		t.Errorf("line %q: parse error %v, the JSON path had %v", line, perr, wantErr)
	}
	if !sameEvent(&got, &want) {
		t.Errorf("line %q (peer %v, zone %v, limit %d):\nraw  %+v\n     attrs %s\njson %+v\n     attrs %s",
			line, m.Peer, m.Location, m.MaxAttributes, got, got.Attrs, want, want.Attrs)
	}
}

// TestRecordMatchesJSON: every corpus line, from IPv4, IPv6 and unknown
// senders, in UTC and a zone with daylight saving, with and without an
// attribute limit, decodes from its raw record to exactly the event the
// JSON record would have given — what is stored and queried is the same.
func TestRecordMatchesJSON(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	peers := []netip.AddrPort{{}, netip.MustParseAddrPort("192.0.2.7:51514"), netip.MustParseAddrPort("[2001:db8::1]:514"),
		netip.MustParseAddrPort("[::ffff:198.51.100.1]:0")}
	var d RecordDecoder
	for _, c := range loadCorpus(t) {
		for _, loc := range []*time.Location{nil, ny, time.Local} {
			for _, peer := range peers {
				for _, limit := range []int{0, 2} {
					checkRecord(t, &d, c.raw(), &RecordMeta{Recv: c.Recv, Peer: peer, Location: loc, MaxAttributes: limit})
				}
			}
		}
	}
}

func TestRecordMalformed(t *testing.T) {
	var d RecordDecoder
	good := AppendRecord(nil, []byte("<13>hi"), &RecordMeta{Recv: time.Unix(1, 0), Peer: netip.MustParseAddrPort("[2001:db8::1]:514"), Location: time.FixedZone("X", 3600)})
	for name, b := range map[string][]byte{
		"empty":       {},
		"json":        []byte(`{"ts":"2024-01-01T00:00:00Z"}`),
		"short":       good[:10],
		"cut address": good[:20],
		"version":     append([]byte{0, 'S', 9}, good[3:]...),
		"family":      append(append([]byte{}, good[:12]...), 5),
	} {
		var arena event.Arena
		var e event.Event
		if _, err := d.Decode(b, &arena, &e); !errors.Is(err, ErrRecord) {
			t.Errorf("%s: err %v, want ErrRecord", name, err)
		}
	}
	// A fixed zone is named "X", which no tz database knows: the error says so.
	var arena event.Arena
	var e event.Event
	if _, err := d.Decode(good, &arena, &e); !errors.Is(err, ErrRecord) {
		t.Errorf("unknown zone: err %v, want ErrRecord", err)
	}
}

// FuzzRecord: any line makes a raw record that decodes to the JSON path's
// event, and any bytes given to Decode give an event or ErrRecord, never a
// panic.
func FuzzRecord(f *testing.F) {
	addCorpusSeeds(f, Format5424)
	addCorpusSeeds(f, Format3164)
	f.Add([]byte{0, 'S', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 6, 1})
	var d RecordDecoder
	f.Fuzz(func(t *testing.T, b []byte) {
		var arena event.Arena
		var e event.Event
		if _, err := d.Decode(b, &arena, &e); err != nil && !errors.Is(err, ErrRecord) {
			t.Fatalf("Decode error %v is not ErrRecord", err)
		}
		checkRecord(t, &d, b, &RecordMeta{Recv: time.Date(2024, 3, 10, 7, 30, 0, 0, time.UTC),
			Peer: netip.MustParseAddrPort("203.0.113.9:40000"), MaxAttributes: 3})
	})
}
