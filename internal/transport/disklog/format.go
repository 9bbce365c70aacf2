package disklog

// On-disk format, version 1.
//
// Directory layout (dir is the path given to Open):
//
//	dir/.lock                               flock(2)ed while a process has the log open
//	dir/<topic>-<partition>/<base>.log      segment files, <base> = first offset, 20 digits
//	dir/groups/<escaped group>.offsets.json committed offsets of one consumer group
//
// A segment file is a plain sequence of record batches, one after another,
// with no file header and no padding. The base offset in a file's name equals
// the base offset of its first batch, and the offsets of consecutive batches
// (and segments) are contiguous: a segment ends where the next one begins.
// There is no index file; a consumer seeks once by scanning batch headers.
//
// Record batch: a 32-byte header followed by a body. Integers are big-endian.
//
//	off size field
//	0   2    magic 0x574C ("WL")
//	2   1    version (1)
//	3   1    attributes: bits 0-2 compression codec (Kafka's ids: 0 none,
//	         2 snappy, 3 lz4, 4 zstd; compress.go), bits 3-7 zero
//	4   4    body length in bytes (at most 64 MiB)
//	8   4    CRC-32C (Castagnoli) over the body followed by header bytes 12..31,
//	         and for a compressed batch then the attributes byte
//	12  8    base offset: offset of the first record
//	20  4    record count (at least 1)
//	24  8    base timestamp: Unix nanoseconds of the first record
//
// Because the CRC also covers the base offset, count and timestamp, a flipped
// bit anywhere in a batch except the magic, version and length is caught by
// the checksum, and those three are checked for plausibility. An
// uncompressed batch's checksum is exactly what it was before compression
// existed, so logs written then read unchanged; a compressed batch's also
// covers its codec, so a flipped codec bit cannot pass for another codec.
//
// The body of an uncompressed batch holds the records; that of a compressed
// one holds their uncompressed length and the records compressed as one
// block (compress.go). Lengths, counts and the plausibility checks below
// speak of the stored body; the records' own checks apply once decompressed.
//
// The body holds count records back to back. Each record is:
//
//	uvarint  length of the rest of this record
//	uvarint  offset delta (record i has delta i)
//	varint   timestamp delta in ns from the base timestamp
//	varint   key length (-1 = nil key), then the key bytes
//	varint   value length (-1 = nil value), then the value bytes
//	uvarint  header count, then per header:
//	           uvarint key length, key bytes, varint value length (-1 = nil), value bytes
//
// Varints are encoding/binary's (protobuf-style, zig-zag for the signed ones).
//
// Durability: one Produce call becomes one batch per partition it touches. The
// writer appends the queued batches with writev and issues one fdatasync per
// touched segment before any of those calls returns. Recovery on Open scans
// the last segment of each partition and truncates it at the first batch that
// is short, implausible, fails its CRC, has an offset that does not follow its
// predecessor, or whose records do not parse; everything before it was whole.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/wirelog/wirelog/internal/transport"
)

