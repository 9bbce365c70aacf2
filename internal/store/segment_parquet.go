package store

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Segment files hold the events of one or more stored batches as Parquet,
// encoded in Go by the processor and read by DuckDB (read_parquet), so the
// per-row work DuckDB does on insert (string statistics, compression
// analysis at checkpoint, WAL) is not on the write path
// (docs/bench/store.md, "Issue 12").
//
// The columns are the events table's, in its order; level is text (DuckDB
// casts it back to the ENUM in the view) and attrs are the JSON text as
// received (repaired to valid UTF-8; the view parses it).
var segmentSchema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: segmentDict},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	// No time zone: Parquet's isAdjustedToUTC=false reads back as
	// TIMESTAMP, the events column's type, not TIMESTAMPTZ.
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
	{Name: "service", Type: segmentDict},
	{Name: "level", Type: segmentDict},
	{Name: "message", Type: arrow.BinaryTypes.String},
	{Name: "host", Type: segmentDict},
	{Name: "trace_id", Type: arrow.BinaryTypes.String},
	{Name: "span_id", Type: arrow.BinaryTypes.String},
	{Name: "tenant", Type: segmentDict},
	{Name: "attrs", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bytes", Type: arrow.PrimitiveTypes.Int32},
}, nil)

// segmentDict is the Arrow type of the low-cardinality text columns. The
// record carries them already dictionary-encoded (a Go map lookup per
// value): arrow-go then writes the dictionary once and the indices, where
// plain strings cost a hash-table insert and an interface allocation per
// value in its dictionary encoder (a third of the encode time, measured).
var segmentDict = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// segmentCodec is the Parquet compression of every column. Measured per
// event (BenchmarkSegmentEncode, docs/bench/store.md): see SegmentCodec.
type segmentCodec = compress.Compression

// segmentRowGroup is the most rows per Parquet row group: DuckDB reads row
// groups in parallel and skips them by their ts min/max, and the writer
// buffers one row group of compressed pages at a time.
const segmentRowGroup = 122880

// segmentWriterProps are the Parquet settings of a segment: dictionary
// pages only for the low-cardinality columns (a dictionary attempt on
// message or trace_id costs a hash per value and is abandoned at the page
// limit), delta encoding for the increasing ts and offset, statistics
// (min/max, what DuckDB prunes row groups with) on every column, and a
// bloom filter on trace_id when bloom is set.
func segmentWriterProps(codec segmentCodec, bloom bool) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(segmentRowGroup),
		parquet.WithDataPageSize(1 << 20),
		parquet.WithEncodingFor("ts", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("offset", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithStats(true),
		// Long message/attrs minimums and maximums cost bytes in every page
		// header and prune nothing.
		parquet.WithStatsFor("message", false),
		parquet.WithStatsFor("attrs", false),
		parquet.WithStatsFor("span_id", false),
	}
	for _, c := range []string{"topic", "partition", "service", "level", "host", "tenant"} {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	if bloom {
		opts = append(opts, parquet.WithBloomFilterEnabledFor("trace_id", true), parquet.WithBloomFilterFPPFor("trace_id", 0.01))
	}
	return parquet.NewWriterProperties(opts...)
}

// encodeSegment writes the kept rows as one Parquet file to w.
func encodeSegment(w io.Writer, rows []Row, keep []bool, codec segmentCodec, bloom bool) error {
	rec := buildSegmentRecord(rows, keep)
	defer rec.Release()
	return encodeRecord(w, rec, codec, bloom)
}

// encodeRecord writes rec (segmentSchema) as one Parquet file to w.
func encodeRecord(w io.Writer, rec arrow.RecordBatch, codec segmentCodec, bloom bool) error {
	fw, err := pqarrow.NewFileWriter(segmentSchema, w, segmentWriterProps(codec, bloom), pqarrow.NewArrowWriterProperties())
	if err != nil {
		return fmt.Errorf("start segment: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("encode segment of %d events: %w", rec.NumRows(), err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("finish segment: %w", err)
	}
	return nil
}

// buildSegmentRecord copies the kept rows (every row when keep is nil) into
// one Arrow record.
func buildSegmentRecord(rows []Row, keep []bool) arrow.RecordBatch {
	b := newSegmentBuilder(len(rows))
	for i := range rows {
		if keep == nil || keep[i] {
			b.add(&rows[i])
		}
	}
	return b.record()
}

// segmentBuilder accumulates events as Arrow columns: the store's buffer
// of events not yet in a segment file. Text is copied in, so the builder
// keeps no reference to the caller's rows.
type segmentBuilder struct {
	n                               int
	topic, service, level, host     *dictColumn
	tenant                          *dictColumn
	message, traceID, spanID, attrs *array.BinaryBuilder
	partition, size                 *array.Int32Builder
	offset                          *array.Int64Builder
	ts                              *array.TimestampBuilder
	minTS, maxTS                    int64 // unix microseconds
	// rec is the frozen buffer (freeze): set once a segment write starts,
	// kept until one succeeds; nothing more is added after.
	rec arrow.RecordBatch
}

// freeze turns the buffer into its record, once.
func (b *segmentBuilder) freeze() arrow.RecordBatch {
	if b.rec == nil {
		b.rec = b.record()
	}
	return b.rec
}

// segmentTextSizes is the bytes a builder reserves for its text columns
// (message, trace_id, span_id, attrs) per event.
type segmentTextSizes [4]int

// typicalTextSizes: message ~70, trace 32, span 16, attrs ~60 bytes.
var typicalTextSizes = segmentTextSizes{80, 32, 16, 64}

func newSegmentBuilder(capacity int) *segmentBuilder {
	return newSegmentBuilderSized(capacity, typicalTextSizes)
}

// newSegmentBuilderSized reserves capacity events of perRow text bytes: the
// buffers then grow rarely (each growth doubles one and copies it).
func newSegmentBuilderSized(capacity int, perRow segmentTextSizes) *segmentBuilder {
	mem := memory.DefaultAllocator
	str := func(perRow int) *array.BinaryBuilder {
		b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.String)
		b.Reserve(capacity)
		b.ReserveData(capacity * perRow)
		return b
	}
	b := &segmentBuilder{
		topic: newDictColumn(capacity), service: newDictColumn(capacity), level: newDictColumn(capacity),
		host: newDictColumn(capacity), tenant: newDictColumn(capacity),
		message: str(perRow[0]), traceID: str(perRow[1]), spanID: str(perRow[2]), attrs: str(perRow[3]),
		partition: array.NewInt32Builder(mem), size: array.NewInt32Builder(mem),
		offset: array.NewInt64Builder(mem),
		ts:     array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond}),
	}
	b.partition.Reserve(capacity)
	b.size.Reserve(capacity)
	b.offset.Reserve(capacity)
	b.ts.Reserve(capacity)
	return b
}

