package disklog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wirelog/wirelog/internal/transport"
)

func TestRoundTripAcrossSegmentRolls(t *testing.T) {
	for _, comp := range Compressions() {
		t.Run(comp, func(t *testing.T) { testRoundTripAcrossSegmentRolls(t, comp) })
	}
}

func testRoundTripAcrossSegmentRolls(t *testing.T, comp string) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 1 << 10, Compression: comp})
	var want []transport.Record
	for call := 0; call < 40; call++ {
		recs := makeRecs(fmt.Sprintf("c%d", call), 1+call%25)
		produceT(t, l, recs)
		for i := range recs {
			if recs[i].Offset != int64(len(want)) || recs[i].Partition != 0 || recs[i].Topic != DefaultTopic {
				t.Fatalf("call %d record %d got offset %d partition %d topic %q, want offset %d of %s[0]",
					call, i, recs[i].Offset, recs[i].Partition, recs[i].Topic, len(want), DefaultTopic)
			}
			want = append(want, recs[i])
		}
	}
	st := l.Stats()
	if st.Segments < 5 {
		t.Fatalf("Stats.Segments = %d, want several segment rolls with 1 KiB segments", st.Segments)
	}
	if got := st.Partitions[0].EndOffset; got != int64(len(want)) {
		t.Fatalf("EndOffset = %d, want %d", got, len(want))
	}
	files, _ := filepath.Glob(filepath.Join(dir, DefaultTopic+"-0", "*.log"))
	if len(files) != st.Segments {
		t.Fatalf("%d segment files on disk, Stats says %d", len(files), st.Segments)
	}

	c := l.Consumer("reader", nil)
	defer c.Close()
	got := pollN(t, c, len(want))
	for i := range want {
		sameRecord(t, got[i], want[i])
	}
	pollNone(t, c, 50*time.Millisecond)
}

func TestConsumerSmallPollsResumeInsideBatches(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 2 << 10})
	want := makeRecs("a", 100)
	produceT(t, l, want[:60])
	produceT(t, l, want[60:])
	c := l.Consumer("g", nil)
	defer c.Close()
	var got []transport.Record
	for len(got) < len(want) {
		recs, err := c.Poll(context.Background(), 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != min(7, len(want)-len(got)) {
			t.Fatalf("Poll(max=7) returned %d records with %d left", len(recs), len(want)-len(got))
		}
		got = append(got, recs...)
	}
	for i := range want {
		sameRecord(t, got[i], want[i])
	}
}

func TestConcurrentProducersGroupCommit(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	const producers, calls = 8, 150
	offsets := make([][]int64, producers)
	var wg sync.WaitGroup
	for w := 0; w < producers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := l.Producer()
			for i := 0; i < calls; i++ {
				recs := []transport.Record{{Value: value(fmt.Sprintf("w%d", w), i)}}
				if err := p.Produce(context.Background(), recs); err != nil {
					t.Errorf("producer %d call %d: %v", w, i, err)
					return
				}
				offsets[w] = append(offsets[w], recs[0].Offset)
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	if st.AppendedBatches != producers*calls || st.AppendedRecords != producers*calls {
		t.Fatalf("Stats: %d batches, %d records; want %d each", st.AppendedBatches, st.AppendedRecords, producers*calls)
	}
	if st.MaxGroupBatches < 2 || st.GroupCommits >= st.AppendedBatches {
		t.Fatalf("no group commit: %d rounds for %d calls, at most %d calls in one round", st.GroupCommits, st.AppendedBatches, st.MaxGroupBatches)
	}
	if st.Fsyncs != st.GroupCommits {
		t.Fatalf("%d fsyncs for %d group commits on one partition; want one each", st.Fsyncs, st.GroupCommits)
	}
	t.Logf("%d calls in %d group commits (largest %d)", st.AppendedBatches, st.GroupCommits, st.MaxGroupBatches)

	// Offsets are unique and contiguous, each producer's strictly increasing,
	// and each points at that producer's record.
	seen := make([]bool, producers*calls)
	for w := range offsets {
		for i, off := range offsets[w] {
			if off < 0 || off >= int64(len(seen)) || seen[off] {
				t.Fatalf("producer %d got offset %d twice or out of range", w, off)
			}
			seen[off] = true
			if i > 0 && off <= offsets[w][i-1] {
				t.Fatalf("producer %d offsets not increasing: %d after %d", w, off, offsets[w][i-1])
			}
		}
	}
	c := l.Consumer("g", nil)
	defer c.Close()
	got := pollN(t, c, producers*calls)
	for w := range offsets {
		for i, off := range offsets[w] {
			if want := value(fmt.Sprintf("w%d", w), i); string(got[off].Value) != string(want) {
				t.Fatalf("offset %d holds %q, want %q", off, got[off].Value, want)
			}
		}
	}
}

func TestReopenResumesOffsets(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 8 << 10})
	first := makeRecs("first", 300)
	produceT(t, l, first[:150])
	produceT(t, l, first[150:])
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Producer().Produce(context.Background(), makeRecs("late", 1)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Produce after Close = %v, want ErrClosed", err)
	}

	l2 := openT(t, dir, Options{SegmentBytes: 8 << 10})
	if st := l2.Stats(); st.Partitions[0].EndOffset != 300 || st.TruncatedBytes != 0 {
		t.Fatalf("after reopen: end %d, truncated %d; want 300 and 0", st.Partitions[0].EndOffset, st.TruncatedBytes)
	}
	if got := l2.EndOffsets()[transport.TopicPartition{Topic: DefaultTopic, Partition: 0}]; got != 300 {
		t.Fatalf("EndOffsets = %d, want 300", got)
	}
	second := makeRecs("second", 10)
	produceT(t, l2, second)
	if second[0].Offset != 300 || second[9].Offset != 309 {
		t.Fatalf("after reopen offsets %d..%d, want 300..309", second[0].Offset, second[9].Offset)
	}
	got := pollN(t, l2.Consumer("g", nil), 310)
	for i := range first {
		sameRecord(t, got[i], first[i])
	}
	for i := range second {
		sameRecord(t, got[300+i], second[i])
	}
}

