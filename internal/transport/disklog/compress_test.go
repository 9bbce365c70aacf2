package disklog

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/transport"
)

// TestCompressionChangesBetweenRuns writes one batch per codec, reopening
// the log with the next codec each time (as a user changing
// --log-compression between restarts does), and reads everything back.
func TestCompressionChangesBetweenRuns(t *testing.T) {
	dir := t.TempDir()
	var all []transport.Record
	for i, comp := range append(Compressions(), CompressionNone) {
		l := openT(t, dir, Options{Compression: comp})
		recs := makeRecs(comp, 100+i)
		produceT(t, l, recs)
		all = append(all, recs...)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	codecs := batchCodecs(t, dir)
	for _, id := range []int{codecNone, codecSnappy, codecLZ4, codecZstd} {
		if codecs[id] == 0 {
			t.Fatalf("no batch with codec %d in the log: %v", id, codecs)
		}
	}
	l := openT(t, dir, Options{})
	if st := l.Stats(); st.TruncatedBytes != 0 {
		t.Fatalf("reopen truncated %d bytes of a clean log", st.TruncatedBytes)
	}
	got := pollN(t, l.Consumer("g", nil), len(all))
	for i := range all {
		sameRecord(t, got[i], all[i])
	}
}

// TestReadsLogWrittenBeforeCompression opens a segment written by wirelog
// before batches could be compressed (testdata/v1-uncompressed.log, made by
// that version's code from makeRecs("golden", 300) in three batches), with
// compression on, then appends compressed batches after it.
func TestReadsLogWrittenBeforeCompression(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "v1-uncompressed.log"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	part := filepath.Join(dir, DefaultTopic+"-0")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, segmentName(0)), old, 0o644); err != nil {
		t.Fatal(err)
	}
	l := openT(t, dir, Options{Compression: CompressionZstd})
	if st := l.Stats(); st.TruncatedBytes != 0 || st.Partitions[0].EndOffset != 300 {
		t.Fatalf("old segment: truncated %d bytes, end offset %d; want 0 and 300", st.TruncatedBytes, st.Partitions[0].EndOffset)
	}
	want := makeRecs("golden", 300)
	more := makeRecs("new", 50)
	produceT(t, l, more)
	got := pollN(t, l.Consumer("g", nil), 350)
	for i := range want {
		want[i].Topic, want[i].Offset = DefaultTopic, int64(i)
		sameRecord(t, got[i], want[i])
	}
	for i := range more {
		sameRecord(t, got[300+i], more[i])
	}
}

// TestIncompressibleBatchStoredPlain: records that do not shrink are stored
// uncompressed, so compression never makes the log bigger.
func TestIncompressibleBatchStoredPlain(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Compression: CompressionLZ4})
	recs := make([]transport.Record, 20)
	for i := range recs {
		recs[i].Value = make([]byte, 512)
		rand.Read(recs[i].Value)
	}
	produceT(t, l, recs)
	st := l.Stats()
	if c := batchCodecs(t, dir); c[codecNone] != 1 || c[-1] != 1 {
		t.Fatalf("random records: batches by codec %v, want one uncompressed", c)
	}
	if st.AppendedBytes != st.AppendedRawBytes {
		t.Fatalf("stored %d bytes for %d uncompressed", st.AppendedBytes, st.AppendedRawBytes)
	}
	got := pollN(t, l.Consumer("g", nil), len(recs))
	for i := range recs {
		sameRecord(t, got[i], recs[i])
	}
}

func TestCompressionLevelsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		comp  string
		level int
	}{{CompressionLZ4, 1}, {CompressionLZ4, 9}, {CompressionZstd, 1}, {CompressionZstd, 7}, {CompressionZstd, 19}} {
		t.Run(tc.comp, func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, dir, Options{Compression: tc.comp, CompressionLevel: tc.level})
			recs := makeRecs("lvl", 500)
			produceT(t, l, recs)
			st := l.Stats()
			if st.AppendedBytes*2 > st.AppendedRawBytes {
				t.Fatalf("%s level %d: %d bytes stored for %d", tc.comp, tc.level, st.AppendedBytes, st.AppendedRawBytes)
			}
			got := pollN(t, l.Consumer("g", nil), len(recs))
			for i := range recs {
				sameRecord(t, got[i], recs[i])
			}
		})
	}
}

func TestCompressionOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		comp  string
		level int
		want  string
	}{
		{"gzip", 0, "unknown compression"},
		{"brotli", 0, "none, snappy, lz4, zstd"},
		{CompressionSnappy, 3, "no levels"},
		{CompressionLZ4, 10, "1-9"},
		{CompressionZstd, -1, "1-22"},
	} {
		_, err := Open(t.TempDir(), Options{Compression: tc.comp, CompressionLevel: tc.level, Logger: quiet()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Open with compression %q level %d: %v, want an error saying %q", tc.comp, tc.level, err, tc.want)
		}
	}
}

// TestCorruptCompressedBatchIsNotDecoded: a compressed body that passes its
// CRC but does not decompress (only a writer bug or a collision could make
// one) is refused as corrupt by readers and cut by recovery.
func TestCorruptCompressedBatchIsNotDecoded(t *testing.T) {
	for _, comp := range Compressions()[1:] {
		b := encodeCodecT(t, makeRecs("c", 50), 0, comp)
		b[batchHeaderSize+compressedPrefix+3] ^= 0xff
		sealBatch(b, 0, crc32.Checksum(b[batchHeaderSize:], castagnoli))
		h, body, err := readBatch(b)
		if err != nil {
			t.Fatalf("%s: resealed batch: %v", comp, err)
		}
		if recs, err := batchRecords(h, body, nil); err == nil {
			// Some damage still decompresses; the records must then be checked.
			if verr := validateBatch(h, recs); verr == nil {
				continue
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v is not ErrCorrupt", comp, err)
		}
		res, err := scanSegment(strings.NewReader(string(b)), int64(len(b)), 0)
		if err != nil || res.validEnd != 0 || res.reason == nil {
			t.Fatalf("%s: recovery kept a batch that does not decode: %+v %v", comp, res, err)
		}
	}
}