func (b *segmentBuilder) add(r *Row) {
	e := &r.Event
	us := e.Time.UnixMicro()
	if b.n == 0 || us < b.minTS {
		b.minTS = us
	}
	if b.n == 0 || us > b.maxTS {
		b.maxTS = us
	}
	b.n++
	b.topic.add(r.Topic)
	b.partition.Append(r.Partition)
	b.offset.Append(r.Offset)
	b.ts.Append(arrow.Timestamp(us))
	b.service.add(e.Service)
	b.level.add(e.Level.String())
	segText(b.message, e.Message)
	b.host.add(e.Host)
	segText(b.traceID, e.TraceID)
	segText(b.spanID, e.SpanID)
	b.tenant.add(e.Tenant)
	if len(e.Attrs) == 0 {
		b.attrs.AppendNull()
	} else {
		b.attrs.Append(validBytes(e.Attrs))
	}
	b.size.Append(int32(r.Bytes))
}

// sizeNext is what the next buffer should reserve after this one (still
// building): its event count with a quarter more, at most maxRows, and its
// text bytes per event with an eighth more.
func (b *segmentBuilder) sizeNext(maxRows int) (int, segmentTextSizes) {
	if b.n == 0 {
		return maxRows, typicalTextSizes
	}
	rows := min(maxRows, max(1024, b.n+b.n/4))
	var per segmentTextSizes
	for i, c := range []*array.BinaryBuilder{b.message, b.traceID, b.spanID, b.attrs} {
		per[i] = (c.DataLen()+c.DataLen()/8)/b.n + 1
	}
	return rows, per
}

// record returns the events added as one record and releases the builder.
func (b *segmentBuilder) record() arrow.RecordBatch {
	cols := []arrow.Array{b.topic.array(), newArray(b.partition), newArray(b.offset), newArray(b.ts), b.service.array(), b.level.array(),
		newArray(b.message), b.host.array(), newArray(b.traceID), newArray(b.spanID), b.tenant.array(), newArray(b.attrs), newArray(b.size)}
	rec := array.NewRecordBatch(segmentSchema, cols, int64(b.n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// release frees the builder's memory.
func (b *segmentBuilder) release() {
	if b.rec != nil {
		b.rec.Release()
		b.rec = nil
		return
	}
	for _, x := range []array.Builder{b.message, b.traceID, b.spanID, b.attrs, b.partition, b.size, b.offset, b.ts} {
		x.Release()
	}
}

// segText appends s without StringBuilder.Append's []byte conversion (the
// builder copies the bytes), repairing invalid UTF-8 as the table path does.
func segText(b *array.BinaryBuilder, s string) {
	if !utf8.ValidString(s) {
		s = validString(s)
	}
	b.Append(unsafe.Slice(unsafe.StringData(s), len(s)))
}

func newArray(b array.Builder) arrow.Array {
	a := b.NewArray()
	b.Release()
	return a
}

// dictColumn builds a dictionary-encoded text column: one map lookup per
// value, each distinct value stored once.
type dictColumn struct {
	ids     map[string]int32
	values  []string
	indices []int32
}

func newDictColumn(n int) *dictColumn {
	return &dictColumn{ids: make(map[string]int32, 16), indices: make([]int32, 0, n)}
}

func (d *dictColumn) add(s string) {
	id, ok := d.ids[s]
	if !ok {
		s = strings.Clone(validString(s)) // the caller's batch memory is not ours to keep
		id = int32(len(d.values))
		d.values = append(d.values, s)
		d.ids[s] = id
	}
	d.indices = append(d.indices, id)
}

func (d *dictColumn) array() arrow.Array {
	mem := memory.DefaultAllocator
	vb := array.NewStringBuilder(mem)
	vb.AppendValues(d.values, nil)
	dict := vb.NewArray()
	vb.Release()
	ib := array.NewInt32Builder(mem)
	ib.AppendValues(d.indices, nil)
	idx := ib.NewArray()
	ib.Release()
	a := array.NewDictionaryArray(segmentDict, idx, dict)
	idx.Release()
	dict.Release()
	return a
}