// lastSegment returns the path and size of the active segment of partition 0.
func lastSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, DefaultTopic+"-0", "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	st, err := os.Stat(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return files[len(files)-1], st.Size()
}

func TestRecoverTornAndCorruptTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, size, lastBatch int64)
	}{
		{"truncated mid-batch", func(t *testing.T, path string, size, lastBatch int64) {
			if err := os.Truncate(path, lastBatch+(size-lastBatch)/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated mid-header", func(t *testing.T, path string, size, lastBatch int64) {
			if err := os.Truncate(path, lastBatch+10); err != nil {
				t.Fatal(err)
			}
		}},
		{"flipped bytes in last batch body", func(t *testing.T, path string, size, lastBatch int64) {
			flip(t, path, lastBatch+batchHeaderSize+20)
		}},
		{"flipped base offset of last batch", func(t *testing.T, path string, size, lastBatch int64) {
			flip(t, path, lastBatch+15)
		}},
		{"garbage appended", func(t *testing.T, path string, size, lastBatch int64) {
			appendT(t, path, bytes.Repeat([]byte{0xa5}, 100))
		}},
		// A write torn inside preallocated space (prealloc.go): zeros, then
		// what reached the disk of an unacknowledged write, then zeros.
		// Recovery must cut it, not read the leading zeros as the end and
		// keep stale bytes that later batches could line up with.
		{"garbage after zeros", func(t *testing.T, path string, size, lastBatch int64) {
			appendT(t, path, make([]byte, 4096))
			appendT(t, path, bytes.Repeat([]byte{0xa5}, 100))
			appendT(t, path, make([]byte, 4096))
		}},
		{"torn batch inside zeros", func(t *testing.T, path string, size, lastBatch int64) {
			b := encodeT(t, makeRecs("torn", 20), 80)
			appendT(t, path, b[:len(b)/2])
			appendT(t, path, make([]byte, 8192))
		}},
	}
	for _, comp := range Compressions() {
		for _, tc := range cases {
			t.Run(comp+"/"+tc.name, func(t *testing.T) { testRecoverTail(t, Options{Compression: comp}, tc.name, tc.damage) })
		}
	}
}

