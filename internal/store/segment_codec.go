package store

import (
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/s2"
)

// s2SnappyCodec is arrow-go's Parquet SNAPPY codec with the block encoder
// of klauspost/compress's s2 package (s2.EncodeSnappy): its output is
// Snappy's format, which DuckDB and every Parquet reader decode as before,
// and it encodes faster than github.com/golang/snappy for slightly smaller
// blocks (BenchmarkSegmentEncodeProps: docs/BENCHMARKS.md, "Store CPU per
// event, fifth session"). Decoding and streams stay arrow-go's own.
type s2SnappyCodec struct{ compress.Codec }

func (c s2SnappyCodec) Encode(dst, src []byte) []byte { return s2.EncodeSnappy(dst, src) }

func (c s2SnappyCodec) EncodeLevel(dst, src []byte, _ int) []byte { return s2.EncodeSnappy(dst, src) }

// CompressBound is the larger of the two encoders' bounds: arrow-go sizes
// dst with it, and a dst too small would make the encoder allocate.
func (c s2SnappyCodec) CompressBound(n int64) int64 {
	return max(c.Codec.CompressBound(n), int64(s2.MaxEncodedLen(int(n))))
}

// The override is process-wide (arrow-go keeps one codec per compression
// kind, and RegisterCodec is its documented way to replace one): the store
// is the process's only Parquet writer, and the format is unchanged.
func init() {
	if orig, err := compress.GetCodec(compress.Codecs.Snappy); err == nil {
		compress.RegisterCodec(compress.Codecs.Snappy, s2SnappyCodec{orig})
	}
}
