package syslog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

func addCorpusSeeds(f *testing.F, want Format) {
	for _, c := range loadCorpus(f) {
		var p Parser
		var e event.Event
		_ = p.Parse(c.raw(), c.Recv, &e)
		if p.Format() == want || p.Format() == FormatUnknown {
			f.Add(c.raw())
		}
	}
}

// checkParse is the property every input must keep: no panic, valid JSON
// out, and nothing lost — a failed header leaves the whole line as Message.
func checkParse(t *testing.T, line []byte) {
	recv := time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC)
	p := Parser{Location: time.FixedZone("X", -5*3600)}
	var e event.Event
	err := p.Parse(line, recv, &e)
	if len(e.Attrs) > 0 && !json.Valid(e.Attrs) {
		t.Fatalf("attrs not valid JSON: %q", e.Attrs)
	}
	if rec := event.AppendJSON(nil, &e); !json.Valid(rec) {
		t.Fatalf("record not valid JSON: %q", rec)
	}
	if e.Time.IsZero() {
		t.Fatal("zero time")
	}
	if err != nil && err != ErrEmpty && e.Message != string(trimLineEnd(line)) {
		t.Fatalf("error %v but message %q is not the raw line", err, e.Message)
	}
	// Parsing again into the used Event gives the same event.
	first := string(event.AppendJSON(nil, &e))
	_ = p.Parse(line, recv, &e)
	if again := string(event.AppendJSON(nil, &e)); again != first {
		t.Fatalf("reparse differs:\n%s\n%s", first, again)
	}
}

func FuzzParse5424(f *testing.F) {
	addCorpusSeeds(f, Format5424)
	f.Add([]byte(`<1>1 2024-02-29T23:59:60.999999999-23:59 h a p m [a b="\\\"\]" c=""][d] `))
	f.Fuzz(func(t *testing.T, line []byte) { checkParse(t, line) })
}

func FuzzParse3164(f *testing.F) {
	addCorpusSeeds(f, Format3164)
	f.Add([]byte("<0>: 2024 Feb 29 23:59:60.1 GMT: 1: h: .Dec 31 2023 00:00:00: %A-1-B : k=\"v\\\" x=\"\""))
	f.Fuzz(func(t *testing.T, line []byte) { checkParse(t, line) })
}

// FuzzFramer feeds arbitrary streams in arbitrary chunk sizes: the framer
// must end, never return more than the maximum, never return more bytes than
// it read, and return every message of a well-formed octet-counted stream.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("5 <13>a5 <13>b10 <13>c\nd\ne\n"), uint16(100), uint8(3))
	f.Add([]byte("<13>a\n<13>b\r\n\n<13>c"), uint16(4), uint8(1))
	f.Add([]byte("10 <13>abcdef5 <13>x"), uint16(6), uint8(2))
	f.Add([]byte("99999999999 x\n12 \n0 1 "), uint16(3), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, chunk uint8) {
		limit := int(max%2048) + 1
		step := int(chunk) + 1
		fr := NewFramer(&chunkReader{data, step}, limit)
		total := 0
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more messages than input bytes")
			}
			m, _, err := fr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m) > limit {
				t.Fatalf("message of %d bytes over the maximum %d", len(m), limit)
			}
			total += len(m)
		}
		if total > len(data) {
			t.Fatalf("returned %d bytes from %d", total, len(data))
		}

		// Round trip: split data on NUL into messages, octet-count them.
		var stream bytes.Buffer
		msgs := bytes.Split(data, []byte{0})
		for _, m := range msgs {
			fmt.Fprintf(&stream, "%d %s", len(m), m)
		}
		fr = NewFramer(&chunkReader{stream.Bytes(), step}, limit)
		for i, want := range msgs {
			m, tr, err := fr.Next()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if len(want) > limit {
				if !tr || !bytes.Equal(m, want[:limit]) {
					t.Fatalf("message %d: %q truncated=%v, want %q cut", i, m, tr, want[:limit])
				}
				continue
			}
			if tr || !bytes.Equal(m, want) {
				t.Fatalf("message %d: %q truncated=%v, want %q", i, m, tr, want)
			}
		}
		if _, _, err := fr.Next(); err != io.EOF {
			t.Fatalf("after last message: %v, want EOF", err)
		}
	})
}
