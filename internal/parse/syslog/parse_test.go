package syslog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestYearFromReceiveTime covers RFC 3164 timestamps, which have no year:
// the year is the one closest to the receive time, across New Year both ways.
func TestYearFromReceiveTime(t *testing.T) {
	for _, tc := range []struct{ line, recv, want string }{
		{"<13>Dec 31 23:59:58 h a: x", "2024-01-01T00:00:02Z", "2023-12-31T23:59:58Z"},
		{"<13>Jan  1 00:00:03 h a: x", "2023-12-31T23:59:59Z", "2024-01-01T00:00:03Z"},
		{"<13>Jun 15 12:00:00 h a: x", "2024-06-15T12:00:05Z", "2024-06-15T12:00:00Z"},
		{"<13>Aug  1 00:00:00 h a: x", "2024-01-10T00:00:00Z", "2023-08-01T00:00:00Z"}, // > half a year ahead: last year
		{"<13>Feb 29 12:00:00 h a: x", "2024-03-01T00:00:00Z", "2024-02-29T12:00:00Z"},
		{"<13>Mar  3 2019 01:02:03 h a: x", "2024-03-01T00:00:00Z", "2019-03-03T01:02:03Z"}, // explicit year wins
	} {
		var p Parser
		var e event.Event
		if err := p.Parse([]byte(tc.line), mustTime(t, tc.recv), &e); err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if want := mustTime(t, tc.want); !e.Time.Equal(want) {
			t.Errorf("%q received %s: time %s, want %s", tc.line, tc.recv, e.Time, want)
		}
	}
}

// TestLocation reads zone-less RFC 3164 timestamps in the configured zone,
// and leaves RFC 5424 offsets and Cisco's "UTC" alone.
func TestLocation(t *testing.T) {
	loc := time.FixedZone("UTC+2", 2*3600)
	p := Parser{Location: loc}
	recv := mustTime(t, "2024-01-05T09:00:00Z")
	for _, tc := range []struct{ line, want string }{
		{"<13>Jan  5 10:15:32 h a: x", "2024-01-05T08:15:32Z"},
		{"<13>2024-01-05T10:15:32+01:00 h a: x", "2024-01-05T09:15:32Z"},
		{"<13>1 2024-01-05T10:15:32-03:00 h a - - - x", "2024-01-05T13:15:32Z"},
		{"<187>1: Jan  5 2024 10:15:32.5 UTC: %SYS-3-X: y", "2024-01-05T10:15:32.5Z"},
		{"<189>date=2024-01-05 time=10:15:32 devname=fgt", "2024-01-05T08:15:32Z"},
	} {
		var e event.Event
		if err := p.Parse([]byte(tc.line), recv, &e); err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if want := mustTime(t, tc.want); !e.Time.Equal(want) {
			t.Errorf("%q: time %s, want %s", tc.line, e.Time, want)
		}
	}
}

// TestBestEffortNeverLoses checks that every malformed message still yields
// an event carrying the raw line, the receive time and the reason.
func TestBestEffortNeverLoses(t *testing.T) {
	recv := mustTime(t, "2024-01-05T10:00:00Z")
	for _, tc := range []struct {
		line string
		err  error
	}{
		{"<13>1 2024-01-05T10:15:32 host app - - - no zone", ErrTimestamp},
		{"<13>1 2024-01-05T10:15:32Z host", ErrHeader},
		{"<13>1 - host app - - [x a=\"1\"", ErrStructuredData},
		{"<13>1 - host app - - [x a=\"1\"]trailing", ErrStructuredData},
		{"<999>hello", ErrPRI},
		{"no header at all", ErrPRI},
	} {
		var p Parser
		var e event.Event
		err := p.Parse([]byte(tc.line+"\n"), recv, &e)
		if err != tc.err {
			t.Errorf("%q: err %v, want %v", tc.line, err, tc.err)
		}
		if e.Message != tc.line || !e.Time.Equal(recv) || p.Format() != FormatUnknown {
			t.Errorf("%q: best-effort event %+v, want raw line and receive time", tc.line, e)
		}
		var a map[string]any
		if err := json.Unmarshal(e.Attrs, &a); err != nil || a["parse_error"] != Reason(tc.err) {
			t.Errorf("%q: attrs %s, want parse_error %q", tc.line, e.Attrs, Reason(tc.err))
		}
	}
	var p Parser
	var e event.Event
	if err := p.Parse([]byte("\r\n"), recv, &e); err != ErrEmpty {
		t.Errorf("empty line: err %v, want ErrEmpty", err)
	}
}

// TestReuseEvent parses a long message with many attributes and then a
// short one into the same Event: nothing of the first may leak into the second.
func TestReuseEvent(t *testing.T) {
	var p Parser
	var e event.Event
	recv := time.Now()
	long := `<165>1 2003-10-11T22:14:15.003Z mymachine evntslog 77 ID47 [a@1 x="1" y="2"][b@2 z="\"q\""] BOMmsg`
	if err := p.Parse([]byte(long), recv, &e); err != nil {
		t.Fatal(err)
	}
	if err := p.Parse([]byte("<14>Jan  5 10:15:32 web01 app: short"), recv, &e); err != nil {
		t.Fatal(err)
	}
	if string(e.Attrs) != `{"facility":"user","severity":"info"}` || e.Message != "short" || e.Service != "app" {
		t.Errorf("reused event: %+v attrs %s", e, e.Attrs)
	}
}

// TestParseAllocs holds the hot path to zero allocations per message once
// the Event's attribute buffer has grown, for every corpus line.
func TestParseAllocs(t *testing.T) {
	cases := loadCorpus(t)
	p := Parser{Location: time.FixedZone("CET", 3600)}
	var e event.Event
	lines := make([][]byte, len(cases))
	for i := range cases {
		lines[i] = cases[i].raw()
		_ = p.Parse(lines[i], cases[i].Recv, &e)
	}
	for i := range cases {
		recv := cases[i].Recv
		if n := testing.AllocsPerRun(20, func() { _ = p.Parse(lines[i], recv, &e) }); n != 0 {
			t.Errorf("%s: %.1f allocs per Parse, want 0", cases[i].Name, n)
		}
	}
}

// TestAppendStringFastPath checks the eight-bytes-at-a-time escape check
// against event.AppendString for every byte value at every position.
func TestAppendStringFastPath(t *testing.T) {
	base := []byte("abcdefghijklmnopqrstu")
	for c := 0; c < 256; c++ {
		for pos := range base {
			s := append([]byte(nil), base...)
			s[pos] = byte(c)
			if got, want := appendString(nil, string(s)), event.AppendString(nil, string(s)); string(got) != string(want) {
				t.Fatalf("byte %#x at %d: %s, want %s", c, pos, got, want)
			}
		}
	}
}
