package syslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

var update = flag.Bool("update", false, "rewrite the want fields of testdata/corpus.jsonl from the parser (review the diff!)")

const corpusPath = "testdata/corpus.jsonl"

// corpusCase is one line of testdata/corpus.jsonl: a real-world message
// (or a malformed one), when it was received, and what the event must be.
type corpusCase struct {
	Name       string    `json:"name"`
	Vendor     string    `json:"vendor"`
	Line       string    `json:"line,omitempty"`
	LineBase64 []byte    `json:"line_base64,omitempty"` // for bytes JSON cannot carry
	Recv       time.Time `json:"recv"`
	Want       *want     `json:"want,omitempty"`
}

type want struct {
	Format  string          `json:"format"`
	Error   string          `json:"error,omitempty"`
	Time    time.Time       `json:"time"`
	Level   string          `json:"level"`
	Service string          `json:"service,omitempty"`
	Host    string          `json:"host,omitempty"`
	Message string          `json:"message"`
	Attrs   json.RawMessage `json:"attrs,omitempty"`
}

func (c *corpusCase) raw() []byte {
	if c.LineBase64 != nil {
		return c.LineBase64
	}
	return []byte(c.Line)
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	f, err := os.Open(corpusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c corpusCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s line %d: %v", corpusPath, len(cases)+1, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

var formatNames = [...]string{FormatUnknown: "unknown", Format5424: "rfc5424", Format3164: "rfc3164"}

// got parses c the way the listeners do and describes the result as a want.
func (c *corpusCase) got(p *Parser, e *event.Event) *want {
	err := p.Parse(c.raw(), c.Recv, e)
	w := &want{
		Format:  formatNames[p.Format()],
		Error:   Reason(err),
		Time:    e.Time.UTC(),
		Level:   e.Level.String(),
		Service: e.Service,
		Host:    e.Host,
		Message: strings.ToValidUTF8(e.Message, "\uFFFD"),
	}
	if len(e.Attrs) > 0 {
		w.Attrs = append(json.RawMessage(nil), e.Attrs...)
	}
	return w
}

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func (w *want) equal(o *want) bool {
	return w.Format == o.Format && w.Error == o.Error && w.Time.Equal(o.Time) &&
		w.Level == o.Level && w.Service == o.Service && w.Host == o.Host &&
		w.Message == o.Message && sameJSON(w.Attrs, o.Attrs)
}

// TestCorpus parses every real-world line of testdata/corpus.jsonl and
// checks every field of the event, including the best-effort form of the
// malformed ones (raw line kept, parse error named).
func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 60 {
		t.Fatalf("corpus has %d cases, want at least 60", len(cases))
	}
	p := Parser{Location: time.UTC}
	var e event.Event
	var out bytes.Buffer
	vendors := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		vendors[c.Vendor] = true
		got := c.got(&p, &e)
		if !json.Valid(e.Attrs) && len(e.Attrs) > 0 {
			t.Errorf("%s: attrs are not valid JSON: %s", c.Name, e.Attrs)
		}
		if rec := event.AppendJSON(nil, &e); !json.Valid(rec) {
			t.Errorf("%s: encoded event is not valid JSON: %s", c.Name, rec)
		}
		if *update {
			c.Want = got
		} else if c.Want == nil {
			t.Errorf("%s: no want in %s (run with -update and review)", c.Name, corpusPath)
		} else if !c.Want.equal(got) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(c.Want)
			t.Errorf("%s (%s):\n got %s\nwant %s", c.Name, c.Vendor, g, w)
		}
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}
	if len(vendors) < 30 {
		t.Errorf("corpus covers %d sources, want at least 30", len(vendors))
	}
	if *update {
		if err := os.WriteFile(corpusPath, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