const (
	batchMagic      = 0x574C
	batchVersion    = 1
	batchHeaderSize = 32
	// maxBatchBody bounds one batch (and so one Produce call per partition).
	// It keeps a corrupt length field from making a reader allocate gigabytes.
	maxBatchBody = 64 << 20
	// minRecordSize is the smallest encoded record: six one-byte varints.
	minRecordSize = 6
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt means bytes read from a segment are not a valid record batch.
// Recovery truncates a corrupt tail by itself; returned from a read, it means
// the disk returned bad data inside the durable region and the segment named
// in the error must be inspected or restored.
var ErrCorrupt = errors.New("disklog: corrupt record batch")

// ErrTooLarge means the records of one Produce call for one partition encode
// to more than 64 MiB; split the call.
var ErrTooLarge = fmt.Errorf("disklog: records of one call exceed the 64 MiB batch limit: %w", transport.ErrTooLarge)

// batchHeader is the decoded fixed part of a record batch.
type batchHeader struct {
	attrs         byte
	length        uint32
	crc           uint32
	baseOffset    int64
	count         uint32
	baseTimestamp int64
}

func (h batchHeader) size() int64       { return batchHeaderSize + int64(h.length) }
func (h batchHeader) nextOffset() int64 { return h.baseOffset + int64(h.count) }

// parseBatchHeader decodes and sanity-checks a header; it does not verify the CRC.
func parseBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderSize {
		return batchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorrupt, len(b), batchHeaderSize)
	}
	if m := binary.BigEndian.Uint16(b[0:2]); m != batchMagic {
		return batchHeader{}, fmt.Errorf("%w: bad magic %#04x", ErrCorrupt, m)
	}
	if b[2] != batchVersion {
		return batchHeader{}, fmt.Errorf("%w: unknown version %d", ErrCorrupt, b[2])
	}
	switch b[3] {
	case codecNone, codecSnappy, codecLZ4, codecZstd:
	default:
		return batchHeader{}, fmt.Errorf("%w: unknown attributes %#02x", ErrCorrupt, b[3])
	}
	h := batchHeader{
		attrs:         b[3],
		length:        binary.BigEndian.Uint32(b[4:8]),
		crc:           binary.BigEndian.Uint32(b[8:12]),
		baseOffset:    int64(binary.BigEndian.Uint64(b[12:20])),
		count:         binary.BigEndian.Uint32(b[20:24]),
		baseTimestamp: int64(binary.BigEndian.Uint64(b[24:32])),
	}
	if h.length > maxBatchBody {
		return batchHeader{}, fmt.Errorf("%w: body length %d over the %d limit", ErrCorrupt, h.length, maxBatchBody)
	}
	if h.attrs == codecNone {
		if h.count == 0 || uint64(h.count)*minRecordSize > uint64(h.length) {
			return batchHeader{}, fmt.Errorf("%w: %d records cannot fit %d body bytes", ErrCorrupt, h.count, h.length)
		}
	} else if h.count == 0 || uint64(h.count)*minRecordSize > maxBatchBody || h.length <= compressedPrefix {
		// The uncompressed length, checked against count in batchRecords,
		// is inside the body, under the CRC.
		return batchHeader{}, fmt.Errorf("%w: %d records in a compressed body of %d bytes", ErrCorrupt, h.count, h.length)
	}
	if h.baseOffset < 0 || h.baseOffset > maxOffset-int64(h.count) {
		return batchHeader{}, fmt.Errorf("%w: base offset %d out of range", ErrCorrupt, h.baseOffset)
	}
	return h, nil
}

const maxOffset = 1<<62 - 1

// batchCRC is the checksum stored in a header: over the body, then header
// bytes 12..31, then for a compressed batch the attributes byte.
func batchCRC(header, body []byte) uint32 {
	return finishCRC(crc32.Checksum(body, castagnoli), header)
}

// finishCRC extends a checksum of the body over the header's covered bytes.
func finishCRC(bodyCRC uint32, header []byte) uint32 {
	c := crc32.Update(bodyCRC, castagnoli, header[12:batchHeaderSize])
	if header[3] != 0 {
		c = crc32.Update(c, castagnoli, header[3:4])
	}
	return c
}

// readBatch decodes the batch at the start of b and verifies its checksum. It
// returns the header and the stored body (aliasing b; batchRecords turns it
// into the records).
func readBatch(b []byte) (batchHeader, []byte, error) {
	h, err := parseBatchHeader(b)
	if err != nil {
		return h, nil, err
	}
	if int64(len(b)) < h.size() {
		return h, nil, fmt.Errorf("%w: batch of %d bytes cut short at %d", ErrCorrupt, h.size(), len(b))
	}
	body := b[batchHeaderSize:h.size()]
	if got := batchCRC(b, body); got != h.crc {
		return h, nil, fmt.Errorf("%w: checksum %#08x, header says %#08x", ErrCorrupt, got, h.crc)
	}
	return h, body, nil
}

