package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
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

// segmentPageSize is the data page size of a segment's columns. arrow-go
// builds a page in a buffer that doubles as it grows and zeroes it when
// the page is written: 1 MB pages (its default) cost 2 MB of garbage and a
// 2 MB clear per page of message text; 224 KB pages (a page closes up to a
// write batch past the limit, within a 512 KB buffer) cut the encoder's
// allocations by half and its CPU by a fifth, for the same file size
// (BenchmarkSegmentEncodeProps, docs/BENCHMARKS.md "Store CPU per event,
// fifth session").
const segmentPageSize = 224 << 10

// segmentWriterProps are the Parquet settings of a segment: dictionary
// pages only for the low-cardinality text columns (a dictionary attempt on
// message or trace_id costs a hash per value and is abandoned at the page
// limit), delta encoding for the increasing ts and offset and for
// partition (runs of one value: a few bits per page, where a dictionary
// hashed every value), statistics (min/max, what DuckDB prunes row groups
// with) on the columns whose ranges can exclude a row group, and a bloom
// filter on trace_id when bloom is set.
func segmentWriterProps(codec segmentCodec, bloom bool, extra ...parquet.WriterProperty) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(segmentRowGroup),
		parquet.WithDataPageSize(segmentPageSize),
		parquet.WithEncodingFor("ts", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("offset", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("partition", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithStats(true),
		// Long message/attrs minimums and maximums cost bytes in every page
		// header and prune nothing.
		parquet.WithStatsFor("message", false),
		parquet.WithStatsFor("attrs", false),
		parquet.WithStatsFor("span_id", false),
		// A segment holds a fraction of a second of every service, level
		// and host sending: their min/max exclude nothing, and arrow-go
		// computes a dictionary column's statistics by hashing every index
		// of every chunk (compute.UniqueArray: 6 % of the store's CPU,
		// profiled). topic and tenant keep theirs: one value per segment
		// is common, and a tenant's searches can skip files of other tenants.
		parquet.WithStatsFor("service", false),
		parquet.WithStatsFor("level", false),
		parquet.WithStatsFor("host", false),
	}
	for _, c := range []string{"topic", "service", "level", "host", "tenant"} {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	if bloom {
		opts = append(opts, parquet.WithBloomFilterEnabledFor("trace_id", true), parquet.WithBloomFilterFPPFor("trace_id", 0.01))
	}
	return parquet.NewWriterProperties(append(opts, extra...)...)
}

// segmentProps are the writer settings of the segment files the store
// writes (a test swaps in an earlier release's, to read its files).
var segmentProps = defaultSegmentProps

func defaultSegmentProps() *parquet.WriterProperties {
	return segmentWriterProps(segmentCompression, false)
}

// encodeSegment writes the kept rows as one Parquet file to w.
func encodeSegment(w io.Writer, rows []Row, keep []bool, codec segmentCodec, bloom bool) error {
	rec := buildSegmentRecord(rows, keep)
	defer rec.Release()
	return encodeRecord(w, rec, codec, bloom)
}

// segmentChunkRows is how many events of a column arrow-go is handed at a
// time when a segment is encoded: it makes one 24-byte slice header per
// value of a string column for each call, so a whole column of a full
// segment at once was ~3 MB of garbage per string column.
const segmentChunkRows = 16384

// encodeRecord writes rec (segmentSchema) as one Parquet file to w, in row
// groups of at most segmentRowGroup events.
func encodeRecord(w io.Writer, rec arrow.RecordBatch, codec segmentCodec, bloom bool) error {
	return encodeRecordWith(w, rec, segmentWriterProps(codec, bloom))
}

// encodeRecordWith is encodeRecord with the writer properties given
// (BenchmarkSegmentEncodeProps measures the alternatives).
func encodeRecordWith(w io.Writer, rec arrow.RecordBatch, props *parquet.WriterProperties) error {
	fw, err := pqarrow.NewFileWriter(segmentSchema, w, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		return fmt.Errorf("start segment: %w", err)
	}
	n := int(rec.NumRows())
	for lo := 0; lo == 0 || lo < n; lo += segmentRowGroup {
		hi := min(n, lo+segmentRowGroup)
		fw.NewRowGroup()
		for _, c := range rec.Columns() {
			if err := writeColumnChunks(fw, c, lo, hi); err != nil {
				fw.Close()
				return fmt.Errorf("encode segment of %d events: %w", n, err)
			}
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("finish segment: %w", err)
	}
	return nil
}

// writeColumnChunks writes rows lo..hi of c as the row group's next column,
// segmentChunkRows at a time.
func writeColumnChunks(fw *pqarrow.FileWriter, c arrow.Array, lo, hi int) error {
	chunks := make([]arrow.Array, 0, (hi-lo)/segmentChunkRows+1)
	for at := lo; at < hi || at == lo; at += segmentChunkRows {
		chunks = append(chunks, array.NewSlice(c, int64(at), int64(min(hi, at+segmentChunkRows))))
	}
	chunked := arrow.NewChunked(c.DataType(), chunks)
	for _, a := range chunks {
		a.Release()
	}
	defer chunked.Release()
	return fw.WriteColumnChunked(chunked, 0, int64(hi-lo))
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
// keeps no reference to the caller's rows. Its columns are plain slices
// over buffers of segmentMem (outside the Go heap for a full segment,
// segment_alloc.go), turned into Arrow arrays without a copy (record): an
// arrow-go builder's Append checks capacity and sets a validity bit per
// value, for columns that have no nulls.
type segmentBuilder struct {
	n                               int
	topic, service, level, host     *dictColumn
	tenant                          *dictColumn
	levelIDs                        [256]int32 // event.Level → 1 + its index in level (0: not seen yet)
	message, traceID, spanID, attrs textColumn
	partition, size                 fixedColumn[int32]
	offset, ts                      fixedColumn[int64]
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

// segmentReserveRows is what the first buffer of a store reserves: a full
// segment and a quarter more (sizeNext).
func segmentReserveRows(maxRows int) int { return maxRows + maxRows/4 }

func newSegmentBuilder(capacity int) *segmentBuilder {
	return newSegmentBuilderSized(capacity, typicalTextSizes)
}

// newSegmentBuilderSized reserves capacity events of perRow text bytes: the
// buffers then grow rarely (each growth doubles one and copies it).
func newSegmentBuilderSized(capacity int, perRow segmentTextSizes) *segmentBuilder {
	b := &segmentBuilder{
		topic: newDictColumn(capacity), service: newDictColumn(capacity), level: newDictColumn(capacity),
		host: newDictColumn(capacity), tenant: newDictColumn(capacity),
	}
	for i, c := range []*textColumn{&b.message, &b.traceID, &b.spanID, &b.attrs} {
		c.init(capacity, perRow[i])
	}
	b.attrs.nullable(capacity)
	b.partition.reserve(capacity)
	b.size.reserve(capacity)
	b.offset.reserve(capacity)
	b.ts.reserve(capacity)
	return b
}

// add appends one event; it returns the dictionary ids of its service and
// tenant (the store keys its rollups by them: no string hashing per event).
func (b *segmentBuilder) add(r *Row) (service, tenant int32) {
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
	b.partition.add(r.Partition)
	b.offset.add(r.Offset)
	b.ts.add(us)
	service = b.service.add(e.Service)
	if id := b.levelIDs[e.Level]; id > 0 {
		b.level.indices.add(id - 1)
	} else {
		b.levelIDs[e.Level] = b.level.add(e.Level.String()) + 1
	}
	b.message.addString(e.Message)
	b.host.add(e.Host)
	b.traceID.addString(e.TraceID)
	b.spanID.addString(e.SpanID)
	tenant = b.tenant.add(e.Tenant)
	if len(e.Attrs) == 0 {
		b.attrs.addNull()
	} else {
		b.attrs.add(e.Attrs)
	}
	b.size.add(int32(r.Bytes))
	return service, tenant
}

// sizeNext is what the next buffer should reserve after this one (still
// building): its event count with a quarter more, and its text bytes per
// event with an eighth more. A buffer is sealed once it holds maxRows or
// more, so a full one holds up to a batch more than maxRows: reserving
// maxRows made every full buffer grow (copy) its columns. The reservation
// is address space: a page counts in RSS only once written to
// (segment_alloc.go).
func (b *segmentBuilder) sizeNext(maxRows int) (int, segmentTextSizes) {
	if b.n == 0 {
		return segmentReserveRows(maxRows), typicalTextSizes
	}
	rows := min(2*maxRows, max(1024, b.n+b.n/4))
	var per segmentTextSizes
	for i, c := range []*textColumn{&b.message, &b.traceID, &b.spanID, &b.attrs} {
		per[i] = (len(c.data)+len(c.data)/8)/b.n + 1
	}
	return rows, per
}

// record returns the events added as one record; the builder's buffers
// belong to the record from then on.
func (b *segmentBuilder) record() arrow.RecordBatch {
	for _, c := range []*textColumn{&b.message, &b.traceID, &b.spanID, &b.attrs} {
		c.repairUTF8()
	}
	cols := []arrow.Array{b.topic.array(), fixedArray(arrow.PrimitiveTypes.Int32, &b.partition), fixedArray(arrow.PrimitiveTypes.Int64, &b.offset),
		fixedArray(segmentSchema.Field(3).Type, &b.ts), b.service.array(), b.level.array(),
		b.message.array(), b.host.array(), b.traceID.array(), b.spanID.array(), b.tenant.array(), b.attrs.array(), fixedArray(arrow.PrimitiveTypes.Int32, &b.size)}
	rec := array.NewRecordBatch(segmentSchema, cols, int64(b.n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// release frees the builder's memory (its record's, once frozen). Every
// builder is released exactly once: segmentMem's buffers are not collected.
func (b *segmentBuilder) release() {
	if b.rec != nil {
		b.rec.Release()
		b.rec = nil
		return
	}
	for _, c := range []*textColumn{&b.message, &b.traceID, &b.spanID, &b.attrs} {
		c.free()
	}
	for _, d := range []*dictColumn{b.topic, b.service, b.level, b.host, b.tenant} {
		d.indices.free()
	}
	b.partition.free()
	b.size.free()
	b.offset.free()
	b.ts.free()
}

// fixedColumn is a column of fixed-width values: a slice over a buffer of
// segmentMem, appended to within its capacity and grown by Reallocate.
type fixedColumn[T int32 | int64 | uint8] struct {
	buf  []byte // all of the allocation; vals aliases it
	vals []T
}

func (c *fixedColumn[T]) reserve(n int) {
	if n <= cap(c.vals) {
		return
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	if c.buf == nil {
		c.buf = segmentMem.Allocate(n * size)
	} else {
		c.buf = segmentMem.Reallocate(n*size, c.buf)
	}
	c.vals = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(c.buf))), n)[:len(c.vals)]
}

func (c *fixedColumn[T]) add(v T) {
	if len(c.vals) == cap(c.vals) {
		c.reserve(max(1024, 2*cap(c.vals)))
	}
	c.vals = append(c.vals, v) // within capacity: never reallocates
}

// buffer hands the values over as an Arrow buffer that frees them.
func (c *fixedColumn[T]) buffer() *memory.Buffer {
	var zero T
	b := memory.NewBufferWithAllocator(c.buf[:len(c.vals)*int(unsafe.Sizeof(zero))], segmentMem)
	c.buf, c.vals = nil, nil
	return b
}

func (c *fixedColumn[T]) free() {
	if c.buf != nil {
		segmentMem.Free(c.buf)
	}
	c.buf, c.vals = nil, nil
}

// fixedArray turns c into an array of type t without nulls.
func fixedArray[T int32 | int64](t arrow.DataType, c *fixedColumn[T]) arrow.Array {
	n := len(c.vals)
	return newArrayOf(t, n, 0, nil, c.buffer())
}

// newArrayOf makes an array of n values of t from buffers (Arrow's layout
// for t), taking over the caller's references to them.
func newArrayOf(t arrow.DataType, n, nulls int, bufs ...*memory.Buffer) arrow.Array {
	data := array.NewData(t, n, bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release() // NewData retained it
		}
	}
	a := array.MakeFromData(data)
	data.Release()
	return a
}

// textColumn is an Arrow string column being built: offsets, the bytes,
// and a validity bitmap when the column is nullable.
type textColumn struct {
	offsets fixedColumn[int32] // n+1 entries
	data    []byte             // from segmentMem: len is the bytes used
	valid   *fixedColumn[uint8]
	nulls   int
}

func (c *textColumn) init(capacity, perRow int) {
	c.offsets.reserve(capacity + 1)
	c.offsets.add(0)
	c.data = segmentMem.Allocate(capacity * perRow)[:0]
}

func (c *textColumn) nullable(capacity int) {
	c.valid = &fixedColumn[uint8]{}
	c.valid.reserve(capacity/8 + 1)
}

func (c *textColumn) grow(more int) {
	nb := segmentMem.Allocate(max(2*cap(c.data), len(c.data)+more, 4096))
	copy(nb, c.data)
	if c.data != nil {
		segmentMem.Free(c.data)
	}
	c.data = nb[:len(c.data)]
}

// addString appends s (repairUTF8 makes it valid UTF-8 before the column
// becomes an array).
func (c *textColumn) addString(s string) {
	c.add(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// add appends v as it is: invalid UTF-8 is repaired once the column is
// complete (repairUTF8), where one pass over its bytes checks every value
// at once instead of a utf8.Valid call per value and event.
func (c *textColumn) add(v []byte) {
	if len(c.data)+len(v) > cap(c.data) {
		c.grow(len(v))
	}
	c.data = append(c.data, v...)
	c.setValid(true)
	c.offsets.add(int32(len(c.data)))
}

func (c *textColumn) addNull() {
	c.nulls++
	c.setValid(false)
	c.offsets.add(int32(len(c.data)))
}

func (c *textColumn) setValid(ok bool) {
	if c.valid == nil {
		return
	}
	i := len(c.offsets.vals) - 1 // the index of the value being added
	if i%8 == 0 {
		c.valid.add(0)
	}
	if ok {
		c.valid.vals[i/8] |= 1 << (i % 8)
	}
}

// repairUTF8 replaces invalid UTF-8 in each value with U+FFFD, as
// validString does for the table path (DuckDB rejects invalid VARCHAR
// data). Log text is nearly all ASCII: one pass over the column's bytes,
// 32 at a time, proves that of every value at once, at a fraction of what
// a utf8.Valid per value and event cost (a third of buffering an event,
// profiled). From the value with the first non-ASCII byte on, each value
// is checked alone: a multi-byte character split across two values is
// valid in the concatenation but not in either value.
func (c *textColumn) repairUTF8() {
	i := firstNonASCII(c.data)
	if i == len(c.data) {
		return
	}
	offs := c.offsets.vals
	n := len(offs) - 1
	// The value holding byte i: the first whose end is past it.
	v := sort.Search(n, func(k int) bool { return int(offs[k+1]) > i })
	for ; v < n; v++ {
		if !utf8.Valid(c.data[offs[v]:offs[v+1]]) {
			c.rewriteFrom(v)
			return
		}
	}
}

// rewriteFrom rewrites the values from v on, repairing the invalid ones
// (rare: the tail is copied once, the values before v stay in place).
func (c *textColumn) rewriteFrom(v int) {
	offs := c.offsets.vals
	n := len(offs) - 1
	base := int(offs[v])
	tail := make([]byte, 0, len(c.data)-base+64)
	ends := make([]int32, 0, n-v)
	for k := v; k < n; k++ {
		val := c.data[offs[k]:offs[k+1]]
		if !utf8.Valid(val) {
			val = bytes.ToValidUTF8(val, []byte("\uFFFD"))
		}
		tail = append(tail, val...)
		ends = append(ends, int32(base+len(tail)))
	}
	c.data = c.data[:base]
	if len(tail) > cap(c.data)-base {
		c.grow(len(tail))
	}
	c.data = append(c.data, tail...)
	copy(offs[v+1:], ends)
}

// firstNonASCII is the index of the first byte of b with its top bit set,
// len(b) when there is none.
func firstNonASCII(b []byte) int {
	const hi = 0x8080808080808080
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := binary.LittleEndian.Uint64(b[i:]) | binary.LittleEndian.Uint64(b[i+8:]) |
			binary.LittleEndian.Uint64(b[i+16:]) | binary.LittleEndian.Uint64(b[i+24:])
		if w&hi != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return i
		}
	}
	return len(b)
}

func (c *textColumn) array() arrow.Array {
	n := len(c.offsets.vals) - 1
	var valid *memory.Buffer
	if c.valid != nil {
		if c.nulls > 0 {
			valid = c.valid.buffer()
		} else {
			c.valid.free()
		}
	}
	data := memory.NewBufferWithAllocator(c.data, segmentMem)
	c.data = nil
	return newArrayOf(arrow.BinaryTypes.String, n, c.nulls, valid, c.offsets.buffer(), data)
}

func (c *textColumn) free() {
	if c.data != nil {
		segmentMem.Free(c.data)
		c.data = nil
	}
	c.offsets.free()
	if c.valid != nil {
		c.valid.free()
	}
}

// dictColumn builds a dictionary-encoded text column, each distinct value
// stored once. A value is looked up in a small direct-mapped cache first
// (a hash of its length and first and last 8 bytes, one string compare),
// then in the map: the events of a segment repeat a few dozen services and
// hosts, and a Go map lookup hashes every byte of the string (profiled:
// the map was most of a dictionary add).
type dictColumn struct {
	ids     map[string]int32
	values  []string
	indices fixedColumn[int32]
	last    string // the value of lastID, when len(values) > 0
	lastID  int32
	cache   [dictCacheSlots]dictSlot
}

const dictCacheSlots = 256 // a power of two

// dictSlot is a cached dictionary value; id is its index + 1 (0: empty).
type dictSlot struct {
	s  string
	id int32
}

// dictSlotOf is s's slot in a dictColumn's cache.
func dictSlotOf(s string) int {
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	if n := len(s); n >= 8 {
		b := unsafe.Slice(unsafe.StringData(s), n)
		h ^= binary.LittleEndian.Uint64(b) * 0xff51afd7ed558ccd
		h ^= binary.LittleEndian.Uint64(b[n-8:]) * 0xc4ceb9fe1a85ec53
	} else {
		var x uint64
		for i := 0; i < n; i++ {
			x |= uint64(s[i]) << (8 * i)
		}
		h ^= x * 0xff51afd7ed558ccd
	}
	return int((h ^ h>>29) * 0x94d049bb133111eb >> (64 - 8))
}

func newDictColumn(n int) *dictColumn {
	d := &dictColumn{ids: make(map[string]int32, 16)}
	d.indices.reserve(n)
	return d
}

// add appends s and returns its index in the dictionary.
func (d *dictColumn) add(s string) int32 {
	if len(d.values) > 0 && s == d.last {
		d.indices.add(d.lastID)
		return d.lastID
	}
	slot := &d.cache[dictSlotOf(s)]
	var id int32
	if slot.id > 0 && slot.s == s {
		id = slot.id - 1
	} else {
		var ok bool
		id, ok = d.ids[s]
		if !ok {
			v := strings.Clone(validString(s)) // the caller's batch memory is not ours to keep
			id = int32(len(d.values))
			d.values = append(d.values, v)
			d.ids[v] = id
		}
		// Keyed by the value as given (a repaired one differs): ours, not
		// the caller's memory.
		if v := d.values[id]; v == s {
			slot.s, slot.id = v, id+1
		}
	}
	d.last, d.lastID = d.values[id], id
	d.indices.add(id)
	return id
}

func (d *dictColumn) array() arrow.Array {
	vb := array.NewStringBuilder(memory.DefaultAllocator)
	vb.AppendValues(d.values, nil)
	dict := vb.NewArray()
	vb.Release()
	idx := fixedArray(arrow.PrimitiveTypes.Int32, &d.indices)
	a := array.NewDictionaryArray(segmentDict, idx, dict)
	idx.Release()
	dict.Release()
	return a
}
