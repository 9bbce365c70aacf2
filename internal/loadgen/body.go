package loadgen

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// bodyBuilder renders request bodies for one worker, reusing its buffers:
// after warm-up a batch costs no allocation.
type bodyBuilder struct {
	gen      *generator
	format   Format
	encoding Encoding

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

// forget drops the buffers, for when the transport may still be reading
// the last body (it did not close it in time): the next build allocates.
func (b *bodyBuilder) forget() {
	b.raw, b.wire = nil, nil
	b.gzb = bytes.Buffer{}
}

// contentType is the Content-Type for the builder's format.
func (b *bodyBuilder) contentType() string {
	if b.format == FormatJSON {
		return "application/json"
	}
	return "application/x-ndjson"
}
