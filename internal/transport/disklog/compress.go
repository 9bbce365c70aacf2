package disklog

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Batch compression, as Kafka compresses each record batch
// (compression.type): the producer compresses the encoded records of one
// batch in its own goroutine, before the batch is queued for the writer, so
// the writer and fdatasync see fewer bytes and the CPU is spread over the
// callers. The codec ids in the attributes byte are Kafka's.
//
// A compressed batch's body is
//
//	4 bytes  big-endian length of the uncompressed record bytes (at most 64 MiB)
//	...      the records, compressed as one block of the codec:
//	         snappy: a Snappy block; lz4: an LZ4 block (no frame);
//	         zstd: one Zstandard frame without its own checksum
//
// The batch CRC covers the stored (compressed) body, so recovery and
// consumers verify a batch before they decompress it; a batch whose
// records would not shrink is stored uncompressed (attributes 0).

// Compression names, those of Kafka's compression.type. gzip is not
// offered (not measured here): zstd takes its place, as a codec that trades
// CPU for a smaller log.
const (
	CompressionNone   = "none"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

// Kafka's codec ids, in the low three bits of the attributes byte.
const (
	codecNone   = 0
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
	codecMask   = 0x07
)

// compressedPrefix is the uncompressed length in front of a compressed body.
const compressedPrefix = 4

// Compressions lists the accepted values of Options.Compression.
func Compressions() []string {
	return []string{CompressionNone, CompressionSnappy, CompressionLZ4, CompressionZstd}
}

// codec compresses batch bodies. Implementations are safe for concurrent use.
type codec interface {
	id() byte
	// compress appends the compressed form of src to dst.
	compress(dst, src []byte) []byte
}

// newCodec returns the codec for a compression name and level (0 = the
// codec's default level), or nil for "none".
func newCodec(name string, level int) (codec, error) {
	switch name {
	case "", CompressionNone:
		return nil, nil
	case CompressionSnappy:
		if level != 0 {
			return nil, fmt.Errorf("disklog: compression snappy has no levels; leave the level (--log-compression-level) at 0")
		}
		return snappyCodec{}, nil
	case CompressionLZ4:
		if level < 0 || level > 9 {
			return nil, fmt.Errorf("disklog: lz4 compression level %d (--log-compression-level): want 0 (fast) or 1-9 (LZ4 HC, slower, smaller)", level)
		}
		return newLZ4Codec(level), nil
	case CompressionZstd:
		if level < 0 || level > 22 {
			return nil, fmt.Errorf("disklog: zstd compression level %d (--log-compression-level): want 0 (default) or 1-22", level)
		}
		return newZstdCodec(level)
	}
	return nil, fmt.Errorf("disklog: unknown compression %q (--log-compression): want one of %s", name, strings.Join(Compressions(), ", "))
}

type snappyCodec struct{}

func (snappyCodec) id() byte { return codecSnappy }

func (snappyCodec) compress(dst, src []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
	out := s2.EncodeSnappy(dst[n:n+s2.MaxEncodedLen(len(src))], src)
	return dst[:n+len(out)]
}

type lz4Codec struct {
	level int
	pool  sync.Pool // *lz4.Compressor or *lz4.CompressorHC: not safe for concurrent use
}

type lz4Compressor interface {
	CompressBlock(src, dst []byte) (int, error)
}

func newLZ4Codec(level int) *lz4Codec {
	c := &lz4Codec{level: level}
	c.pool.New = func() any {
		if level == 0 {
			return &lz4.Compressor{}
		}
		// CompressorHC.Level is a search depth; lz4.Level1..Level9 are its steps.
		return &lz4.CompressorHC{Level: lz4.CompressionLevel(1 << (8 + level))}
	}
	return c
}

func (c *lz4Codec) id() byte { return codecLZ4 }

func (c *lz4Codec) compress(dst, src []byte) []byte {
	n := len(dst)
	bound := lz4.CompressBlockBound(len(src))
	dst = slices.Grow(dst, bound)
	z := c.pool.Get().(lz4Compressor)
	k, err := z.CompressBlock(src, dst[n:n+bound])
	c.pool.Put(z)
	if err != nil || k == 0 {
		// Incompressible: returning more than src makes the caller store
		// the batch uncompressed.
		return append(dst[:n], src...)
	}
	return dst[:n+k]
}

type zstdCodec struct{ enc *zstd.Encoder }

func newZstdCodec(level int) (codec, error) {
	// The default is zstd's level 1, klauspost/compress's fastest: on log
	// lines it compressed as well as level 3 (4.06 vs 4.05 on syslog lines)
	// for half the CPU (BenchmarkCompression, docs/bench/disklog.md).
	lvl := zstd.SpeedFastest
	if level > 0 {
		lvl = zstd.EncoderLevelFromZstd(level)
	}
	// EncodeAll is safe for concurrent use; each call borrows one of
	// GOMAXPROCS encoders. Our CRC covers the body, so zstd's own
	// checksum would only cost CPU.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("disklog: zstd encoder: %w", err)
	}
	return zstdCodec{enc: enc}, nil
}

