package store

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/wirelog/wirelog/internal/event"
)

// A segment's text columns hold every value as validString would make it:
// the column-wide ASCII pass must not let through an invalid value, even
// one whose bytes form a valid character with its neighbour's, nor shift
// the values after a repaired one.
func TestSegmentBuilderRepairsInvalidUTF8(t *testing.T) {
	rows := genRows(300, "logs", 0, 0, t0, time.Millisecond)
	rows[3].Event.Message = "bad \xff\xfe bytes"
	rows[10].Event.Message = "ends in a lead byte \xc3"
	rows[11].Event.Message = "\xa9 begins with a continuation byte"
	rows[20].Event.Message = "grüße, valid and not ASCII"
	rows[21].Event.Message = strings.Repeat("x", 31) + "é" + strings.Repeat("y", 40) // across a 32-byte step
	rows[50].Event.TraceID = "\xff"
	rows[60].Event.Attrs = []byte("{\"k\":\"\xff\"}")
	rows[61].Event.Attrs = nil
	rows[62].Event.SpanID = ""
	rows[299].Event.Message = "last \xe2\x82"
	rec := buildSegmentRecord(rows, nil)
	defer rec.Release()
	col := func(name string) *array.String {
		return rec.Column(rec.Schema().FieldIndices(name)[0]).(*array.String)
	}
	msg, trace, span, attrs := col("message"), col("trace_id"), col("span_id"), col("attrs")
	for i, r := range rows {
		e := r.Event
		for _, c := range []struct {
			name      string
			got, want string
		}{
			{"message", msg.Value(i), validString(e.Message)},
			{"trace_id", trace.Value(i), validString(e.TraceID)},
			{"span_id", span.Value(i), validString(e.SpanID)},
		} {
			if c.got != c.want {
				t.Errorf("row %d %s = %q, want %q", i, c.name, c.got, c.want)
			}
		}
		if e.Attrs == nil {
			if !attrs.IsNull(i) {
				t.Errorf("row %d attrs = %q, want null", i, attrs.Value(i))
			}
		} else if got, want := attrs.Value(i), string(validBytes(e.Attrs)); got != want {
			t.Errorf("row %d attrs = %q, want %q", i, got, want)
		}
	}
	if got := msg.Value(10); got != "ends in a lead byte \uFFFD" {
		t.Errorf("a value ending in a lead byte became %q", got)
	}
}

func TestFirstNonASCII(t *testing.T) {
	for _, n := range []int{0, 1, 7, 31, 32, 33, 64, 100} {
		b := []byte(strings.Repeat("a", n))
		if got := firstNonASCII(b); got != n {
			t.Errorf("all-ASCII %d bytes: %d, want %d", n, got, n)
		}
		for i := 0; i < n; i++ {
			c := append([]byte(nil), b...)
			c[i] = 0x80
			if got := firstNonASCII(c); got != i {
				t.Errorf("%d bytes, non-ASCII at %d: got %d", n, i, got)
			}
		}
	}
}

// The packed rollup keys sum like a plain map, including the keys that do
// not pack (far seconds, large dictionary ids).
func TestSegmentRollupsSumLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newSegmentRollups()
	want := map[segmentRollupKey]rollupAgg{}
	base := t0.Unix()
	for i := 0; i < 50000; i++ {
		k := segmentRollupKey{sec: base + rng.Int64N(5), service: rng.Int32N(40), tenant: rng.Int32N(3), level: event.Level(rng.IntN(6))}
		switch i % 1000 {
		case 1:
			k.sec = base - 1<<40
		case 2:
			k.sec = base + 1<<30
		case 3:
			k.service = 1<<rollupServiceBits + rng.Int32N(3)
		case 4:
			k.tenant = 1<<rollupTenantBits + rng.Int32N(3)
		}
		n := rng.Int64N(500)
		r.add(k, n)
		a := want[k]
		a.count++
		a.bytes += n
		want[k] = a
	}
	got := map[segmentRollupKey]rollupAgg{}
	r.each(func(k segmentRollupKey, a rollupAgg) {
		if _, dup := got[k]; dup {
			t.Errorf("key %+v summed twice", k)
		}
		got[k] = a
	})
	if r.len() != len(want) || len(got) != len(want) {
		t.Fatalf("%d keys (len %d), want %d", len(got), r.len(), len(want))
	}
	for k, a := range want {
		if got[k] != a {
			t.Errorf("key %+v: %+v, want %+v", k, got[k], a)
		}
	}
}