// appendBatch encodes recs (or recs[i] for i in idx when idx is non-nil) as
// one batch appended to dst. The base offset and CRC stay zero until
// sealBatch; the returned bodyCRC lets the writer finish the checksum without
// reading the body again. Records with a zero Timestamp get now.
func appendBatch(dst []byte, recs []transport.Record, idx []int32, now int64, topic string) (out []byte, bodyCRC uint32, count int, err error) {
	n := len(recs)
	if idx != nil {
		n = len(idx)
	}
	if n == 0 {
		return dst, 0, 0, nil
	}
	start := len(dst)
	dst = append(dst, make([]byte, batchHeaderSize)...)
	var baseTS int64
	for j := 0; j < n; j++ {
		r := &recs[j]
		if idx != nil {
			r = &recs[idx[j]]
		}
		if r.Topic != "" && r.Topic != topic {
			return dst[:start], 0, 0, fmt.Errorf("disklog: record for topic %q given to the log of topic %q", r.Topic, topic)
		}
		if r.Timestamp.IsZero() {
			r.Timestamp = time.Unix(0, now)
		}
		ts := r.Timestamp.UnixNano()
		if j == 0 {
			baseTS = ts
		}
		dst = appendRecord(dst, r, uint64(j), ts-baseTS)
		if len(dst)-start-batchHeaderSize > maxBatchBody {
			return dst[:start], 0, 0, ErrTooLarge
		}
	}
	h := dst[start : start+batchHeaderSize]
	binary.BigEndian.PutUint16(h[0:2], batchMagic)
	h[2] = batchVersion
	h[3] = 0
	binary.BigEndian.PutUint32(h[4:8], uint32(len(dst)-start-batchHeaderSize))
	binary.BigEndian.PutUint32(h[20:24], uint32(n))
	binary.BigEndian.PutUint64(h[24:32], uint64(baseTS))
	return dst, crc32.Checksum(dst[start+batchHeaderSize:], castagnoli), n, nil
}

// encodeBatch is appendBatch followed, when c is not nil, by compression:
// the records are encoded into *raw (a scratch buffer kept by the caller)
// and compressed into dst. It returns bodyCRC over the stored body, as
// appendBatch does.
func encodeBatch(dst []byte, raw *[]byte, recs []transport.Record, idx []int32, now int64, topic string, c codec) (out []byte, bodyCRC uint32, count, rawBytes int, err error) {
	if c == nil {
		start := len(dst)
		out, bodyCRC, count, err = appendBatch(dst, recs, idx, now, topic)
		return out, bodyCRC, count, len(out) - start, err
	}
	var rawCRC uint32
	*raw, rawCRC, count, err = appendBatch((*raw)[:0], recs, idx, now, topic)
	if err != nil || count == 0 {
		return dst, 0, count, 0, err
	}
	start := len(dst)
	out, ok := compressBody(dst, *raw, c)
	if !ok {
		return append(dst, *raw...), rawCRC, count, len(*raw), nil
	}
	return out, crc32.Checksum(out[start+batchHeaderSize:], castagnoli), count, len(*raw), nil
}

// sealBatch writes the base offset the writer assigned and the final CRC.
func sealBatch(b []byte, base int64, bodyCRC uint32) {
	binary.BigEndian.PutUint64(b[12:20], uint64(base))
	binary.BigEndian.PutUint32(b[8:12], finishCRC(bodyCRC, b))
}