func (zstdCodec) id() byte { return codecZstd }

func (c zstdCodec) compress(dst, src []byte) []byte { return c.enc.EncodeAll(src, dst) }

// zstdDecoder is shared: DecodeAll is safe for concurrent use. The cap limit
// makes a frame that claims more than the batch's stated length an error
// instead of an allocation.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(maxBatchBody), zstd.IgnoreChecksum(true))
})

// compressBody turns the uncompressed batch raw (header and records, as
// appendBatch made it) into a compressed one appended to dst. It reports
// false, leaving dst as it was, when compression would not make the batch
// smaller; the caller then stores raw as it is.
func compressBody(dst, raw []byte, c codec) ([]byte, bool) {
	start := len(dst)
	records := raw[batchHeaderSize:]
	dst = append(dst, raw[:batchHeaderSize]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(records)))
	dst = c.compress(dst, records)
	body := len(dst) - start - batchHeaderSize
	if body >= len(records) {
		return dst[:start], false
	}
	h := dst[start : start+batchHeaderSize]
	h[3] = c.id()
	binary.BigEndian.PutUint32(h[4:8], uint32(body))
	return dst, true
}

// batchRecords returns the record bytes of a verified batch: body itself
// when the batch is not compressed, else body decompressed into dst (grown
// as needed; pass nil for a buffer of its own). Errors wrap ErrCorrupt.
func batchRecords(h batchHeader, body, dst []byte) ([]byte, error) {
	if h.attrs&codecMask == codecNone {
		return body, nil
	}
	if len(body) < compressedPrefix+1 {
		return nil, fmt.Errorf("%w: compressed body of %d bytes", ErrCorrupt, len(body))
	}
	n := binary.BigEndian.Uint32(body)
	if n > maxBatchBody || uint64(h.count)*minRecordSize > uint64(n) {
		return nil, fmt.Errorf("%w: %d records in %d uncompressed bytes", ErrCorrupt, h.count, n)
	}
	src := body[compressedPrefix:]
	dst = slices.Grow(dst[:0], int(n))[:n]
	var err error
	switch h.attrs & codecMask {
	case codecSnappy:
		var l int
		if l, err = s2.DecodedLen(src); err == nil && l != int(n) {
			err = fmt.Errorf("block holds %d bytes, batch says %d", l, n)
		}
		if err == nil {
			var out []byte
			if out, err = s2.Decode(dst, src); err == nil && len(out) != int(n) {
				err = fmt.Errorf("decoded %d bytes, batch says %d", len(out), n)
			}
		}
	case codecLZ4:
		var k int
		if k, err = lz4.UncompressBlock(src, dst); err == nil && k != int(n) {
			err = fmt.Errorf("decoded %d bytes, batch says %d", k, n)
		}
	case codecZstd:
		var d *zstd.Decoder
		if d, err = zstdDecoder(); err != nil {
			return nil, fmt.Errorf("disklog: zstd decoder: %w", err)
		}
		var out []byte
		if out, err = d.DecodeAll(src, dst[:0]); err == nil && len(out) != int(n) {
			err = fmt.Errorf("decoded %d bytes, batch says %d", len(out), n)
		}
	default:
		err = fmt.Errorf("unknown codec %d", h.attrs&codecMask)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	return dst, nil
}