// testRecoverTail writes 50 records in two batches and 30 in a third,
// damages the file as damage says and checks that recovery keeps exactly
// the first 50 (all 80 when the damage is after the last batch).
func testRecoverTail(t *testing.T, opts Options, name string, damage func(t *testing.T, path string, size, lastBatch int64)) {
	dir := t.TempDir()
	l := openT(t, dir, opts)
	kept := makeRecs("kept", 50)
	produceT(t, l, kept[:20])
	produceT(t, l, kept[20:])
	_, lastBatch := lastSegment(t, dir)
	lost := makeRecs("lost", 30)
	produceT(t, l, lost)
	l.Close()
	path, size := lastSegment(t, dir)
	if opts.Compression != CompressionNone {
		if c := batchCodecs(t, dir); c[0] != 0 {
			t.Fatalf("%s log holds uncompressed batches: %v", opts.Compression, c)
		}
	}
	damage(t, path, size, lastBatch)
	_, damaged := lastSegment(t, dir)

	reg := prometheus.NewRegistry()
	l2 := openT(t, dir, opts)
	reg.MustRegister(l2.Collector())
	st := l2.Stats()
	wantEnd := int64(50)
	if strings.Contains(name, "garbage") || strings.Contains(name, "inside zeros") {
		wantEnd = 80
	}
	if st.Partitions[0].EndOffset != wantEnd {
		t.Fatalf("after recovery end offset %d, want %d", st.Partitions[0].EndOffset, wantEnd)
	}
	if cut := damaged - func() int64 { _, s := lastSegment(t, dir); return s }(); st.TruncatedBytes != cut || cut <= 0 {
		t.Fatalf("Stats.TruncatedBytes = %d, file shrank by %d", st.TruncatedBytes, cut)
	}
	if got := testutil.ToFloat64(l2.m.truncatedBytes); got != float64(st.TruncatedBytes) {
		t.Fatalf("wirelog_disklog_truncated_bytes_total = %v, want %d", got, st.TruncatedBytes)
	}
	more := makeRecs("more", 5)
	produceT(t, l2, more)
	if more[0].Offset != wantEnd {
		t.Fatalf("append after recovery got offset %d, want %d", more[0].Offset, wantEnd)
	}
	got := pollN(t, l2.Consumer("g", nil), int(wantEnd)+5)
	for i := range kept {
		sameRecord(t, got[i], kept[i])
	}
	for i := range more {
		sameRecord(t, got[int(wantEnd)+i], more[i])
	}
	// And the repaired log reopens cleanly.
	l2.Close()
	if st := openT(t, dir, opts).Stats(); st.TruncatedBytes != 0 || st.Partitions[0].EndOffset != wantEnd+5 {
		t.Fatalf("second reopen: truncated %d, end %d", st.TruncatedBytes, st.Partitions[0].EndOffset)
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerCommitPersists(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 4 << 10})
	recs := makeRecs("r", 200)
	produceT(t, l, recs)
	c := l.Consumer("processor", nil)
	pollN(t, c, 120)
	commitT(t, c, DefaultTopic, map[int32]int64{0: 120})
	if err := c.Commit(context.Background(), map[transport.TopicPartition]int64{{Topic: DefaultTopic, Partition: 0}: 999}); err == nil {
		t.Fatal("Commit past the end of the log succeeded")
	}
	if err := c.Commit(context.Background(), map[transport.TopicPartition]int64{{Topic: "other", Partition: 0}: 1}); err == nil {
		t.Fatal("Commit for another topic succeeded")
	}
	c.Close()
	if _, err := c.Poll(context.Background(), 1); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Poll after consumer Close = %v, want ErrClosed", err)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(dir, "groups", "processor.offsets.json")); err != nil {
		t.Fatalf("group offsets file: %v", err)
	}

	l2 := openT(t, dir, Options{SegmentBytes: 4 << 10})
	if got := l2.Stats().Groups["processor"][0]; got != 120 {
		t.Fatalf("Stats.Groups[processor][0] = %d after reopen, want 120", got)
	}
	// No offset source: resume at the log's committed offset.
	c2 := l2.Consumer("processor", nil)
	if got := pollN(t, c2, 1)[0]; got.Offset != 120 {
		t.Fatalf("resumed at offset %d, want 120", got.Offset)
	}
	c2.Close()
	// An offset source that knows wins over the log (the store is the truth).
	src := func(ctx context.Context, tp transport.TopicPartition) (int64, bool, error) { return 150, true, nil }
	c3 := l2.Consumer("processor", src)
	if got := pollN(t, c3, 1)[0]; got.Offset != 150 {
		t.Fatalf("with OffsetSource=150 resumed at %d", got.Offset)
	}
	// One open consumer per group.
	if _, err := l2.Consumer("processor", nil).Poll(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "already has an open consumer") {
		t.Fatalf("second consumer of a group: %v", err)
	}
	c3.Close()
	// An offset source that fails is reported, not ignored.
	bad := func(ctx context.Context, tp transport.TopicPartition) (int64, bool, error) {
		return 0, false, errors.New("store down")
	}
	if _, err := l2.Consumer("processor", bad).Poll(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("failing OffsetSource: %v", err)
	}
	// A new group with no offsets anywhere starts at the earliest offset.
	if got := pollN(t, l2.Consumer("fresh", nil), 1)[0]; got.Offset != 0 {
		t.Fatalf("fresh group started at %d, want 0", got.Offset)
	}
}

