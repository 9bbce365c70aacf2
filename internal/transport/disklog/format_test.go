package disklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

// encodeT builds a sealed batch as the writer would.
func encodeT(t testing.TB, recs []transport.Record, base int64) []byte {
	t.Helper()
	b, crc, n, err := appendBatch(nil, recs, nil, time.Now().UnixNano(), DefaultTopic)
	if err != nil || n != len(recs) {
		t.Fatalf("appendBatch: %d records, %v", n, err)
	}
	sealBatch(b, base, crc)
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	recs := makeRecs("f", 40)
	b := encodeT(t, recs, 1000)
	h, body, err := readBatch(b)
	if err != nil {
		t.Fatal(err)
	}
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

func TestReadBatchRejectsDamage(t *testing.T) {
	b := encodeT(t, makeRecs("d", 5), 7)
	for i := range b {
		if i >= 4 && i < 8 {
			continue // a changed length is caught as "cut short" or CRC below
		}
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, _, err := readBatch(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped bit in byte %d not detected: %v", i, err)
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
	var seg []byte
	var ends []int64
	off := int64(100)
	for i := 0; i < 4; i++ {
		recs := makeRecs("s", 3+i)
		seg = append(seg, encodeT(t, recs, off)...)
		off += int64(len(recs))
		ends = append(ends, int64(len(seg)))
	}
	res, err := scanSegment(bytes.NewReader(seg), int64(len(seg)), 100)
	if err != nil || res.reason != nil || res.validEnd != int64(len(seg)) || res.end != off || res.batches != 4 {
		t.Fatalf("clean scan: %+v %v", res, err)
	}
	seg[ends[1]+40] ^= 0xff // inside the third batch
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
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, body, err := readBatch(data); err == nil {
			if h.size() > int64(len(data)) {
				t.Fatalf("batch size %d beyond %d input bytes", h.size(), len(data))
			}
			if _, _, err := decodeBatch(h, body, 0, 0, nil, "t", 0); err != nil && !errors.Is(err, ErrCorrupt) {
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
		if res.validEnd > int64(len(data)) || (res.validEnd < int64(len(data)) && res.reason == nil) {
			t.Fatalf("scan result %+v for %d bytes", res, len(data))
		}
		if _, err := findBatch(bytes.NewReader(data), int64(len(data)), 43); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("findBatch: %v", err)
		}
	})
}
