package syslog

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestMaxAttributes: a message with more structured-data parameters than
// --max-attributes is kept with its text but without them, says why, and
// is counted; a message within the limit keeps its attributes.
func TestMaxAttributes(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) { testMaxAttributes(t, raw) })
	}
}

func testMaxAttributes(t *testing.T, raw bool) {
	rec := newRecorder(t)
	cfg := testConfig()
	cfg.TCPAddr = ""
	cfg.UDPRaw = raw
	cfg.MaxAttributes = 10
	s := start(t, rec, cfg)
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var sd strings.Builder
	sd.WriteString("[x")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&sd, ` p%d="v"`, i)
	}
	sd.WriteString("]")
	fmt.Fprintf(u, "<13>1 2024-01-01T00:00:00Z h a - - %s too many", sd.String())
	fmt.Fprint(u, `<13>1 2024-01-01T00:00:00Z h a - - [x a="1"] fine`)
	recs := rec.waitFor(t, 2, 10*time.Second)
	if recs[0].Message != "too many" || recs[0].Attrs["limit_error"] == nil || recs[0].Attrs["sd"] != nil {
		t.Errorf("over the limit: %+v", recs[0])
	}
	if recs[1].Message != "fine" || recs[1].Attrs["sd"] == nil {
		t.Errorf("within the limit: %+v", recs[1])
	}
	if cfg.UDPRaw {
		return // the processor applies the limit and counts it (wirelog_processor_syslog_parse_errors_total)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metrics(t, s)[`wirelog_syslog_parse_errors_total{reason=max_attributes,transport=udp}`] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("max_attributes not counted: %v", metrics(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
