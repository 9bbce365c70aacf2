package loadgen

import (
	"bytes"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/event"
)

// bodyBuilder renders request bodies for one worker, reusing its buffers:
// after warm-up a batch costs no allocation.
type bodyBuilder struct {
	gen      *generator
	format   Format
	encoding Encoding
	worker   int // names the Loki stream's host label

	ev []byte // one rendered event (Loki formats)
	pb []byte // the protobuf before snappy
	st []byte // the protobuf stream message

	raw  []byte // the uncompressed body
	wire []byte // what is sent: raw, or raw compressed
	gzw  *gzip.Writer
	gzb  bytes.Buffer
	zenc *zstd.Encoder
}

func newBodyBuilder(gen *generator, format Format, enc Encoding) (*bodyBuilder, error) {
	b := &bodyBuilder{gen: gen, format: format, encoding: enc}
	switch enc {
	case EncodingGzip:
		// BestSpeed: the generator must not be what limits a benchmark;
		// the server's decoder cost hardly depends on the level.
		w, err := gzip.NewWriterLevel(&b.gzb, gzip.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("create gzip writer: %w", err)
		}
		b.gzw = w
	case EncodingZstd:
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1)) // one encoder per worker already
		if err != nil {
			return nil, fmt.Errorf("create zstd encoder: %w", err)
		}
		b.zenc = e
	}
	return b, nil
}

// build renders n events with sequence numbers seq, seq+1, … and time
// stamps from unixNano on (one nanosecond apart, so they sort in send
// order). It returns the body to send and the uncompressed length. The
// returned slice is valid until the next call.
func (b *bodyBuilder) build(seq uint64, n int, unixNano int64) (body []byte, rawLen int, err error) {
	raw := b.raw[:0]
	switch {
	case b.format == FormatJSON && n == 1:
		raw = b.gen.appendEvent(raw, seq, unixNano)
	case b.format == FormatJSON:
		raw = append(raw, '[')
		for i := range n {
			if i > 0 {
				raw = append(raw, ',')
			}
			raw = b.gen.appendEvent(raw, seq+uint64(i), unixNano+int64(i))
		}
		raw = append(raw, ']')
	case b.format == FormatESBulk:
		for i := range n {
			raw = append(raw, "{\"create\":{}}\n"...)
			raw = b.gen.appendEvent(raw, seq+uint64(i), unixNano+int64(i))
			raw = append(raw, '\n')
		}
	case b.format == FormatLokiJSON:
		raw = append(raw, `{"streams":[{"stream":{"job":"loadgen","host":"loadgen-`...)
		raw = strconv.AppendInt(raw, int64(b.worker), 10)
		raw = append(raw, `"},"values":[`...)
		for i := range n {
			if i > 0 {
				raw = append(raw, ',')
			}
			raw = append(raw, `["`...)
			raw = strconv.AppendInt(raw, unixNano+int64(i), 10)
			raw = append(raw, `",`...)
			b.ev = b.gen.appendEvent(b.ev[:0], seq+uint64(i), unixNano+int64(i))
			raw = event.AppendString(raw, unsafe.String(&b.ev[0], len(b.ev)))
			raw = append(raw, ']')
		}
		raw = append(raw, "]}]}"...)
	case b.format == FormatLokiProto:
		b.pb = b.appendLokiProto(b.pb[:0], seq, n, unixNano)
		raw = snappy.Encode(raw[:cap(raw)], b.pb)
		b.raw = raw
		b.wire = raw
		// The raw length reported is the protobuf's: what the server
		// decodes, comparable with the other formats' bodies.
		return b.wire, len(b.pb), nil
	default:
		for i := range n {
			raw = b.gen.appendEvent(raw, seq+uint64(i), unixNano+int64(i))
			raw = append(raw, '\n')
		}
	}
	b.raw = raw
	switch b.encoding {
	case EncodingGzip:
		b.gzb.Reset()
		b.gzw.Reset(&b.gzb)
		if _, err := b.gzw.Write(raw); err != nil {
			return nil, 0, fmt.Errorf("gzip body: %w", err)
		}
		if err := b.gzw.Close(); err != nil {
			return nil, 0, fmt.Errorf("gzip body: %w", err)
		}
		b.wire = b.gzb.Bytes()
	case EncodingZstd:
		b.wire = b.zenc.EncodeAll(raw, b.wire[:0])
	default:
		b.wire = raw
	}
	return b.wire, len(raw), nil
}

// appendLokiProto writes a logproto.PushRequest with one stream (field
// numbers of Loki's Apache-2.0 push.proto): labels, then one EntryAdapter
// (timestamp, line) per event.
func (b *bodyBuilder) appendLokiProto(dst []byte, seq uint64, n int, unixNano int64) []byte {
	st := protowire.AppendTag(b.st[:0], 1, protowire.BytesType)
	st = protowire.AppendString(st, `{job="loadgen", host="loadgen-`+strconv.Itoa(b.worker)+`"}`)
	for i := range n {
		b.ev = b.gen.appendEvent(b.ev[:0], seq+uint64(i), unixNano+int64(i))
		ns := unixNano + int64(i)
		var ts [24]byte
		t := protowire.AppendTag(ts[:0], 1, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(ns/1e9))
		t = protowire.AppendTag(t, 2, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(ns%1e9))
		entryLen := protowire.SizeTag(1) + protowire.SizeBytes(len(t)) + protowire.SizeTag(2) + protowire.SizeBytes(len(b.ev))
		st = protowire.AppendTag(st, 2, protowire.BytesType)
		st = protowire.AppendVarint(st, uint64(entryLen))
		st = protowire.AppendTag(st, 1, protowire.BytesType)
		st = protowire.AppendBytes(st, t)
		st = protowire.AppendTag(st, 2, protowire.BytesType)
		st = protowire.AppendBytes(st, b.ev)
	}
	b.st = st
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, st)
}

// forget drops the buffers, for when the transport may still be reading
// the last body (it did not close it in time): the next build allocates.
func (b *bodyBuilder) forget() {
	b.raw, b.wire = nil, nil
	b.gzb = bytes.Buffer{}
}

// contentType is the Content-Type for the builder's format.
func (b *bodyBuilder) contentType() string {
	switch b.format {
	case FormatJSON, FormatLokiJSON:
		return "application/json"
	case FormatLokiProto:
		return "application/x-protobuf"
	}
	return "application/x-ndjson"
}