func TestPollBlocksUntilProduceAndHonoursContext(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	c := l.Consumer("g", nil)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if recs, err := c.Poll(ctx, 10); !errors.Is(err, context.DeadlineExceeded) || len(recs) != 0 {
		t.Fatalf("Poll on empty log = %d records, %v; want DeadlineExceeded", len(recs), err)
	}

	got := make(chan []transport.Record, 1)
	go func() {
		recs, err := c.Poll(context.Background(), 10)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	time.Sleep(20 * time.Millisecond)
	produceT(t, l, makeRecs("late", 3))
	select {
	case recs := <-got:
		if len(recs) != 3 {
			t.Fatalf("woken Poll returned %d records, want 3", len(recs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not wake up after Produce")
	}

	// Close of the log wakes a blocked Poll.
	done := make(chan error, 1)
	go func() { _, err := c.Poll(context.Background(), 10); done <- err }()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Poll after log Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not return after Close")
	}
}

func TestPartitionsByKey(t *testing.T) {
	l := openT(t, t.TempDir(), Options{Partitions: 3})
	var all []transport.Record
	for call := 0; call < 20; call++ {
		recs := make([]transport.Record, 30)
		for i := range recs {
			recs[i].Key = []byte(fmt.Sprintf("service-%d", i%7))
			recs[i].Value = value(fmt.Sprintf("c%d", call), i)
		}
		if call%2 == 0 {
			recs[5].Key = nil // keyless records share the call's sticky partition
		}
		produceT(t, l, recs)
		// Within one call, the records of each partition got consecutive offsets.
		last := map[int32]int64{}
		for _, r := range recs {
			if r.Key != nil && r.Partition != int32(partitionForKey(r.Key, 3)) {
				t.Fatalf("key %s went to partition %d", r.Key, r.Partition)
			}
			if prev, ok := last[r.Partition]; ok && r.Offset != prev+1 {
				t.Fatalf("call %d partition %d: offset %d after %d", call, r.Partition, r.Offset, prev)
			}
			last[r.Partition] = r.Offset
		}
		all = append(all, recs...)
	}
	c := l.Consumer("g", nil)
	defer c.Close()
	got := pollN(t, c, len(all))
	byPos := map[[2]int64][]byte{}
	for _, r := range got {
		byPos[[2]int64{int64(r.Partition), r.Offset}] = r.Value
	}
	for _, r := range all {
		if v := byPos[[2]int64{int64(r.Partition), r.Offset}]; string(v) != string(r.Value) {
			t.Fatalf("%d/%d holds %q, want %q", r.Partition, r.Offset, v, r.Value)
		}
	}
	l.Close()
	if _, err := Open(l.dir, Options{Partitions: 2, Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "Partitions") {
		t.Fatalf("Open with fewer partitions: %v", err)
	}
}

func TestRetentionKeepsUnconsumed(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 2 << 10, RetentionBytes: 4 << 10, RetentionAge: -1, RetentionCheckInterval: time.Hour, MaxLagBytes: -1}
	l := openT(t, dir, opts)
	for i := 0; i < 20; i++ {
		produceT(t, l, makeRecs(fmt.Sprintf("b%d", i), 10))
	}
	// No consumer group known yet: nothing was consumed, nothing may go.
	l.enforceRetention()
	if st := l.Stats(); st.DeletedSegments != 0 || st.Partitions[0].StartOffset != 0 {
		t.Fatalf("retention deleted %d segments with no consumer group known", st.DeletedSegments)
	}

	c := l.Consumer("slow", nil)
	pollN(t, c, 90)
	commitT(t, c, DefaultTopic, map[int32]int64{0: 90})
	l.enforceRetention()
	st := l.Stats()
	if st.DeletedSegments == 0 {
		t.Fatalf("retention deleted nothing: %d segments, %d bytes over a %d limit", st.Segments, st.SizeBytes, opts.RetentionBytes)
	}
	start := st.Partitions[0].StartOffset
	if start > 90 || start == 0 {
		t.Fatalf("earliest offset %d after retention; want >0 and <= the committed 90", start)
	}
	// Everything from the committed offset on is still readable by a newcomer.
	fresh := l.Consumer("fresh", nil)
	got := pollN(t, fresh, int(200-start))
	if got[0].Offset != start || got[len(got)-1].Offset != 199 {
		t.Fatalf("fresh consumer read %d..%d, want %d..199", got[0].Offset, got[len(got)-1].Offset, start)
	}
	fresh.Close()

	// Once the group reads and commits everything, size retention trims to
	// the limit, deleting the segment the consumer's cursor is in.
	if got := pollN(t, c, 110); got[109].Offset != 199 {
		t.Fatalf("slow consumer read up to %d, want 199", got[109].Offset)
	}
	commitT(t, c, DefaultTopic, map[int32]int64{0: 200})
	l.enforceRetention()
	if st := l.Stats(); st.SizeBytes > opts.RetentionBytes+opts.SegmentBytes {
		t.Fatalf("after full commit %d bytes remain over a %d limit", st.SizeBytes, opts.RetentionBytes)
	}
	// The consumer goes on past the deleted segments without error.
	produceT(t, l, makeRecs("tail", 5))
	if got := pollN(t, c, 5); got[0].Offset != 200 || got[4].Offset != 204 {
		t.Fatalf("after retention the consumer read %d..%d, want 200..204", got[0].Offset, got[4].Offset)
	}
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 2 << 10, RetentionBytes: -1, RetentionAge: time.Hour, RetentionCheckInterval: time.Hour, Compression: CompressionNone})
	for i := 0; i < 10; i++ {
		produceT(t, l, makeRecs(fmt.Sprintf("b%d", i), 10))
	}
	c := l.Consumer("g", nil)
	pollN(t, c, 50)
	commitT(t, c, DefaultTopic, map[int32]int64{0: 50})
	l.enforceRetention()
	if st := l.Stats(); st.DeletedSegments != 0 {
		t.Fatalf("deleted %d young segments", st.DeletedSegments)
	}
	l.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	l.enforceRetention()
	st := l.Stats()
	if st.DeletedSegments == 0 || st.Partitions[0].StartOffset > 50 {
		t.Fatalf("age retention: deleted %d, start %d; want some deleted and start <= 50", st.DeletedSegments, st.Partitions[0].StartOffset)
	}
	files, _ := filepath.Glob(filepath.Join(dir, DefaultTopic+"-0", "*.log"))
	if len(files) != st.Segments {
		t.Fatalf("%d files on disk, Stats says %d segments", len(files), st.Segments)
	}
}

func TestBackpressureAndRecovery(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 4 << 10, MaxLagBytes: 16 << 10})
	c := l.Consumer("processor", nil)
	defer c.Close()
	if _, err := c.Poll(mustTimeout(t, 10*time.Millisecond), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("registering the consumer: %v", err)
	}
	p := l.Producer()
	produced := 0
	var perr error
	for i := 0; i < 1000 && perr == nil; i++ {
		recs := makeRecs("bp", 20)
		if perr = p.Produce(context.Background(), recs); perr == nil {
			produced += len(recs)
		}
	}
	if !errors.Is(perr, transport.ErrBackpressure) {
		t.Fatalf("after %d records Produce = %v, want ErrBackpressure", produced, perr)
	}
	if err := p.Ready(context.Background()); !errors.Is(err, transport.ErrBackpressure) {
		t.Fatalf("Ready under backpressure = %v", err)
	}
	st := l.Stats()
	if st.BacklogBytes <= 16<<10 || st.BackpressureHits == 0 {
		t.Fatalf("Stats backlog %d, hits %d", st.BacklogBytes, st.BackpressureHits)
	}
	// The processor catches up and commits: writes flow again.
	pollN(t, c, produced)
	commitT(t, c, DefaultTopic, map[int32]int64{0: int64(produced)})
	if err := p.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after commit = %v", err)
	}
	produceT(t, l, makeRecs("after", 5))
}

func mustTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCloseCompletesInFlightProduce(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	var mu sync.Mutex
	acked := map[int64]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				recs := []transport.Record{{Value: value(fmt.Sprintf("w%d", w), i)}}
				err := l.Producer().Produce(context.Background(), recs)
				if errors.Is(err, transport.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Produce: %v", err)
					return
				}
				mu.Lock()
				acked[recs[0].Offset] = string(recs[0].Value)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	l2 := openT(t, dir, Options{})
	end := l2.Stats().Partitions[0].EndOffset
	if int(end) != len(acked) {
		t.Fatalf("reopened log ends at %d, %d calls were acknowledged", end, len(acked))
	}
	if end == 0 {
		t.Fatal("nothing produced before Close")
	}
	for _, r := range pollN(t, l2.Consumer("g", nil), int(end)) {
		if acked[r.Offset] != string(r.Value) {
			t.Fatalf("offset %d = %q, acknowledged %q", r.Offset, r.Value, acked[r.Offset])
		}
	}
}

func TestSecondOpenOfSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, Options{})
	if _, err := Open(dir, Options{Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open = %v", err)
	}
}

func TestProduceRejectsBadInput(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	p := l.Producer()
	if err := p.Produce(context.Background(), []transport.Record{{Topic: "other", Value: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("wrong topic: %v", err)
	}
	big := []transport.Record{{Value: make([]byte, maxBatchBody)}}
	if err := p.Produce(context.Background(), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized call: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Produce(ctx, makeRecs("x", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	if _, err := l.Consumer("g", nil).Poll(context.Background(), 0); err == nil {
		t.Fatal("Poll(max=0) succeeded")
	}
	if st := l.Stats(); st.AppendedRecords != 0 {
		t.Fatalf("%d records appended from bad calls", st.AppendedRecords)
	}
	// The log still works.
	produceT(t, l, makeRecs("ok", 2))
	p.Close()
	if err := p.Produce(context.Background(), makeRecs("x", 1)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Produce on closed producer: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 4 << 10})
	produceT(t, l, makeRecs("m", 100))
	c := l.Consumer("processor", nil)
	pollN(t, c, 100)
	commitT(t, c, DefaultTopic, map[int32]int64{0: 60})

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l.Collector())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "wirelog_disklog_") {
			t.Errorf("metric %s lacks the wirelog_disklog_ prefix", mf.GetName())
		}
		names[mf.GetName()] = true
	}
	for _, n := range []string{"appended_records_total", "fsyncs_total", "fsync_duration_seconds", "group_commit_records",
		"backlog_bytes", "segments", "recovered_bytes_total", "truncated_bytes_total", "group_lag_records"} {
		if !names["wirelog_disklog_"+n] {
			t.Errorf("missing metric wirelog_disklog_%s", n)
		}
	}
	const want = `
# HELP wirelog_disklog_group_lag_records Records between a group's committed offset and the end of the partition.
# TYPE wirelog_disklog_group_lag_records gauge
wirelog_disklog_group_lag_records{group="processor",partition="0",topic="wirelog.logs"} 40
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wirelog_disklog_group_lag_records"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(l.m.appendedRecords); got != 100 {
		t.Fatalf("appended_records_total = %v", got)
	}
}

// TestConsumerRewind: a rewound partition is read again from the offset
// asked, also when the consumer was waiting for new records; a rewind
// ahead of the cursor is ignored.
func TestConsumerRewind(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 4 << 10})
	produceT(t, l, makeRecs("r", 100))
	c := l.Consumer("processor", nil)
	defer c.Close()
	pollN(t, c, 100)
	rw, ok := c.(interface {
		Rewind(map[transport.TopicPartition]int64)
	})
	if !ok {
		t.Fatal("the embedded log's consumer cannot rewind")
	}
	got := make(chan []transport.Record, 1)
	go func() {
		recs, _ := c.Poll(context.Background(), 10)
		got <- recs
	}()
	time.Sleep(100 * time.Millisecond) // the Poll waits for records
	rw.Rewind(map[transport.TopicPartition]int64{{Topic: DefaultTopic, Partition: 0}: 40, {Topic: "other", Partition: 0}: 1})
	select {
	case recs := <-got:
		if len(recs) == 0 || recs[0].Offset != 40 {
			t.Fatalf("after Rewind to 40 a waiting Poll returned %d records starting at %v", len(recs), recs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting Poll did not wake up on Rewind")
	}
	rw.Rewind(map[transport.TopicPartition]int64{{Topic: DefaultTopic, Partition: 0}: 95})
	if recs := pollN(t, c, 1); recs[0].Offset != 50 {
		t.Fatalf("a rewind ahead of the cursor moved it: next record %d, want 50", recs[0].Offset)
	}
}
