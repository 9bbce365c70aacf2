package disklog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func appendT(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestPreallocatedTailIsEndOfLog: a crash leaves the active segment of a
// preallocating log as its batches followed by zeros. The next Open must
// take the zeros for the end of the log — not a torn tail to cut (the
// space is kept) — and write the next batches over them, where a reader
// finds them after the earlier ones.
func TestPreallocatedTailIsEndOfLog(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	l := openT(t, dir, opts)
	first := makeRecs("first", 100)
	produceT(t, l, first)
	l.Close()
	path, data := lastSegment(t, dir)
	const zeros = 256 << 10
	if err := os.Truncate(path, data+zeros); err != nil { // what a crash leaves
		t.Fatal(err)
	}

	l2 := openT(t, dir, opts)
	if st := l2.Stats(); st.TruncatedBytes != 0 || st.Partitions[0].EndOffset != 100 || st.Partitions[0].SizeBytes != data {
		t.Fatalf("after reopen over a preallocated tail: truncated %d bytes, end offset %d, size %d; want 0, 100, %d",
			st.TruncatedBytes, st.Partitions[0].EndOffset, st.Partitions[0].SizeBytes, data)
	}
	second := makeRecs("second", 50)
	produceT(t, l2, second)
	if second[0].Offset != 100 {
		t.Fatalf("first offset after reopen %d, want 100", second[0].Offset)
	}
	if _, size := lastSegment(t, dir); size != data+zeros {
		t.Fatalf("segment is %d bytes after writing into its preallocated space, want %d (written in place)", size, data+zeros)
	}
	got := pollN(t, l2.Consumer("g", nil), 150)
	for i := range first {
		sameRecord(t, got[i], first[i])
	}
	for i := range second {
		sameRecord(t, got[100+i], second[i])
	}
	l2.Close()

	// Close cuts the zeros: a stopped log's file holds only batches.
	path, size := lastSegment(t, dir)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res := scanT(t, f, path, size); res.validEnd != size || res.zeroTail || res.batches != 2 {
		t.Fatalf("after Close the segment scans as %+v, %d bytes; want 2 batches filling it", res, size)
	}
	if st := openT(t, dir, opts).Stats(); st.TruncatedBytes != 0 || st.Partitions[0].EndOffset != 150 {
		t.Fatalf("third open: truncated %d, end %d; want 0, 150", st.TruncatedBytes, st.Partitions[0].EndOffset)
	}
}

// TestPreallocatedSegments writes across many rolls of small segments and
// checks that the writer moved onto preallocated files, that every sealed
// segment was cut to its batches (only the active one is scanned for its
// end at Open), and that everything reads back in order after a reopen.
func TestPreallocatedSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 16 << 10, MaxLagBytes: -1}
	l := openT(t, dir, opts)
	var want [][]byte
	var rolledOnto int
	for i := 0; i < 200; i++ {
		recs := makeRecs("p", 20)
		produceT(t, l, recs)
		for _, r := range recs {
			want = append(want, r.Value)
		}
		if p := l.parts[0]; i%10 == 0 {
			p.mu.RLock()
			path, size := p.segs[len(p.segs)-1].path, p.segs[len(p.segs)-1].size
			p.mu.RUnlock()
			if st, err := os.Stat(path); err == nil && st.Size() == opts.SegmentBytes && size < opts.SegmentBytes {
				rolledOnto++ // the active file is preallocated: zeros beyond its batches
			}
		}
	}
	if n := testutil.ToFloat64(l.m.preallocated); n < 2 || rolledOnto == 0 {
		t.Fatalf("%v segments preallocated, active segment preallocated at %d of 20 looks; want some of each", n, rolledOnto)
	}
	if n := testutil.ToFloat64(l.m.preallocErrors); n != 0 {
		t.Fatalf("%v preallocation errors", n)
	}
	segs, err := filepath.Glob(filepath.Join(dir, DefaultTopic+"-0", "*"+segmentSuffix))
	if err != nil || len(segs) < 10 {
		t.Fatalf("%d segments, want ≥ 10: %v", len(segs), err)
	}
	for _, path := range segs[:len(segs)-1] {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		if res := scanT(t, f, path, st.Size()); res.validEnd != st.Size() || res.zeroTail {
			t.Fatalf("sealed segment %s: %+v, file %d bytes; want batches to its end", path, res, st.Size())
		}
		f.Close()
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(dir, DefaultTopic+"-0", preparedTemp)); !os.IsNotExist(err) {
		t.Fatalf("%s left after Close: %v", preparedTemp, err)
	}

	l2 := openT(t, dir, opts)
	if st := l2.Stats(); st.TruncatedBytes != 0 || st.Partitions[0].EndOffset != int64(len(want)) {
		t.Fatalf("reopen: truncated %d, end %d; want 0, %d", st.TruncatedBytes, st.Partitions[0].EndOffset, len(want))
	}
	got := pollN(t, l2.Consumer("g", nil), len(want))
	for i, r := range got {
		if string(r.Value) != string(want[i]) || r.Offset != int64(i) {
			t.Fatalf("record %d: offset %d value %q, want %q", i, r.Offset, r.Value, want[i])
		}
	}
}

// TestPageTail: a write into preallocated space is padded with zeros to the
// end of its page, never past the file, and not at all when appending.
func TestPageTail(t *testing.T) {
	for _, c := range []struct{ wsize, alloc, want int64 }{
		{100, 1 << 20, 3996},
		{4096, 1 << 20, 0},
		{4097, 1 << 20, 4095},
		{5000, 6000, 1000}, // the file ends inside the page
		{5000, 5000, 0},    // appending: the file ends at the write
		{5000, 0, 0},
	} {
		if got := pageTail(c.wsize, c.alloc); got != c.want {
			t.Errorf("pageTail(%d, %d) = %d, want %d", c.wsize, c.alloc, got, c.want)
		}
	}
}
