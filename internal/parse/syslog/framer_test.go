package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns at most n bytes per Read, like a slow TCP peer.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

type frame struct {
	msg       string
	truncated bool
}

func readAll(t *testing.T, f *Framer) ([]frame, error) {
	t.Helper()
	var out []frame
	for i := 0; i < 100000; i++ {
		m, tr, err := f.Next()
		if err != nil {
			return out, err
		}
		out = append(out, frame{string(m), tr})
	}
	t.Fatal("framer did not end")
	return nil, nil
}

func TestFramer(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		mode     Framing
		want     []frame
		framing  uint64
	}{
		{"lf", "<13>a\n<13>b\r\n\n<13>c", 100, FramingLF, []frame{{"<13>a", false}, {"<13>b\r", false}, {"<13>c", false}}, 0},
		{"octet", "5 <13>a5 <13>b10 <13>c\nd\ne\n", 100, FramingOctetCounting,
			[]frame{{"<13>a", false}, {"<13>b", false}, {"<13>c\nd\ne\n", false}}, 0},
		{"octet-oversize", "10 <13>abcdef5 <13>x", 6, FramingOctetCounting, []frame{{"<13>ab", true}, {"<13>x", false}}, 0},
		{"lf-oversize", "<13>abcdefgh\n<13>x\n", 6, FramingLF, []frame{{"<13>ab", true}, {"<13>x", false}}, 0},
		{"lf-oversize-exact-buffer", strings.Repeat("x", 40000) + "\n<13>y\n", 100, FramingLF,
			[]frame{{strings.Repeat("x", 100), true}, {"<13>y", false}}, 0},
		{"octet-then-garbage", "5 <13>a<13>b\n<13>c\n", 100, FramingOctetCounting,
			[]frame{{"<13>a", false}, {"<13>b", false}, {"<13>c", false}}, 1},
		{"octet-cut", "50 <13>partial", 100, FramingOctetCounting, []frame{{"<13>partial", true}}, 0},
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			t.Run(fmt.Sprintf("%s/chunk%d", tc.name, chunk), func(t *testing.T) {
				f := NewFramer(&chunkReader{[]byte(tc.in), chunk}, tc.max)
				got, err := readAll(t, f)
				if err != io.EOF {
					t.Fatalf("end: %v, want io.EOF", err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				if f.Mode() != tc.mode && tc.framing == 0 {
					t.Errorf("mode %v, want %v", f.Mode(), tc.mode)
				}
				if f.FramingErrors() != tc.framing {
					t.Errorf("framing errors %d, want %d", f.FramingErrors(), tc.framing)
				}
			})
		}
	}
}

// TestFramerReadError delivers what was read before a read error (a
// deadline, a reset) and then the error.
func TestFramerReadError(t *testing.T) {
	boom := errors.New("deadline")
	r := io.MultiReader(strings.NewReader("<13>a\n<13>b"), iotest.ErrReader(boom))
	f := NewFramer(r, 64)
	got, err := readAll(t, f)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
	if want := []frame{{"<13>a", false}, {"<13>b", false}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestFramerRoundTrip frames many messages both ways, reads them back in
// odd chunk sizes and gets every byte of every message back.
func TestFramerRoundTrip(t *testing.T) {
	var msgs []string
	for i := 0; i < 500; i++ {
		msgs = append(msgs, fmt.Sprintf("<%d>1 - host app %d - - %s", i%192, i, strings.Repeat("m", i*7%300)))
	}
	var octet, lf bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&octet, "%d %s", len(m), m)
		lf.WriteString(m + "\n")
	}
	for _, in := range []*bytes.Buffer{&octet, &lf} {
		for _, chunk := range []int{1, 7, 4096} {
			f := NewFramer(&chunkReader{in.Bytes(), chunk}, 1024)
			got, err := readAll(t, f)
			if err != io.EOF || len(got) != len(msgs) {
				t.Fatalf("chunk %d: %d messages, err %v; want %d", chunk, len(got), err, len(msgs))
			}
			for i := range got {
				if got[i].msg != msgs[i] || got[i].truncated {
					t.Fatalf("chunk %d message %d: %q, want %q", chunk, i, got[i].msg, msgs[i])
				}
			}
		}
	}
}
