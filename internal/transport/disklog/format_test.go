package disklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

// encodeT builds a sealed, uncompressed batch as the writer would.
func encodeT(t testing.TB, recs []transport.Record, base int64) []byte {
	t.Helper()
	return encodeCodecT(t, recs, base, CompressionNone)
}

// encodeCodecT builds a sealed batch compressed with the named codec.
func encodeCodecT(t testing.TB, recs []transport.Record, base int64, compression string) []byte {
	t.Helper()
	c, err := newCodec(compression, 0)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	b, crc, n, _, err := encodeBatch(nil, &raw, recs, nil, time.Now().UnixNano(), DefaultTopic, c)
	if err != nil || n != len(recs) {
		t.Fatalf("encodeBatch: %d records, %v", n, err)
	}
	sealBatch(b, base, crc)
	return b
}

// recordsT verifies and decompresses a batch.
func recordsT(t testing.TB, b []byte) (batchHeader, []byte) {
	t.Helper()
	h, body, err := readBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	records, err := batchRecords(h, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, records
}

func TestBatchRoundTrip(t *testing.T) {
	for _, comp := range Compressions() {
		t.Run(comp, func(t *testing.T) { testBatchRoundTrip(t, comp) })
	}
}

func testBatchRoundTrip(t *testing.T, comp string) {
	recs := makeRecs("f", 40)
	b := encodeCodecT(t, recs, 1000, comp)
	plain := encodeT(t, recs, 1000)
	if comp != CompressionNone && (len(b) >= len(plain) || b[3] == 0) {
		t.Fatalf("%s batch is %d bytes with attributes %#x; uncompressed %d", comp, len(b), b[3], len(plain))
	}
	h, body := recordsT(t, b)
	if h.baseOffset != 1000 || h.count != 40 || h.size() != int64(len(b)) {
		t.Fatalf("header %+v for %d bytes", h, len(b))
	}
	out, next, err := decodeBatch(h, body, 1010, 0, nil, DefaultTopic, 3)
	if err != nil || next != 1040 || len(out) != 30 {
		t.Fatalf("decode from 1010: %d records, next %d, %v", len(out), next, err)
	}
	for i, r := range out {
		want := recs[10+i]
		want.Offset, want.Partition, want.Topic = int64(1010+i), 3, DefaultTopic
		sameRecord(t, r, want)
	}
	// max stops inside the batch and reports where to resume.
	out, next, err = decodeBatch(h, body, 1000, 5, nil, DefaultTopic, 0)
	if err != nil || len(out) != 5 || next != 1005 {
		t.Fatalf("decode max=5: %d records, next %d, %v", len(out), next, err)
	}
}

// TestUncompressedFormatUnchanged pins the checksum of an uncompressed batch
// to the formula of the format before compression existed (body, then
// header bytes 12..31), so logs written then stay readable.
func TestUncompressedFormatUnchanged(t *testing.T) {
	b := encodeT(t, makeRecs("v1", 7), 5)
	want := crc32.Update(crc32.Checksum(b[batchHeaderSize:], castagnoli), castagnoli, b[12:batchHeaderSize])
	if b[3] != 0 || binary.BigEndian.Uint32(b[8:12]) != want {
		t.Fatalf("uncompressed batch: attributes %#x, crc %#x, want 0 and %#x", b[3], binary.BigEndian.Uint32(b[8:12]), want)
	}
}

func TestReadBatchRejectsDamage(t *testing.T) {
	for _, comp := range Compressions() {
		t.Run(comp, func(t *testing.T) { testReadBatchRejectsDamage(t, comp) })
	}
}

func testReadBatchRejectsDamage(t *testing.T, comp string) {
	b := encodeCodecT(t, makeRecs("d", 30), 7, comp)
	for i := range b {
		if i >= 4 && i < 8 {
			continue // a changed length is caught as "cut short" or CRC below
		}
		for _, bit := range []byte{0x01, 0x02, 0x04, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= bit
			if _, _, err := readBatch(c); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipped bit %#x in byte %d not detected: %v", bit, i, err)
			}
		}
	}
	if _, _, err := readBatch(b[:len(b)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short batch: %v", err)
	}
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[4:8], uint32(len(b)-batchHeaderSize-1))
	if _, _, err := readBatch(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("shrunk length: %v", err)
	}
}

func TestScanSegmentStopsAtFirstBadBatch(t *testing.T) {
	for _, comp := range Compressions() {
		t.Run(comp, func(t *testing.T) { testScanSegmentStopsAtFirstBadBatch(t, comp) })
	}
}