func varintLen(v int64) int {
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func bytesFieldLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytesField(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func appendRecord(dst []byte, r *transport.Record, delta uint64, tsDelta int64) []byte {
	size := uvarintLen(delta) + varintLen(tsDelta) + bytesFieldLen(r.Key) + bytesFieldLen(r.Value) + uvarintLen(uint64(len(r.Headers)))
	for i := range r.Headers {
		size += uvarintLen(uint64(len(r.Headers[i].Key))) + len(r.Headers[i].Key) + bytesFieldLen(r.Headers[i].Value)
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = binary.AppendUvarint(dst, delta)
	dst = binary.AppendVarint(dst, tsDelta)
	dst = appendBytesField(dst, r.Key)
	dst = appendBytesField(dst, r.Value)
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendBytesField(dst, r.Headers[i].Value)
	}
	return dst
}

// recordDecoder walks a batch body. Errors are sticky so the happy path stays
// free of checks between fields.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *recordDecoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) take(n uint64, what string) []byte {
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// nullable reads a varint length (-1 = nil) and that many bytes.
func (d *recordDecoder) nullable(what string) []byte {
	l := d.varint(what)
	if l == -1 {
		return nil
	}
	if l < 0 {
		d.fail(what)
		return nil
	}
	return d.take(uint64(l), what)
}

// decodeBatch decodes the records of a verified batch, skipping those below
// from, appending at most max to out (max <= 0 means all). It returns the
// extended slice and the offset after the last record appended (or skipped).
// Key, Value and header values alias body; the caller must not reuse body.
func decodeBatch(h batchHeader, body []byte, from int64, max int, out []transport.Record, topic string, partition int32) ([]transport.Record, int64, error) {
	d := recordDecoder{b: body}
	next := h.baseOffset
	for i := uint32(0); i < h.count; i++ {
		l := d.uvarint("record length")
		rec := recordDecoder{b: d.take(l, "record length")}
		if d.err != nil {
			return out, next, d.err
		}
		if delta := rec.uvarint("offset delta"); rec.err != nil {
			return out, next, fmt.Errorf("record %d: %w", i, rec.err)
		} else if delta != uint64(i) {
			return out, next, fmt.Errorf("%w: record %d has offset delta %d", ErrCorrupt, i, delta)
		}
		off := h.baseOffset + int64(i)
		if off < from {
			next = off + 1
			continue
		}
		if max > 0 && len(out) >= max {
			return out, next, nil
		}
		tsDelta := rec.varint("timestamp delta")
		key := rec.nullable("key")
		value := rec.nullable("value")
		nh := rec.uvarint("header count")
		var hdrs []transport.Header
		if nh > 0 && rec.err == nil {
			if nh > uint64(len(rec.b)) { // each header needs at least 2 bytes
				return out, next, fmt.Errorf("%w: record %d claims %d headers", ErrCorrupt, i, nh)
			}
			hdrs = make([]transport.Header, nh)
			for j := range hdrs {
				hdrs[j].Key = string(rec.take(rec.uvarint("header key length"), "header key"))
				hdrs[j].Value = rec.nullable("header value")
			}
		}
		if rec.err != nil {
			return out, next, fmt.Errorf("record %d: %w", i, rec.err)
		}
		if len(rec.b) != 0 {
			return out, next, fmt.Errorf("%w: record %d has %d trailing bytes", ErrCorrupt, i, len(rec.b))
		}
		out = append(out, transport.Record{
			Topic:     topic,
			Partition: partition,
			Offset:    off,
			Key:       key,
			Value:     value,
			Headers:   hdrs,
			Timestamp: time.Unix(0, h.baseTimestamp+tsDelta),
		})
		next = off + 1
	}
	if len(d.b) != 0 {
		return out, next, fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(d.b))
	}
	return out, next, nil
}

// validateBatch checks that a CRC-valid body parses, without allocating.
// Recovery uses it so that a batch the reader would reject is never kept.
func validateBatch(h batchHeader, body []byte) error {
	d := recordDecoder{b: body}
	for i := uint32(0); i < h.count; i++ {
		rec := recordDecoder{b: d.take(d.uvarint("record length"), "record length")}
		if d.err != nil {
			return d.err
		}
		if delta := rec.uvarint("offset delta"); delta != uint64(i) && rec.err == nil {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrCorrupt, i, delta)
		}
		rec.varint("timestamp delta")
		rec.nullable("key")
		rec.nullable("value")
		nh := rec.uvarint("header count")
		for j := uint64(0); j < nh && rec.err == nil; j++ {
			rec.take(rec.uvarint("header key length"), "header key")
			rec.nullable("header value")
		}
		if rec.err != nil {
			return fmt.Errorf("record %d: %w", i, rec.err)
		}
		if len(rec.b) != 0 {
			return fmt.Errorf("%w: record %d has %d trailing bytes", ErrCorrupt, i, len(rec.b))
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(d.b))
	}
	return nil
}