func testScanSegmentStopsAtFirstBadBatch(t *testing.T, comp string) {
	var seg []byte
	var ends []int64
	off := int64(100)
	for i := 0; i < 4; i++ {
		recs := makeRecs("s", 30+i)
		seg = append(seg, encodeCodecT(t, recs, off, comp)...)
		off += int64(len(recs))
		ends = append(ends, int64(len(seg)))
	}
	res, err := scanSegment(bytes.NewReader(seg), int64(len(seg)), 100)
	if err != nil || res.reason != nil || res.validEnd != int64(len(seg)) || res.end != off || res.batches != 4 {
		t.Fatalf("clean scan: %+v %v", res, err)
	}
	seg[ends[1]+batchHeaderSize+10] ^= 0xff // inside the third batch's body
	res, err = scanSegment(bytes.NewReader(seg), int64(len(seg)), 100)
	if err != nil || !errors.Is(res.reason, ErrCorrupt) || res.validEnd != ends[1] || res.batches != 2 {
		t.Fatalf("scan with damaged third batch: %+v %v", res, err)
	}
	// A batch whose offset does not follow its predecessor ends the valid part.
	res, _ = scanSegment(bytes.NewReader(seg[:ends[1]]), ends[1], 99)
	if res.validEnd != 0 || res.reason == nil {
		t.Fatalf("wrong base offset accepted: %+v", res)
	}
}

// FuzzReadBatch feeds arbitrary bytes to every reader of the segment format:
// they must return ErrCorrupt-style errors, never panic or over-allocate.
func FuzzReadBatch(f *testing.F) {
	recs := makeRecs("fuzz", 4)
	valid := encodeT(f, recs, 42)
	f.Add(valid)
	f.Add(valid[:batchHeaderSize])
	f.Add(append(bytes.Clone(valid), encodeT(f, makeRecs("second", 2), 46)...))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(append(bytes.Clone(valid), make([]byte, 100)...))                 // a preallocated tail
	f.Add(append(append(bytes.Clone(valid), make([]byte, 40)...), 1, 2, 3)) // stale bytes inside it
	for _, comp := range Compressions()[1:] {
		c := encodeCodecT(f, makeRecs("fuzz", 30), 42, comp)
		f.Add(c)
		f.Add(append(bytes.Clone(c), encodeCodecT(f, makeRecs("second", 20), 72, comp)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, body, err := readBatch(data); err == nil {
			if h.size() > int64(len(data)) {
				t.Fatalf("batch size %d beyond %d input bytes", h.size(), len(data))
			}
			if records, err := batchRecords(h, body, nil); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decompress error not ErrCorrupt: %v", err)
				}
			} else if _, _, err := decodeBatch(h, records, 0, 0, nil, "t", 0); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error not ErrCorrupt: %v", err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("readBatch error not ErrCorrupt: %v", err)
		}
		// Re-seal the input with a correct CRC so the record decoder sees
		// arbitrary bodies too, not only the ones that guessed a checksum.
		if len(data) >= batchHeaderSize {
			c := bytes.Clone(data)
			if h, err := parseBatchHeader(c); err == nil && h.size() <= int64(len(c)) {
				body := c[batchHeaderSize:h.size()]
				binary.BigEndian.PutUint32(c[8:12], batchCRC(c, body))
				h, body, err := readBatch(c)
				if err != nil {
					t.Fatalf("resealed batch rejected: %v", err)
				}
				// The compressed form's own damage: the decompressor must
				// refuse it with ErrCorrupt and never write past the
				// length the batch states.
				if body, err = batchRecords(h, body, nil); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("decompress error not ErrCorrupt: %v", err)
					}
					return
				}
				if h.attrs != codecNone && len(body) != int(binary.BigEndian.Uint32(c[batchHeaderSize:])) {
					t.Fatalf("decompressed %d bytes, batch states %d", len(body), binary.BigEndian.Uint32(c[batchHeaderSize:]))
				}
				verr := validateBatch(h, body)
				out, next, derr := decodeBatch(h, body, h.baseOffset, 0, nil, "t", 0)
				if (verr == nil) != (derr == nil) {
					t.Fatalf("validateBatch %v but decodeBatch %v", verr, derr)
				}
				if derr == nil && (len(out) != int(h.count) || next != h.nextOffset()) {
					t.Fatalf("decoded %d of %d records, next %d", len(out), h.count, next)
				}
				if derr != nil && !errors.Is(derr, ErrCorrupt) {
					t.Fatalf("decode error not ErrCorrupt: %v", derr)
				}
			}
		}
		res, err := scanSegment(bytes.NewReader(data), int64(len(data)), 42)
		if err != nil {
			t.Fatalf("scan of in-memory bytes failed with an I/O error: %v", err)
		}
		if res.validEnd > int64(len(data)) || (res.validEnd < int64(len(data)) && res.reason == nil && !res.zeroTail) {
			t.Fatalf("scan result %+v for %d bytes", res, len(data))
		}
		if res.zeroTail && (res.reason != nil || !allZero(data[res.validEnd:])) {
			t.Fatalf("scan took a tail that is not all zeros for preallocated space: %+v", res)
		}
		if _, err := findBatch(bytes.NewReader(data), int64(len(data)), 43); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("findBatch: %v", err)
		}
	})
}
